//! The graph as a Mermaid flowchart: a subgraph per stage, a class per state.

use std::collections::HashSet;
use std::fmt::Write;

use super::{Graph, NodeState};

pub fn render(g: &Graph) -> String {
    let ids = node_ids(g);
    let mut out = String::from("flowchart LR\n");
    for (s, stage) in g.stages.iter().enumerate() {
        let _ = writeln!(out, "  subgraph stage_{s}[\"{}\"]", text(stage));
        for (i, n) in g
            .nodes
            .iter()
            .enumerate()
            .filter(|(_, n)| n.stage == *stage)
        {
            let _ = writeln!(
                out,
                "    {}[\"{}\"]:::{}",
                ids[i],
                text(&n.label),
                n.state.class()
            );
        }
        out.push_str("  end\n");
    }
    for &(from, to) in &g.edges {
        let _ = writeln!(out, "  {} --> {}", ids[from], ids[to]);
    }
    for state in NodeState::ALL {
        let (fill, stroke) = state.colors();
        let _ = writeln!(
            out,
            "  classDef {} fill:{fill},stroke:{stroke},color:#1a1a1a",
            state.class()
        );
    }
    out
}

/// Mermaid ids allow no dots: `raw.orders` is `raw__orders`, made unique if two collide.
pub(super) fn node_ids(g: &Graph) -> Vec<String> {
    let mut seen = HashSet::new();
    g.nodes
        .iter()
        .map(|n| {
            let base: String =
                n.id.replace('.', "__")
                    .chars()
                    .map(|c| {
                        if c.is_ascii_alphanumeric() || c == '_' {
                            c
                        } else {
                            '_'
                        }
                    })
                    .collect();
            let mut id = base.clone();
            let mut k = 1;
            while !seen.insert(id.clone()) {
                k += 1;
                id = format!("{base}_{k}");
            }
            id
        })
        .collect()
}

/// Label text inside `["..."]`: a double quote would end it.
fn text(s: &str) -> String {
    s.replace('"', "#quot;")
}

#[cfg(test)]
mod tests {
    #[test]
    fn stages_are_subgraphs_and_states_classes() {
        let out = super::render(&super::super::sample());
        assert!(out.starts_with("flowchart LR\n"));
        assert!(out.contains("  subgraph stage_0[\"raw\"]\n    raw__orders[\"orders\"]:::fresh\n"));
        assert!(out.contains("  prep__clean --> marts__top\n"));
        assert!(out.contains("classDef failed fill:"));
        assert_eq!(out.matches("  end\n").count(), 3);
    }
}
