//! `weir clear TASK [--downstream]`: mark tasks to be rebuilt by the next run (see `session`).

use std::time::Duration;

use clap::Args;

use super::{ScriptArgs, StoreArgs, target};
use crate::Result;
use crate::flow::select::Selection;
use crate::report::{Printer, Verbosity, print_cleared};

#[derive(Debug, Args)]
pub struct ClearArgs {
    /// Tasks to clear: `prep.x`, `stage:prep`, `tag:nightly`, `prep.x+`, ...; several separated by
    /// commas or spaces add up (a list of tasks, unlike `--select`'s commas, which intersect).
    pub tasks: String,
    /// Leave out what these selectors select.
    #[arg(long, value_name = "SEL")]
    pub exclude: Vec<String>,
    /// Also clear every task downstream of them.
    #[arg(long, short = 'd')]
    pub downstream: bool,
    /// Only these partitions of the tasks partitioned by the column (`day=2026-12-01`, `day=a,b`,
    /// `day=FROM..TO`): the next run computes them again; other tasks are cleared whole.
    #[arg(long, value_name = "COLUMN=VALUES", value_parser = crate::flow::partitions::PartitionRange::parse)]
    pub partition: Option<crate::flow::partitions::PartitionRange>,
    #[command(flatten)]
    pub script: ScriptArgs,
    #[command(flatten)]
    pub store: StoreArgs,
    /// Seconds to wait for a run of the same instance to finish.
    #[arg(long, default_value_t = 600)]
    pub lock_timeout: u64,
}

pub async fn clear(args: ClearArgs) -> Result<()> {
    let loaded = target(&args.script, &args.store).load()?;
    let tasks = args.tasks.replace(',', " ");
    let selection = Selection::new(vec![tasks], args.exclude.clone());
    let printer = Printer::new("clear", Verbosity::Normal);
    let ids = crate::session::clear(
        &loaded,
        &selection,
        args.downstream,
        args.partition.as_ref(),
        Duration::from_secs(args.lock_timeout),
        |h| printer.waiting_for_lock(h),
    )
    .await?;
    print_cleared(&ids)?;
    Ok(())
}
