//! `weir check`: plan everything, run nothing; exit 2 on any error (for hooks and CI).

use clap::Args;

use super::{ScriptArgs, StoreArgs, target};
use crate::Result;
use crate::report::print_status;

#[derive(Debug, Args)]
pub struct CheckArgs {
    #[command(flatten)]
    pub script: ScriptArgs,
    #[command(flatten)]
    pub store: StoreArgs,
}

pub async fn check(args: CheckArgs) -> Result<()> {
    let loaded = target(&args.script, &args.store).load()?;
    let checked = crate::session::check(&loaded).await?;
    print_status(&checked.lines)?;
    match checked.failure() {
        Some(e) => Err(e),
        None => Ok(()),
    }
}
