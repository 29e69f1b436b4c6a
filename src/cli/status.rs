//! `weir status`: how each task stands against what is committed, and why.

use std::collections::BTreeSet;

use clap::Args;

use super::{ScriptArgs, StoreArgs, load};
use crate::Result;
use crate::config::CacheMode;
use crate::exec;
use crate::flow::Flow;
use crate::flow::plan::{Freshness, PlanOptions, plan};
use crate::report::{StatusLine, print_status};

#[derive(Debug, Args)]
pub struct StatusArgs {
    #[command(flatten)]
    pub script: ScriptArgs,
    #[command(flatten)]
    pub store: StoreArgs,
    /// Also print each task's cache key.
    #[arg(long, short = 'v')]
    pub verbose: bool,
    /// How outside inputs count (default: the instance's `cache_mode`, else normal).
    #[arg(long, value_enum)]
    pub cache_mode: Option<CacheMode>,
}

pub async fn status(args: StatusArgs) -> Result<()> {
    let crate::session::Loaded {
        instance,
        script,
        store,
        instances,
    } = load(&args.script, &args.store)?;
    let flow = Flow::build(&script)?;
    let engine = exec::Engine::new(&store).map_err(exec::ExecError::Engine)?;
    let all: BTreeSet<usize> = (0..flow.tasks.len()).collect();
    let opts = PlanOptions {
        selected: &all,
        force: false,
        script_dir: &script.dir,
        cache_mode: args.cache_mode.unwrap_or(instance.cache_mode),
        instances: &instances,
        cleared: &store.read_cleared().await?,
    };
    let plan = plan(&flow, &store, &engine.state(None), opts).await?;
    let tainted = store.read_tainted().await?;
    let lines: Vec<StatusLine> = flow
        .tasks
        .iter()
        .zip(&plan.steps)
        .map(|(task, step)| {
            let id = task.id.to_string();
            let committed_key = task.outputs().next().and_then(|o| {
                plan.manifests
                    .get(&o.stage)
                    .and_then(|m| m.tables.get(&o.table))
                    .map(|b| b.key.clone())
            });
            let promoted = tainted
                .get(&id)
                .is_some_and(|k| Some(k) == committed_key.as_ref());
            let (state, detail) = match &step.freshness {
                _ if promoted => (
                    "tainted",
                    "promoted from the REPL; the next run rebuilds it from the script".to_string(),
                ),
                Freshness::Fresh => ("fresh", String::new()),
                Freshness::Stale(why) => ("stale", why.join(", ")),
                Freshness::Uncommitted => (
                    "stale",
                    "built, not committed: the next run commits it".to_string(),
                ),
                Freshness::Never => ("never built", String::new()),
                Freshness::Cleared => ("cleared", "the next run rebuilds it".to_string()),
            };
            let detail = if args.verbose {
                let key = format!("key {}", step.key);
                if detail.is_empty() {
                    key
                } else {
                    format!("{detail}; {key}")
                }
            } else {
                detail
            };
            StatusLine {
                task: id,
                state: state.to_string(),
                detail,
            }
        })
        .collect();
    print_status(&lines)?;
    Ok(())
}
