//! `weir run`: one run of the pipeline (see `session`), then its summary.

use std::time::Duration;

use clap::Args;
use tokio_util::sync::CancellationToken;

use super::{ScriptArgs, StoreArgs, target};
use crate::Result;
use crate::config::CacheMode;
use crate::report::Verbosity;
use crate::session::{self, RunOptions};

#[derive(Debug, Args)]
pub struct RunArgs {
    #[command(flatten)]
    pub script: ScriptArgs,
    #[command(flatten)]
    pub store: StoreArgs,
    #[command(flatten)]
    pub run: RunFlags,
    /// Print only the summary.
    #[arg(long, short = 'q', conflicts_with = "verbose")]
    pub quiet: bool,
    /// Also print cached and skipped tasks, and why each task ran.
    #[arg(long, short = 'v')]
    pub verbose: bool,
}

/// How to run: shared by `run` and `watch`.
#[derive(Debug, Clone, Args)]
pub struct RunFlags {
    /// Tasks to run: `prep.x`, `prep.x+` (and downstream), `+prep.x` (and upstream), `stage:prep`.
    #[arg(long, short = 's')]
    pub select: Vec<String>,
    /// Rebuild the selected tasks even when a build for their key is stored.
    #[arg(long)]
    pub force: bool,
    /// How outside inputs (files, `cache` tokens) count: normal, ignore-fresh-input,
    /// force-fresh-input, assert-no-fresh-input, force-cache-invalid (default: the
    /// instance's `cache_mode`, else normal).
    #[arg(long, value_enum)]
    pub cache_mode: Option<CacheMode>,
    /// Tasks run at once (default: the number of cores).
    #[arg(long, short = 'j')]
    pub jobs: Option<usize>,
    /// Memory the run's queries may hold together before they spill to disk (`2GiB`, `512MiB`;
    /// default: weir.toml's `[engine] memory_limit`, else half of the machine's memory).
    #[arg(long, value_name = "SIZE", value_parser = crate::config::parse_size)]
    pub memory_limit: Option<u64>,
    /// After a failure, go on with tasks that do not depend on it.
    #[arg(long)]
    pub keep_going: bool,
    /// Seconds to wait for another run of the same instance to finish.
    #[arg(long, default_value_t = 600)]
    pub lock_timeout: u64,
}

impl RunFlags {
    pub fn options(&self) -> RunOptions {
        RunOptions {
            select: self.select.clone(),
            force: self.force,
            cache_mode: self.cache_mode,
            jobs: self.jobs,
            memory_limit: self.memory_limit,
            keep_going: self.keep_going,
            lock_timeout: Duration::from_secs(self.lock_timeout),
            hold: Default::default(),
            verbosity: Verbosity::Normal,
            interactive: false,
        }
    }
}

pub async fn run(args: RunArgs) -> Result<()> {
    let loaded = target(&args.script, &args.store).load()?;
    let mut opts = args.run.options();
    opts.verbosity = match (args.quiet, args.verbose) {
        (true, _) => Verbosity::Quiet,
        (false, true) => Verbosity::Verbose,
        (false, false) => Verbosity::Normal,
    };
    let cancel = CancellationToken::new();
    let report = session::run(&loaded, &opts, &cancel).await?;
    report.print_summary(args.verbose)?;
    match report.failure() {
        Some(e) => Err(e),
        None => Ok(()),
    }
}
