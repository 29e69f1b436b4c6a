//! `weir repl [SCRIPT]`: the pipeline at a prompt (see `repl`).

use clap::Args;

use super::run::RunFlags;
use super::{ScriptArgs, StoreArgs, load_with};
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
    let opts = args.run.options();
    let (script, store) = (args.script, args.store);
    let loader = Box::new(move |extra: &str| load_with(&script, &store, extra));
    crate::repl::repl(loader, opts).await
}
