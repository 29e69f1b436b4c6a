//! `weir run`: script -> flow -> plan -> exec -> store -> report, under the instance lock.

use std::sync::Arc;
use std::time::{Duration, Instant};

use clap::Args;

use super::{ScriptArgs, StoreArgs, load};
use crate::config::CacheMode;
use crate::exec::{self, Outcome, Shared, Status};
use crate::flow::plan::{Plan, PlanOptions, plan};
use crate::flow::{Action, Flow, select::select};
use crate::report::{Printer, SummaryRow, Verbosity, print_summary};
use crate::store::lock::Lock;
use crate::store::runs::{RunRecord, StageRecord, TaskRecord, new_run_id};
use crate::{Error, Result};

#[derive(Debug, Args)]
pub struct RunArgs {
    #[command(flatten)]
    pub script: ScriptArgs,
    #[command(flatten)]
    pub store: StoreArgs,
    /// Tasks to run: `prep.x`, `prep.x+` (and downstream), `+prep.x` (and upstream), `stage:prep`.
    #[arg(long, short = 's')]
    pub select: Vec<String>,
    /// Rebuild the selected tasks even when a build for their key is stored.
    #[arg(long)]
    pub force: bool,
    /// How outside inputs (files, `cache` tokens) count: normal, ignore-fresh-input,
    /// force-fresh-input, assert-no-fresh-input, force-cache-invalid (default: the
    /// instance's `cache_mode`, else normal).
    #[arg(long, value_enum)]
    pub cache_mode: Option<CacheMode>,
    /// Tasks run at once (default: the number of cores).
    #[arg(long, short = 'j')]
    pub jobs: Option<usize>,
    /// After a failure, go on with tasks that do not depend on it.
    #[arg(long)]
    pub keep_going: bool,
    /// Seconds to wait for another run of the same instance to finish.
    #[arg(long, default_value_t = 600)]
    pub lock_timeout: u64,
    /// Print only the summary.
    #[arg(long, short = 'q', conflicts_with = "verbose")]
    pub quiet: bool,
    /// Also print cached and skipped tasks, and why each task ran.
    #[arg(long, short = 'v')]
    pub verbose: bool,
}

pub async fn run(args: RunArgs) -> Result<()> {
    let started = Instant::now();
    let started_at = chrono::Utc::now().to_rfc3339();
    let loaded = load(&args.script, &args.store)?;
    let flow = Flow::build(&loaded.script)?;
    let selected = select(&flow, &args.select)?;
    let engine = exec::Engine::new(&loaded.store).map_err(exec::ExecError::Engine)?;
    let run_id = new_run_id();
    let mut printer = Printer::new(&run_id, args.verbosity());

    let lock = Lock::acquire(
        &loaded.store,
        &run_id,
        Duration::from_secs(args.lock_timeout),
        |h| printer.waiting_for_lock(h),
    )
    .await?;
    let ran = Run {
        args: &args,
        flow,
        selected,
        engine,
        run_id: run_id.clone(),
        started,
        started_at,
    }
    .locked(loaded, &mut printer)
    .await;
    lock.release().await?;
    let (shared, outcome) = ran?;

    let rows = summary_rows(&shared, &outcome, args.verbosity() == Verbosity::Verbose);
    let stages: Vec<(String, bool, bool)> = outcome
        .stages
        .iter()
        .map(|s| (s.stage.clone(), s.committed, s.changed))
        .collect();
    print_summary(
        &run_id,
        &rows,
        &stages,
        started.elapsed(),
        args.verbosity() == Verbosity::Verbose,
    )?;
    let failed = outcome
        .tasks
        .iter()
        .filter(|t| matches!(t.status, Status::Failed(_)))
        .count();
    if failed > 0 {
        return Err(Error::RunFailed {
            failed,
            total: outcome.tasks.len(),
        });
    }
    Ok(())
}

impl RunArgs {
    fn verbosity(&self) -> Verbosity {
        match (self.quiet, self.verbose) {
            (true, _) => Verbosity::Quiet,
            (false, true) => Verbosity::Verbose,
            (false, false) => Verbosity::Normal,
        }
    }
}

/// What a run decided before it took the lock.
struct Run<'a> {
    args: &'a RunArgs,
    flow: Flow,
    selected: std::collections::BTreeSet<usize>,
    engine: exec::Engine,
    run_id: String,
    started: Instant,
    started_at: String,
}

impl Run<'_> {
    /// Plan, execute, and store the run record and log; all under the instance lock.
    async fn locked(
        self,
        loaded: super::Loaded,
        printer: &mut Printer,
    ) -> Result<(Arc<Shared>, Outcome)> {
        let super::Loaded {
            instance,
            script,
            store,
            instances,
        } = loaded;
        let cache_mode = self.args.cache_mode.unwrap_or(instance.cache_mode);
        let opts = PlanOptions {
            selected: &self.selected,
            force: self.args.force,
            script_dir: &script.dir,
            cache_mode,
            instances: &instances,
        };
        let plan = plan(&self.flow, &store, &self.engine.state(None), opts).await?;
        let plan = check_fresh_inputs(&self.flow, plan, cache_mode)?;
        let to_run = plan
            .steps
            .iter()
            .filter(|s| s.action == Action::Run)
            .count();
        printer.begin(&instance.name, to_run, plan.steps.len());
        let shared = Arc::new(Shared {
            flow: self.flow,
            steps: plan.steps,
            store: store.clone(),
            engine: self.engine,
            engine_rhai: script.engine.clone(),
            ast: script.ast.clone(),
            script_dir: script.dir.clone(),
            script_path: script.source.path.clone(),
            run_id: self.run_id,
            instances,
        });
        let jobs = self
            .args
            .jobs
            .unwrap_or_else(|| std::thread::available_parallelism().map_or(2, |n| n.get()))
            .max(1);
        let opts = exec::Options {
            jobs,
            keep_going: self.args.keep_going,
        };
        let executed = exec::execute(shared.clone(), plan.manifests, opts, printer).await;
        let outcome = match executed {
            Ok(o) => o,
            Err(e) => {
                printer.end(false, self.started.elapsed());
                return Err(e.into());
            }
        };
        let record = record(&shared, &outcome, self.started_at, self.started.elapsed());
        printer.end(record.ok, self.started.elapsed());
        store.write_run(&record).await?;
        store
            .write_run_log(&record.run_id, &printer.log_text())
            .await?;
        Ok((shared, outcome))
    }
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

fn summary_rows<'a>(shared: &Shared, outcome: &'a Outcome, verbose: bool) -> Vec<SummaryRow<'a>> {
    shared
        .flow
        .tasks
        .iter()
        .zip(&outcome.tasks)
        .zip(&shared.steps)
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
