//! The flow as a drawing's nodes and edges, each task with its status: `weir graph` renders
//! it, `weir serve` shows it.

use std::collections::BTreeSet;

use super::Planned;
use crate::Result;
use crate::flow::plan::Freshness;
use crate::report::{Graph, Node, NodeState};
use crate::store::Store;

/// The tasks the newest run record says failed.
pub async fn failed_last_run(store: &Store) -> Result<Vec<String>> {
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

pub fn graph(planned: &Planned, failed: &[String], selected: &BTreeSet<usize>) -> Graph {
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
