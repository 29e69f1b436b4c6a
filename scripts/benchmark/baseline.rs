//! The baseline: the TPC-H pipeline's 32 statements on a bare DataFusion `SessionContext`, each
//! result written as one Parquet file the way weir writes it. No scripts, no cache keys, no
//! manifests, no store: what weir costs is the difference.

use std::path::{Path, PathBuf};

use datafusion::catalog::MemorySchemaProvider;
use datafusion::common::TableReference;
use datafusion::dataframe::DataFrameWriteOptions;
use datafusion::error::Result;
use datafusion::prelude::{ParquetReadOptions, SessionConfig, SessionContext};
use std::sync::Arc;

pub const TABLES: [&str; 8] = [
    "lineitem", "orders", "customer", "part", "partsupp", "supplier", "nation", "region",
];
pub const PREP: [&str; 2] = ["lineitem_enriched", "partsupp_value"];

/// Runs the pipeline in dependency order: copy the 8 tables, build prep, run the 22 queries.
pub async fn run(example: &Path, data: &Path, out: &Path) -> Result<()> {
    let mut config = SessionConfig::new();
    // The queries name bare tables (`FROM lineitem`): the copies in `raw`, as in weir.
    config.options_mut().catalog.default_schema = "raw".to_string();
    let ctx = SessionContext::new_with_config(config);
    let catalog = ctx
        .catalog("datafusion")
        .expect("the default catalog exists");
    for schema in ["src", "raw", "prep", "marts"] {
        catalog.register_schema(schema, Arc::new(MemorySchemaProvider::new()))?;
    }

    for t in TABLES {
        let source = data.join(format!("{t}.parquet"));
        register(&ctx, "src", t, &source).await?;
        let copy = write(&ctx, &format!("SELECT * FROM src.{t}"), out, "raw", t).await?;
        register(&ctx, "raw", t, &copy).await?;
    }
    for t in PREP {
        let sql = read(&example.join("prep").join(format!("{t}.sql")))?;
        let file = write(&ctx, &sql, out, "prep", t).await?;
        register(&ctx, "prep", t, &file).await?;
    }
    for q in 1..=22 {
        let name = format!("q{q:02}");
        let sql = read(&example.join("queries").join(format!("{name}.sql")))?;
        write(&ctx, &sql, out, "marts", &name).await?;
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
) -> Result<PathBuf> {
    let file = out.join(schema).join(format!("{table}.parquet"));
    let options = DataFrameWriteOptions::new().with_single_file_output(true);
    ctx.sql(sql)
        .await?
        .write_parquet(file.to_string_lossy().as_ref(), options, None)
        .await?;
    Ok(file)
}

fn read(path: &Path) -> Result<String> {
    Ok(std::fs::read_to_string(path)?)
}
