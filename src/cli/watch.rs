//! `weir watch [SCRIPT]`: run, then re-run what is stale on every save.

use clap::Args;

use super::run::RunFlags;
use super::{ScriptArgs, StoreArgs, target};
use crate::Result;
use crate::watch::{WatchOptions, watch};

#[derive(Debug, Args)]
pub struct WatchArgs {
    #[command(flatten)]
    pub script: ScriptArgs,
    #[command(flatten)]
    pub store: StoreArgs,
    #[command(flatten)]
    pub run: RunFlags,
    /// Rows shown of each table whose content changed.
    #[arg(long, default_value_t = 5)]
    pub preview: usize,
    /// Print only summaries and changes, not each task.
    #[arg(long, short = 'q')]
    pub quiet: bool,
}

pub async fn run(args: WatchArgs) -> Result<()> {
    let mut run = args.run.options();
    if args.quiet {
        run.verbosity = crate::report::Verbosity::Quiet;
    }
    let opts = WatchOptions {
        run,
        quiet: args.quiet,
        preview_rows: args.preview,
    };
    watch(&target(&args.script, &args.store), opts).await
}
