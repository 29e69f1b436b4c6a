//! Executing a plan: a scheduler runs ready tasks concurrently (up to `jobs`), each in its own
//! DataFusion context of the engine (`crate::engine`), writes their builds, and commits each
//! stage once its tasks are done and what it read is committed (`commit`). A failed task skips
//! its dependents; other stages still commit.

mod checks;
mod commit;
mod content;
mod cutoff;
mod error;
mod exhausted;
mod load;
mod sample;
mod statements;
mod task;
pub mod udf;
mod validate;
mod write;

pub use commit::StageOutcome;
use commit::Stages;
pub use error::TaskError;
pub use validate::{Verdict, validate};

use crate::engine::Engine;

use std::collections::{BTreeMap, HashMap};
use std::panic::AssertUnwindSafe;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::FutureExt;
use miette::Diagnostic;
use thiserror::Error;
use tokio::task::JoinSet;

use crate::flow::{Action, Flow, Step};
use crate::names::TableName;
use crate::report::Printer;
use crate::store::{StageManifest, Store, StoreError, TableBuild};

#[derive(Debug, Error, Diagnostic)]
pub enum ExecError {
    #[error("cannot start DataFusion")]
    #[diagnostic(code(weir::exec::engine))]
    Engine(#[source] datafusion::error::DataFusionError),
}

/// What every task of a run shares.
pub struct Shared {
    pub flow: Flow,
    pub steps: Vec<Step>,
    pub store: Store,
    pub engine: Engine,
    pub engine_rhai: Arc<rhai::Engine>,
    pub ast: Arc<rhai::AST>,
    pub script_dir: PathBuf,
    pub script_path: PathBuf,
    /// The script's text as evaluated, to point into when a task function fails.
    pub script_source: crate::source::SourceFile,
    pub run_id: String,
    /// Stores of the instances that sample tasks read from.
    pub instances: BTreeMap<String, Store>,
    /// A REPL run: a task may materialize one intermediate twice.
    pub interactive: bool,
    /// The flow's name: weir.toml's `name`, else the script's file name without `.rhai`.
    pub flow_name: String,
    /// Modules of the script that declared tasks or checks, to point into.
    pub modules: Vec<crate::source::SourceFile>,
    /// The flow's UDFs, registered in every task's context.
    pub udfs: Vec<datafusion::logical_expr::ScalarUDF>,
    /// What each task's code logs, by task index, until the run records it.
    pub logs: Arc<crate::script::TaskLogs>,
}

impl Shared {
    /// The file a declaration at `origin` is in.
    pub fn source_of(&self, origin: crate::source::Origin) -> &crate::source::SourceFile {
        match origin.file {
            0 => &self.script_source,
            n => self.modules.get(n - 1).unwrap_or(&self.script_source),
        }
    }
}

#[derive(Debug, Clone)]
pub enum Status {
    Ran,
    Cached,
    /// Reused, with data checks that had not run on its build run now.
    Checked,
    Failed(Box<TaskError>),
    /// Not run because an input failed or the run stopped.
    Skipped(String),
    NotSelected,
}

impl Status {
    pub fn label(&self) -> &'static str {
        match self {
            Status::Ran => "ran",
            Status::Cached => "cached",
            Status::Checked => "checked",
            Status::Failed(_) => "failed",
            Status::Skipped(_) => "skipped",
            Status::NotSelected => "not selected",
        }
    }

    /// What a failed or skipped task's summary line says after its status.
    pub fn detail(&self) -> Option<String> {
        match self {
            Status::Failed(e) => Some(e.brief()),
            Status::Skipped(why) => Some(why.clone()),
            _ => None,
        }
    }

    fn ok(&self) -> bool {
        matches!(
            self,
            Status::Ran | Status::Cached | Status::Checked | Status::NotSelected
        )
    }
}

pub struct TaskOutcome {
    pub status: Status,
    pub builds: Vec<TableBuild>,
    pub duration: Duration,
    /// Bytes its queries spilled to disk to stay within the memory limit.
    pub spilled_bytes: u64,
    /// The data checks that ran on its builds in this run.
    pub checks: Vec<crate::store::CheckOutcome>,
    /// What its code logged.
    pub logs: Vec<crate::store::LogLine>,
    /// Early cutoff: `REBUILT_UNCHANGED` or `INPUTS_UNCHANGED`.
    pub note: Option<&'static str>,
    /// The cluster it ran on; `None`: weir's process (or it did not run).
    pub engine: Option<String>,
}

impl TaskOutcome {
    /// A task that did nothing (skipped, failed before it started, or not reached).
    fn empty(status: Status) -> Self {
        Self {
            status,
            builds: vec![],
            duration: Duration::ZERO,
            spilled_bytes: 0,
            checks: Vec::new(),
            logs: Vec::new(),
            note: None,
            engine: None,
        }
    }
}

pub struct Outcome {
    pub tasks: Vec<TaskOutcome>,
    pub stages: Vec<StageOutcome>,
}

pub struct Options {
    pub jobs: usize,
    pub keep_going: bool,
    /// Cancelled (a save in `watch`, Ctrl-C in the REPL): running tasks are dropped, nothing
    /// more starts or commits; stages committed before stay.
    pub cancel: tokio_util::sync::CancellationToken,
    /// Stages not to commit even when all their tasks succeed: the REPL's tainted ones.
    pub hold: std::collections::BTreeSet<String>,
}

pub async fn execute(
    shared: Arc<Shared>,
    manifests: BTreeMap<String, StageManifest>,
    opts: Options,
    printer: &Printer,
) -> Result<Outcome, StoreError> {
    let n = shared.flow.tasks.len();
    let mut done: Vec<Option<TaskOutcome>> = (0..n).map(|_| None).collect();
    for (i, step) in shared.steps.iter().enumerate() {
        let status = match step.action {
            Action::Reuse => {
                printer.task_cached(&shared.flow.tasks[i].id.to_string(), step.key.as_str());
                Status::Cached
            }
            Action::NotSelected => Status::NotSelected,
            Action::Run | Action::Check => continue,
        };
        done[i] = Some(TaskOutcome {
            builds: step.builds.clone(),
            ..TaskOutcome::empty(status)
        });
    }
    // What was committed when the run started: early cutoff compares rebuilt inputs with it.
    let committed: Arc<HashMap<TableName, TableBuild>> = Arc::new(
        manifests
            .values()
            .flat_map(|m| m.tables.values())
            .map(|b| (TableName::new(&b.stage, &b.table), b.clone()))
            .collect(),
    );
    let mut stages = Stages::new(&shared.flow, manifests, opts.hold.clone());
    stages.commit_ready(&shared, &done, printer, false).await?;

    let mut running: JoinSet<(usize, Result<task::Ran, TaskError>, Duration)> = JoinSet::new();
    let mut started = vec![false; n];
    let mut stopping = false;
    let mut heavy_running = false;
    loop {
        let mut hold_back = false;
        // Start what is ready; settle what can never run.
        for i in 0..n {
            if done[i].is_some() || started[i] {
                continue;
            }
            match readiness(&shared, i, &done) {
                Ready::Wait => {}
                Ready::Never(why) => {
                    printer.task_skipped(&shared.flow.tasks[i].id.to_string(), &why);
                    done[i] = Some(TaskOutcome::empty(Status::Skipped(why)))
                }
                Ready::Fail(error) => {
                    let id = shared.flow.tasks[i].id.to_string();
                    printer.task_failed(&id, &error.brief(), Duration::ZERO);
                    done[i] = Some(TaskOutcome::empty(Status::Failed(error)));
                    stopping |= !opts.keep_going;
                }
                Ready::Go(inputs) if !stopping && running.len() < opts.jobs && !hold_back => {
                    // A heavy task runs alone (each query already uses every core), so two
                    // large joins never hold their hash tables at once.
                    let heavy = is_heavy(&shared, &inputs);
                    if heavy_running || (heavy && !running.is_empty()) {
                        // Start nothing after it either, so running tasks drain and it goes next.
                        hold_back |= heavy;
                        continue;
                    }
                    heavy_running = heavy;
                    started[i] = true;
                    // A task early cutoff keeps is said to be cached when it is done, not started.
                    if cutoff::unchanged(&shared, i, &inputs, &committed).is_none() {
                        let id = shared.flow.tasks[i].id.to_string();
                        printer.task_started(&id, &shared.steps[i].reasons());
                        if let crate::script::TaskKind::Sql { sql, .. } =
                            &shared.flow.tasks[i].decl.kind
                        {
                            printer.task_sql(&id, sql);
                        }
                    }
                    let (shared, committed) = (shared.clone(), committed.clone());
                    running.spawn(async move {
                        let t = Instant::now();
                        // A task that panics inside DataFusion or Rhai fails alone, by name;
                        // the run goes on.
                        let result = AssertUnwindSafe(task::run(shared, i, inputs, &committed))
                            .catch_unwind()
                            .await
                            .unwrap_or_else(|panic| {
                                Err(TaskError::Panicked {
                                    message: panic_message(panic.as_ref()),
                                })
                            });
                        (i, result, t.elapsed())
                    });
                }
                Ready::Go(_) if stopping => {
                    let why = "the run stopped after a failure";
                    printer.task_skipped(&shared.flow.tasks[i].id.to_string(), why);
                    done[i] = Some(TaskOutcome::empty(Status::Skipped(why.into())));
                }
                Ready::Go(_) => {}
            }
        }
        stages.commit_ready(&shared, &done, printer, false).await?;
        let joined = tokio::select! {
            joined = running.join_next() => joined,
            () = opts.cancel.cancelled() => {
                running.abort_all();
                return Ok(cancelled(done, stages));
            }
        };
        let Some(joined) = joined else {
            break;
        };
        let (i, result, duration) = match joined {
            Ok(r) => r,
            // Panics are caught inside the task and tasks are aborted only on cancel, which
            // returned above; a task lost otherwise ends as "not reached".
            Err(e) => {
                tracing::error!(error = %e, "a task ended without a result");
                continue;
            }
        };
        // A heavy task runs alone: whichever finished, none is running now.
        heavy_running = false;
        let id = shared.flow.tasks[i].id.to_string();
        let logs = shared.logs.take(i);
        for line in &logs {
            printer.task_log(&id, line);
        }
        let outcome = match result {
            Ok(ran) => {
                let rows = ran.builds.iter().map(|b| b.rows).sum();
                let bytes = ran.builds.iter().map(|b| b.bytes).sum();
                for (table, plan) in &ran.plans {
                    printer.task_plan(&id, table, plan);
                }
                for c in &ran.checks {
                    printer.check(&id, c);
                }
                match ran.note {
                    Some(cutoff::INPUTS_UNCHANGED) => printer.task_kept(&id),
                    _ => printer.task_done(&id, rows, bytes, ran.spilled_bytes, duration),
                }
                let status = match shared.steps[i].action {
                    Action::Check => Status::Checked,
                    _ if ran.note == Some(cutoff::INPUTS_UNCHANGED) => Status::Cached,
                    _ => Status::Ran,
                };
                TaskOutcome {
                    status,
                    builds: ran.builds,
                    duration,
                    spilled_bytes: ran.spilled_bytes,
                    checks: ran.checks,
                    logs: Vec::new(),
                    note: ran.note,
                    engine: ran.engine,
                }
            }
            Err(e) => {
                let e = exhausted::exhausted(&e, &id, &shared.engine.limits).unwrap_or(e);
                let e = udf::located(e, &shared, &id);
                printer.task_failed(&id, &e.brief(), duration);
                stopping |= !opts.keep_going;
                TaskOutcome {
                    duration,
                    ..TaskOutcome::empty(Status::Failed(Box::new(e)))
                }
            }
        };
        done[i] = Some(TaskOutcome { logs, ..outcome });
    }
    stages.commit_ready(&shared, &done, printer, true).await?;
    let tasks = done
        .into_iter()
        .map(|o| o.unwrap_or(TaskOutcome::empty(Status::Skipped("not reached".into()))))
        .collect();
    Ok(Outcome {
        tasks,
        stages: stages.into_outcomes(),
    })
}

/// Evaluate one task over stored inputs without writing anything: its first `rows` rows per
/// output (the REPL's look at a task before materializing it).
pub async fn preview(
    shared: Arc<Shared>,
    index: usize,
    inputs: Vec<(TableName, TableBuild)>,
    rows: usize,
) -> Result<Vec<(String, crate::report::Rows)>, TaskError> {
    let mut out = Vec::new();
    for (table, df) in task::frames(&shared, index, inputs).await? {
        let schema = Arc::new(df.schema().as_arrow().clone());
        let batches = match df.limit(0, Some(rows)) {
            Ok(df) => df.collect().await,
            Err(e) => Err(e),
        };
        let batches = batches.map_err(|e| TaskError::engine(format!("computing {table}"), e))?;
        out.push((table, crate::report::Rows { schema, batches }));
    }
    Ok(out)
}

/// Run one task over `inputs`, writing its outputs under its step's key: the REPL's run of a
/// task with some inputs given as tables (see `write_given`).
pub async fn run_task(
    shared: Arc<Shared>,
    index: usize,
    inputs: Vec<(TableName, TableBuild)>,
) -> Result<Vec<TableBuild>, TaskError> {
    // A given input is never what a committed build was made from: no early cutoff here.
    task::run(shared, index, inputs, &HashMap::new())
        .await
        .map(|ran| ran.builds)
}

/// Write `df` as a build of `table` that no task made: a table given in place of a task's
/// input in the REPL, under a key of its own (new for every `run_id`), never committed.
pub async fn write_given(
    store: &Store,
    flow: &str,
    table: &TableName,
    df: datafusion::prelude::DataFrame,
    run_id: &str,
) -> Result<TableBuild, TaskError> {
    let parts = crate::store::KeyParts {
        format: crate::store::cache_key::FORMAT_VERSION,
        kind: "given".into(),
        code: crate::store::cache_key::hash_text(&format!("given {table} in {run_id}")),
        options: BTreeMap::new(),
        inputs: BTreeMap::new(),
        external: None,
        params: BTreeMap::new(),
        freshness: None,
        volatile: None,
        udfs: BTreeMap::new(),
    };
    let key = parts.key();
    let id = table.to_string();
    let target = write::Target {
        flow,
        task: &id,
        stage: &table.stage,
        table: &table.table,
        parts: &parts,
        key: &key,
        build: run_id,
        run_id,
        partition_by: &[],
        bytes_per_row: None,
        file_bytes: write::TARGET_FILE_BYTES,
        primary_key: &[],
        stall: None,
    };
    Ok(write::write(store, df, target).await?.build)
}

/// The outcome of a cancelled run: what finished stays as it is, the rest did not run.
fn cancelled(done: Vec<Option<TaskOutcome>>, stages: Stages) -> Outcome {
    let tasks = done
        .into_iter()
        .map(|o| o.unwrap_or(TaskOutcome::empty(Status::Skipped("cancelled".into()))))
        .collect();
    Outcome {
        tasks,
        stages: stages.into_outcomes(),
    }
}

enum Ready {
    Wait,
    Go(Vec<(TableName, TableBuild)>),
    Never(String),
    Fail(Box<TaskError>),
}

/// What a panic said, when it said it with a string.
fn panic_message(panic: &(dyn std::any::Any + Send)) -> String {
    panic
        .downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| panic.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "a panic without a message".to_string())
}

/// A task that reads many stored bytes runs alone (`Limits::heavy_input_bytes`).
fn is_heavy(shared: &Shared, inputs: &[(TableName, TableBuild)]) -> bool {
    inputs.iter().map(|(_, b)| b.bytes).sum::<u64>() >= shared.engine.limits.heavy_input_bytes()
}

fn readiness(shared: &Shared, i: usize, done: &[Option<TaskOutcome>]) -> Ready {
    let task = &shared.flow.tasks[i];
    let mut inputs = Vec::with_capacity(task.inputs.len());
    // The tables its checks read come too (`task::run` tells them apart).
    let check_only = task
        .check_inputs
        .iter()
        .filter(|c| !task.inputs.contains(c));
    for input in task.inputs.iter().chain(check_only) {
        let p = shared.flow.producers[input];
        let Some(outcome) = &done[p] else {
            return Ready::Wait;
        };
        if !outcome.status.ok() {
            return Ready::Never(format!("input {input} {}", outcome.status.label()));
        }
        match outcome
            .builds
            .iter()
            .find(|b| b.stage == input.stage && b.table == input.table)
        {
            Some(b) => inputs.push((input.clone(), b.clone())),
            None => {
                return Ready::Fail(Box::new(TaskError::invalid(format!(
                    "input {input} has never been built; select it too (--select +{})",
                    task.id
                ))));
            }
        }
    }
    Ready::Go(inputs)
}
