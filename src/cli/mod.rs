//! Command-line arguments and dispatch; one file per subcommand, each only wiring modules.

mod cache;
mod check;
mod clear;
mod graph;
mod init;
mod read;
mod repl;
mod rollback;
mod run;
mod runs;
mod serve;
mod signals;
mod status;
mod test;
mod watch;
mod why;

use std::path::{Path, PathBuf};

use clap::{Args as ClapArgs, Parser, Subcommand};

use crate::Result;
use crate::session::Target;

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
    /// Plan every task and data check without running anything or writing to the store;
    /// report every error at once (exit 2): for pre-commit hooks and CI.
    Check(check::CheckArgs),
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
    /// Commit again what an earlier run left committed (every stage, or --stage S), computing
    /// nothing: undo a bad deploy in seconds.
    Rollback(rollback::RollbackArgs),
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
    /// Run the unit tests of tasks: each on the rows it gives, against what it expects.
    Test(test::TestArgs),
    /// The pipeline as a web page: the flow live, tasks and why, runs, the catalog and SQL.
    Serve(serve::ServeArgs),
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

/// `--select` and `--exclude`, as every command that narrows the flow takes them.
#[derive(Debug, Clone, ClapArgs)]
pub struct SelectArgs {
    /// Tasks: `prep.x`, `prep.x+` (and downstream), `+prep.x` (and upstream), `stage:prep`,
    /// `tag:nightly`; selectors separated by spaces (or repeated) add up, joined by commas
    /// intersect.
    #[arg(long, short = 's', value_name = "SEL")]
    pub select: Vec<String>,
    /// Leave out what these selectors select (same syntax as --select).
    #[arg(long, value_name = "SEL")]
    pub exclude: Vec<String>,
}

impl SelectArgs {
    pub fn selection(&self) -> crate::flow::select::Selection {
        crate::flow::select::Selection::new(self.select.clone(), self.exclude.clone())
    }
}

pub async fn run(args: Args) -> Result<()> {
    match args.command {
        Command::Run(a) => run::run(a).await,
        Command::Status(a) => status::status(a).await,
        Command::Check(a) => check::check(a).await,
        Command::Show(a) => read::show(a).await,
        Command::Sql(a) => read::sql(a).await,
        Command::Clear(a) => clear::clear(a).await,
        Command::Watch(a) => watch::run(a).await,
        Command::Repl(a) => repl::run(a).await,
        Command::Why(a) => why::why(a).await,
        Command::Rollback(a) => rollback::rollback(a).await,
        Command::Graph(a) => graph::graph(a).await,
        Command::Runs(a) => runs::runs(a).await,
        Command::Log(a) => runs::log(a).await,
        Command::Init(a) => init::init(a),
        Command::Cache(a) => cache::cache(a).await,
        Command::Test(a) => test::test(a).await,
        Command::Serve(a) => serve::serve(a).await,
    }
}

/// What a command names: the script, its parameters and its store.
fn target(script: &ScriptArgs, store: &StoreArgs) -> Target {
    Target {
        script: script.script.clone(),
        params: script.params.clone(),
        ..store.target(&script.script)
    }
}

impl StoreArgs {
    /// The store of the script at `script`, without its parameters (commands that only read).
    fn target(&self, script: &Path) -> Target {
        Target {
            script: script.to_path_buf(),
            params: Vec::new(),
            store: self.store.clone(),
            instance: self.instance.clone(),
            config: self.config.clone(),
        }
    }
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
