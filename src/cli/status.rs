//! `weir status`: how each task stands against what is committed, and why; with `-v`, the
//! parts of each task's cache key and which of them changed.

use clap::Args;

use super::{ScriptArgs, StoreArgs, target};
use crate::config::CacheMode;
use crate::report::{StatusLine, key_parts, part_lines, print_status};
use crate::session::plan_all;
use crate::{Error, Result};

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
    #[command(flatten)]
    pub select: super::SelectArgs,
    /// Exit 1 when a shown task is not fresh (stale, never built, cleared, damaged): a
    /// completion check for scripts and CI, like `git diff --exit-code`. Volatile tasks, which
    /// re-run every time, do not count.
    #[arg(long)]
    pub exit_code: bool,
}

pub async fn status(args: StatusArgs) -> Result<()> {
    let loaded = target(&args.script, &args.store).load()?;
    let planned = plan_all(&loaded, args.cache_mode).await?;
    let selected = crate::flow::select::select(&planned.flow, &args.select.selection())?;
    let lines: Vec<StatusLine> = selected
        .iter()
        .map(|&i| {
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
            let detail = match planned.partitions(i) {
                Some(p) if state.detail.is_empty() => p,
                Some(p) => format!("{}; {p}", state.detail),
                None => state.detail,
            };
            StatusLine {
                task: planned.flow.tasks[i].id.to_string(),
                state: state.word.to_string(),
                detail,
                extra,
            }
        })
        .collect();
    print_status(&lines)?;
    // A volatile task is never fresh: counting it would make the check fail forever.
    let unfinished = lines
        .iter()
        .filter(|l| !matches!(l.state.as_str(), "fresh" | "volatile"))
        .count();
    if args.exit_code && unfinished > 0 {
        return Err(Error::NotFresh {
            unfinished,
            total: lines.len(),
        });
    }
    Ok(())
}
