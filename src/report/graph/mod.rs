//! `weir graph`: the flow as a drawing. Stages are clusters, tasks are nodes coloured by how
//! they stand (fresh, stale, failed in the last run, never built), edges go from each input's
//! producer to the task reading it. Mermaid and DOT are text for other tools; SVG is laid out
//! by the `dagre` crate and drawn here (`svg.rs`), with no external program or service.

mod dot;
mod mermaid;
mod svg;

/// How a task stands, as a node's colour and class.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NodeState {
    Fresh,
    Stale,
    /// Its last run record says it failed, and it has not been built since.
    Failed,
    Never,
}

impl NodeState {
    pub const ALL: [NodeState; 4] = [Self::Fresh, Self::Stale, Self::Failed, Self::Never];

    /// The class name in every format.
    pub fn class(self) -> &'static str {
        match self {
            Self::Fresh => "fresh",
            Self::Stale => "stale",
            Self::Failed => "failed",
            Self::Never => "never",
        }
    }

    pub fn describe(self) -> &'static str {
        match self {
            Self::Fresh => "fresh",
            Self::Stale => "stale",
            Self::Failed => "failed in the last run",
            Self::Never => "never built",
        }
    }

    /// (fill, stroke)
    fn colors(self) -> (&'static str, &'static str) {
        match self {
            Self::Fresh => ("#c8e6c9", "#2e7d32"),
            Self::Stale => ("#ffe9a8", "#b7791f"),
            Self::Failed => ("#f8c4c4", "#c62828"),
            Self::Never => ("#eeeeee", "#8a8a8a"),
        }
    }
}

pub struct Node {
    /// The task's id, `stage.table`.
    pub id: String,
    pub stage: String,
    /// What the node shows: the table, or a multi-output task's name and outputs.
    pub label: String,
    pub state: NodeState,
}

pub struct Graph {
    /// In flow order.
    pub stages: Vec<String>,
    /// In dependency order: a task after every task it reads.
    pub nodes: Vec<Node>,
    /// (producer, reader), indices into `nodes`.
    pub edges: Vec<(usize, usize)>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum GraphFormat {
    Mermaid,
    Dot,
    Svg,
}

pub use svg::Layouts;

/// An SVG drawing reusing the layout in `layouts` when the flow's shape has not changed.
pub fn render_svg(graph: &Graph, layouts: &Layouts) -> Option<String> {
    svg::render_with(graph, layouts)
}

/// `None` when the SVG layout fails (the text formats cannot).
pub fn render(graph: &Graph, format: GraphFormat) -> Option<String> {
    match format {
        GraphFormat::Mermaid => Some(mermaid::render(graph)),
        GraphFormat::Dot => Some(dot::render(graph)),
        GraphFormat::Svg => svg::render(graph),
    }
}

#[cfg(test)]
pub(crate) fn sample() -> Graph {
    let node = |id: &str, state| Node {
        id: id.to_string(),
        stage: id.split('.').next().unwrap_or_default().to_string(),
        label: id.split('.').nth(1).unwrap_or_default().to_string(),
        state,
    };
    Graph {
        stages: vec!["raw".into(), "prep".into(), "marts".into()],
        nodes: vec![
            node("raw.orders", NodeState::Fresh),
            node("raw.customers", NodeState::Fresh),
            node("prep.clean", NodeState::Stale),
            node("marts.top", NodeState::Failed),
            node("marts.big", NodeState::Never),
        ],
        edges: vec![(0, 2), (1, 2), (2, 3), (2, 4)],
    }
}
