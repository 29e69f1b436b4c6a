//! Executing a plan: a scheduler runs ready tasks concurrently (up to `jobs`), each in its own
//! DataFusion context of the engine (`crate::engine`), writes their builds, and commits each
//! stage once its tasks are done and what it read is committed (`commit`). A failed task skips
//! its dependents; other stages still commit.

mod checks;
mod commit;
mod content;
mod cutoff;
mod error;
mod evaluate;
mod exhausted;
mod load;
mod partitions;
mod sample;
mod schedule;
mod statements;
mod task;
pub mod udf;
mod validate;
mod write;

pub use crate::flow::partitions::Counted;
pub use commit::StageOutcome;
pub use error::TaskError;
pub use validate::{Verdict, validate};

use crate::engine::Engine;

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::Duration;

use miette::Diagnostic;
use thiserror::Error;

use crate::flow::{Flow, Step};
use crate::names::TableName;
use crate::report::Printer;
use crate::store::{StageManifest, Store, StoreError, TableBuild};

#[derive(Debug, Error, Diagnostic)]
pub enum ExecError {
    #[error("cannot start DataFusion")]
    #[diagnostic(code(weir::exec::engine))]
    Engine(#[source] datafusion::error::DataFusionError),
}

/// What every task of a run shares: the plan, where builds go, the engine that evaluates them,
/// the script's code, and which run this is.
pub struct Shared {
    pub flow: Flow,
    pub steps: Vec<Step>,
    pub store: Store,
    /// Stores of the instances that sample tasks read from.
    pub instances: BTreeMap<String, Store>,
    pub engine: Engine,
    pub code: Code,
    pub run: RunId,
    /// What each task's code logs, by task index, until the run records it.
    pub logs: Arc<crate::script::TaskLogs>,
    /// How partitioned tasks run.
    pub partitions: Partitioning,
}

/// How partitioned tasks run: which partitions (`--partition`; the rest are left as they
/// are), and how many of a task's at once (`--jobs`, at most four).
#[derive(Debug, Clone, Default)]
pub struct Partitioning {
    pub range: Option<crate::flow::partitions::PartitionRange>,
    pub jobs: Option<usize>,
}

/// The evaluated script as tasks run it: the Rhai engine and AST that call task functions, the
/// flow's UDFs, and the files a failure points into.
pub struct Code {
    pub rhai: Arc<rhai::Engine>,
    pub ast: Arc<rhai::AST>,
    pub udfs: Vec<datafusion::logical_expr::ScalarUDF>,
    /// The script's text as evaluated.
    pub source: crate::source::SourceFile,
    /// Modules of the script that declared tasks or checks.
    pub modules: Vec<crate::source::SourceFile>,
}

impl Code {
    /// The file a declaration at `origin` is in.
    pub fn source_of(&self, origin: crate::source::Origin) -> &crate::source::SourceFile {
        match origin.file {
            0 => &self.source,
            n => self.modules.get(n - 1).unwrap_or(&self.source),
        }
    }
}

/// Which run this is, as its builds and records name it.
pub struct RunId {
    pub id: String,
    /// The flow's name: weir.toml's `name`, else the script's file name without `.rhai`.
    pub flow_name: String,
    /// A REPL run: a task may materialize one intermediate twice.
    pub interactive: bool,
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
    /// The errors of its attempts that failed before the last (`retries`).
    pub failed_attempts: Vec<String>,
    /// For a task run partition by partition: which ran, of how many.
    pub partitions: Option<Counted>,
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
            failed_attempts: Vec::new(),
            partitions: None,
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

/// Run the plan's tasks and commit their stages (`schedule::Scheduler`).
pub async fn execute(
    shared: Arc<Shared>,
    manifests: BTreeMap<String, StageManifest>,
    opts: Options,
    printer: &Printer,
) -> Result<Outcome, StoreError> {
    schedule::Scheduler::new(shared, manifests, opts, printer)
        .run()
        .await
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
    for (table, df) in task::frames(&shared, index, inputs, task::Attempt::First, None).await? {
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
/// The query whose rows break `check` on its table (`columns`: the table's own names).
pub fn check_query(check: &crate::script::checks::CheckDecl, columns: &[String]) -> String {
    checks::query(check, columns)
}

pub async fn run_task(
    shared: Arc<Shared>,
    index: usize,
    inputs: Vec<(TableName, TableBuild)>,
) -> Result<Vec<TableBuild>, TaskError> {
    // A given input is never what a committed build was made from: no early cutoff here.
    evaluate::run(shared, index, inputs, &HashMap::new(), task::Attempt::First)
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
        task: id,
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
        descriptions: BTreeMap::new(),
        stall: None,
        partial: false,
    };
    Ok(write::write(store, df, target).await?.build)
}
