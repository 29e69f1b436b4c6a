//! `weir run`: script -> flow -> plan -> exec -> store -> report, under the instance lock.

use std::sync::Arc;
use std::time::{Duration, Instant};

use clap::Args;

use super::{ScriptArgs, StoreArgs, load};
use crate::config::CacheMode;
use crate::exec::{self, Outcome, Shared, Status};
use crate::flow::plan::{Plan, PlanOptions, plan};
use crate::flow::{Flow, select::select};
use crate::report::{Printer, SummaryRow, print_summary};
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
    #[arg(long, short = 'q')]
    pub quiet: bool,
}

pub async fn run(args: RunArgs) -> Result<()> {
    let started = Instant::now();
    let started_at = chrono::Utc::now().to_rfc3339();
    let super::Loaded {
        instance,
        script,
        store,
        instances,
    } = load(&args.script, &args.store)?;
    let flow = Flow::build(&script)?;
    let selected = select(&flow, &args.select)?;
    let cache_mode = args.cache_mode.unwrap_or(instance.cache_mode);
    let engine = exec::Engine::new(&store).map_err(exec::ExecError::Engine)?;
    let printer = Printer::new(args.quiet);
    let run_id = new_run_id();

    let lock = Lock::acquire(
        &store,
        &run_id,
        Duration::from_secs(args.lock_timeout),
        |h| printer.waiting_for_lock(h),
    )
    .await?;
    let opts = PlanOptions {
        selected: &selected,
        force: args.force,
        script_dir: &script.dir,
        cache_mode,
        instances: &instances,
    };
    let planned = plan(&flow, &store, &engine.state(None), opts)
        .await
        .map_err(Error::from)
        .and_then(|p| check_fresh_inputs(&flow, p, cache_mode));
    let plan = match planned {
        Ok(p) => p,
        Err(e) => {
            lock.release().await?;
            return Err(e);
        }
    };
    let shared = Arc::new(Shared {
        flow,
        steps: plan.steps,
        store: store.clone(),
        engine,
        engine_rhai: script.engine.clone(),
        ast: script.ast.clone(),
        script_dir: script.dir.clone(),
        script_path: script.source.path.clone(),
        run_id: run_id.clone(),
        instances,
    });
    let jobs = args
        .jobs
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(2, |n| n.get()))
        .max(1);
    let executed = exec::execute(
        shared.clone(),
        plan.manifests,
        exec::Options {
            jobs,
            keep_going: args.keep_going,
        },
        &printer,
    )
    .await;
    let outcome = match executed {
        Ok(o) => o,
        Err(e) => {
            lock.release().await?;
            return Err(e.into());
        }
    };

    let record = record(&shared, &outcome, started_at);
    let wrote = store.write_run(&record).await;
    lock.release().await?;
    wrote?;

    let rows = summary_rows(&shared, &outcome);
    let stages: Vec<(String, bool, bool)> = outcome
        .stages
        .iter()
        .map(|s| (s.stage.clone(), s.committed, s.changed))
        .collect();
    print_summary(&run_id, &rows, &stages, started.elapsed())?;
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

fn summary_rows<'a>(shared: &Shared, outcome: &'a Outcome) -> Vec<SummaryRow<'a>> {
    shared
        .flow
        .tasks
        .iter()
        .zip(&outcome.tasks)
        .map(|(task, o)| SummaryRow {
            task: task.id.to_string(),
            status: o.status.label(),
            rows: (!o.builds.is_empty()).then(|| o.builds.iter().map(|b| b.rows).sum()),
            duration: o.duration,
            detail: match &o.status {
                Status::Failed(e) => Some(e.clone()),
                Status::Skipped(why) => Some(why.clone()),
                _ => None,
            },
        })
        .collect()
}

fn record(shared: &Shared, outcome: &Outcome, started_at: String) -> RunRecord {
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
        ok: outcome
            .tasks
            .iter()
            .all(|t| !matches!(t.status, Status::Failed(_))),
        tasks,
        stages,
    }
}
