//! The run history as tables: `weir.runs`, `weir.tasks`, `weir.checks` and `weir.commits`,
//! read from the run records and manifest history the store already keeps, when a query
//! scans them (a query that does not name them reads no record). Read-only, as every table
//! a reader sees.

use std::collections::BTreeMap;
use std::sync::Arc;

use async_trait::async_trait;
use datafusion::arrow::array::{
    ArrayRef, BooleanArray, Float64Array, Int64Array, RecordBatch, StringArray,
    TimestampMillisecondArray,
};
use datafusion::arrow::datatypes::{DataType, Field, Schema, SchemaRef, TimeUnit};
use datafusion::catalog::{SchemaProvider, Session, TableProvider};
use datafusion::datasource::{MemTable, TableType};
use datafusion::error::{DataFusionError, Result};
use datafusion::logical_expr::Expr;
use datafusion::physical_plan::ExecutionPlan;
use futures::{StreamExt, TryStreamExt};

use crate::store::Store;
use crate::store::manifest::StageManifest;
use crate::store::runs::RunRecord;

pub use crate::names::HISTORY_SCHEMA;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Runs,
    Tasks,
    Checks,
    Commits,
}

/// The history tables' names, under `HISTORY_SCHEMA`.
pub const HISTORY_TABLES: [&str; 4] = ["runs", "tasks", "checks", "commits"];

impl Kind {
    const ALL: [(&'static str, Kind); 4] = [
        (HISTORY_TABLES[0], Kind::Runs),
        (HISTORY_TABLES[1], Kind::Tasks),
        (HISTORY_TABLES[2], Kind::Checks),
        (HISTORY_TABLES[3], Kind::Commits),
    ];

    fn schema(self) -> SchemaRef {
        let ts = || DataType::Timestamp(TimeUnit::Millisecond, Some("UTC".into()));
        let text = |n: &str| Field::new(n, DataType::Utf8, false);
        let maybe = |n: &str| Field::new(n, DataType::Utf8, true);
        let int = |n: &str| Field::new(n, DataType::Int64, false);
        let fields = match self {
            Kind::Runs => vec![
                text("run_id"),
                text("instance"),
                Field::new("started_at", ts(), true),
                Field::new("ended_at", ts(), true),
                Field::new("seconds", DataType::Float64, false),
                Field::new("ok", DataType::Boolean, false),
                int("tasks"),
                int("ran"),
                int("cached"),
                int("failed"),
                int("skipped"),
                int("stages_committed"),
                maybe("user"),
                maybe("host"),
                maybe("weir_version"),
                text("script"),
            ],
            Kind::Tasks => vec![
                text("run_id"),
                text("task"),
                text("stage"),
                text("status"),
                text("why"),
                int("rows"),
                int("bytes"),
                Field::new("seconds", DataType::Float64, false),
                int("spilled_bytes"),
                int("attempts"),
                text("key"),
                maybe("build"),
                maybe("error"),
                maybe("engine"),
            ],
            Kind::Checks => vec![
                text("run_id"),
                text("task"),
                text("stage"),
                text("check"),
                text("severity"),
                int("offending"),
                Field::new("passed", DataType::Boolean, false),
            ],
            Kind::Commits => vec![
                text("run_id"),
                text("stage"),
                Field::new("committed_at", ts(), true),
                int("tables"),
                int("changed"),
                text("changed_tables"),
            ],
        };
        Arc::new(Schema::new(fields))
    }
}

/// The `weir` schema of a reader's catalog.
pub struct HistorySchema {
    store: Store,
}

impl HistorySchema {
    pub fn new(store: Store) -> Self {
        Self { store }
    }
}

impl std::fmt::Debug for HistorySchema {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("HistorySchema")
    }
}

impl std::fmt::Debug for HistoryTable {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "HistoryTable({:?})", self.kind)
    }
}

#[async_trait]
impl SchemaProvider for HistorySchema {
    fn table_names(&self) -> Vec<String> {
        Kind::ALL.iter().map(|(n, _)| n.to_string()).collect()
    }

    async fn table(&self, name: &str) -> Result<Option<Arc<dyn TableProvider>>> {
        Ok(Kind::ALL.iter().find(|(n, _)| *n == name).map(|(_, kind)| {
            Arc::new(HistoryTable {
                store: self.store.clone(),
                kind: *kind,
                schema: kind.schema(),
            }) as Arc<dyn TableProvider>
        }))
    }

    fn table_exist(&self, name: &str) -> bool {
        Kind::ALL.iter().any(|(n, _)| *n == name)
    }
}

struct HistoryTable {
    store: Store,
    kind: Kind,
    schema: SchemaRef,
}

#[async_trait]
impl TableProvider for HistoryTable {
    fn schema(&self) -> SchemaRef {
        self.schema.clone()
    }

    fn table_type(&self) -> TableType {
        TableType::View
    }

    async fn scan(
        &self,
        state: &dyn Session,
        projection: Option<&Vec<usize>>,
        filters: &[Expr],
        limit: Option<usize>,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        let columns = match self.kind {
            Kind::Commits => commits(&self.store.stage_histories().await.map_err(external)?),
            kind => {
                let runs = read_runs(&self.store).await.map_err(external)?;
                match kind {
                    Kind::Runs => runs_columns(&runs),
                    Kind::Tasks => tasks_columns(&runs),
                    _ => checks_columns(&runs),
                }
            }
        };
        let batch = RecordBatch::try_new(self.schema.clone(), columns)?;
        let table = MemTable::try_new(self.schema.clone(), vec![vec![batch]])?;
        table.scan(state, projection, filters, limit).await
    }
}

fn external(e: crate::store::StoreError) -> DataFusionError {
    DataFusionError::External(Box::new(e))
}

/// Every run record, oldest first.
async fn read_runs(store: &Store) -> Result<Vec<RunRecord>, crate::store::StoreError> {
    let mut ids = store.run_ids().await?;
    ids.reverse();
    let reads = ids
        .into_iter()
        .map(|id| async move { store.read_run(&id).await });
    let records: Vec<Option<RunRecord>> = futures::stream::iter(reads)
        .buffered(16)
        .try_collect()
        .await?;
    Ok(records.into_iter().flatten().collect())
}

fn millis(ts: &str) -> Option<i64> {
    chrono::DateTime::parse_from_rfc3339(ts)
        .ok()
        .map(|t| t.timestamp_millis())
}

fn timestamps(values: impl Iterator<Item = Option<i64>>) -> ArrayRef {
    Arc::new(TimestampMillisecondArray::from(values.collect::<Vec<_>>()).with_timezone("UTC"))
}

fn strings<'a>(values: impl Iterator<Item = &'a str>) -> ArrayRef {
    Arc::new(StringArray::from_iter_values(values))
}

fn maybe_strings<'a>(values: impl Iterator<Item = Option<&'a str>>) -> ArrayRef {
    Arc::new(StringArray::from_iter(values))
}

fn ints(values: impl Iterator<Item = u64>) -> ArrayRef {
    Arc::new(Int64Array::from_iter_values(values.map(|v| v as i64)))
}

fn seconds(values: impl Iterator<Item = u64>) -> ArrayRef {
    Arc::new(Float64Array::from_iter_values(
        values.map(|ms| ms as f64 / 1000.0),
    ))
}

fn runs_columns(runs: &[RunRecord]) -> Vec<ArrayRef> {
    let count = |status: &'static str| ints(runs.iter().map(move |r| r.count(status) as u64));
    vec![
        strings(runs.iter().map(|r| r.run_id.as_str())),
        strings(runs.iter().map(|r| r.instance.as_str())),
        timestamps(runs.iter().map(|r| millis(&r.started_at))),
        timestamps(runs.iter().map(|r| millis(&r.ended_at))),
        seconds(runs.iter().map(|r| r.duration_ms)),
        Arc::new(BooleanArray::from_iter(runs.iter().map(|r| Some(r.ok)))),
        ints(runs.iter().map(|r| r.tasks.len() as u64)),
        count("ran"),
        count("cached"),
        count("failed"),
        count("skipped"),
        ints(
            runs.iter()
                .map(|r| r.stages.iter().filter(|s| s.committed && s.changed).count() as u64),
        ),
        maybe_strings(runs.iter().map(|r| r.origin.user.as_deref())),
        maybe_strings(runs.iter().map(|r| r.origin.host.as_deref())),
        maybe_strings(runs.iter().map(|r| r.origin.weir_version.as_deref())),
        strings(runs.iter().map(|r| r.script.as_str())),
    ]
}

fn tasks_columns(runs: &[RunRecord]) -> Vec<ArrayRef> {
    let rows: Vec<(&RunRecord, &crate::store::runs::TaskRecord)> = runs
        .iter()
        .flat_map(|r| r.tasks.iter().map(move |t| (r, t)))
        .collect();
    let whys: Vec<String> = rows.iter().map(|(_, t)| t.reason.join("; ")).collect();
    vec![
        strings(rows.iter().map(|(r, _)| r.run_id.as_str())),
        strings(rows.iter().map(|(_, t)| t.task.as_str())),
        strings(rows.iter().map(|(_, t)| t.stage.as_str())),
        strings(rows.iter().map(|(_, t)| t.status.as_str())),
        strings(whys.iter().map(String::as_str)),
        ints(rows.iter().map(|(_, t)| t.rows)),
        ints(rows.iter().map(|(_, t)| t.bytes)),
        seconds(rows.iter().map(|(_, t)| t.duration_ms)),
        ints(rows.iter().map(|(_, t)| t.spilled_bytes)),
        ints(rows.iter().map(|(_, t)| t.failed_attempts.len() as u64 + 1)),
        strings(rows.iter().map(|(_, t)| t.key.as_str())),
        maybe_strings(rows.iter().map(|(_, t)| t.build.as_deref())),
        maybe_strings(rows.iter().map(|(_, t)| t.error.as_deref())),
        maybe_strings(rows.iter().map(|(_, t)| t.engine.as_deref())),
    ]
}

fn checks_columns(runs: &[RunRecord]) -> Vec<ArrayRef> {
    let rows: Vec<(
        &str,
        &crate::store::runs::TaskRecord,
        &crate::store::CheckOutcome,
    )> = runs
        .iter()
        .flat_map(|r| {
            r.tasks
                .iter()
                .flat_map(move |t| t.checks.iter().map(move |c| (r.run_id.as_str(), t, c)))
        })
        .collect();
    vec![
        strings(rows.iter().map(|(r, _, _)| *r)),
        strings(rows.iter().map(|(_, t, _)| t.task.as_str())),
        strings(rows.iter().map(|(_, t, _)| t.stage.as_str())),
        strings(rows.iter().map(|(_, _, c)| c.check.as_str())),
        strings(rows.iter().map(|(_, _, c)| c.severity.as_str())),
        ints(rows.iter().map(|(_, _, c)| c.offending)),
        Arc::new(BooleanArray::from_iter(
            rows.iter().map(|(_, _, c)| Some(c.offending == 0)),
        )),
    ]
}

/// One row per commit of a stage, with the tables whose build it changed (added, rebuilt or
/// dropped) against the commit before it.
fn commits(histories: &BTreeMap<String, Vec<StageManifest>>) -> Vec<ArrayRef> {
    let mut rows: Vec<(&StageManifest, usize, Vec<String>)> = Vec::new();
    for manifests in histories.values() {
        let mut before: Option<&StageManifest> = None;
        for m in manifests {
            let changed = m.changed_since(before);
            rows.push((m, m.tables.len(), changed));
            before = Some(m);
        }
    }
    rows.sort_by(|a, b| (&a.0.run_id, &a.0.stage).cmp(&(&b.0.run_id, &b.0.stage)));
    let joined: Vec<String> = rows.iter().map(|(_, _, c)| c.join(", ")).collect();
    vec![
        strings(rows.iter().map(|(m, _, _)| m.run_id.as_str())),
        strings(rows.iter().map(|(m, _, _)| m.stage.as_str())),
        timestamps(rows.iter().map(|(m, _, _)| millis(&m.committed_at))),
        ints(rows.iter().map(|(_, n, _)| *n as u64)),
        ints(rows.iter().map(|(_, _, c)| c.len() as u64)),
        strings(joined.iter().map(String::as_str)),
    ]
}
