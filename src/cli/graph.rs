//! `weir graph`: the flow drawn as Mermaid, DOT or SVG, each task coloured by its status.

use std::path::PathBuf;

use clap::Args;

use super::{ScriptArgs, StoreArgs, target};
use crate::config::CacheMode;
use crate::report::{GraphFormat, render_graph, stdout_text};
use crate::session::{failed_last_run, graph as flow_graph, plan_all};
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
    let graph = flow_graph(&planned, &failed, &selected);
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
