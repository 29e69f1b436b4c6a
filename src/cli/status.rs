//! `weir status`: how each task stands against what is committed, and why; with `-v`, the
//! parts of each task's cache key and which of them changed.

use clap::Args;

use super::{ScriptArgs, StoreArgs, target};
use crate::Result;
use crate::config::CacheMode;
use crate::report::{StatusLine, key_parts, part_lines, print_status};
use crate::session::plan_all;

#[derive(Debug, Args)]
pub struct StatusArgs {
    #[command(flatten)]
    pub script: ScriptArgs,
    #[command(flatten)]
    pub store: StoreArgs,
    /// Also print each task's cache key, its parts, and which of them changed.
    #[arg(long, short = 'v')]
    pub verbose: bool,
    /// How outside inputs count (default: the instance's `cache_mode`, else normal).
    #[arg(long, value_enum)]
    pub cache_mode: Option<CacheMode>,
}

pub async fn status(args: StatusArgs) -> Result<()> {
    let loaded = target(&args.script, &args.store).load()?;
    let planned = plan_all(&loaded, args.cache_mode).await?;
    let lines: Vec<StatusLine> = (0..planned.flow.tasks.len())
        .map(|i| {
            let state = planned.state(i);
            let extra = match args.verbose {
                true => {
                    let step = &planned.plan.steps[i];
                    let then = planned.committed(i).map(|b| &b.parts);
                    let parts = key_parts(&step.parts, then, &planned.input_notes(i));
                    let mut lines = vec![format!("    key {}", step.key)];
                    lines.extend(part_lines(&parts, "    "));
                    lines
                }
                false => Vec::new(),
            };
            StatusLine {
                task: planned.flow.tasks[i].id.to_string(),
                state: state.word.to_string(),
                detail: state.detail,
                extra,
            }
        })
        .collect();
    print_status(&lines)?;
    Ok(())
}
