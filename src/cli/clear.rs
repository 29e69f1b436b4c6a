//! `weir clear TASK [--downstream]`: mark tasks to be rebuilt by the next run. Nothing is
//! deleted: readers see the committed tables until the rebuild commits.

use std::collections::BTreeSet;

use clap::Args;

use super::{ScriptArgs, StoreArgs, load};
use crate::Result;
use crate::flow::{Flow, select::select};

#[derive(Debug, Args)]
pub struct ClearArgs {
    /// Tasks to clear: `prep.x`, `stage:prep`, several separated by commas (as `--select`).
    pub tasks: String,
    /// Also clear every task downstream of them.
    #[arg(long, short = 'd')]
    pub downstream: bool,
    #[command(flatten)]
    pub script: ScriptArgs,
    #[command(flatten)]
    pub store: StoreArgs,
    /// Seconds to wait for a run of the same instance to finish.
    #[arg(long, default_value_t = 600)]
    pub lock_timeout: u64,
}

pub async fn clear(args: ClearArgs) -> Result<()> {
    let loaded = load(&args.script, &args.store)?;
    let flow = Flow::build(&loaded.script)?;
    let selectors: Vec<String> = args
        .tasks
        .split(',')
        .map(str::trim)
        .map(|t| match args.downstream && !t.ends_with('+') {
            true => format!("{t}+"),
            false => t.to_string(),
        })
        .collect();
    let chosen = select(&flow, &selectors)?;
    let ids: BTreeSet<String> = chosen
        .iter()
        .map(|&i| flow.tasks[i].id.to_string())
        .collect();
    let store = &loaded.store;
    let lock = super::command_lock(store, "clear", args.lock_timeout).await?;
    let marked = store.clear(&ids).await;
    lock.release().await?;
    marked?;
    for id in &ids {
        println!("cleared {id}");
    }
    println!("the next run rebuilds {} task(s)", ids.len());
    Ok(())
}
