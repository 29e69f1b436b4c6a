//! Command-line arguments and dispatch; one file per subcommand, each only wiring modules.

mod cache;
mod clear;
mod graph;
mod init;
mod read;
mod repl;
mod run;
mod runs;
mod status;
mod watch;
mod why;

use std::path::{Path, PathBuf};

use clap::{Args as ClapArgs, Parser, Subcommand};

use crate::config::{Config, Instance};
use crate::session::Loaded;
use crate::store::Store;
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
    /// Mark tasks (and with --downstream their dependents) to be rebuilt by the next run.
    Clear(clear::ClearArgs),
    /// Run, then re-run what is stale each time the script, a module, weir.toml or a loaded
    /// file is saved.
    Watch(watch::WatchArgs),
    /// The pipeline at a prompt: run, look at and redefine tasks, promote what is right.
    Repl(repl::ReplArgs),
    /// Which parts of a table's cache key changed since its committed build.
    Why(why::WhyArgs),
    /// The flow as a Mermaid, DOT or SVG drawing, tasks coloured by status.
    Graph(graph::GraphArgs),
    /// Recent runs, newest first: when, how long, and what each did.
    Runs(runs::RunsArgs),
    /// One run task by task: status, time, rows, bytes, errors (`last` or an id prefix).
    Log(runs::LogArgs),
    /// A new project that runs as is: a pipeline, sample data and a weir.toml.
    Init(init::InitArgs),
    /// Stored builds: list them, or delete those neither committed nor current (gc).
    Cache(cache::CacheArgs),
}

/// Where the store is, which instance of it, and the config that says so.
#[derive(Debug, Clone, ClapArgs)]
pub struct StoreArgs {
    /// Store URL or folder (default: from weir.toml, else `.weir` next to the script).
    #[arg(long, global = true, env = "WEIR_STORE")]
    pub store: Option<String>,
    /// Instance to use (default: weir.toml's default_instance, else `default`).
    #[arg(long, global = true, env = "WEIR_INSTANCE")]
    pub instance: Option<String>,
    /// Config file (default: weir.toml next to the script, if there is one).
    #[arg(long, global = true)]
    pub config: Option<PathBuf>,
}

impl StoreArgs {
    /// The config and the chosen instance, read before anything else so a bad one stops the
    /// command before it writes anything.
    fn instance(&self, script_dir: &Path) -> Result<(Config, Instance)> {
        let config = Config::load(script_dir, self.config.as_deref())?;
        let instance = config.instance(self.instance.as_deref())?;
        instance_name(&instance.name)?;
        Ok((config, instance))
    }

    /// `--store` (relative to where the command runs, like any path argument), else the
    /// instance's store from the config (relative to the config), else `.weir` next to the script.
    fn open(&self, script_dir: &Path, instance: &Instance) -> Result<Store> {
        let (spec, base) = match (&self.store, &instance.store) {
            (Some(spec), _) => (spec.clone(), PathBuf::from(".")),
            (None, Some((spec, base))) => (spec.clone(), base.clone()),
            (None, None) => (".weir".to_string(), script_dir.to_path_buf()),
        };
        Ok(Store::open(&spec, &base, &instance.id)?)
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
        Command::Clear(a) => clear::clear(a).await,
        Command::Watch(a) => watch::run(a).await,
        Command::Repl(a) => repl::run(a).await,
        Command::Why(a) => why::why(a).await,
        Command::Graph(a) => graph::graph(a).await,
        Command::Runs(a) => runs::runs(a).await,
        Command::Log(a) => runs::log(a).await,
        Command::Init(a) => init::init(a),
        Command::Cache(a) => cache::cache(a).await,
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

/// The instance lock for a command that is not a run (`clear`, `cache gc`), saying whom it
/// waits for when a run holds it.
async fn command_lock(
    store: &Store,
    name: &str,
    timeout_secs: u64,
) -> Result<crate::store::lock::Lock> {
    let printer = crate::report::Printer::new(name, crate::report::Verbosity::Normal);
    let lock = crate::store::lock::Lock::acquire(
        store,
        &crate::store::runs::new_run_id(),
        std::time::Duration::from_secs(timeout_secs),
        |h| printer.waiting_for_lock(h),
    )
    .await?;
    Ok(lock)
}

/// The folder of a script, absolute: where its default store, config and relative paths live.
fn script_dir(script: &Path) -> PathBuf {
    let path = std::path::absolute(script).unwrap_or_else(|_| script.to_path_buf());
    path.parent().map(Path::to_path_buf).unwrap_or_default()
}

/// Read the config, evaluate the script for the chosen instance and open its store.
fn load(script: &ScriptArgs, store: &StoreArgs) -> Result<Loaded> {
    load_with(script, store, "")
}

/// `load`, with code typed into the REPL evaluated after the script.
fn load_with(script: &ScriptArgs, store: &StoreArgs, extra: &str) -> Result<Loaded> {
    let dir = script_dir(&script.script);
    let (config, instance) = store.instance(&dir)?;
    let params = crate::script::Params::parse(&script.params)
        .map_err(|m| Error::usage(m, "e.g. --param day=2024-01-31"))?;
    let context = crate::script::Context {
        params,
        instance: instance.name.clone(),
        attrs: instance.attrs.clone(),
    };
    let script = crate::script::evaluate_with(&script.script, context, extra)?;
    let mut instances = std::collections::BTreeMap::new();
    for task in &script.tasks {
        let crate::script::TaskKind::Sample(spec) = &task.kind else {
            continue;
        };
        if spec.instance == instance.name {
            return Err(Error::usage(
                format!(
                    "{} samples from instance `{}`, the instance being run",
                    task.id(),
                    spec.instance
                ),
                "a sample reads another instance, e.g. `full` for mini; make the sample conditional on `instance` or attrs",
            ));
        }
        if !instances.contains_key(&spec.instance) {
            let source = config.instance(Some(&spec.instance))?;
            instances.insert(spec.instance.clone(), store.open(&script.dir, &source)?);
        }
    }
    let store = store.open(&script.dir, &instance)?;
    Ok(Loaded {
        instance,
        script,
        store,
        instances,
    })
}

#[cfg(test)]
mod tests {
    /// clap checks its definitions only when a command is parsed in a debug build; check
    /// every subcommand here so a bad one cannot ship.
    #[test]
    fn command_line_definitions_are_consistent() {
        use clap::CommandFactory;
        super::Args::command().debug_assert();
    }
}
