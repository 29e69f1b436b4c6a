//! Load tasks: read CSV, NDJSON or Parquet files into a DataFrame, and, when that fails, look
//! at the local files to say which file, row and column is wrong (DataFusion's messages name
//! neither the file of a glob nor the row as the user counts it).

mod csv;
mod json;
mod schema;
mod staged;

use std::path::{Path, PathBuf};

use datafusion::arrow::datatypes::{DataType, Field, Schema};
use datafusion::prelude::{
    CsvReadOptions, DataFrame, JsonReadOptions, ParquetReadOptions, SessionContext,
};

use super::{Shared, TaskError};
use crate::flow::{At, Task};
use crate::script::{FileFormat, LoadSpec};
use crate::source::SourceFile;
use crate::store::{Column, InPlace, TableBuild, sources};

/// Files larger than this are not read again to explain an error.
const EXPLAIN_LIMIT: u64 = 64 << 20;

pub(super) async fn load(
    ctx: &SessionContext,
    task: &Task,
    spec: &LoadSpec,
    shared: &Shared,
) -> Result<DataFrame, TaskError> {
    load_files(ctx, task, spec, shared, Vec::new(), None).await
}

/// Load `files` of the task's location (a partition's; empty: the location whole), text
/// files read with `schema` when given.
pub(super) async fn load_files(
    ctx: &SessionContext,
    task: &Task,
    spec: &LoadSpec,
    shared: &Shared,
    files: Vec<String>,
    schema: Option<&Schema>,
) -> Result<DataFrame, TaskError> {
    if spec.format == FileFormat::Parquet {
        let location = spec.resolved.clone();
        empty_parquet(ctx, spec, &location).await?;
        // DataFusion would merge the files' schemas and fill a column some files lack with
        // nulls: a silent data bug, so a glob's Parquet files must agree.
        let (id, spec2) = (task.id.to_string(), spec.clone());
        let check = move || schema::parquet(&id, &spec2, &local_files(&location, spec2.format));
        if let Ok(Some(problem)) = tokio::task::spawn_blocking(check).await {
            return Err(problem);
        }
    }
    read(ctx, task, spec, shared, files, schema)
        .await
        .map_err(|error| explain(task, spec, error))
}

/// A Parquet file of 0 bytes is refused, by name: DataFusion reads it as a table with no
/// columns, or skips it in a glob, and a producer that died before writing would lose its data
/// without a word.
async fn empty_parquet(
    ctx: &SessionContext,
    spec: &LoadSpec,
    location: &str,
) -> Result<(), TaskError> {
    let state = ctx.state();
    let listed = sources::fingerprint(&state, location, spec.format.extension(), false, None).await;
    let Ok((_, files)) = listed else {
        // What cannot be listed is reported by the read itself.
        return Ok(());
    };
    let local = !location.contains("://") || location.starts_with("file://");
    match files.iter().find(|f| f.size == 0) {
        Some(f) => Err(TaskError::invalid(format!(
            "cannot load {}: {}{} is empty (0 bytes), not a Parquet file: a writer that stopped before it finished? Write it again or remove it",
            spec.location,
            if local { "/" } else { "" },
            f.location
        ))),
        None => Ok(()),
    }
}

async fn read(
    ctx: &SessionContext,
    task: &Task,
    spec: &LoadSpec,
    shared: &Shared,
    files: Vec<String>,
    schema: Option<&Schema>,
) -> Result<DataFrame, TaskError> {
    let context = |e| TaskError::engine(format!("cannot load {}", spec.location), e);
    if !files.is_empty() {
        return read_files(ctx, spec, files, schema).await.map_err(context);
    }
    let mut location = spec.resolved.clone();
    let remote = spec.url().is_some_and(|u| u.scheme() != "file");
    if remote && spec.format != FileFormat::Parquet {
        let folder = shared
            .engine
            .spills()
            .path()
            .join(format!("load-{}", task.id));
        let state = ctx.state();
        location = staged::stage(&state, &location, spec.format.extension(), &folder)
            .await
            .map_err(context)?;
    }
    // A single file or a glob is read as named, whatever its extension.
    let named = !location.ends_with('/') && !std::path::Path::new(&location).is_dir();
    let ext = if named {
        String::new()
    } else {
        spec.format.extension().to_string()
    };
    match spec.format {
        FileFormat::Parquet => ctx
            .read_parquet(location, ParquetReadOptions::default().file_extension(&ext))
            .await
            .map_err(context),
        FileFormat::Json => ctx
            .read_json(location, JsonReadOptions::default().file_extension(&ext))
            .await
            .map_err(context),
        FileFormat::Csv => {
            let opts = || {
                CsvReadOptions::new()
                    .has_header(spec.csv.header)
                    .delimiter(spec.csv.delimiter)
                    .file_extension(&ext)
            };
            let df = ctx
                .read_csv(location.clone(), opts())
                .await
                .map_err(context)?;
            if spec.csv.types.is_empty() {
                return Ok(df);
            }
            let schema = override_types(df.schema().as_arrow(), &spec.csv.types)?;
            ctx.read_csv(location, opts().schema(&schema))
                .await
                .map_err(context)
        }
    }
}

/// Named files of the location, each read as named; text files with `schema` when given.
pub(super) async fn read_files(
    ctx: &SessionContext,
    spec: &LoadSpec,
    files: Vec<String>,
    schema: Option<&Schema>,
) -> datafusion::error::Result<DataFrame> {
    match spec.format {
        FileFormat::Parquet => {
            ctx.read_parquet(files, ParquetReadOptions::default().file_extension(""))
                .await
        }
        FileFormat::Json => {
            let options = JsonReadOptions::default().file_extension("");
            let options = match schema {
                Some(s) => options.schema(s),
                None => options,
            };
            ctx.read_json(files, options).await
        }
        FileFormat::Csv => {
            let opts = || {
                CsvReadOptions::new()
                    .has_header(spec.csv.header)
                    .delimiter(spec.csv.delimiter)
                    .file_extension("")
            };
            if let Some(schema) = schema {
                return ctx.read_csv(files, opts().schema(schema)).await;
            }
            let df = ctx.read_csv(files.clone(), opts()).await?;
            if spec.csv.types.is_empty() {
                return Ok(df);
            }
            let schema = override_types(df.schema().as_arrow(), &spec.csv.types)
                .map_err(|e| datafusion::error::DataFusionError::Plan(e.to_string()))?;
            ctx.read_csv(files, opts().schema(&schema)).await
        }
    }
}

/// The inferred CSV schema with the types the script gave.
fn override_types(
    inferred: &Schema,
    types: &std::collections::BTreeMap<String, String>,
) -> Result<Schema, TaskError> {
    for name in types.keys() {
        if inferred.field_with_name(name).is_err() {
            let columns: Vec<&str> = inferred
                .fields()
                .iter()
                .map(|f| f.name().as_str())
                .collect();
            return Err(TaskError::invalid(format!(
                "schema names column `{name}`, which the file does not have (columns: {})",
                columns.join(", ")
            )));
        }
    }
    let fields = inferred
        .fields()
        .iter()
        .map(|f| match types.get(f.name()) {
            None => Ok(f.as_ref().clone()),
            Some(ty) => ty
                .parse::<DataType>()
                .map(|t| Field::new(f.name(), t, true))
                .map_err(|_| {
                    TaskError::invalid(format!(
                        "`{ty}` for column `{}` is not an Arrow type (e.g. Int64, Float64, Utf8, Date32)",
                        f.name()
                    ))
                }),
        })
        .collect::<Result<Vec<_>, _>>()?;
    Ok(Schema::new(fields))
}

/// A failed load, with the file, row and column at fault when the files show it.
pub(super) fn explain(task: &Task, spec: &LoadSpec, error: TaskError) -> TaskError {
    let message = error.to_string();
    let location = spec.resolved.clone();
    let files = local_files(&location, spec.format);
    let id = task.id.to_string();
    let problem = match spec.format {
        FileFormat::Csv => csv::headers(&id, spec, &files)
            .or_else(|| files.iter().find_map(|f| csv::rows(&id, spec, f, &message))),
        FileFormat::Json => files
            .iter()
            .find_map(|f| json::lines(&id, f))
            .or_else(|| json::types(&id, spec, &files)),
        FileFormat::Parquet => schema::parquet(&id, spec, &files),
    };
    problem.unwrap_or(error)
}

/// The local files behind a location: one file, a folder's files of the format, or a glob.
fn local_files(location: &str, format: FileFormat) -> Vec<PathBuf> {
    let location = location.strip_prefix("file://").unwrap_or(location);
    if location.contains("://") {
        return Vec::new();
    }
    let path = Path::new(location);
    let mut files: Vec<PathBuf> = if path.is_dir() {
        std::fs::read_dir(path)
            .map(|d| d.flatten().map(|e| e.path()).collect::<Vec<_>>())
            .unwrap_or_default()
            .into_iter()
            .filter(|p: &PathBuf| p.to_string_lossy().ends_with(format.extension()))
            .collect()
    } else if location.contains(['*', '?', '[']) {
        glob::glob(location)
            .map(|g| g.flatten().collect())
            .unwrap_or_default()
    } else {
        vec![path.to_path_buf()]
    };
    files.retain(|f| f.is_file());
    files.sort();
    files
}

/// A data file's text, to point into; `None` for one too large to read again.
fn source(file: &Path) -> Option<SourceFile> {
    let size = std::fs::metadata(file).ok()?.len();
    if size > EXPLAIN_LIMIT {
        return None;
    }
    let text = std::fs::read_to_string(file).ok()?;
    Some(SourceFile::new(file, text))
}

/// The first line of a file of any size, as the text to point into.
fn first_line(file: &Path) -> Option<SourceFile> {
    use std::io::BufRead;
    let mut line = String::new();
    std::io::BufReader::new(std::fs::File::open(file).ok()?)
        .read_line(&mut line)
        .ok()?;
    Some(SourceFile::new(file, line))
}

/// Two files of a glob that do not share a schema, pointing into the second when it is text.
fn mismatch(
    task: &str,
    spec: &LoadSpec,
    (first, first_has): (&Path, String),
    (second, second_has): (&Path, String),
    at: Option<(&SourceFile, miette::SourceSpan)>,
) -> TaskError {
    TaskError::SchemaMismatch {
        task: task.to_string(),
        pattern: spec.location.clone(),
        first: crate::source::shown(first),
        first_has,
        second: crate::source::shown(second),
        second_has,
        src: at.map(|(src, _)| src.named()),
        span: at.map(|(_, span)| span),
    }
}

fn at(src: &SourceFile, span: miette::SourceSpan) -> At {
    let (line, column) = crate::source::line_column(&src.text, span.offset());
    At {
        location: format!("{}:{line}:{column}", src.name()),
        src: src.named(),
        span,
    }
}

/// A Parquet load kept in place (`copy: false`): no data is written, only a build that names
/// the source's files and pins them by the fingerprint its key holds. Reading it checks the
/// fingerprint again, so a changed source is never served as the committed table.
pub(super) async fn in_place(
    shared: &Shared,
    task: &Task,
    spec: &LoadSpec,
    df: DataFrame,
) -> Result<TableBuild, TaskError> {
    let name = task.id.to_string();
    let location = spec.resolved.clone();
    let step = &shared.steps[shared.flow.producers[&task.id]];
    let state = shared.engine.state(None);
    let reading = |e| TaskError::engine(format!("cannot load {}", spec.location), e);
    let url =
        datafusion::datasource::listing::ListingTableUrl::parse(&location).map_err(reading)?;
    let (_, files) = sources::fingerprint(&state, &location, ".parquet", spec.strict, None)
        .await
        .map_err(reading)?;
    let schema = df.schema().fields().iter().map(|f| Column {
        name: f.name().clone(),
        data_type: f.data_type().to_string(),
        nullable: f.is_nullable(),
    });
    let schema = schema.collect();
    let rows = df.count().await.map_err(reading)? as u64;
    let store_url = url.object_store();
    let build = TableBuild {
        flow: shared.run.flow_name.clone(),
        task: name.clone(),
        stage: task.decl.stage.clone(),
        table: task.decl.outputs[0].clone(),
        key: step.key.clone(),
        build: shared.run.id.clone(),
        parts: step.parts.clone(),
        files: files
            .iter()
            .map(|m| format!("{}{}", store_url.as_str(), m.location))
            .collect(),
        rows,
        bytes: files.iter().map(|m| m.size).sum(),
        schema,
        partition_by: Vec::new(),
        partitions: Vec::new(),
        partial: false,
        source: Some(InPlace {
            location,
            strict: spec.strict,
        }),
        checks: Default::default(),
        primary_key: task.decl.opts.primary_key.clone(),
        descriptions: task.descriptions(&task.decl.outputs[0]),
        content: None,
        built_at: chrono::Utc::now().to_rfc3339(),
        run_id: shared.run.id.clone(),
    };
    let layout = &shared.store.layout;
    let (stage, table, key) = (&build.stage, &build.table, build.key.as_str());
    let failed = |e| TaskError::store(format!("recording {name}"), e);
    let record = layout.build_record(stage, table, key, &build.build);
    shared
        .store
        .put_json(&record, &build)
        .await
        .map_err(failed)?;
    let newest = layout.key_record(stage, table, key);
    shared
        .store
        .put_json(&newest, &build)
        .await
        .map_err(failed)?;
    Ok(build)
}
