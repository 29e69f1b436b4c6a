//! The REPL's run of one task with some of its inputs given as tables (pipedag's
//! `flow.run(inputs=...)`): each given table is written as a build of its own, and the task
//! runs over it under a key that says so. Nothing is committed: `promote_given` does that.

use std::collections::BTreeMap;
use std::time::Duration;

use datafusion::prelude::DataFrame;

use super::{Loaded, plan_all};
use crate::exec;
use crate::names::TableName;
use crate::store::TableBuild;
use crate::store::lock::Lock;
use crate::store::runs::new_run_id;
use crate::{Error, Result};

/// Run task `name` with the inputs named in `given` read from those tables instead of their
/// builds; its other inputs are read as a run would (this flow's builds, else the committed
/// ones). Returns the task's id and the builds of its outputs.
pub async fn run_with_inputs(
    loaded: &Loaded,
    name: &str,
    given: Vec<(String, DataFrame)>,
    lock_timeout: Duration,
) -> Result<(String, Vec<TableBuild>)> {
    let mut planned = plan_all(loaded, None).await?;
    let (index, _) = planned.find(name)?;
    let id = planned.flow.tasks[index].id.to_string();
    let inputs = planned.flow.tasks[index].inputs.clone();
    let mut frames: BTreeMap<TableName, DataFrame> = BTreeMap::new();
    for (input, df) in given {
        let Some(found) = inputs
            .iter()
            .find(|i| i.to_string().eq_ignore_ascii_case(&input))
        else {
            let names: Vec<String> = inputs.iter().map(ToString::to_string).collect();
            return Err(Error::usage(
                format!("`{input}` is not an input of {id}"),
                match names.is_empty() {
                    true => format!("{id} reads no table"),
                    false => format!("its inputs: {}", names.join(", ")),
                },
            ));
        };
        frames.insert(found.clone(), df);
    }
    let run_id = new_run_id();
    let engine = loaded.engine(None)?;
    let lock = Lock::acquire(&loaded.store, &run_id, lock_timeout, |_| {}).await?;
    lock.hold(async {
        let mut builds = Vec::with_capacity(inputs.len());
        for input in &inputs {
            let build = match frames.remove(input) {
                Some(df) => exec::write_given(&loaded.store, &loaded.flow_name, input, df, &run_id)
                    .await
                    .map_err(|error| Error::TaskFailed {
                        task: format!("{input} (given)"),
                        error,
                    })?,
                None => stored_input(&planned, input, &id)?,
            };
            builds.push((input.clone(), build));
        }
        planned.plan.steps[index].given(&builds);
        let shared = super::shared(
            loaded,
            planned.flow,
            planned.plan.steps,
            engine,
            &run_id,
            true,
            Default::default(),
        );
        let outputs = exec::run_task(shared, index, builds)
            .await
            .map_err(|error| Error::TaskFailed {
                task: id.clone(),
                error,
            })?;
        Ok((id.clone(), outputs))
    })
    .await
}

/// The build a run would read for `input`: this flow's, else the committed one.
pub(super) fn stored_input(
    planned: &super::Planned,
    input: &TableName,
    task: &str,
) -> Result<TableBuild> {
    let step = planned
        .flow
        .producers
        .get(input)
        .and_then(|i| planned.plan.steps.get(*i));
    step.and_then(|s| s.builds.iter().find(|b| b.table == input.table))
        .or(planned.plan.committed(input))
        .cloned()
        .ok_or_else(|| {
            Error::usage(
                format!("input {input} of {task} is not built"),
                format!("build it first (run(\"+{task}\")), or give it: #{{ inputs: #{{ \"{input}\": t }} }}"),
            )
        })
}
