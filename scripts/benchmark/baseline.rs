//! The baseline: the TPC-H pipeline's 32 statements on a bare DataFusion `SessionContext`, each
//! result written as one Parquet file the way weir writes it. No scripts, no cache keys, no
//! manifests, no store: what weir costs is the difference.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

use datafusion::arrow::array::AsArray;
use datafusion::arrow::datatypes::UInt64Type;
use datafusion::catalog::MemorySchemaProvider;
use datafusion::common::TableReference;
use datafusion::dataframe::DataFrameWriteOptions;
use datafusion::error::Result;
use datafusion::prelude::{ParquetReadOptions, SessionConfig, SessionContext};
use serde::Serialize;

pub const TABLES: [&str; 8] = [
    "lineitem", "orders", "customer", "part", "partsupp", "supplier", "nation", "region",
];
pub const PREP: [&str; 2] = ["lineitem_enriched", "partsupp_value"];

/// One statement's wall time and the rows it wrote.
#[derive(Serialize)]
pub struct Statement {
    pub task: String,
    pub s: f64,
    pub rows: u64,
}

/// Runs the pipeline in dependency order: copy the 8 tables, build prep, run the 22 queries.
/// `memory_limit` gives the session what `weir run --memory-limit` gives weir's.
pub async fn run(
    example: &Path,
    data: &Path,
    out: &Path,
    memory_limit: Option<u64>,
) -> Result<Vec<Statement>> {
    let mut config = SessionConfig::new();
    // The queries name bare tables (`FROM lineitem`): the copies in `raw`, as in weir.
    config.options_mut().catalog.default_schema = "raw".to_string();
    let ctx = match memory_limit {
        None => SessionContext::new_with_config(config),
        Some(bytes) => limited(config, bytes)?,
    };
    schemas(&ctx, &["src", "raw", "prep", "marts"])?;

    let mut done = Vec::new();
    for t in TABLES {
        let source = data.join(format!("{t}.parquet"));
        register(&ctx, "src", t, &source).await?;
        let (copy, s) = write(&ctx, &format!("SELECT * FROM src.{t}"), out, "raw", t).await?;
        register(&ctx, "raw", t, &copy).await?;
        done.push(s);
    }
    for t in PREP {
        let sql = read(&example.join("prep").join(format!("{t}.sql")))?;
        let (file, s) = write(&ctx, &sql, out, "prep", t).await?;
        register(&ctx, "prep", t, &file).await?;
        done.push(s);
    }
    for q in 1..=22 {
        let name = format!("q{q:02}");
        let sql = read(&example.join("queries").join(format!("{name}.sql")))?;
        done.push(write(&ctx, &sql, out, "marts", &name).await?.1);
    }
    Ok(done)
}

/// One query alone (`q06`) on the 8 files as they are, its result written as one Parquet file:
/// what a user running that query by hand waits for, to set against weir's one-change run.
pub async fn one(example: &Path, data: &Path, out: &Path, name: &str) -> Result<Vec<Statement>> {
    let mut config = SessionConfig::new();
    config.options_mut().catalog.default_schema = "raw".to_string();
    let ctx = SessionContext::new_with_config(config);
    schemas(&ctx, &["raw", "marts"])?;
    for t in TABLES {
        register(&ctx, "raw", t, &data.join(format!("{t}.parquet"))).await?;
    }
    let sql = read(&example.join("queries").join(format!("{name}.sql")))?;
    Ok(vec![write(&ctx, &sql, out, "marts", name).await?.1])
}

/// A context on weir's own runtime under an explicit limit (`EngineSettings::runtime`: the same pool,
/// spill settings and merge fan-in) with the settings weir's first attempt at a task plans with
/// (`EngineSettings::tune`), so that the comparison under a limit is of weir's overhead, not of
/// different pools. What bare DataFusion lacks is weir's: its plan rules, and running a task
/// that ran out of memory again with less.
fn limited(mut config: SessionConfig, bytes: u64) -> Result<SessionContext> {
    let limits = weir::config::EngineSettings {
        memory_limit: Some(bytes),
        ..Default::default()
    };
    let runtime = limits.runtime(&std::env::temp_dir())?;
    limits.tune(config.options_mut());
    Ok(SessionContext::new_with_config_rt(config, runtime))
}

fn schemas(ctx: &SessionContext, names: &[&str]) -> Result<()> {
    let catalog = ctx
        .catalog("datafusion")
        .expect("the default catalog exists");
    for name in names {
        catalog.register_schema(name, Arc::new(MemorySchemaProvider::new()))?;
    }
    Ok(())
}

async fn register(ctx: &SessionContext, schema: &str, table: &str, file: &Path) -> Result<()> {
    ctx.register_parquet(
        TableReference::partial(schema, table),
        file.to_string_lossy().as_ref(),
        ParquetReadOptions::default(),
    )
    .await
}

async fn write(
    ctx: &SessionContext,
    sql: &str,
    out: &Path,
    schema: &str,
    table: &str,
) -> Result<(PathBuf, Statement)> {
    let start = Instant::now();
    let file = out.join(schema).join(format!("{table}.parquet"));
    let options = DataFrameWriteOptions::new().with_single_file_output(true);
    let counts = ctx
        .sql(sql)
        .await?
        .write_parquet(file.to_string_lossy().as_ref(), options, None)
        .await?;
    // The write's result is one `count` column: the rows written.
    let rows = counts
        .iter()
        .filter_map(|b| b.column(0).as_primitive_opt::<UInt64Type>())
        .flat_map(|c| c.iter().flatten())
        .sum();
    let statement = Statement {
        task: format!("{schema}.{table}"),
        s: start.elapsed().as_secs_f64(),
        rows,
    };
    Ok((file, statement))
}

fn read(path: &Path) -> Result<String> {
    Ok(std::fs::read_to_string(path)?)
}
