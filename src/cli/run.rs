//! `weir run`: one run of the pipeline (see `session`), then its summary.

use std::sync::Arc;
use std::sync::atomic::{AtomicI32, Ordering};
use std::time::Duration;

use clap::Args;
use tokio::signal::unix::{SignalKind, signal};
use tokio_util::sync::CancellationToken;

use super::{ScriptArgs, StoreArgs, target};
use crate::config::CacheMode;
use crate::report::Verbosity;
use crate::report::note;
use crate::session::{self, RunOptions};
use crate::{Error, Result};

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
    /// Also print cached and skipped tasks, why each task ran and each SQL task's query;
    /// twice (`-vv`), also the physical plan of each task.
    #[arg(long, short = 'v', action = clap::ArgAction::Count)]
    pub verbose: u8,
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
}

impl RunFlags {
    pub fn options(&self) -> RunOptions {
        RunOptions {
            select: self.select.clone(),
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
        }
    }
}

pub async fn run(args: RunArgs) -> Result<()> {
    let loaded = target(&args.script, &args.store).load()?;
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
        Err(e) => return Err(signals.interrupted().unwrap_or(e)),
    };
    report.print_summary(args.verbose > 0)?;
    if let Some(interrupted) = signals.interrupted() {
        return Err(interrupted);
    }
    match report.failure() {
        Some(e) => Err(e),
        None => Ok(()),
    }
}

/// SIGINT and SIGTERM during a run: the first cancels it (running tasks stop, nothing more
/// commits, the run record is written and the lock released by the run itself); a second
/// exits at once, leaving the lock for the next run to recover.
struct Signals {
    /// The first signal's number, 0 before one came.
    received: Arc<AtomicI32>,
    listener: tokio::task::JoinHandle<()>,
}

impl Signals {
    /// Listening starts only now, after the script is evaluated: until then the default
    /// action (ending the process) is right, as nothing is held. The handlers are installed
    /// before this returns, so no signal in between ends the run uncleanly.
    fn listen(cancel: &CancellationToken) -> Self {
        let received = Arc::new(AtomicI32::new(0));
        let (Ok(mut int), Ok(mut term)) = (
            signal(SignalKind::interrupt()),
            signal(SignalKind::terminate()),
        ) else {
            tracing::warn!("cannot listen for Ctrl-C: it will end the run without cleanup");
            return Self {
                received,
                listener: tokio::spawn(async {}),
            };
        };
        let (cancel, got) = (cancel.clone(), received.clone());
        let listener = tokio::spawn(async move {
            loop {
                let number = tokio::select! {
                    Some(()) = int.recv() => libc::SIGINT,
                    Some(()) = term.recv() => libc::SIGTERM,
                    else => return,
                };
                if got.swap(number, Ordering::SeqCst) != 0 {
                    let code = Error::Interrupted { signal: number }.exit_code();
                    std::process::exit(i32::from(code));
                }
                note("interrupted: cancelling the run (again to stop at once)");
                cancel.cancel();
            }
        });
        Self { received, listener }
    }

    /// The error to end with, once a signal came.
    fn interrupted(&self) -> Option<Error> {
        match self.received.load(Ordering::SeqCst) {
            0 => None,
            signal => Some(Error::Interrupted { signal }),
        }
    }
}

impl Drop for Signals {
    fn drop(&mut self) {
        self.listener.abort();
    }
}
