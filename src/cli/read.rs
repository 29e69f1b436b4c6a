//! `weir show` and `weir sql`: read committed tables, never uncommitted builds.

use std::path::PathBuf;

use clap::Args;

use super::StoreArgs;
use crate::exec::{Engine, ExecError, committed_context};
use crate::report::{OutputFormat, print_batches};
use crate::{Error, Result};

#[derive(Debug, Args)]
pub struct ShowArgs {
    /// `stage.table`
    pub table: String,
    #[arg(long, short = 'n', default_value_t = 20)]
    pub limit: usize,
    #[command(flatten)]
    pub read: ReadArgs,
}

#[derive(Debug, Args)]
pub struct SqlArgs {
    /// A query over committed tables, named `stage.table`.
    pub query: String,
    #[command(flatten)]
    pub read: ReadArgs,
}

#[derive(Debug, Args)]
pub struct ReadArgs {
    #[command(flatten)]
    pub store: StoreArgs,
    /// The pipeline script whose store and weir.toml to use, when --store is not given.
    #[arg(long, default_value = "pipeline.rhai")]
    pub script: PathBuf,
    #[arg(long, short = 'f', value_enum, default_value = "table")]
    pub format: OutputFormat,
}

pub async fn show(args: ShowArgs) -> Result<()> {
    let Some(name) = crate::script::TableName::parse(&args.table) else {
        return Err(Error::usage(
            format!("`{}` is not a table name", args.table),
            "name a table as stage.table",
        ));
    };
    let (ctx, tables) = context(&args.read).await?;
    if !tables.contains(&name.to_string()) {
        return Err(Error::usage(
            format!("table `{name}` is not committed"),
            crate::exec::sql_error::committed_help(&name.to_string(), &tables),
        ));
    }
    let query = format!("SELECT * FROM {name} LIMIT {}", args.limit);
    query_and_print(&ctx, &query, &tables, args.read.format).await
}

pub async fn sql(args: SqlArgs) -> Result<()> {
    let (ctx, tables) = context(&args.read).await?;
    query_and_print(&ctx, &args.query, &tables, args.read.format).await
}

async fn query_and_print(
    ctx: &datafusion::prelude::SessionContext,
    query: &str,
    tables: &[String],
    format: OutputFormat,
) -> Result<()> {
    let fail = |cause| Error::Query {
        message: "query failed".into(),
        cause,
    };
    let batches = ctx
        .sql(query)
        .await
        .map_err(|e| crate::exec::sql_error::typed_query(query, &e, tables))?
        .collect()
        .await
        .map_err(fail)?;
    print_batches(&batches, format)
}

/// A context with every committed table registered; also returns their names.
async fn context(args: &ReadArgs) -> Result<(datafusion::prelude::SessionContext, Vec<String>)> {
    let dir = super::script_dir(&args.script);
    let (_, instance) = args.store.instance(&dir)?;
    let store = args.store.open(&dir, &instance)?;
    let manifests = store.read_manifests().await?;
    let engine = Engine::new(&store).map_err(ExecError::Engine)?;
    let ctx = committed_context(&engine, &store, &manifests)
        .await
        .map_err(|(table, cause)| Error::Query {
            message: format!("cannot read committed table {table}"),
            cause,
        })?;
    let names = manifests
        .iter()
        .flat_map(|(stage, m)| m.tables.keys().map(move |t| format!("{stage}.{t}")))
        .collect();
    Ok((ctx, names))
}
