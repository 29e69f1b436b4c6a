//! A self-contained SVG of the graph: laid out by `dagre` (a port of dagre.js, the layered
//! layout Mermaid uses) with each stage a compound node, so clusters never overlap; drawn
//! here. No Graphviz, no web service.

use std::fmt::Write;
use std::sync::{Arc, Mutex};

use dagre::graph::{Graph as DGraph, GraphOptions};
use dagre::{EdgeLabel, GraphLabel, LayoutOptions, NodeLabel, RankDir, Ranker};

use super::{Graph, NodeState};

const MARGIN: f64 = 16.0;
const NODE_H: f64 = 30.0;
const PAD: f64 = 14.0;
/// Room above a cluster's first row for its name.
const LABEL_H: f64 = 20.0;
const CHAR_W: f64 = 7.2;
const LEGEND_H: f64 = 36.0;
/// The most tasks laid out with the network simplex ranker.
const SIMPLEX_LIMIT: usize = 150;

/// Where everything goes; x and y are top-left corners.
struct Layout {
    /// Per node: x, y, width.
    nodes: Vec<(f64, f64, f64)>,
    /// Per stage: the cluster's rectangle (x, y, w, h), if it has tasks.
    clusters: Vec<Option<(f64, f64, f64, f64)>>,
    /// Per edge: the points of its line, from the producer to the reader.
    edges: Vec<Vec<(f64, f64)>>,
    width: f64,
    height: f64,
}

/// The last layout made, by the shape of the graph it was made for (stages, tasks, labels,
/// edges): statuses change only colours, and laying out 1,000 tasks takes a second, so a page
/// that draws the same flow again reuses it (`weir serve`).
#[derive(Default)]
pub struct Layouts(Mutex<Option<(blake3::Hash, Arc<Layout>)>>);

/// `None` if the layout crate gives up (it asserts its invariants by panicking; weir's flows
/// are acyclic and should never trip them, but a drawing is not worth a crash).
pub fn render(g: &Graph) -> Option<String> {
    render_with(g, &Layouts::default())
}

/// `render`, reusing the layout kept in `layouts` when the graph's shape is the same.
pub fn render_with(g: &Graph, layouts: &Layouts) -> Option<String> {
    let shape = shape(g);
    let kept = layouts.0.lock().unwrap_or_else(|p| p.into_inner()).clone();
    let l = match kept {
        Some((s, l)) if s == shape => l,
        _ => {
            let l = Arc::new(quietly(|| layout(g))?);
            *layouts.0.lock().unwrap_or_else(|p| p.into_inner()) = Some((shape, l.clone()));
            l
        }
    };
    let mut out = String::new();
    let _ = writeln!(
        out,
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{w:.0}" height="{h:.0}" viewBox="0 0 {w:.0} {h:.0}" font-family="Helvetica, Arial, sans-serif" font-size="12">"#,
        w = l.width,
        h = l.height
    );
    out.push_str("  <title>weir flow</title>\n");
    out.push_str(concat!(
        "  <defs><marker id=\"arrow\" viewBox=\"0 0 10 10\" refX=\"10\" refY=\"5\" ",
        "markerWidth=\"7\" markerHeight=\"7\" orient=\"auto-start-reverse\">",
        "<path d=\"M 0 0 L 10 5 L 0 10 z\" fill=\"#555555\"/></marker></defs>\n"
    ));
    out.push_str(r##"  <rect width="100%" height="100%" fill="#ffffff"/>"##);
    out.push('\n');
    clusters(&mut out, g, &l);
    edges(&mut out, g, &l);
    nodes(&mut out, g, &l);
    legend(&mut out, &l);
    out.push_str("</svg>\n");
    Some(out)
}

/// What the layout depends on: everything but the statuses.
fn shape(g: &Graph) -> blake3::Hash {
    let mut h = blake3::Hasher::new();
    for stage in &g.stages {
        h.update(stage.as_bytes()).update(b"\0");
    }
    for n in &g.nodes {
        for part in [&n.id, &n.stage, &n.label] {
            h.update(part.as_bytes()).update(b"\0");
        }
    }
    for (from, to) in &g.edges {
        h.update(&from.to_le_bytes()).update(&to.to_le_bytes());
    }
    h.finalize()
}

/// `f`, with a panic caught and not printed.
fn quietly<T>(f: impl FnOnce() -> T) -> Option<T> {
    let hook = std::panic::take_hook();
    std::panic::set_hook(Box::new(|_| {}));
    let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(f));
    std::panic::set_hook(hook);
    result.ok()
}

fn layout(g: &Graph) -> Layout {
    let mut dg = dagre_graph(g);
    dagre::layout(&mut dg, Some(layout_options(g)));
    let corner = |l: &NodeLabel| {
        let (x, y) = (l.x.unwrap_or(0.0), l.y.unwrap_or(0.0));
        (x - l.width / 2.0, y - l.height / 2.0, l.width, l.height)
    };
    let nodes: Vec<(f64, f64, f64)> = (0..g.nodes.len())
        .map(|i| {
            let (x, y, w, _) = dg.node(&format!("n{i}")).map(corner).unwrap_or_default();
            (x, y, w)
        })
        .collect();
    let clusters = stage_boxes(g, &nodes);
    let edges = g
        .edges
        .iter()
        .map(|&(from, to)| {
            dg.edge(&format!("n{from}"), &format!("n{to}"), None)
                .map(|e| e.points.iter().map(|p| (p.x, p.y)).collect())
                .unwrap_or_default()
        })
        .collect();
    let (width, height) = dg
        .graph_label::<GraphLabel>()
        .map_or((0.0, 0.0), |l| (l.width, l.height));
    Layout {
        nodes,
        clusters,
        edges,
        width: (width + PAD).max(240.0),
        height: height + PAD + LEGEND_H,
    }
}

/// The flow as dagre's graph: a cluster per stage with tasks, a node per task in its cluster,
/// an edge per dependency.
fn dagre_graph(g: &Graph) -> DGraph<NodeLabel, EdgeLabel> {
    let mut dg: DGraph<NodeLabel, EdgeLabel> = DGraph::with_options(GraphOptions {
        directed: true,
        multigraph: false,
        compound: true,
    });
    let cluster_id = |s: usize| format!("c{s}");
    for (s, stage) in g.stages.iter().enumerate() {
        if g.nodes.iter().any(|n| n.stage == *stage) {
            dg.set_node(cluster_id(s), Some(NodeLabel::default()));
        }
    }
    for (i, node) in g.nodes.iter().enumerate() {
        let label = NodeLabel {
            width: node_width(&node.label),
            height: NODE_H,
            ..Default::default()
        };
        dg.set_node(format!("n{i}"), Some(label));
        if let Some(s) = g.stages.iter().position(|s| *s == node.stage) {
            dg.set_parent(&format!("n{i}"), Some(&cluster_id(s)));
        }
    }
    for &(from, to) in &g.edges {
        dg.set_edge(
            format!("n{from}"),
            format!("n{to}"),
            Some(EdgeLabel::default()),
            None,
        );
    }
    dg
}

fn layout_options(g: &Graph) -> LayoutOptions {
    LayoutOptions {
        rankdir: RankDir::LR,
        // Network simplex balances the drawing but grows fast: 0.1 s on 90 tasks, 2 s on 300,
        // 24 s on 1,000 (release build); longest path stays near a second at 1,000.
        ranker: if g.nodes.len() <= SIMPLEX_LIMIT {
            Ranker::NetworkSimplex
        } else {
            Ranker::LongestPath
        },
        // Wide enough between rows for a cluster's name above its first row.
        nodesep: 2.0 * LABEL_H,
        ranksep: 48.0,
        edgesep: 20.0,
        marginx: MARGIN,
        marginy: MARGIN,
        ..Default::default()
    }
}

/// Each stage's box, wrapping its tasks (`nodes`: each task's x, y and width). dagre's own
/// cluster bounds also wrap the bends of edges entering the stage, which can reach into a
/// neighbour's box; the tasks alone cannot, as dagre keeps each stage's tasks together and its
/// stages in one order on every rank.
fn stage_boxes(g: &Graph, nodes: &[(f64, f64, f64)]) -> Vec<Option<(f64, f64, f64, f64)>> {
    g.stages
        .iter()
        .map(|stage| {
            let mine = || {
                g.nodes
                    .iter()
                    .zip(nodes)
                    .filter(move |(n, _)| n.stage == *stage)
                    .map(|(_, r)| *r)
            };
            let x0 = mine().map(|r: (f64, f64, f64)| r.0).reduce(f64::min)?;
            let y0 = mine().map(|r| r.1).reduce(f64::min)?;
            let x1 = mine().map(|r| r.0 + r.2).reduce(f64::max)?;
            let y1 = mine().map(|r| r.1 + NODE_H).reduce(f64::max)?;
            Some((
                x0 - PAD,
                y0 - PAD - LABEL_H,
                x1 - x0 + 2.0 * PAD,
                y1 - y0 + 2.0 * PAD + LABEL_H,
            ))
        })
        .collect()
}

fn node_width(label: &str) -> f64 {
    (label.chars().count() as f64 * CHAR_W + 2.0 * PAD).max(80.0)
}

fn clusters(out: &mut String, g: &Graph, l: &Layout) {
    for (stage, rect) in g.stages.iter().zip(&l.clusters) {
        let Some((x, y, w, h)) = rect else { continue };
        let _ = writeln!(
            out,
            r##"  <g class="cluster" id="{id}"><rect x="{x:.1}" y="{y:.1}" width="{w:.1}" height="{h:.1}" rx="8" fill="#f7f7f9" stroke="#b0b0b8"/><text x="{tx:.1}" y="{ty:.1}" font-weight="bold" fill="#444444">{label}</text></g>"##,
            id = escape(&format!("stage-{stage}")),
            tx = x + 10.0,
            ty = y + 16.0,
            label = escape(stage),
        );
    }
}

fn edges(out: &mut String, g: &Graph, l: &Layout) {
    for (&(from, to), points) in g.edges.iter().zip(&l.edges) {
        let _ = writeln!(
            out,
            r##"  <path class="edge" d="{d}" fill="none" stroke="#555555" stroke-width="1.2" marker-end="url(#arrow)"><title>{title}</title></path>"##,
            d = curve(points),
            title = escape(&format!("{} -> {}", g.nodes[from].id, g.nodes[to].id)),
        );
    }
}

/// A smooth path through the layout's points: straight to the first midpoint, then a
/// quadratic curve around each inner point (as dagre-d3 draws with curveBasis, simplified).
fn curve(points: &[(f64, f64)]) -> String {
    let Some(&(x0, y0)) = points.first() else {
        return String::new();
    };
    let mut d = format!("M {x0:.1} {y0:.1}");
    for w in points.windows(3) {
        let (mx, my) = ((w[1].0 + w[2].0) / 2.0, (w[1].1 + w[2].1) / 2.0);
        let _ = write!(d, " Q {:.1} {:.1} {mx:.1} {my:.1}", w[1].0, w[1].1);
    }
    if let Some(&(x, y)) = points.last() {
        let _ = write!(d, " L {x:.1} {y:.1}");
    }
    d
}

fn nodes(out: &mut String, g: &Graph, l: &Layout) {
    for (i, node) in g.nodes.iter().enumerate() {
        let (x, y, w) = l.nodes[i];
        let (fill, stroke) = node.state.colors();
        let dash = if node.state == NodeState::Never {
            r#" stroke-dasharray="4 3""#
        } else {
            ""
        };
        let _ = writeln!(
            out,
            r##"  <g class="node {class}" id="{id}"><title>{title}</title><rect x="{x:.1}" y="{y:.1}" width="{w:.1}" height="{NODE_H}" rx="6" fill="{fill}" stroke="{stroke}"{dash}/><text x="{tx:.1}" y="{ty:.1}" text-anchor="middle" fill="#1a1a1a">{label}</text></g>"##,
            class = node.state.class(),
            id = escape(&format!("node-{}", node.id)),
            title = escape(&format!("{}: {}", node.id, node.state.describe())),
            tx = x + w / 2.0,
            ty = y + NODE_H / 2.0 + 4.0,
            label = escape(&node.label),
        );
    }
}

fn legend(out: &mut String, l: &Layout) {
    let y = l.height - LEGEND_H + 10.0;
    let mut x = MARGIN;
    out.push_str("  <g class=\"legend\">");
    for state in NodeState::ALL {
        let (fill, stroke) = state.colors();
        let _ = write!(
            out,
            r##"<rect x="{x:.1}" y="{y:.1}" width="14" height="14" rx="3" fill="{fill}" stroke="{stroke}"/><text x="{tx:.1}" y="{ty:.1}" fill="#444444">{label}</text>"##,
            tx = x + 20.0,
            ty = y + 11.0,
            label = state.describe(),
        );
        x += 30.0 + state.describe().len() as f64 * 6.4;
    }
    out.push_str("</g>\n");
}

/// Text and attribute values: the five characters XML reserves.
fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::graph::Node;

    fn inside(p: (f64, f64), r: (f64, f64, f64, f64)) -> bool {
        p.0 >= r.0 && p.0 <= r.0 + r.2 && p.1 >= r.1 && p.1 <= r.1 + r.3
    }

    fn overlap(a: (f64, f64, f64, f64), b: (f64, f64, f64, f64)) -> bool {
        a.0 < b.0 + b.2 && b.0 < a.0 + a.2 && a.1 < b.1 + b.3 && b.1 < a.1 + a.3
    }

    /// What a reader relies on: every task inside its stage's box, boxes apart, edges from
    /// left to right, one shape per task and per edge.
    fn check(g: &Graph) {
        let l = layout(g);
        for (i, node) in g.nodes.iter().enumerate() {
            let s = g.stages.iter().position(|s| *s == node.stage).unwrap();
            let r = l.clusters[s].expect("a cluster for a stage with tasks");
            let (x, y, w) = l.nodes[i];
            assert!(
                inside((x, y), r) && inside((x + w, y + NODE_H), r),
                "{} outside its stage",
                node.id
            );
        }
        let rects: Vec<_> = l.clusters.iter().flatten().copied().collect();
        for (a, ra) in rects.iter().enumerate() {
            for rb in &rects[a + 1..] {
                assert!(!overlap(*ra, *rb), "clusters overlap: {ra:?} {rb:?}");
            }
        }
        for (&(from, to), points) in g.edges.iter().zip(&l.edges) {
            assert!(
                l.nodes[from].0 < l.nodes[to].0,
                "{from} -> {to} points left"
            );
            assert!(points.len() >= 2, "{from} -> {to} has no line");
        }
        let svg = render(g).expect("a layout");
        assert_eq!(svg.matches("<g class=\"node ").count(), g.nodes.len());
        assert_eq!(svg.matches("<path class=\"edge\"").count(), g.edges.len());
    }

    #[test]
    fn tasks_sit_in_their_stage_and_edges_point_right() {
        check(&super::super::sample());
        assert_eq!(escape(r#"a<b & "c""#), "a&lt;b &amp; &quot;c&quot;");
    }

    /// Stages that interleave (a reads b reads a) and wide fan-outs, in many shapes.
    #[test]
    fn interleaved_stages_and_random_flows_lay_out() {
        let mut seed = 7u64;
        let mut next = |n: usize| {
            seed = seed
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            (seed >> 33) as usize % n
        };
        for round in 0..40 {
            let stages: Vec<String> = (0..1 + round % 4).map(|s| format!("s{s}")).collect();
            let n = 1 + next(14);
            let nodes: Vec<Node> = (0..n)
                .map(|i| Node {
                    id: format!("t{i}"),
                    stage: stages[next(stages.len())].clone(),
                    label: "x".repeat(1 + next(12)),
                    state: NodeState::ALL[next(4)],
                })
                .collect();
            let mut edges = Vec::new();
            for to in 1..n {
                for from in 0..to {
                    if next(4) == 0 {
                        edges.push((from, to));
                    }
                }
            }
            check(&Graph {
                stages,
                nodes,
                edges,
            });
        }
    }

    #[test]
    fn an_empty_graph_is_still_a_picture() {
        let g = Graph {
            stages: vec![],
            nodes: vec![],
            edges: vec![],
        };
        assert!(render(&g).expect("a layout").ends_with("</svg>\n"));
    }
}
