//! One run of a loaded pipeline, under the instance lock: flow -> select -> plan -> exec ->
//! store. `weir run`, `weir watch` and the REPL all run through here, so there is one run path.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio_util::sync::CancellationToken;

use crate::config::{CacheMode, Instance};
use crate::exec::{self, Outcome, Shared, Status};
use crate::flow::plan::{Plan, PlanOptions, plan};
use crate::flow::{Flow, select::select};
use crate::report::{Printer, SummaryRow, Verbosity};
use crate::script::Script;
use crate::store::Store;
use crate::store::lock::Lock;
use crate::store::runs::{RunRecord, StageRecord, TaskRecord, new_run_id};
use crate::{Error, Result};

/// A pipeline ready to plan: the instance, the evaluated script, its store, and the stores of
/// the instances it samples from.
pub struct Loaded {
    pub instance: Instance,
    pub script: Script,
    pub store: Store,
    pub instances: std::collections::BTreeMap<String, Store>,
}

#[derive(Debug, Clone)]
pub struct RunOptions {
    pub select: Vec<String>,
    pub force: bool,
    /// Overrides the instance's mode.
    pub cache_mode: Option<CacheMode>,
    pub jobs: Option<usize>,
    pub keep_going: bool,
    pub lock_timeout: Duration,
    /// Stages built but not committed (the REPL's tainted ones).
    pub hold: BTreeSet<String>,
    pub verbosity: Verbosity,
    /// From the REPL: debugging allowances (an intermediate materialized twice).
    pub interactive: bool,
}

impl Default for RunOptions {
    fn default() -> Self {
        Self {
            select: Vec::new(),
            force: false,
            cache_mode: None,
            jobs: None,
            keep_going: false,
            lock_timeout: Duration::from_secs(600),
            hold: BTreeSet::new(),
            verbosity: Verbosity::Normal,
            interactive: false,
        }
    }
}

/// What a run did, for the summary and for front ends that show what changed.
pub struct RunReport {
    pub run_id: String,
    pub shared: Arc<Shared>,
    pub outcome: Outcome,
    pub elapsed: Duration,
    /// Stopped by its cancellation token: what was committed before stays, nothing more.
    pub cancelled: bool,
}

impl RunReport {
    pub fn failed(&self) -> usize {
        self.outcome
            .tasks
            .iter()
            .filter(|t| matches!(t.status, Status::Failed(_)))
            .count()
    }

    /// The failures that point into the user's files, in flow order.
    pub fn problems(&self) -> Vec<crate::exec::TaskProblem> {
        self.outcome
            .tasks
            .iter()
            .filter_map(|t| t.problem.clone())
            .collect()
    }

    /// The run's failure as an error, with the located diagnostics of its failed tasks.
    pub fn failure(&self) -> Option<Error> {
        let failed = self.failed();
        (failed > 0).then(|| Error::RunFailed {
            failed,
            total: self.outcome.tasks.len(),
            problems: self.problems(),
        })
    }

    /// One row per task; `verbose` adds why each task that ran had to.
    pub fn summary_rows(&self, verbose: bool) -> Vec<SummaryRow<'_>> {
        self.shared
            .flow
            .tasks
            .iter()
            .zip(&self.outcome.tasks)
            .zip(&self.shared.steps)
            .map(|((task, o), step)| SummaryRow {
                task: task.id.to_string(),
                status: o.status.label(),
                rows: (!o.builds.is_empty()).then(|| o.builds.iter().map(|b| b.rows).sum()),
                duration: o.duration,
                detail: match &o.status {
                    Status::Failed(e) => Some(e.clone()),
                    Status::Skipped(why) => Some(why.clone()),
                    Status::Ran if verbose => Some(step.reasons().join(", ")),
                    _ => None,
                },
            })
            .collect()
    }

    /// The end-of-run summary, on stdout.
    pub fn print_summary(&self, verbose: bool) -> Result<()> {
        crate::report::print_summary(
            &self.run_id,
            &self.summary_rows(verbose),
            &self.stages(),
            self.elapsed,
            verbose,
        )?;
        Ok(())
    }

    /// (stage, committed, changed) for each stage.
    pub fn stages(&self) -> Vec<(String, bool, bool)> {
        self.outcome
            .stages
            .iter()
            .map(|s| (s.stage.clone(), s.committed, s.changed))
            .collect()
    }
}

/// Run the selected tasks of `loaded`. Errors before any task starts (a bad selection, the
/// lock, `assert-no-fresh-input`) are returned; task failures are in the report.
pub async fn run(
    loaded: &Loaded,
    opts: &RunOptions,
    cancel: &CancellationToken,
) -> Result<RunReport> {
    let started = Instant::now();
    let started_at = chrono::Utc::now().to_rfc3339();
    let Loaded {
        instance,
        script,
        store,
        instances,
    } = loaded;
    let flow = Flow::build(script)?;
    let selected = select(&flow, &opts.select)?;
    let cache_mode = opts.cache_mode.unwrap_or(instance.cache_mode);
    let engine = exec::Engine::new(store).map_err(exec::ExecError::Engine)?;
    let run_id = new_run_id();
    let mut printer = Printer::new(&run_id, opts.verbosity);

    let lock = tokio::select! {
        lock = Lock::acquire(store, &run_id, opts.lock_timeout, |h| printer.waiting_for_lock(h)) => lock?,
        () = cancel.cancelled() => return Err(Error::Cancelled),
    };
    crate::flow::plan::renew_volatile_keys();
    let cleared = store.read_cleared().await;
    let planned = match cleared {
        Ok(cleared) => {
            let plan_opts = PlanOptions {
                selected: &selected,
                force: opts.force,
                script_dir: &script.dir,
                cache_mode,
                instances,
                cleared: &cleared,
            };
            plan(&flow, store, &engine.state(None), plan_opts)
                .await
                .map_err(Error::from)
                .and_then(|p| check_fresh_inputs(&flow, p, cache_mode))
        }
        Err(e) => Err(e.into()),
    };
    let plan = match planned {
        Ok(p) => p,
        Err(e) => {
            lock.release().await?;
            return Err(e);
        }
    };
    let to_run = plan
        .steps
        .iter()
        .filter(|s| s.action == crate::flow::Action::Run)
        .count();
    printer.begin(&instance.name, to_run, plan.steps.len());
    let shared = Arc::new(Shared {
        flow,
        steps: plan.steps,
        store: store.clone(),
        engine,
        engine_rhai: script.engine.clone(),
        ast: script.ast.clone(),
        script_dir: script.dir.clone(),
        script_path: script.source.path.clone(),
        script_source: script.source.clone(),
        run_id: run_id.clone(),
        instances: instances.clone(),
        interactive: opts.interactive,
    });
    let jobs = opts
        .jobs
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(2, |n| n.get()))
        .max(1);
    let exec_opts = exec::Options {
        jobs,
        keep_going: opts.keep_going,
        cancel: cancel.clone(),
        hold: opts.hold.clone(),
    };
    let executed = exec::execute(shared.clone(), plan.manifests, exec_opts, &printer).await;
    let outcome = match executed {
        Ok(o) => o,
        Err(e) => {
            printer.end(false, started.elapsed());
            lock.release().await?;
            return Err(e.into());
        }
    };
    let record = record(&shared, &outcome, started_at, started.elapsed());
    printer.end(record.ok, started.elapsed());
    let wrote = async {
        store.write_run(&record).await?;
        store
            .write_run_log(&record.run_id, &printer.log_text())
            .await?;
        store
            .uncleared(&committed_with(&shared, &outcome, &[Status::Ran]))
            .await?;
        // Held (tainted) stages are not committed, so what is committed here is the script's.
        let scripts = committed_with(&shared, &outcome, &[Status::Ran, Status::Cached]);
        store.untaint(&scripts).await
    }
    .await;
    lock.release().await?;
    wrote?;
    Ok(RunReport {
        run_id,
        shared,
        outcome,
        elapsed: started.elapsed(),
        cancelled: cancel.is_cancelled(),
    })
}

/// The plan of every task, without the lock: for status, taint and previews.
pub async fn plan_all(loaded: &Loaded) -> Result<(Flow, Plan)> {
    let flow = Flow::build(&loaded.script)?;
    let engine = exec::Engine::new(&loaded.store).map_err(exec::ExecError::Engine)?;
    let all: BTreeSet<usize> = (0..flow.tasks.len()).collect();
    let cleared = loaded.store.read_cleared().await?;
    let opts = PlanOptions {
        selected: &all,
        force: false,
        script_dir: &loaded.script.dir,
        cache_mode: loaded.instance.cache_mode,
        instances: &loaded.instances,
        cleared: &cleared,
    };
    let plan = plan(&flow, &loaded.store, &engine.state(None), opts).await?;
    Ok((flow, plan))
}

/// Tasks with one of `statuses` whose stage committed.
fn committed_with(shared: &Shared, outcome: &Outcome, statuses: &[Status]) -> BTreeSet<String> {
    let committed: BTreeSet<&str> = outcome
        .stages
        .iter()
        .filter(|s| s.committed)
        .map(|s| s.stage.as_str())
        .collect();
    shared
        .flow
        .tasks
        .iter()
        .zip(&outcome.tasks)
        .filter(|(t, o)| statuses.contains(&o.status) && committed.contains(t.decl.stage.as_str()))
        .map(|(t, _)| t.id.to_string())
        .collect()
}

/// `assert-no-fresh-input`: refuse to build anything when an outside input changed.
fn check_fresh_inputs(flow: &Flow, plan: Plan, mode: CacheMode) -> Result<Plan> {
    if mode != CacheMode::AssertNoFreshInput || plan.fresh_inputs.is_empty() {
        return Ok(plan);
    }
    let sources = plan
        .fresh_inputs
        .iter()
        .map(|(i, what)| {
            let task = &flow.tasks[*i];
            let from = match &task.decl.kind {
                crate::script::TaskKind::Load(spec) => format!(" ({})", spec.location),
                _ => String::new(),
            };
            format!("{}{from}: {}", task.id, what.join(", "))
        })
        .collect();
    Err(Error::FreshInput { sources })
}

fn record(shared: &Shared, outcome: &Outcome, started_at: String, took: Duration) -> RunRecord {
    let tasks = shared
        .flow
        .tasks
        .iter()
        .zip(&outcome.tasks)
        .zip(&shared.steps)
        .map(|((task, o), step)| TaskRecord {
            task: task.id.to_string(),
            stage: task.decl.stage.clone(),
            status: o.status.label().replace(' ', "_"),
            key: step.key.0.clone(),
            reason: step.reasons(),
            rows: o.builds.iter().map(|b| b.rows).sum(),
            bytes: o.builds.iter().map(|b| b.bytes).sum(),
            duration_ms: o.duration.as_millis() as u64,
            error: match &o.status {
                Status::Failed(e) | Status::Skipped(e) => Some(e.clone()),
                _ => None,
            },
        })
        .collect();
    let stages = outcome
        .stages
        .iter()
        .map(|s| StageRecord {
            stage: s.stage.clone(),
            committed: s.committed,
            changed: s.changed,
        })
        .collect();
    RunRecord {
        run_id: shared.run_id.clone(),
        instance: shared.store.layout.instance().to_string(),
        script: shared.script_path.display().to_string(),
        started_at,
        ended_at: chrono::Utc::now().to_rfc3339(),
        duration_ms: took.as_millis() as u64,
        ok: outcome
            .tasks
            .iter()
            .all(|t| !matches!(t.status, Status::Failed(_))),
        tasks,
        stages,
    }
}

/// The index of the task that is, or writes, `name` (`stage.table`).
pub fn find_task(flow: &Flow, name: &str) -> Result<usize> {
    flow.tasks
        .iter()
        .position(|t| t.id.to_string() == name || t.outputs().any(|o| o.to_string() == name))
        .ok_or_else(|| {
            let known: Vec<String> = flow.tasks.iter().map(|t| t.id.to_string()).collect();
            Error::usage(
                format!("no task `{name}`"),
                format!("tasks: {}", known.join(", ")),
            )
        })
}

/// Evaluate one task over its inputs' builds (this flow's, else the committed ones) and
/// return its first rows, writing nothing.
pub async fn evaluate_task(
    loaded: &Loaded,
    name: &str,
    rows: usize,
) -> Result<Vec<(String, Vec<datafusion::arrow::record_batch::RecordBatch>)>> {
    let (flow, plan) = plan_all(loaded).await?;
    let index = find_task(&flow, name)?;
    let mut inputs = Vec::new();
    for input in &flow.tasks[index].inputs {
        let step = &plan.steps[flow.producers[input]];
        let committed = plan.committed(input);
        let build = step
            .builds
            .iter()
            .find(|b| b.table == input.table)
            .or(committed)
            .ok_or_else(|| {
                Error::usage(
                    format!("input {input} of {name} is not built"),
                    format!("build it first: run(\"+{name}\") builds {name} with its upstream"),
                )
            })?;
        inputs.push((input.clone(), build.clone()));
    }
    let shared = Arc::new(Shared {
        engine: exec::Engine::new(&loaded.store).map_err(exec::ExecError::Engine)?,
        flow,
        steps: plan.steps,
        store: loaded.store.clone(),
        engine_rhai: loaded.script.engine.clone(),
        ast: loaded.script.ast.clone(),
        script_dir: loaded.script.dir.clone(),
        script_path: loaded.script.source.path.clone(),
        script_source: loaded.script.source.clone(),
        run_id: new_run_id(),
        instances: loaded.instances.clone(),
        interactive: true,
    });
    exec::preview(shared, index, inputs, rows)
        .await
        .map_err(|message| Error::TaskFailed {
            task: name.to_string(),
            message,
        })
}

/// Commit the stored build of `name` under `loaded`'s key into its stage, through the same
/// manifest commit as a run, and mark it tainted until a normal run rebuilds it.
pub async fn promote(loaded: &Loaded, name: &str, lock_timeout: Duration) -> Result<String> {
    let (flow, plan) = plan_all(loaded).await?;
    let index = find_task(&flow, name)?;
    let task = &flow.tasks[index];
    let step = &plan.steps[index];
    if step.builds.len() != task.decl.outputs.len()
        || step.builds.iter().any(|b| b.key != step.key.0)
    {
        return Err(Error::usage(
            format!("{} is not built in this session", task.id),
            format!("materialize it first: run(\"{}\")", task.id),
        ));
    }
    let store = &loaded.store;
    let lock = Lock::acquire(store, &new_run_id(), lock_timeout, |_| {}).await?;
    let committed = async {
        let mut manifest = store
            .read_manifest(&task.decl.stage)
            .await?
            .unwrap_or_default();
        manifest.stage = task.decl.stage.clone();
        manifest.committed_at = chrono::Utc::now().to_rfc3339();
        for b in &step.builds {
            manifest.tables.insert(b.table.clone(), b.clone());
        }
        store.commit_manifest(&manifest).await?;
        store.taint(&task.id.to_string(), &step.key.0).await
    }
    .await;
    lock.release().await?;
    committed?;
    Ok(task.id.to_string())
}
