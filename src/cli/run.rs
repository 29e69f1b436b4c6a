//! `weir run`: one run of the pipeline (see `session`), then its summary.

use std::time::Duration;

use clap::Args;
use tokio_util::sync::CancellationToken;

use super::signals::Signals;
use super::{ScriptArgs, StoreArgs, target};
use crate::Result;
use crate::config::CacheMode;
use crate::report::{StatusLine, Verbosity, print_dry_run};
use crate::session::hooks::Ended;
use crate::session::{self, RunOptions};

#[derive(Debug, Args)]
pub struct RunArgs {
    #[command(flatten)]
    pub script: ScriptArgs,
    #[command(flatten)]
    pub store: StoreArgs,
    #[command(flatten)]
    pub run: RunFlags,
    /// Plan the run and print what it would do (`would run`, `would reuse`), as a run's
    /// summary; nothing is run, written or committed, and no lock is taken.
    #[arg(long)]
    pub dry_run: bool,
    /// Print only the summary.
    #[arg(long, short = 'q', conflicts_with = "verbose")]
    pub quiet: bool,
    /// Also print cached and skipped tasks, why each task ran and each SQL task's query;
    /// twice (`-vv`), also the physical plan of each task.
    #[arg(long, short = 'v', action = clap::ArgAction::Count)]
    pub verbose: u8,
}

/// How to run: shared by `run` and `watch`.
#[derive(Debug, Clone, Args)]
pub struct RunFlags {
    #[command(flatten)]
    pub select: super::SelectArgs,
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
    /// Where SQL tasks and loads run: `local`, `ballista://HOST:PORT` (a Ballista cluster's
    /// scheduler) or `ballista://standalone` (one started in this process); default: weir.toml's
    /// `[engine] url`, else local. Needs a weir built with `--features ballista`.
    #[arg(long, value_name = "URL", value_parser = crate::config::EngineUrl::parse)]
    pub engine: Option<crate::config::EngineUrl>,
    /// After a failure, go on with tasks that do not depend on it.
    #[arg(long)]
    pub keep_going: bool,
    /// Take over tables committed by another flow of the same store (e.g. this script before
    /// it was renamed).
    #[arg(long)]
    pub adopt: bool,
    /// Seconds to wait for another run of the same instance to finish.
    #[arg(long, default_value_t = 600)]
    pub lock_timeout: u64,
    /// Compute only these partitions of partitioned tasks: `day=2026-12-01`, `day=a,b` or a
    /// range `day=2026-11-01..2026-11-30` (with --force: compute them anew, a backfill).
    /// Partitions left out stay as they were, and their tables stale until a run computes them.
    #[arg(long, value_name = "COLUMN=VALUES", value_parser = crate::flow::partitions::PartitionRange::parse)]
    pub partition: Option<crate::flow::partitions::PartitionRange>,
}

impl RunFlags {
    pub fn options(&self) -> RunOptions {
        RunOptions {
            selection: self.select.selection(),
            force: self.force,
            cache_mode: self.cache_mode,
            jobs: self.jobs,
            memory_limit: self.memory_limit,
            engine: self.engine.clone(),
            adopt: self.adopt,
            keep_going: self.keep_going,
            lock_timeout: Duration::from_secs(self.lock_timeout),
            hold: Default::default(),
            verbosity: Verbosity::Normal,
            interactive: false,
            partitions: self.partition.clone(),
        }
    }
}

pub async fn run(args: RunArgs) -> Result<()> {
    let loaded = target(&args.script, &args.store).load()?;
    if args.dry_run {
        return dry_run(&loaded, &args.run).await;
    }
    let mut opts = args.run.options();
    opts.verbosity = match (args.quiet, args.verbose) {
        (true, _) => Verbosity::Quiet,
        (false, 0) => Verbosity::Normal,
        (false, 1) => Verbosity::Verbose,
        (false, _) => Verbosity::Plans,
    };
    let cancel = CancellationToken::new();
    let signals = Signals::listen(&cancel);
    let report = match session::run(&loaded, &opts, &cancel).await {
        Ok(report) => report,
        Err(e) => {
            let e = signals.interrupted().unwrap_or(e);
            hook(&loaded, Ended::Refused(&e)).await;
            return Err(e);
        }
    };
    report.print_summary(args.verbose > 0)?;
    hook(&loaded, Ended::Ran(&report)).await;
    if let Some(interrupted) = signals.interrupted() {
        return Err(interrupted);
    }
    match report.failure() {
        Some(e) => Err(e),
        None => Ok(()),
    }
}

/// `weir run --dry-run`: the plan a run would start from, task by task.
async fn dry_run(loaded: &crate::session::Loaded, flags: &RunFlags) -> Result<()> {
    let planned = session::plan_selected(
        loaded,
        &flags.select.selection(),
        flags.force,
        flags.cache_mode,
    )
    .await?;
    let lines: Vec<StatusLine> = (0..planned.flow.tasks.len())
        .map(|i| {
            let would = planned.would(i);
            StatusLine {
                task: planned.flow.tasks[i].id.to_string(),
                state: would.word.to_string(),
                detail: would.detail,
                extra: Vec::new(),
            }
        })
        .collect();
    print_dry_run(&lines)?;
    Ok(())
}

/// The instance's hook for how the run ended; a hook that fails is said, not fatal.
async fn hook(loaded: &crate::session::Loaded, ended: Ended<'_>) {
    if let Some(problem) = session::hooks::after_run(loaded, ended).await {
        crate::report::note(&format!("warning: {problem}"));
    }
}
