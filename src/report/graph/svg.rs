//! A self-contained SVG of the graph, laid out here: no Graphviz, no web service.
//!
//! A small layered (Sugiyama-style) layout. Each task gets a layer, the longest path from a
//! task without inputs, so every edge points right. Each stage is a horizontal band (its
//! cluster), so clusters never overlap however stages interleave across layers; inside a band
//! a task sits in its layer's column, ordered by the mean position of its inputs to keep edges
//! short and crossings few. The Rust layout crates draw no clusters (layout-rs has no nested
//! graphs), which is why this is not one of them.

use std::fmt::Write;

use super::{Graph, NodeState};

const MARGIN: f64 = 16.0;
const NODE_H: f64 = 30.0;
const ROW_GAP: f64 = 12.0;
const COL_GAP: f64 = 56.0;
const PAD: f64 = 14.0;
const LABEL_H: f64 = 22.0;
const BAND_GAP: f64 = 14.0;
const CHAR_W: f64 = 7.2;
const LEGEND_H: f64 = 36.0;

/// Where everything goes.
struct Layout {
    /// Per node: (x, y) of its top-left corner.
    pos: Vec<(f64, f64)>,
    /// Per layer: x and width of the column.
    cols: Vec<(f64, f64)>,
    layer: Vec<usize>,
    /// Per stage: the cluster's rectangle (x, y, w, h), if it has tasks.
    clusters: Vec<Option<(f64, f64, f64, f64)>>,
    width: f64,
    height: f64,
}

pub fn render(g: &Graph) -> String {
    let l = layout(g);
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
    out
}

fn layout(g: &Graph) -> Layout {
    let n = g.nodes.len();
    let mut layer = vec![0usize; n];
    // Nodes come in dependency order, so one pass finds each longest path.
    for &(from, to) in &g.edges {
        layer[to] = layer[to].max(layer[from] + 1);
    }
    let layers = layer.iter().max().map_or(0, |m| m + 1);
    let mut widths = vec![80.0f64; layers];
    for (i, node) in g.nodes.iter().enumerate() {
        let w = node.label.chars().count() as f64 * CHAR_W + 2.0 * PAD;
        widths[layer[i]] = widths[layer[i]].max(w);
    }
    let mut cols = Vec::with_capacity(layers);
    let mut x = MARGIN + PAD;
    for w in widths {
        cols.push((x, w));
        x += w + COL_GAP;
    }
    let width = (x - COL_GAP + PAD + MARGIN).max(240.0);
    let order = order_in_cells(g, &layer);
    let mut pos = vec![(0.0, 0.0); n];
    let mut clusters = vec![None; g.stages.len()];
    let mut y = MARGIN;
    for (s, cells) in order.iter().enumerate() {
        let rows = cells.iter().map(Vec::len).max().unwrap_or(0);
        if rows == 0 {
            continue;
        }
        let top = y + LABEL_H;
        for (l, cell) in cells.iter().enumerate() {
            for (r, &i) in cell.iter().enumerate() {
                pos[i] = (cols[l].0, top + r as f64 * (NODE_H + ROW_GAP));
            }
        }
        let used: Vec<usize> = (0..layers).filter(|&l| !cells[l].is_empty()).collect();
        let (first, last) = (used[0], used[used.len() - 1]);
        let cx = cols[first].0 - PAD;
        let cw = cols[last].0 + cols[last].1 + PAD - cx;
        let h = LABEL_H + rows as f64 * (NODE_H + ROW_GAP) - ROW_GAP + PAD;
        clusters[s] = Some((cx, y, cw, h));
        y += h + BAND_GAP;
    }
    Layout {
        pos,
        cols,
        layer,
        clusters,
        width,
        height: y - BAND_GAP + MARGIN + LEGEND_H,
    }
}

/// Per stage, per layer: the nodes of that cell, top to bottom. A first placement in flow
/// order, then each cell sorted by the mean row of the inputs (a barycenter sweep).
fn order_in_cells(g: &Graph, layer: &[usize]) -> Vec<Vec<Vec<usize>>> {
    let layers = layer.iter().max().map_or(0, |m| m + 1);
    let mut cells = vec![vec![Vec::new(); layers]; g.stages.len()];
    for (i, node) in g.nodes.iter().enumerate() {
        if let Some(s) = g.stages.iter().position(|s| *s == node.stage) {
            cells[s][layer[i]].push(i);
        }
    }
    // A global row per node (band offset + row), so inputs in other bands count too.
    let mut row = vec![0.0f64; g.nodes.len()];
    let mut base = 0.0;
    for stage in &cells {
        for cell in stage {
            for (r, &i) in cell.iter().enumerate() {
                row[i] = base + r as f64;
            }
        }
        base += stage.iter().map(Vec::len).max().unwrap_or(0) as f64 + 1.0;
    }
    let mut inputs: Vec<Vec<usize>> = vec![Vec::new(); g.nodes.len()];
    for &(from, to) in &g.edges {
        inputs[to].push(from);
    }
    let center = |i: usize| -> f64 {
        match inputs[i].len() {
            0 => row[i],
            k => inputs[i].iter().map(|&p| row[p]).sum::<f64>() / k as f64,
        }
    };
    for stage in &mut cells {
        for cell in stage.iter_mut() {
            cell.sort_by(|&a, &b| center(a).total_cmp(&center(b)).then(a.cmp(&b)));
        }
    }
    cells
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
    for &(from, to) in &g.edges {
        let (fx, fy) = l.pos[from];
        let (tx, ty) = l.pos[to];
        let x1 = fx + l.cols[l.layer[from]].1;
        let (y1, y2) = (fy + NODE_H / 2.0, ty + NODE_H / 2.0);
        let bend = ((tx - x1) / 2.0).max(20.0);
        let _ = writeln!(
            out,
            r##"  <path class="edge" d="M {x1:.1} {y1:.1} C {c1:.1} {y1:.1}, {c2:.1} {y2:.1}, {tx:.1} {y2:.1}" fill="none" stroke="#555555" stroke-width="1.2" marker-end="url(#arrow)"><title>{title}</title></path>"##,
            c1 = x1 + bend,
            c2 = tx - bend,
            title = escape(&format!("{} -> {}", g.nodes[from].id, g.nodes[to].id)),
        );
    }
}

fn nodes(out: &mut String, g: &Graph, l: &Layout) {
    for (i, node) in g.nodes.iter().enumerate() {
        let (x, y) = l.pos[i];
        let w = l.cols[l.layer[i]].1;
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
            id = escape(&node.id),
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

    #[test]
    fn edges_point_right_and_clusters_do_not_overlap() {
        let g = super::super::sample();
        let l = layout(&g);
        for &(from, to) in &g.edges {
            assert!(l.pos[from].0 < l.pos[to].0, "{from} -> {to}");
        }
        let rects: Vec<_> = l.clusters.iter().flatten().collect();
        for pair in rects.windows(2) {
            assert!(pair[0].1 + pair[0].3 <= pair[1].1, "{pair:?}");
        }
        let svg = render(&g);
        assert_eq!(svg.matches("<g class=\"node ").count(), g.nodes.len());
        assert_eq!(svg.matches("<path class=\"edge\"").count(), g.edges.len());
        assert_eq!(escape(r#"a<b & "c""#), "a&lt;b &amp; &quot;c&quot;");
    }

    #[test]
    fn an_empty_graph_is_still_a_picture() {
        let g = Graph {
            stages: vec![],
            nodes: vec![],
            edges: vec![],
        };
        assert!(render(&g).ends_with("</svg>\n"));
    }
}
