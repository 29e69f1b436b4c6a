//! Command-line arguments and dispatch; one file per subcommand, each only wiring modules.

mod read;
mod run;
mod status;

use std::path::PathBuf;

use clap::{Args as ClapArgs, Parser, Subcommand};

use crate::{Error, Result};

#[derive(Debug, Parser)]
#[command(
    name = "weir",
    version,
    about = "Data pipelines as Rhai scripts, evaluated with DataFusion, stored as Parquet"
)]
pub struct Args {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Build stale tasks, commit stages, print a summary.
    Run(run::RunArgs),
    /// Show each task as fresh, stale (and why) or never built.
    Status(status::StatusArgs),
    /// Print rows of a committed table.
    Show(read::ShowArgs),
    /// Query committed tables with SQL (tables are `stage.table`).
    Sql(read::SqlArgs),
}

/// Where the store is and which instance of it.
#[derive(Debug, Clone, ClapArgs)]
pub struct StoreArgs {
    /// Store URL or folder (default: `.weir` next to the script).
    #[arg(long, global = true, env = "WEIR_STORE")]
    pub store: Option<String>,
    /// Instance to use; instances never share data.
    #[arg(long, global = true, default_value = "default")]
    pub instance: String,
}

/// The script and its parameters.
#[derive(Debug, Clone, ClapArgs)]
pub struct ScriptArgs {
    /// Pipeline script.
    #[arg(default_value = "pipeline.rhai")]
    pub script: PathBuf,
    /// A script parameter, `name=value` (int, float, bool or string); repeatable.
    #[arg(long = "param", short = 'p', value_name = "NAME=VALUE")]
    pub params: Vec<String>,
}

pub async fn run(args: Args) -> Result<()> {
    match args.command {
        Command::Run(a) => run::run(a).await,
        Command::Status(a) => status::status(a).await,
        Command::Show(a) => read::show(a).await,
        Command::Sql(a) => read::sql(a).await,
    }
}

fn instance_name(name: &str) -> Result<&str> {
    if crate::script::is_identifier(name) {
        Ok(name)
    } else {
        Err(Error::usage(
            format!("instance name `{name}` is not an identifier"),
            "use letters, digits and _",
        ))
    }
}

/// Evaluate the script and open its store: the common start of run and status.
fn load(
    script: &ScriptArgs,
    store: &StoreArgs,
) -> Result<(crate::script::Script, crate::store::Store)> {
    let params = crate::script::Params::parse(&script.params)
        .map_err(|m| Error::usage(m, "e.g. --param day=2024-01-31"))?;
    let script = crate::script::evaluate(&script.script, params)?;
    let store_spec = store.store.clone().unwrap_or_else(|| ".weir".to_string());
    let store =
        crate::store::Store::open(&store_spec, &script.dir, instance_name(&store.instance)?)?;
    Ok((script, store))
}
