//! Writing a task's output: Parquet into a new build folder under its key, then the build's
//! record. A build without its record is incomplete: nothing reads it, and `cache gc` deletes it.

use datafusion::arrow::array::AsArray;
use datafusion::arrow::datatypes::UInt64Type;
use datafusion::dataframe::DataFrameWriteOptions;
use datafusion::prelude::DataFrame;

use super::TaskError;
use crate::store::{CacheKey, Column, KeyParts, Store, TableBuild};

pub struct Target<'a> {
    pub task: &'a str,
    pub stage: &'a str,
    pub table: &'a str,
    pub parts: &'a KeyParts,
    pub key: &'a CacheKey,
    /// The build's own name under its key: the run writing it (`run-N` for a REPL repeat).
    pub build: &'a str,
    pub run_id: &'a str,
}

/// Write `df` as a new build of `t.key`, beside any earlier build of that key: a committed
/// build is never touched, so a run killed at any moment leaves it readable. Its files are
/// made durable (fsync) when its stage commits, all of the stage's at once.
pub async fn write(store: &Store, df: DataFrame, t: Target<'_>) -> Result<TableBuild, TaskError> {
    let layout = &store.layout;
    let name = format!("{}.{}", t.stage, t.table);
    let failed = |e| TaskError::store(format!("writing {name}"), e);
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
    let key = t.key.as_str();
    let file = layout.data_file(t.stage, t.table, key, t.build, 0);
    let options = DataFrameWriteOptions::new().with_single_file_output(true);
    let batches = df
        .write_parquet(&store.url_of(&file), options, None)
        .await
        .map_err(|e| TaskError::engine(format!("writing {name}"), e))?;
    let rows = batches
        .iter()
        .filter_map(|b| b.column_by_name("count"))
        .filter_map(|c| c.as_primitive_opt::<UInt64Type>())
        .flat_map(|c| c.iter().flatten())
        .sum();
    let bytes = store
        .head(&file)
        .await
        .map_err(failed)?
        .map_or(0, |m| m.size);
    let build = TableBuild {
        task: t.task.to_string(),
        stage: t.stage.to_string(),
        table: t.table.to_string(),
        key: t.key.clone(),
        build: t.build.to_string(),
        parts: t.parts.clone(),
        files: vec![layout.relative(&file)],
        rows,
        bytes,
        schema,
        built_at: chrono::Utc::now().to_rfc3339(),
        run_id: t.run_id.to_string(),
    };
    let record = layout.build_record(t.stage, t.table, key, t.build);
    store.put_json(&record, &build).await.map_err(failed)?;
    let newest = layout.key_record(t.stage, t.table, key);
    store.put_json(&newest, &build).await.map_err(failed)?;
    Ok(build)
}

fn duplicate(schema: &[Column]) -> Option<&str> {
    let mut names: Vec<&str> = schema.iter().map(|c| c.name.as_str()).collect();
    names.sort_unstable();
    names.windows(2).find(|w| w[0] == w[1]).map(|w| w[0])
}
