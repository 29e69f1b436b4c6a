//! The baseline: the TPC-H pipeline's 32 statements on a bare DataFusion `SessionContext`, each
//! result written as one Parquet file the way weir writes it. No scripts, no cache keys, no
//! manifests, no store: what weir costs is the difference.

use std::num::NonZeroUsize;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

use datafusion::arrow::array::AsArray;
use datafusion::arrow::datatypes::UInt64Type;
use datafusion::catalog::MemorySchemaProvider;
use datafusion::common::TableReference;
use datafusion::dataframe::DataFrameWriteOptions;
use datafusion::error::Result;
use datafusion::execution::disk_manager::{DiskManagerBuilder, DiskManagerMode};
use datafusion::execution::memory_pool::{FairSpillPool, TrackConsumersPool};
use datafusion::execution::runtime_env::RuntimeEnvBuilder;
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

/// A context set up as weir's engine is under an explicit limit (src/exec/memory.rs and
/// src/exec/session.rs): the same pool, spill folder and settings, so that the comparison
/// under a limit is of weir's overhead, not of different plans.
fn limited(mut config: SessionConfig, bytes: u64) -> Result<SessionContext> {
    let pool = TrackConsumersPool::new(
        FairSpillPool::new(bytes as usize),
        NonZeroUsize::MIN.saturating_add(2),
    );
    let runtime = RuntimeEnvBuilder::new()
        .with_memory_pool(Arc::new(pool))
        .with_disk_manager_builder(
            DiskManagerBuilder::default().with_mode(DiskManagerMode::OsTmpDirectory),
        )
        .build_arc()?;
    let options = config.options_mut();
    options.optimizer.prefer_hash_join = false;
    options.execution.parquet.allow_single_file_parallelism = false;
    options.execution.sort_spill_reservation_bytes = (bytes as usize / 8).clamp(4 << 20, 256 << 20);
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
