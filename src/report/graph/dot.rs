//! The graph in Graphviz DOT: a `cluster_` subgraph per stage, nodes filled by state and
//! carrying it as `class` (which Graphviz copies into its SVG).

use std::fmt::Write;

use super::Graph;

pub fn render(g: &Graph) -> String {
    let mut out = String::from("digraph weir {\n");
    out.push_str("  rankdir=LR;\n");
    out.push_str("  node [shape=box, style=\"rounded,filled\", fontname=\"Helvetica\"];\n");
    for (s, stage) in g.stages.iter().enumerate() {
        let _ = writeln!(out, "  subgraph cluster_{s} {{");
        let _ = writeln!(out, "    label={};", quote(stage));
        out.push_str("    style=rounded; color=\"#9e9e9e\";\n");
        for n in g.nodes.iter().filter(|n| n.stage == *stage) {
            let (fill, stroke) = n.state.colors();
            let _ = writeln!(
                out,
                "    {} [label={}, class={}, fillcolor=\"{fill}\", color=\"{stroke}\", tooltip={}];",
                quote(&n.id),
                quote(&n.label),
                quote(n.state.class()),
                quote(&format!("{}: {}", n.id, n.state.describe())),
            );
        }
        out.push_str("  }\n");
    }
    for &(from, to) in &g.edges {
        let _ = writeln!(
            out,
            "  {} -> {};",
            quote(&g.nodes[from].id),
            quote(&g.nodes[to].id)
        );
    }
    out.push_str("}\n");
    out
}

/// A DOT string literal.
fn quote(s: &str) -> String {
    format!("\"{}\"", s.replace('\\', "\\\\").replace('"', "\\\""))
}

#[cfg(test)]
mod tests {
    #[test]
    fn stages_are_clusters_and_edges_join_ids() {
        let out = super::render(&super::super::sample());
        assert!(out.contains("  subgraph cluster_1 {\n    label=\"prep\";"));
        assert!(out.contains("\"prep.clean\" [label=\"clean\", class=\"stale\""));
        assert!(out.contains("  \"raw.orders\" -> \"prep.clean\";\n"));
        assert!(out.ends_with("}\n"));
    }
}
