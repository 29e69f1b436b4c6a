//! Writing a task's output: Parquet into a new build folder under its key, then the build's
//! record. A build without its record is incomplete: nothing reads it, and `cache gc` deletes it.
//!
//! Large outputs become several files of about `TARGET_FILE_BYTES` each, and `partition_by`
//! writes Hive-style folders (`col=value/`); readers take the build's folder whole.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use datafusion::arrow::array::AsArray;
use datafusion::arrow::datatypes::UInt64Type;
use datafusion::datasource::file_format::format_as_file_type;
use datafusion::datasource::file_format::parquet::ParquetFormatFactory;
use datafusion::logical_expr::LogicalPlanBuilder;
use datafusion::physical_plan::metrics::MetricsSet;
use datafusion::physical_plan::{ExecutionPlan, displayable};
use datafusion::prelude::DataFrame;

use datafusion::arrow::datatypes::SchemaRef;
use object_store::path::Path as ObjectPath;

use super::TaskError;
use crate::store::{CacheKey, Column, KeyParts, Partition, Store, TableBuild};

/// The size a table's files aim at unless `[engine] target_file_size` says otherwise: large
/// enough for few files and few requests, small enough for readers to spread them over cores.
pub use crate::engine::TARGET_FILE_BYTES;

#[derive(Clone)]
pub struct Target<'a> {
    pub flow: &'a str,
    pub task: String,
    pub stage: &'a str,
    pub table: &'a str,
    pub parts: &'a KeyParts,
    pub key: &'a CacheKey,
    /// The build's own name under its key: the run writing it (`run-N` for a REPL repeat).
    pub build: &'a str,
    pub run_id: &'a str,
    /// Hive-style partition columns (`partition_by`).
    pub partition_by: &'a [String],
    /// Stored bytes per row of what the task reads, when known: sizes its files.
    pub bytes_per_row: Option<f64>,
    /// The size its files aim at.
    pub file_bytes: u64,
    /// `primary_key`, recorded with the build.
    pub primary_key: &'a [String],
    /// Column descriptions, recorded with the build.
    pub descriptions: BTreeMap<String, String>,
    /// How long a query may go without progress and CPU before it counts as stopped.
    pub stall: Option<std::time::Duration>,
    /// Made from a partial build (`TableBuild::partial`).
    pub partial: bool,
}

/// What writing a build did besides the build: the bytes its queries spilled to disk, and
/// the physical plan that wrote it (for `weir run -vv`).
pub struct Written {
    pub build: TableBuild,
    pub spilled_bytes: u64,
    pub plan: String,
}

/// Write `df` as a new build of `t.key`, beside any earlier build of that key: a committed
/// build is never touched, so a run killed at any moment leaves it readable. Its files are
/// made durable (fsync) when its stage commits, all of the stage's at once.
pub async fn write(store: &Store, df: DataFrame, t: Target<'_>) -> Result<Written, TaskError> {
    let dir = store
        .layout
        .build_dir(t.stage, t.table, t.key.as_str(), t.build);
    let data = write_data(store, df, &t, &dir, None).await?;
    let build = TableBuild {
        files: data
            .files
            .iter()
            .map(|m| store.layout.relative(&m.location))
            .collect(),
        rows: data.rows,
        bytes: data.files.iter().map(|m| m.size).sum(),
        content: data.content,
        partitions: data.partitions,
        ..t.build(data.schema)
    };
    record(store, &build).await?;
    Ok(Written {
        build,
        spilled_bytes: data.spilled_bytes,
        plan: data.plan,
    })
}

impl Target<'_> {
    /// Its build as a record, with `schema` and no data yet.
    pub fn build(&self, schema: Vec<Column>) -> TableBuild {
        TableBuild {
            flow: self.flow.to_string(),
            task: self.task.to_string(),
            stage: self.stage.to_string(),
            table: self.table.to_string(),
            key: self.key.clone(),
            build: self.build.to_string(),
            parts: self.parts.clone(),
            files: Vec::new(),
            rows: 0,
            bytes: 0,
            partition_by: self
                .partition_by
                .iter()
                .filter_map(|p| schema.iter().find(|c| &c.name == p).cloned())
                .collect(),
            partitions: Vec::new(),
            partial: self.partial,
            schema,
            source: None,
            checks: Default::default(),
            primary_key: self.primary_key.to_vec(),
            descriptions: self.descriptions.clone(),
            content: None,
            built_at: chrono::Utc::now().to_rfc3339(),
            run_id: self.run_id.to_string(),
        }
    }
}

/// Record a complete build: its own record, then its key's newest (what a later plan finds).
pub async fn record(store: &Store, build: &TableBuild) -> Result<(), TaskError> {
    let layout = &store.layout;
    let failed = |e| TaskError::store(format!("recording {}.{}", build.stage, build.table), e);
    let (stage, table, key) = (&build.stage, &build.table, build.key.as_str());
    let record = layout.build_record(stage, table, key, &build.build);
    store.put_json(&record, build).await.map_err(failed)?;
    if build.partial {
        // Not what its key stands for: a later run must not take it for a complete build.
        return Ok(());
    }
    let newest = layout.key_record(stage, table, key);
    store.put_json(&newest, build).await.map_err(failed)
}

/// What writing into a folder left there: the files, their rows and content hash, and for a
/// partitioned write each folder's part of them.
pub struct Data {
    pub schema: Vec<Column>,
    pub files: Vec<object_store::ObjectMeta>,
    pub rows: u64,
    pub content: Option<String>,
    pub partitions: Vec<Partition>,
    pub spilled_bytes: u64,
    pub plan: String,
}

/// Write `df` as Parquet files under `dir`, in Hive folders when `t.partition_by` says so.
/// With `only` (a folder such as `day=2026-12-01`), the rows are one partition's: a row of any
/// other fails the write, and only that folder's files are the result.
pub async fn write_data(
    store: &Store,
    df: DataFrame,
    t: &Target<'_>,
    dir: &ObjectPath,
    only: Option<&str>,
) -> Result<Data, TaskError> {
    let name = format!("{}.{}", t.stage, t.table);
    let failed = |e| TaskError::store(format!("writing {name}"), e);
    let engine = |e| TaskError::engine(format!("writing {name}"), e);
    let schema = columns(&df, &name, t.partition_by)?;
    let arrow_schema = Arc::new(df.schema().as_arrow().clone());
    let copy = copy_to(df, &format!("{}/", store.url_of(dir)), t).map_err(engine)?;
    let task_ctx = copy.task_ctx();
    let plan = copy.create_physical_plan().await.map_err(engine)?;
    let task_ctx = Arc::new(crate::engine::sized_merges(&plan, task_ctx));
    let (plan, content) = super::content::hashed(plan, t.partition_by).map_err(engine)?;
    let run = datafusion::physical_plan::collect(plan.clone(), task_ctx);
    let batches = match t.stall {
        None => run.await,
        Some(window) => crate::engine::unless_stalled(run, window, || progress(&plan))
            .await
            .ok_or_else(|| TaskError::stalled(&t.task, t.table, window))?,
    }
    .map_err(engine)?;
    let rows = batches
        .iter()
        .filter_map(|b| b.column_by_name("count"))
        .filter_map(|c| c.as_primitive_opt::<UInt64Type>())
        .flat_map(|c| c.iter().flatten())
        .sum();
    let folders = content.as_ref().map(|c| c.folders()).unwrap_or_default();
    if let Some(only) = only
        && let Some((other, sum)) = folders.iter().find(|(f, _)| f.as_str() != only)
    {
        return Err(TaskError::invalid(format!(
            "computing partition {only} gave {} with {other}: an incremental task's rows must stay in the partition they are computed for (its partitioned inputs hold that partition's rows only); drop `incremental`, or partition by a column the rows keep",
            crate::report::plural(sum.rows, "row")
        )));
    }
    let listed = match only {
        Some(folder) => folder
            .split('/')
            .fold(dir.clone(), |path, part| path.join(part)),
        None => dir.clone(),
    };
    let stored_schema = without(&arrow_schema, t.partition_by, only.is_some());
    let files = written_files(store, &listed, &stored_schema)
        .await
        .map_err(|e| match e {
            Ok(store_error) => failed(store_error),
            Err(engine_error) => engine(engine_error),
        })?;
    let partitions = if t.partition_by.is_empty() {
        Vec::new()
    } else {
        partitions(&files, dir, &folders, &arrow_schema, only, t.run_id)
    };
    Ok(Data {
        schema,
        files,
        rows,
        content: content.map(|c| c.finish(&arrow_schema)),
        partitions,
        spilled_bytes: spilled(&plan),
        plan: displayable(plan.as_ref()).indent(true).to_string(),
    })
}

/// The schema of a partition's files: without its partition columns, which its folder holds.
fn without(schema: &SchemaRef, partition_by: &[String], partition: bool) -> SchemaRef {
    if !partition {
        return schema.clone();
    }
    let fields: Vec<_> = schema
        .fields()
        .iter()
        .filter(|f| !partition_by.contains(f.name()))
        .cloned()
        .collect();
    Arc::new(datafusion::arrow::datatypes::Schema::new(fields))
}

/// The partitions of a partitioned write: its files grouped by folder, with what each folder
/// received (`folders`, by name).
fn partitions(
    files: &[object_store::ObjectMeta],
    dir: &ObjectPath,
    folders: &HashMap<String, super::content::Sum>,
    schema: &SchemaRef,
    only: Option<&str>,
    run_id: &str,
) -> Vec<Partition> {
    let mut by_folder: BTreeMap<String, Vec<&object_store::ObjectMeta>> = BTreeMap::new();
    for f in files {
        let Some(inside) = f.location.prefix_match(dir) else {
            continue;
        };
        let mut parts: Vec<String> = inside.map(|p| p.as_ref().to_string()).collect();
        parts.pop();
        let folder = parts.join("/");
        // An empty table's one file sits in the build's own folder: no partition.
        if !folder.is_empty() {
            by_folder.entry(folder).or_default().push(f);
        }
    }
    if let Some(only) = only {
        by_folder.entry(only.to_string()).or_default();
    }
    by_folder
        .into_iter()
        .map(|(path, files)| {
            // Not found by name: no hash, so whatever reads it takes it as changed.
            let sum = folders.get(&path).copied().unwrap_or_default();
            Partition {
                rows: sum.rows,
                bytes: files.iter().map(|m| m.size).sum(),
                content: folders
                    .get(&path)
                    .or(only.filter(|o| *o == path).map(|_| &sum))
                    .map(|s| s.finish(schema)),
                key: None,
                inputs: Default::default(),
                run_id: run_id.to_string(),
                path,
            }
        })
        .collect()
}

/// The columns of a task's result, refused when two share a name or a `partition_by` column
/// is not among them.
fn columns(df: &DataFrame, name: &str, partition_by: &[String]) -> Result<Vec<Column>, TaskError> {
    let schema: Vec<Column> = df
        .schema()
        .fields()
        .iter()
        .map(|f| Column {
            name: f.name().clone(),
            data_type: f.data_type().to_string(),
            nullable: f.is_nullable(),
        })
        .collect();
    if let Some(dup) = duplicate(&schema) {
        return Err(TaskError::invalid(format!(
            "writing {name}: the result has two columns named `{dup}`: give one an alias"
        )));
    }
    if let Some(missing) = partition_by
        .iter()
        .find(|p| !schema.iter().any(|c| &c.name == *p))
    {
        let names: Vec<&str> = schema.iter().map(|c| c.name.as_str()).collect();
        return Err(TaskError::invalid(format!(
            "partition_by names `{missing}`, which {name} does not have (columns: {})",
            names.join(", ")
        )));
    }
    if let Some(float) = partition_by.iter().find_map(|p| {
        let c = schema.iter().find(|c| &c.name == p)?;
        c.data_type.starts_with("Float").then_some(c)
    }) {
        return Err(TaskError::invalid(format!(
            "partition_by names `{}`, a {} column: partition by whole numbers, strings, dates or booleans (a float's folder name would not say its value exactly)",
            float.name, float.data_type
        )));
    }
    Ok(schema)
}

/// Why listing or completing a build's files failed: the store, or making the empty file.
type FilesError = Result<crate::store::StoreError, datafusion::error::DataFusionError>;

/// The Parquet files written into `dir`, in order; with no rows, one empty file that keeps the
/// columns, so readers still see them.
async fn written_files(
    store: &Store,
    dir: &object_store::path::Path,
    schema: &datafusion::arrow::datatypes::SchemaRef,
) -> Result<Vec<object_store::ObjectMeta>, FilesError> {
    let parquet = |mut files: Vec<object_store::ObjectMeta>| {
        files.retain(|m| m.location.as_ref().ends_with(".parquet"));
        files
    };
    let mut files = parquet(store.list(dir).await.map_err(Ok)?);
    if files.is_empty() {
        let empty = dir.clone().join("part-0.parquet");
        let bytes = empty_parquet(schema.clone()).map_err(Err)?;
        store.put_bytes(&empty, bytes).await.map_err(Ok)?;
        files = parquet(store.list(dir).await.map_err(Ok)?);
    }
    files.sort_by(|a, b| a.location.cmp(&b.location));
    Ok(files)
}

/// `df` written as Parquet files under the folder `url`: a COPY plan, as `write_parquet`
/// makes, but kept, so that its metrics (the bytes it spilled) can be read after it ran.
fn copy_to(df: DataFrame, url: &str, t: &Target<'_>) -> datafusion::error::Result<DataFrame> {
    let (mut state, plan) = df.into_parts();
    let rows_per_file = match t.bytes_per_row {
        Some(b) if b > 0.0 => (t.file_bytes as f64 / b) as u64,
        _ => 20_000_000,
    }
    .clamp(10_000, 200_000_000);
    let options = state.config_mut().options_mut();
    options.set(
        "datafusion.execution.soft_max_rows_per_output_file",
        &rows_per_file.to_string(),
    )?;
    // One file until it is full: small tables stay one file.
    options.set("datafusion.execution.minimum_parallel_output_files", "1")?;
    let format = format_as_file_type(Arc::new(ParquetFormatFactory::new()));
    let plan = LogicalPlanBuilder::copy_to(
        plan,
        url.to_string(),
        format,
        HashMap::new(),
        t.partition_by.to_vec(),
    )?
    .build()?;
    Ok(DataFrame::new(state, plan))
}

/// A Parquet file of no rows with `schema`.
fn empty_parquet(
    schema: datafusion::arrow::datatypes::SchemaRef,
) -> datafusion::error::Result<Vec<u8>> {
    let mut bytes = Vec::new();
    let writer = datafusion::parquet::arrow::ArrowWriter::try_new(&mut bytes, schema, None)?;
    writer.close()?;
    Ok(bytes)
}

/// The bytes every operator of `plan` spilled to disk.
fn spilled(plan: &Arc<dyn ExecutionPlan>) -> u64 {
    total(plan, &|m| m.spilled_bytes().unwrap_or(0)) as u64
}

/// What the operators of `plan` have done so far: rows out, bytes read and spilled. Their
/// counters move while the query runs, which tells a slow query from a stopped one.
fn progress(plan: &Arc<dyn ExecutionPlan>) -> usize {
    total(plan, &|m| {
        let scanned = m.sum_by_name("bytes_scanned").map_or(0, |v| v.as_usize());
        m.output_rows().unwrap_or(0) + m.spilled_bytes().unwrap_or(0) + scanned
    })
}

/// `each` of the metrics of every operator of `plan`, summed.
fn total(plan: &Arc<dyn ExecutionPlan>, each: &dyn Fn(&MetricsSet) -> usize) -> usize {
    let own = plan.metrics().map_or(0, |m| each(&m));
    own + plan
        .children()
        .into_iter()
        .map(|c| total(c, each))
        .sum::<usize>()
}

fn duplicate(schema: &[Column]) -> Option<&str> {
    let mut names: Vec<&str> = schema.iter().map(|c| c.name.as_str()).collect();
    names.sort_unstable();
    names.windows(2).find(|w| w[0] == w[1]).map(|w| w[0])
}
