//! `weir rollback RUN`: the stages as an earlier run left them, committed again.

use std::time::Duration;

use clap::Args;

use super::{ScriptArgs, StoreArgs, target};
use crate::Result;
use crate::report::{Printer, Verbosity, print_rollback};
use crate::session::{RollbackOptions, rollback as roll_back};

#[derive(Debug, Args)]
pub struct RollbackArgs {
    /// The run whose committed tables to commit again: its id (or the start of one), `last~N`,
    /// or a time (the last run that had ended by then).
    pub run: String,
    #[command(flatten)]
    pub script: ScriptArgs,
    #[command(flatten)]
    pub store: StoreArgs,
    /// Only this stage (repeatable); stages that read it are left as they are, with a warning.
    #[arg(long, value_name = "STAGE")]
    pub stage: Vec<String>,
    /// Seconds to wait for a run of the same instance to finish.
    #[arg(long, default_value_t = 600)]
    pub lock_timeout: u64,
}

pub async fn rollback(args: RollbackArgs) -> Result<()> {
    let target = target(&args.script, &args.store);
    let store = target.store()?;
    let opts = RollbackOptions {
        to: args.run,
        stages: args.stage,
        lock_timeout: Duration::from_secs(args.lock_timeout),
        script: std::path::absolute(&args.script.script)
            .unwrap_or(args.script.script.clone())
            .display()
            .to_string(),
    };
    let printer = Printer::new("rollback", Verbosity::Normal);
    let done = roll_back(&store, &opts, |h| printer.waiting_for_lock(h)).await?;
    Ok(print_rollback(&done)?)
}
