//! Each committed table's folder, `<instance>/tables/<stage>/<table>/`, is also a Delta Lake
//! table, so that DuckDB, Polars, pandas, Spark or any Delta reader reads weir's tables where
//! they are. Its `_delta_log/` gets a version each time a stage commit changes the table: the
//! previous build's files removed, the new build's added, by their paths relative to the table
//! folder (`<key>/<build>/...parquet`), so no data is copied. The Delta Kernel writes the log
//! (commits, and a checkpoint every `CHECKPOINT_EVERY` versions) through weir's own object store.
//!
//! The stage manifest stays weir's source of truth: a table's Delta version is written after the
//! manifest switches, and before the manifest's history copy (`history.rs`), so a process
//! killed in between leaves the copy missing and the next run publishes again. Publishing is
//! idempotent: a table whose Delta files are already the committed build's is left alone.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use datafusion::arrow::array::{
    Array, ArrayRef, Int64Array, MapBuilder, MapFieldNames, RecordBatch, StringArray,
    StringBuilder, StructArray,
};
use datafusion::arrow::datatypes::{DataType, Field, Fields, Schema};
use delta_kernel::committer::FileSystemCommitter;
use delta_kernel::engine::arrow_conversion::TryFromArrow;
use delta_kernel::engine::arrow_data::ArrowEngineData;
use delta_kernel::schema::{MetadataValue, StructType};
use delta_kernel::transaction::create_table::create_table;
use delta_kernel::transaction::data_layout::DataLayout;
use delta_kernel::transaction::{CommitResult, UpdateTableOperation};
use delta_kernel::{Engine, Snapshot};
use delta_kernel_default_engine::DefaultEngineBuilder;
use delta_kernel_default_engine::executor::TaskExecutor;
use object_store::path::Path as ObjectPath;

use super::manifest::{StageManifest, TableBuild};
use super::{Store, StoreError};

/// A checkpoint every this many versions, as Delta writers do by default.
const CHECKPOINT_EVERY: u64 = 10;

/// One data file of a build, as its add action names it.
struct DataFile {
    /// Relative to the table's folder.
    path: String,
    size: u64,
    modified_ms: i64,
    rows: u64,
    partition: Vec<(String, Option<String>)>,
}

/// What to publish for one table: its folder's URL, its schema and the build's files.
struct Publication {
    table: String,
    root: url::Url,
    /// Its `_delta_log/` folder, and whether a log is there.
    log: ObjectPath,
    exists: bool,
    schema: Arc<StructType>,
    partition_by: Vec<String>,
    files: Vec<DataFile>,
}

impl Store {
    /// Give the tables of a committed stage Delta versions where their Delta files are not the
    /// committed build's. Failures are logged, not returned: the stage is committed, and its
    /// missing history copy makes the next run try again.
    pub async fn publish_delta(
        &self,
        manifest: &StageManifest,
        previous: Option<&StageManifest>,
    ) -> bool {
        if !self.delta {
            return true;
        }
        let mut ok = true;
        let (kept, dropped): (Vec<String>, Vec<String>) = manifest
            .changed_since(previous)
            .into_iter()
            .partition(|t| manifest.tables.contains_key(t));
        // A table the stage no longer has: its log goes, so readers are not sent to files
        // that `cache gc` will delete.
        for table in dropped {
            let log = self
                .layout
                .tables()
                .join(manifest.stage.as_str())
                .join(table.as_str())
                .join("_delta_log");
            if let Err(e) = self.delete_prefix(&log).await {
                tracing::warn!(stage = %manifest.stage, table = %table, error = %e, "cannot remove a dropped table's Delta log");
                ok = false;
            }
        }
        let mut prepared = Vec::new();
        for (table, build) in kept
            .iter()
            .filter_map(|t| Some((t, manifest.tables.get(t)?)))
        {
            match self.prepare(build).await {
                Ok(Some(p)) => prepared.push(p),
                Ok(None) => {}
                Err(e) => {
                    tracing::warn!(stage = %manifest.stage, table = %table, error = %e, "cannot write the table's Delta version");
                    ok = false;
                }
            }
        }
        for attempt in 0..2 {
            let reset = self.commit_all(std::mem::take(&mut prepared)).await;
            let Ok(reset) = reset else {
                return false;
            };
            // Tables whose columns changed: the Delta Kernel cannot replace a schema, so their
            // Delta history starts again at version 0.
            for mut p in reset {
                if attempt == 1 {
                    tracing::warn!(table = %p.table, "cannot write the table's Delta version");
                    ok = false;
                    continue;
                }
                if let Err(e) = self.delete_prefix(&p.log).await {
                    tracing::warn!(table = %p.table, error = %e, "cannot start the table's Delta log again");
                    ok = false;
                    continue;
                }
                p.exists = false;
                prepared.push(p);
            }
        }
        ok
    }

    /// Commit each table's next version, one after the other on one blocking thread: a stage
    /// of a thousand one-file tables costs a thousand small commits, not a thousand threads.
    /// Returns the tables whose schema needs a new log.
    async fn commit_all(&self, prepared: Vec<Publication>) -> Result<Vec<Publication>, ()> {
        if prepared.is_empty() {
            return Ok(Vec::new());
        }
        let objects = self.objects.clone();
        let handle = tokio::runtime::Handle::current();
        tokio::task::spawn_blocking(move || {
            let executor = Arc::new(OnThisThread(handle));
            let engine = DefaultEngineBuilder::new(objects)
                .with_task_executor(executor)
                .build();
            prepared
                .into_iter()
                .filter(|p| commit(&engine, p).is_err())
                .collect()
        })
        .await
        .map_err(|e| tracing::warn!(error = %e, "writing Delta versions stopped"))
    }

    /// What to publish for a build: `None` for one Delta cannot describe, or read in place.
    async fn prepare(&self, build: &TableBuild) -> Result<Option<Publication>, StoreError> {
        // A table read where it is (`copy: false`) has no files in the store to name.
        if build.source.is_some() {
            return Ok(None);
        }
        let dir = self
            .layout
            .tables()
            .join(build.stage.as_str())
            .join(build.table.as_str());
        let Some(mut publication) = self.publication(build, &dir).await? else {
            return Ok(None);
        };
        // Version 0 stays while a log does (weir never cleans logs up).
        publication.exists = self
            .head(&publication.log.clone().join("00000000000000000000.json"))
            .await?
            .is_some();
        Ok(Some(publication))
    }

    /// The build's files with their sizes, rows and partition values; `None` for a table
    /// Delta cannot describe (a column type it has no equivalent for), which is logged.
    async fn publication(
        &self,
        build: &TableBuild,
        dir: &ObjectPath,
    ) -> Result<Option<Publication>, StoreError> {
        let root = url::Url::parse(&format!("{}/", self.url_of(dir)))
            .map_err(|e| delta_error(dir, e.to_string()))?;
        let schema = match delta_schema(build) {
            Ok(s) => s,
            Err(why) => {
                tracing::warn!(table = %format!("{}.{}", build.stage, build.table), %why, "no Delta log for this table");
                return Ok(None);
            }
        };
        let prefix = format!("{}/", self.layout.relative(dir));
        let mut files = Vec::with_capacity(build.files.len());
        let built_ms = chrono::DateTime::parse_from_rfc3339(&build.built_at)
            .map(|t| t.timestamp_millis())
            .unwrap_or_default();
        // A partition of one file: its record has the file's size and rows too. Its folder
        // is the file's last `col=value` folders, in the build's folder or one it keeps
        // partitions in.
        let depth = build.partition_by.len();
        let folders: Vec<String> = build
            .files
            .iter()
            .map(|f| super::Partition::of_file(f, depth).unwrap_or_default())
            .collect();
        let mut per_folder: HashMap<&str, usize> = HashMap::new();
        for folder in &folders {
            *per_folder.entry(folder).or_default() += 1;
        }
        let partitions: HashMap<&str, &super::Partition> = build
            .partitions
            .iter()
            .map(|p| (p.path.as_str(), p))
            .collect();
        let alone = |folder: &str| {
            let partition = partitions.get(folder)?;
            (per_folder.get(folder) == Some(&1)).then_some((partition.bytes, partition.rows))
        };
        for (f, folder) in build.files.iter().zip(&folders) {
            let relative = f.strip_prefix(&prefix).unwrap_or(f).to_string();
            // One file: the build record has its size and rows (most tables; a request saved
            // for each of a thousand).
            let (size, modified_ms, rows) = match (build.files.len(), alone(folder)) {
                (1, _) => (build.bytes, built_ms, build.rows),
                (_, Some((bytes, rows))) => (bytes, built_ms, rows),
                _ => {
                    let path = self.layout.absolute(f);
                    let meta = self
                        .head(&path)
                        .await?
                        .ok_or_else(|| delta_error(&path, "a committed file is missing".into()))?;
                    let rows = self.parquet_rows(&path, meta.size).await?;
                    (meta.size, meta.last_modified.timestamp_millis(), rows)
                }
            };
            files.push(DataFile {
                partition: partition_values(&relative, &build.partition_by),
                path: relative,
                size,
                modified_ms,
                rows,
            });
        }
        Ok(Some(Publication {
            table: format!("{}.{}", build.stage, build.table),
            root,
            log: dir.clone().join("_delta_log"),
            exists: false,
            schema,
            partition_by: build.partition_by.iter().map(|c| c.name.clone()).collect(),
            files,
        }))
    }

    /// The rows of one Parquet file, from its footer.
    async fn parquet_rows(&self, path: &ObjectPath, size: u64) -> Result<u64, StoreError> {
        use object_store::ObjectStoreExt;
        let bad = |why: String| delta_error(path, why);
        if size < 12 {
            return Err(bad("not a Parquet file".into()));
        }
        let tail = self
            .objects
            .get_range(path, size - 8..size)
            .await
            .map_err(|e| StoreError::io(path, e))?;
        let len = u32::from_le_bytes([tail[0], tail[1], tail[2], tail[3]]) as u64;
        if &tail[4..] != b"PAR1" || len + 8 > size {
            return Err(bad("not a Parquet file".into()));
        }
        let footer = self
            .objects
            .get_range(path, size - 8 - len..size - 8)
            .await
            .map_err(|e| StoreError::io(path, e))?;
        let meta = parquet::file::metadata::ParquetMetaDataReader::decode_metadata(&footer)
            .map_err(|e| bad(e.to_string()))?;
        Ok(meta.file_metadata().num_rows().max(0) as u64)
    }
}

/// Runs the kernel's I/O on the blocking thread that commits, instead of handing each request
/// to a runtime worker and waiting on a channel for it (the default engine's executors): a
/// stage of a thousand tables commits without a thousand thread hand-offs per request kind.
struct OnThisThread(tokio::runtime::Handle);

impl TaskExecutor for OnThisThread {
    type Guard<'a> = tokio::runtime::EnterGuard<'a>;

    fn block_on<T>(&self, task: T) -> T::Output
    where
        T: std::future::Future + Send + 'static,
        T::Output: Send + 'static,
    {
        thread_local! {
            static DRIVING: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
        }
        if DRIVING.with(|d| d.replace(true)) {
            // Called from a future this thread is driving already (the kernel's checkpoint
            // writer does): hand it to a worker and wait, as the default executors do.
            let (tx, rx) = std::sync::mpsc::channel();
            self.0.spawn(async move {
                let _ = tx.send(task.await);
            });
            return rx.recv().expect("the runtime dropped a Delta I/O task");
        }
        // On `commit_all`'s blocking thread, outside any async context.
        let out = self.0.block_on(task);
        DRIVING.with(|d| d.set(false));
        out
    }

    fn spawn<F>(&self, task: F)
    where
        F: std::future::Future<Output = ()> + Send + 'static,
    {
        self.0.spawn(task);
    }

    fn spawn_blocking<T, R>(
        &self,
        task: T,
    ) -> futures::future::BoxFuture<'_, delta_kernel::KernelResult<R>>
    where
        T: FnOnce() -> R + Send + 'static,
        R: Send + 'static,
    {
        let handle = self.0.spawn_blocking(task);
        Box::pin(async move {
            handle
                .await
                .map_err(|e| delta_kernel::KernelError::generic(e.to_string()))
        })
    }

    fn enter(&self) -> Self::Guard<'_> {
        self.0.enter()
    }
}

/// The table's schema needs a new Delta history.
struct Reset;

fn commit(engine: &dyn Engine, p: &Publication) -> Result<(), Reset> {
    match commit_inner(engine, p, p.exists) {
        Ok(()) => Ok(()),
        Err(Failure::Reset) => Err(Reset),
        Err(Failure::Kernel(e)) => {
            tracing::warn!(table = %p.table, error = %e, "cannot write the table's Delta version");
            Ok(())
        }
    }
}

enum Failure {
    Reset,
    Kernel(String),
}

impl From<delta_kernel::KernelError> for Failure {
    fn from(e: delta_kernel::KernelError) -> Self {
        Failure::Kernel(e.to_string())
    }
}

fn commit_inner(engine: &dyn Engine, p: &Publication, exists: bool) -> Result<(), Failure> {
    let info = format!("weir/{}", env!("CARGO_PKG_VERSION"));
    let committer = || Box::new(FileSystemCommitter::new());
    if !exists {
        let mut builder = create_table(p.root.as_str(), p.schema.clone(), info, true);
        if needs_column_mapping(&p.schema) {
            builder = builder.with_table_properties([("delta.columnMapping.mode", "name")]);
        }
        if !p.partition_by.is_empty() {
            builder = builder.with_data_layout(DataLayout::partitioned(p.partition_by.clone()));
        }
        let mut txn = builder.build(engine, committer())?;
        txn.add_files(add_actions(p, &HashSet::new())?);
        return match txn.commit(engine)? {
            CommitResult::Committed(_) => Ok(()),
            _ => Err(Failure::Kernel(
                "version 0 was written by another writer".into(),
            )),
        };
    }
    let snapshot = Snapshot::builder_for(p.root.as_str()).build(engine)?;
    let same_columns = snapshot.schema().as_ref() == p.schema.as_ref()
        && snapshot
            .table_configuration()
            .metadata()
            .partition_columns()
            == p.partition_by.as_slice();
    if !same_columns {
        return Err(Failure::Reset);
    }
    let scan = snapshot.clone().scan_builder().build()?;
    let mut current: Vec<String> = Vec::new();
    let mut scanned = Vec::new();
    for meta in scan.scan_metadata(engine)? {
        let meta = meta?;
        current = meta.visit_scan_files(current, |paths, file| paths.push(file.path))?;
        scanned.push(meta.scan_files);
    }
    let wanted: HashSet<&str> = p.files.iter().map(|f| f.path.as_str()).collect();
    let current: HashSet<&str> = current.iter().map(String::as_str).collect();
    if current == wanted {
        return Ok(());
    }
    let next = snapshot.version() + 1;
    let mut txn = snapshot
        .update_table(UpdateTableOperation::Write, info, true)
        .build(engine, committer())?;
    // Only what changed: a partition kept in place keeps its add action, so a new day is
    // one add, not a remove and an add of every day.
    for files in scanned {
        txn.remove_files(not_wanted(files, &wanted)?);
    }
    txn.add_files(add_actions(p, &current)?);
    let committed = match txn.commit(engine)? {
        CommitResult::Committed(c) => c,
        // Another writer wrote this version: weir holds the instance's lock, so it is a
        // process killed after writing it; the next run publishes again.
        _ => {
            return Err(Failure::Kernel(format!(
                "version {next} was written by another writer"
            )));
        }
    };
    if committed.post_commit_stats().commits_since_checkpoint >= CHECKPOINT_EVERY
        && let Some(after) = committed.post_commit_snapshot()
    {
        after.checkpoint(engine, None)?;
    }
    Ok(())
}

/// The scanned files `wanted` does not name, for remove actions.
fn not_wanted(
    scanned: delta_kernel::FilteredEngineData,
    wanted: &HashSet<&str>,
) -> Result<delta_kernel::FilteredEngineData, Failure> {
    let (data, mut selected) = scanned.into_parts();
    let arrow_data = ArrowEngineData::try_from_engine_data(data)?;
    let batch = arrow_data.record_batch();
    let paths = batch
        .column_by_name("path")
        .and_then(|c| c.as_any().downcast_ref::<StringArray>())
        .ok_or_else(|| Failure::Kernel("the log's files have no paths".into()))?;
    // Rows past the selection vector's end are selected (the kernel's convention).
    selected.resize(batch.num_rows(), true);
    for (row, keep) in selected.iter_mut().enumerate() {
        *keep = *keep && paths.is_valid(row) && !wanted.contains(paths.value(row));
    }
    Ok(delta_kernel::FilteredEngineData::try_new(
        arrow_data, selected,
    )?)
}

/// The add actions of the build's files not in the log already (`current`), in the layout
/// `Transaction::add_files` takes.
fn add_actions(
    p: &Publication,
    current: &HashSet<&str>,
) -> Result<Box<dyn delta_kernel::EngineData>, Failure> {
    let arrow = |e: datafusion::arrow::error::ArrowError| Failure::Kernel(e.to_string());
    let files: Vec<&DataFile> = p
        .files
        .iter()
        .filter(|f| !current.contains(f.path.as_str()))
        .collect();
    let names = MapFieldNames {
        entry: "key_value".to_string(),
        key: "key".to_string(),
        value: "value".to_string(),
    };
    let mut partitions = MapBuilder::new(Some(names), StringBuilder::new(), StringBuilder::new());
    for f in &files {
        for (k, v) in &f.partition {
            partitions.keys().append_value(k);
            match v {
                Some(v) => partitions.values().append_value(v),
                None => partitions.values().append_null(),
            }
        }
        partitions.append(true).map_err(arrow)?;
    }
    let partitions = Arc::new(partitions.finish());
    let rows = Int64Array::from_iter_values(files.iter().map(|f| f.rows as i64));
    let stats_fields = Fields::from(vec![Field::new("numRecords", DataType::Int64, true)]);
    let stats = StructArray::try_new(stats_fields.clone(), vec![Arc::new(rows) as ArrayRef], None)
        .map_err(arrow)?;
    let columns: Vec<ArrayRef> = vec![
        Arc::new(StringArray::from_iter_values(
            files.iter().map(|f| f.path.as_str()),
        )),
        partitions.clone(),
        Arc::new(Int64Array::from_iter_values(
            files.iter().map(|f| f.size as i64),
        )),
        Arc::new(Int64Array::from_iter_values(
            files.iter().map(|f| f.modified_ms),
        )),
        Arc::new(stats),
    ];
    let schema = Schema::new(vec![
        Field::new("path", DataType::Utf8, false),
        Field::new("partitionValues", partitions.data_type().clone(), false),
        Field::new("size", DataType::Int64, false),
        Field::new("modificationTime", DataType::Int64, false),
        Field::new("stats", DataType::Struct(stats_fields), true),
    ]);
    let batch = RecordBatch::try_new(Arc::new(schema), columns).map_err(arrow)?;
    Ok(Box::new(ArrowEngineData::new(batch)))
}

/// The Delta schema of a build: its columns, then its partition columns (which its files do
/// not hold), from the Arrow types weir recorded.
fn delta_schema(build: &TableBuild) -> Result<Arc<StructType>, String> {
    let mut fields = Vec::new();
    let mut seen = std::collections::BTreeSet::new();
    for c in build.schema.iter().chain(&build.partition_by) {
        if !seen.insert(c.name.clone()) {
            continue;
        }
        let data_type: DataType = c
            .data_type
            .parse()
            .map_err(|e| format!("column {}: {e}", c.name))?;
        fields.push(Field::new(
            &c.name,
            as_in_delta(&c.name, data_type)?,
            c.nullable,
        ));
    }
    let arrow = Schema::new(fields);
    let schema = StructType::try_from_arrow(&arrow).map_err(|e| e.to_string())?;
    if !needs_column_mapping(&schema) {
        return Ok(Arc::new(schema));
    }
    // Names Parquet readers cannot take without column mapping (`sum(x)`, `a b`): each
    // column's physical name is its name, which is what weir's files hold.
    let fields = schema.fields().enumerate().map(|(i, f)| {
        f.clone().add_metadata([
            (COLUMN_MAPPING_ID, MetadataValue::Number(i as i64 + 1)),
            (
                COLUMN_MAPPING_NAME,
                MetadataValue::String(f.name().to_string()),
            ),
        ])
    });
    StructType::try_new(fields)
        .map(Arc::new)
        .map_err(|e| e.to_string())
}

/// A column's type as Delta takes it. A timestamp with any time zone is an instant, stored as
/// UTC, which is Delta's `timestamp` (Delta names no other zone). Arrow's `Timestamp(s)` (what
/// DataFusion infers from CSV) is written to Parquet as a plain integer of seconds, which no
/// Delta type describes: readers would take it for microseconds.
fn as_in_delta(name: &str, data_type: DataType) -> Result<DataType, String> {
    use datafusion::arrow::datatypes::TimeUnit;
    match data_type {
        DataType::Timestamp(TimeUnit::Second, _) => Err(format!(
            "column {name} is a timestamp in whole seconds, which its Parquet files hold as plain integers that Delta readers would take for microseconds; CAST it to TIMESTAMP(3) (or finer) for a Delta log"
        )),
        DataType::Timestamp(unit, zone) => {
            Ok(DataType::Timestamp(unit, zone.map(|_| "UTC".into())))
        }
        other => Ok(other),
    }
}

const COLUMN_MAPPING_ID: &str = "delta.columnMapping.id";
const COLUMN_MAPPING_NAME: &str = "delta.columnMapping.physicalName";

/// Whether a column name holds a character Parquet column names may not (Delta's rule).
fn needs_column_mapping(schema: &StructType) -> bool {
    schema.fields().any(|f| {
        f.name()
            .contains([' ', ',', ';', '{', '}', '(', ')', '\n', '\t', '='])
    })
}

/// `day=2026-12-01/part.parquet` under partition column `day`: `[("day", Some("2026-12-01"))]`.
/// Hive folders percent-encode special characters; `__HIVE_DEFAULT_PARTITION__` is null.
fn partition_values(path: &str, partition_by: &[super::Column]) -> Vec<(String, Option<String>)> {
    let folders: HashMap<&str, &str> = path
        .split('/')
        .filter_map(|segment| segment.split_once('='))
        .collect();
    partition_by
        .iter()
        .map(|c| {
            let value = folders.get(c.name.as_str()).and_then(|v| {
                let decoded = percent_encoding::percent_decode_str(v).decode_utf8_lossy();
                (decoded != "__HIVE_DEFAULT_PARTITION__" && !decoded.is_empty())
                    .then(|| decoded.into_owned())
            });
            (c.name.clone(), value)
        })
        .collect()
}

fn delta_error(path: &ObjectPath, message: String) -> StoreError {
    StoreError::Io {
        path: path.to_string(),
        problem: message,
        help: "the table's Delta log is written again by the next run".into(),
    }
}
