//! One run of a loaded pipeline, under the instance lock: flow -> select -> plan -> exec ->
//! store. `weir run`, `weir watch` and the REPL all run through here, so there is one run path.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio_util::sync::CancellationToken;

use super::Loaded;
use crate::config::CacheMode;
use crate::exec::{self, Outcome, Shared, Status};
use crate::flow::Flow;
use crate::flow::plan::{Plan, PlanOptions, plan};
use crate::flow::select::{Selection, select};
use crate::report::{Printer, SummaryRow, Verbosity};
use crate::store::StoreError;
use crate::store::counting::Requests;
use crate::store::lock::Lock;
use crate::store::runs::{RunRecord, StageRecord, TaskRecord, new_run_id};
use crate::{Error, Result};

#[derive(Debug, Clone)]
pub struct RunOptions {
    pub selection: Selection,
    pub force: bool,
    /// Overrides the instance's mode.
    pub cache_mode: Option<CacheMode>,
    pub jobs: Option<usize>,
    /// `--memory-limit`, over the instance's `[engine] memory_limit`.
    pub memory_limit: Option<u64>,
    /// `--engine`, over the instance's `[engine] url`.
    pub engine: Option<crate::config::EngineUrl>,
    /// `--adopt`: this flow may take over tables another flow (or this one, under an earlier
    /// name) committed.
    pub adopt: bool,
    pub keep_going: bool,
    pub lock_timeout: Duration,
    /// Stages built but not committed (the REPL's tainted ones).
    pub hold: BTreeSet<String>,
    pub verbosity: Verbosity,
    /// From the REPL: debugging allowances (an intermediate materialized twice).
    pub interactive: bool,
    /// `--partition`: the partitions partitioned tasks compute.
    pub partitions: Option<crate::flow::partitions::PartitionRange>,
}

impl Default for RunOptions {
    fn default() -> Self {
        Self {
            selection: Selection::default(),
            force: false,
            cache_mode: None,
            jobs: None,
            memory_limit: None,
            engine: None,
            adopt: false,
            keep_going: false,
            lock_timeout: Duration::from_secs(600),
            hold: BTreeSet::new(),
            verbosity: Verbosity::Normal,
            interactive: false,
            partitions: None,
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

    /// The failures shown in full (they point into the user's files or say what to change),
    /// in flow order.
    pub fn problems(&self) -> Vec<crate::exec::TaskError> {
        self.outcome
            .tasks
            .iter()
            .filter_map(|t| match &t.status {
                Status::Failed(e) if e.detailed() => Some(e.as_ref().clone()),
                _ => None,
            })
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
                attempt: o.failed_attempts.len() + 1,
                detail: match (&o.status, o.note) {
                    (_, Some(note)) => Some(note.to_string()),
                    (Status::Ran, None) if o.partitions.is_some() => {
                        o.partitions.as_ref().map(|p| p.summary())
                    }
                    (Status::Ran, None) if verbose => Some(step.reasons().join(", ")),
                    (status, None) => status.detail(),
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

    /// How each stage came out, as the run record keeps it.
    pub fn stages(&self) -> Vec<StageRecord> {
        stage_records(&self.outcome)
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
    let requests = loaded.store.requests();
    let flow = Flow::build(&loaded.script)?;
    let selected = select(&flow, &opts.selection)?;
    let engine = loaded.engine(opts.memory_limit)?;
    let run_id = new_run_id();
    let mut printer = Printer::new(&run_id, opts.verbosity);
    let lock = tokio::select! {
        lock = Lock::acquire(&loaded.store, &run_id, opts.lock_timeout, |h| printer.waiting_for_lock(h)) => lock?,
        () = cancel.cancelled() => return Err(Error::Cancelled),
    };
    let run = Locked {
        loaded,
        opts,
        cancel,
        lost: lock.lost(),
        run_id,
        started,
        started_at: chrono::Utc::now().to_rfc3339(),
        requests,
    };
    let spills = engine.spills();
    let report = lock
        .hold(run.run(flow, &selected, engine, &mut printer))
        .await;
    spills.clear();
    report
}

/// `engine`, sending SQL tasks and loads where `--engine` (or the instance's `[engine] url`)
/// says.
async fn attach(
    engine: crate::engine::Engine,
    opts: &RunOptions,
    loaded: &Loaded,
) -> Result<crate::engine::Engine> {
    let url = opts
        .engine
        .clone()
        .or_else(|| loaded.instance.engine.url.clone())
        .unwrap_or(crate::config::EngineUrl::Local);
    engine.attach(&url).await.map_err(|e| {
        Error::usage(
            e.to_string(),
            "start a cluster (scripts/ballista-cluster start), or run here with --engine local",
        )
    })
}

/// A run once it holds the lock.
struct Locked<'a> {
    loaded: &'a Loaded,
    opts: &'a RunOptions,
    cancel: &'a CancellationToken,
    /// Cancelled if another run takes the lock over (this one stalled): stop writing.
    lost: CancellationToken,
    run_id: String,
    started: Instant,
    started_at: String,
    /// The store's request counts when the run began.
    requests: Requests,
}

impl Locked<'_> {
    async fn run(
        self,
        flow: Flow,
        selected: &BTreeSet<usize>,
        engine: crate::engine::Engine,
        printer: &mut Printer,
    ) -> Result<RunReport> {
        let (loaded, opts) = (self.loaded, self.opts);
        let store = &loaded.store;
        let cleared = store.read_cleared().await?;
        let mut plan = self.plan(&flow, selected, &engine, &cleared).await?;
        let source_hashes = plan.source_hashes.take();
        let to_run = plan
            .steps
            .iter()
            .filter(|s| {
                matches!(
                    s.action,
                    crate::flow::Action::Run | crate::flow::Action::Check
                )
            })
            .count();
        // A run with nothing to compute needs no cluster.
        let engine = match to_run {
            0 => engine,
            _ => attach(engine, opts, loaded).await?,
        };
        printer.begin(
            &loaded.instance.name,
            &engine.label(),
            to_run,
            plan.steps.len(),
        );
        let shared = super::shared(
            loaded,
            flow,
            plan.steps,
            engine,
            &self.run_id,
            opts.interactive,
            crate::exec::Partitioning {
                range: opts.partitions.clone(),
                jobs: opts.jobs,
            },
        );
        loaded.store.repair_history(plan.manifests.values()).await?;
        let live = (to_run > 0).then(|| {
            super::live::LiveWriter::start(store.clone(), self.run_id.clone(), printer.live_log())
        });
        let executed = self.execute(&shared, plan.manifests, printer).await;
        // Under the lock still: the Delta versions and history copies of the stages it
        // committed are part of their commits.
        loaded.store.settle().await;
        if let Some(live) = live {
            live.stop().await;
        }
        let outcome = match executed {
            Ok(o) => o,
            Err(e) => {
                printer.end(false, self.started.elapsed());
                return Err(e);
            }
        };
        self.record(&shared, &outcome, printer, source_hashes, &cleared)
            .await?;
        Ok(RunReport {
            run_id: self.run_id,
            shared,
            outcome,
            elapsed: self.started.elapsed(),
            cancelled: self.cancel.is_cancelled(),
        })
    }

    /// The plan of the selected tasks, once the sources are there, the cache mode allows the
    /// inputs and this flow owns the tables it declares.
    async fn plan(
        &self,
        flow: &Flow,
        selected: &BTreeSet<usize>,
        engine: &crate::engine::Engine,
        cleared: &BTreeSet<String>,
    ) -> Result<crate::flow::Plan> {
        let (loaded, opts) = (self.loaded, self.opts);
        crate::flow::plan::renew_volatile_keys();
        let cache_mode = opts.cache_mode.unwrap_or(loaded.instance.cache_mode);
        let plan_opts = PlanOptions {
            selected,
            force: opts.force,
            script_dir: &loaded.script.dir,
            cache_mode,
            instances: &loaded.instances,
            cleared,
        };
        let plan = plan(flow, &loaded.store, &engine.state(None), plan_opts).await?;
        crate::flow::refuse_missing_sources(&loaded.script, flow, &plan)?;
        let plan = check_fresh_inputs(flow, plan, cache_mode)?;
        for (task, step) in flow.tasks.iter().zip(&plan.steps) {
            tracing::debug!(
                task = %task.id,
                action = ?step.action,
                key = %step.key,
                why = %step.reasons().join(", "),
                "plan"
            );
        }
        if !opts.adopt {
            check_owners(flow, &plan, &loaded.flow_name)?;
        }
        Ok(plan)
    }

    /// Run the plan, stopping on the caller's cancel or when the lock is no longer ours.
    async fn execute(
        &self,
        shared: &Arc<Shared>,
        manifests: std::collections::BTreeMap<String, crate::store::StageManifest>,
        printer: &mut Printer,
    ) -> Result<Outcome> {
        let opts = self.opts;
        let stop = self.cancel.child_token();
        let on_lost = {
            let (lost, stop) = (self.lost.clone(), stop.clone());
            tokio::spawn(async move {
                lost.cancelled().await;
                stop.cancel();
            })
        };
        let exec_opts = exec::Options {
            jobs: opts
                .jobs
                .unwrap_or_else(|| std::thread::available_parallelism().map_or(2, |n| n.get()))
                .max(1),
            keep_going: opts.keep_going,
            cancel: stop,
            hold: opts.hold.clone(),
        };
        let executed = exec::execute(shared.clone(), manifests, exec_opts, printer).await;
        on_lost.abort();
        if self.lost.is_cancelled() {
            return Err(StoreError::LockLost {
                instance: self.loaded.instance.name.clone(),
            }
            .into());
        }
        Ok(executed?)
    }

    /// Keep what the run did: its record and event log, the sources' hashes, and which
    /// cleared and tainted tasks it rebuilt from the script.
    async fn record(
        &self,
        shared: &Shared,
        outcome: &Outcome,
        printer: &mut Printer,
        source_hashes: Option<crate::store::sources::SourceHashes>,
        cleared: &BTreeSet<String>,
    ) -> Result<()> {
        let store = &self.loaded.store;
        let took = self.started.elapsed();
        let mut record = record(shared, outcome, self.started_at.clone(), took);
        // A cancelled run did not do what it was asked, whatever finished before.
        record.ok &= !self.cancel.is_cancelled();
        record.requests = Some(store.requests().since(&self.requests));
        printer.end(record.ok, took);
        store.write_run(&record).await?;
        if let Some(hashes) = &source_hashes {
            store.write_source_hashes(hashes).await?;
        }
        store
            .write_run_log(&record.run_id, &printer.log_text())
            .await?;
        store
            .uncleared(
                cleared,
                &committed_with(shared, outcome, |s| matches!(s, Status::Ran)),
            )
            .await?;
        // Held (tainted) stages are not committed, so what is committed here is the script's.
        let scripts = committed_with(shared, outcome, |s| {
            matches!(s, Status::Ran | Status::Cached | Status::Checked)
        });
        store.untaint(&scripts).await?;
        Ok(())
    }
}

/// Tasks with one of `statuses` whose stage committed.
fn committed_with(
    shared: &Shared,
    outcome: &Outcome,
    statuses: fn(&Status) -> bool,
) -> BTreeSet<String> {
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
        .filter(|(t, o)| statuses(&o.status) && committed.contains(t.decl.stage.as_str()))
        .map(|(t, _)| t.id.to_string())
        .collect()
}

/// Several flows may share a store, each owning the tables it commits: a flow may not write
/// a table another flow committed (one of them would silently replace the other's).
fn check_owners(flow: &Flow, plan: &Plan, flow_name: &str) -> Result<()> {
    for task in &flow.tasks {
        for out in task.outputs() {
            let Some(b) = plan.committed(&out) else {
                continue;
            };
            if !b.flow.is_empty() && b.flow != flow_name {
                return Err(Error::usage(
                    format!(
                        "table `{out}` was committed by flow `{}`, and this flow (`{flow_name}`) declares it too",
                        b.flow
                    ),
                    "two flows sharing a store cannot write one table: rename one of them, or give each flow its own store or weir.toml `name`; if this flow is that flow renamed, run once with --adopt",
                ));
            }
        }
    }
    Ok(())
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
            key: step.key.clone(),
            reason: step
                .reasons()
                .into_iter()
                .chain(o.note.map(String::from))
                .collect(),
            rows: o.builds.iter().map(|b| b.rows).sum(),
            bytes: o.builds.iter().map(|b| b.bytes).sum(),
            spilled_bytes: o.spilled_bytes,
            checks: o.checks.clone(),
            logs: o.logs.clone(),
            duration_ms: o.duration.as_millis() as u64,
            error: o.status.detail(),
            engine: o.engine.clone(),
            failed_attempts: o.failed_attempts.clone(),
            build: o.builds.first().map(|b| b.build.clone()),
            partitions: o.partitions.iter().flat_map(|p| p.ran.clone()).collect(),
            partitions_total: o.partitions.as_ref().map(|p| p.total),
        })
        .collect();
    RunRecord {
        run_id: shared.run.id.clone(),
        instance: shared.store.layout.instance().to_string(),
        script: shared.code.source.path.display().to_string(),
        started_at,
        ended_at: chrono::Utc::now().to_rfc3339(),
        duration_ms: took.as_millis() as u64,
        ok: outcome
            .tasks
            .iter()
            .all(|t| !matches!(t.status, Status::Failed(_))),
        tasks,
        stages: stage_records(outcome),
        requests: None,
        origin: crate::store::runs::Origin::here(),
    }
}

fn stage_records(outcome: &Outcome) -> Vec<StageRecord> {
    outcome
        .stages
        .iter()
        .map(|s| StageRecord {
            stage: s.stage.clone(),
            committed: s.committed,
            changed: s.changed,
            reason: s.reason.clone(),
        })
        .collect()
}
