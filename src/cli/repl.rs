//! `weir repl [SCRIPT]`: the pipeline at a prompt (see `repl`).

use clap::Args;

use super::run::RunFlags;
use super::{ScriptArgs, StoreArgs, target};
use crate::Result;

#[derive(Debug, Args)]
pub struct ReplArgs {
    #[command(flatten)]
    pub script: ScriptArgs,
    #[command(flatten)]
    pub store: StoreArgs,
    #[command(flatten)]
    pub run: RunFlags,
}

pub async fn run(args: ReplArgs) -> Result<()> {
    crate::repl::repl(target(&args.script, &args.store), args.run.options()).await
}
