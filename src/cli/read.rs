//! `weir show` and `weir sql`: read committed tables, never uncommitted builds.

use std::path::PathBuf;

use clap::Args;

use super::StoreArgs;
use crate::Result;
use crate::report::{OutputFormat, print_batches};
use crate::session::Reader;

#[derive(Debug, Args)]
pub struct ShowArgs {
    /// `stage.table`
    pub table: String,
    #[arg(long, short = 'n', default_value_t = 20)]
    pub limit: usize,
    /// Print the table's columns, primary key and data checks instead of its rows.
    #[arg(long)]
    pub schema: bool,
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
    /// The pipeline script whose store and weir.toml to use (default: pipeline.rhai).
    #[arg(value_name = "SCRIPT")]
    pub script_arg: Option<PathBuf>,
    #[command(flatten)]
    pub store: StoreArgs,
    /// The same as SCRIPT, as a flag.
    #[arg(long, conflicts_with = "script_arg")]
    pub script: Option<PathBuf>,
    #[arg(long, short = 'f', value_enum, default_value = "table")]
    pub format: OutputFormat,
    /// Memory the query may hold before it spills to disk (`2GiB`, `512MiB`; default: weir.toml's
    /// `[engine] memory_limit`, else half of the machine's memory).
    #[arg(long, value_name = "SIZE", value_parser = crate::config::parse_size)]
    pub memory_limit: Option<u64>,
    /// Read the tables as committed at the end of a run: its id (or the start of one), `last`,
    /// `last~N` (N runs before the last), or a time (`2026-12-01T09:30:00Z`, `2026-12-01`):
    /// the last run that had ended by then.
    #[arg(long, value_name = "RUN")]
    pub as_of: Option<String>,
}

impl ReadArgs {
    fn script(&self) -> PathBuf {
        self.script_arg
            .clone()
            .or_else(|| self.script.clone())
            .unwrap_or_else(|| PathBuf::from("pipeline.rhai"))
    }
}

pub async fn show(args: ShowArgs) -> Result<()> {
    let reader = open(&args.read).await?;
    let table = reader.committed(&args.table)?;
    if args.schema
        && let Some(build) = reader.build(&table)
    {
        return Ok(crate::report::print_schema(build)?);
    }
    let rows = reader.head(&table, args.limit).await?;
    Ok(print_batches(&rows, args.read.format)?)
}

pub async fn sql(args: SqlArgs) -> Result<()> {
    let target = args.read.store.target(&args.read.script());
    let (store, engine) = target.engine(args.read.memory_limit)?;
    let reader = Reader::open_as_of(&store, &engine, args.read.as_of.as_deref()).await?;
    // UDFs are declared by the script: it is evaluated only for a query that calls a function
    // SQL does not have, so `weir sql` works beside a script that does not evaluate.
    if target.script.exists() && reader.calls_unknown_function(&args.query).await {
        reader.add_udfs(&target.load()?.script)?;
    }
    let rows = reader.query(&args.query).await?;
    Ok(print_batches(&rows, args.read.format)?)
}

async fn open(args: &ReadArgs) -> Result<Reader> {
    let target = args.store.target(&args.script());
    let (store, engine) = target.engine(args.memory_limit)?;
    Reader::open_as_of(&store, &engine, args.as_of.as_deref()).await
}
