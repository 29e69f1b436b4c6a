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

impl StoreArgs {
    /// The store to open and the folder a relative path in it is resolved against: a store given
    /// on the command line is relative to where the command runs, like any path argument; the
    /// default `.weir` lives next to the script, wherever the command runs from.
    fn location(&self, script_dir: &std::path::Path) -> (String, PathBuf) {
        match &self.store {
            Some(spec) => (spec.clone(), PathBuf::from(".")),
            None => (".weir".to_string(), script_dir.to_path_buf()),
        }
    }

    fn open(&self, script_dir: &std::path::Path) -> Result<crate::store::Store> {
        let (spec, base) = self.location(script_dir);
        Ok(crate::store::Store::open(
            &spec,
            &base,
            instance_name(&self.instance)?,
        )?)
    }
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
    let store = store.open(&script.dir)?;
    Ok((script, store))
}
