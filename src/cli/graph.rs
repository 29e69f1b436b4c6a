//! `weir graph`: the flow drawn as Mermaid, DOT or SVG, each task coloured by its status.

use std::collections::BTreeSet;
use std::path::PathBuf;

use clap::Args;

use super::{ScriptArgs, StoreArgs, target};
use crate::config::CacheMode;
use crate::flow::plan::Freshness;
use crate::report::{Graph, GraphFormat, Node, NodeState, render_graph, stdout_text};
use crate::session::{Planned, plan_all};
use crate::store::Store;
use crate::{Error, Result};

#[derive(Debug, Args)]
pub struct GraphArgs {
    #[command(flatten)]
    pub script: ScriptArgs,
    #[command(flatten)]
    pub store: StoreArgs,
    /// mermaid (the default), dot or svg; with -o, taken from the file's extension.
    #[arg(long, short = 'f', value_enum)]
    pub format: Option<GraphFormat>,
    /// Write to this file instead of stdout.
    #[arg(long, short = 'o')]
    pub output: Option<PathBuf>,
    /// How outside inputs count (default: the instance's `cache_mode`, else normal).
    #[arg(long, value_enum)]
    pub cache_mode: Option<CacheMode>,
    /// Draw only these tasks (and the edges between them).
    #[command(flatten)]
    pub select: super::SelectArgs,
}

pub async fn graph(args: GraphArgs) -> Result<()> {
    let format = format(args.format, args.output.as_deref())?;
    let loaded = target(&args.script, &args.store).load()?;
    let planned = plan_all(&loaded, args.cache_mode).await?;
    let failed = failed_last_run(&loaded.store).await?;
    let selected = crate::flow::select::select(&planned.flow, &args.select.selection())?;
    let graph = build(&planned, &failed, &selected);
    let Some(text) = render_graph(&graph, format) else {
        return Err(Error::usage(
            "cannot lay out this flow as SVG",
            "draw it with -f dot (Graphviz) or -f mermaid instead",
        ));
    };
    let text = crate::config::secrets::redact(&text);
    match &args.output {
        Some(path) => std::fs::write(path, text.as_bytes()).map_err(|e| {
            Error::usage(
                format!("cannot write {}: {e}", path.display()),
                "check that its folder exists and can be written",
            )
        }),
        None => Ok(stdout_text(text.as_bytes())?),
    }
}

/// The format asked for, else the output file's (`flow.svg`, `flow.dot`, `flow.mmd`), else
/// Mermaid; a format that differs from the file's extension is refused.
fn format(asked: Option<GraphFormat>, output: Option<&std::path::Path>) -> Result<GraphFormat> {
    let ext = output
        .and_then(|p| p.extension())
        .map(|e| e.to_string_lossy().to_ascii_lowercase());
    let by_ext = match ext.as_deref() {
        Some("svg") => Some(GraphFormat::Svg),
        Some("dot" | "gv") => Some(GraphFormat::Dot),
        Some("mmd" | "mermaid") => Some(GraphFormat::Mermaid),
        _ => None,
    };
    match (asked, by_ext) {
        (Some(a), Some(e)) if a != e => Err(Error::usage(
            format!(
                "-f {} does not match the file's extension .{}",
                name(a),
                ext.unwrap_or_default()
            ),
            format!(
                "drop -f to write {}, or name the file for the format",
                name(e)
            ),
        )),
        (Some(a), _) => Ok(a),
        (None, e) => Ok(e.unwrap_or(GraphFormat::Mermaid)),
    }
}

fn name(f: GraphFormat) -> &'static str {
    match f {
        GraphFormat::Mermaid => "mermaid",
        GraphFormat::Dot => "dot",
        GraphFormat::Svg => "svg",
    }
}

/// The tasks the newest run record says failed.
async fn failed_last_run(store: &Store) -> Result<Vec<String>> {
    let Some(last) = store.run_ids().await?.into_iter().next() else {
        return Ok(Vec::new());
    };
    let Some(record) = store.read_run(&last).await? else {
        return Ok(Vec::new());
    };
    Ok(record
        .tasks
        .into_iter()
        .filter(|t| t.status == "failed")
        .map(|t| t.task)
        .collect())
}

fn build(planned: &Planned, failed: &[String], selected: &BTreeSet<usize>) -> Graph {
    let flow = &planned.flow;
    // Node numbers in the drawing: the selected tasks', in flow order.
    let drawn: Vec<usize> = selected.iter().copied().collect();
    let nodes = drawn
        .iter()
        .map(|&i| node(&flow.tasks[i], &planned.plan.steps[i], failed))
        .collect();
    let at = |i: &usize| drawn.binary_search(i).ok();
    let edges = drawn
        .iter()
        .enumerate()
        .flat_map(|(n, &i)| {
            flow.tasks[i]
                .deps
                .iter()
                .filter_map(at)
                .map(move |d| (d, n))
        })
        .collect();
    let stages = flow
        .stages()
        .into_iter()
        .filter(|s| drawn.iter().any(|&i| &flow.tasks[i].decl.stage == s))
        .collect();
    Graph {
        stages,
        nodes,
        edges,
    }
}

fn node(task: &crate::flow::Task, step: &crate::flow::plan::Step, failed: &[String]) -> Node {
    let id = task.id.to_string();
    let state = match &step.freshness {
        Freshness::Fresh => NodeState::Fresh,
        _ if failed.contains(&id) => NodeState::Failed,
        Freshness::Stale(_) | Freshness::Uncommitted | Freshness::Cleared | Freshness::Damaged => {
            NodeState::Stale
        }
        Freshness::Never => NodeState::Never,
    };
    let outputs = &task.decl.outputs;
    let label = if outputs.len() == 1 && outputs[0] == task.decl.name {
        task.decl.name.clone()
    } else {
        format!("{}: {}", task.decl.name, outputs.join(", "))
    };
    Node {
        id,
        stage: task.decl.stage.clone(),
        label,
        state,
    }
}
