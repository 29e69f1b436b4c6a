//! Evaluating one task of a run: its data checks only, early cutoff (nothing it reads changed
//! in content), partition by partition (`partitions`), or whole (`task`).

use std::collections::HashMap;
use std::sync::Arc;

use super::task::{Attempt, Ran};
use super::{Shared, TaskError};
use crate::names::TableName;
use crate::store::TableBuild;

/// Run a task whose inputs are stored as `inputs` (with the tables its checks read);
/// `committed` is what was committed when the run started.
pub async fn run(
    shared: Arc<Shared>,
    index: usize,
    inputs: Vec<(TableName, TableBuild)>,
    committed: &HashMap<TableName, TableBuild>,
    attempt: Attempt,
) -> Result<Ran, TaskError> {
    let task = &shared.flow.tasks[index];
    let step = &shared.steps[index];
    // What the task's checks read besides its own tables.
    let others: Vec<(TableName, TableBuild)> = inputs
        .iter()
        .filter(|(name, _)| task.check_inputs.contains(name))
        .cloned()
        .collect();
    if step.action == crate::flow::Action::Check {
        let mut builds = step.builds.clone();
        let checks = super::checks::verify(&shared, index, &mut builds, &others).await?;
        return Ok(Ran::computing_nothing(builds, checks, None));
    }
    if let Some(old) = super::cutoff::unchanged(&shared, index, &inputs, committed) {
        let mut builds = super::cutoff::rekey(&shared, index, old).await?;
        let checks = super::checks::verify(&shared, index, &mut builds, &others).await?;
        let note = Some(super::cutoff::INPUTS_UNCHANGED);
        return Ok(Ran::computing_nothing(builds, checks, note));
    }
    let inputs: Vec<(TableName, TableBuild)> = inputs
        .into_iter()
        .filter(|(name, _)| task.inputs.contains(name))
        .collect();
    let by_partition =
        super::partitions::run(&shared, index, &inputs, &others, committed, attempt).await?;
    match by_partition {
        Some(ran) => Ok(ran),
        None => super::task::whole(shared, index, inputs, &others, committed, attempt).await,
    }
}
