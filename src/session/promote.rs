//! The REPL's look at one task and its way to commit a session's build: `evaluate` computes a
//! task over its inputs without writing anything; `promote` commits a stored build through the
//! same manifest commit a run uses.

use std::time::Duration;

use super::{Loaded, plan_all};
use crate::exec;
use crate::store::TableBuild;
use crate::store::lock::Lock;
use crate::store::runs::new_run_id;
use crate::{Error, Result};

/// Evaluate one task over its inputs' builds (this flow's, else the committed ones) and
/// return its first rows per output, writing nothing.
pub async fn evaluate_task(
    loaded: &Loaded,
    name: &str,
    rows: usize,
) -> Result<Vec<(String, crate::report::Rows)>> {
    let planned = plan_all(loaded, None).await?;
    let (index, _) = planned.find(name)?;
    let mut inputs = Vec::new();
    for input in &planned.flow.tasks[index].inputs {
        let step = &planned.plan.steps[planned.flow.producers[input]];
        let build = step
            .builds
            .iter()
            .find(|b| b.table == input.table)
            .or(planned.plan.committed(input))
            .ok_or_else(|| {
                Error::usage(
                    format!("input {input} of {name} is not built"),
                    format!("build it first: run(\"+{name}\") builds {name} with its upstream"),
                )
            })?;
        inputs.push((input.clone(), build.clone()));
    }
    let engine = loaded.engine(None)?;
    let task = planned.flow.tasks[index].id.to_string();
    let shared = super::shared(
        loaded,
        planned.flow,
        planned.plan.steps,
        engine,
        &new_run_id(),
        true,
    );
    exec::preview(shared, index, inputs, rows)
        .await
        .map_err(|error| Error::TaskFailed { task, error })
}

/// Commit the stored build of `name` under `loaded`'s key into its stage, through the same
/// manifest commit as a run, and mark it tainted until a normal run rebuilds it.
pub async fn promote(loaded: &Loaded, name: &str, lock_timeout: Duration) -> Result<String> {
    let planned = plan_all(loaded, None).await?;
    let (index, _) = planned.find(name)?;
    let task = &planned.flow.tasks[index];
    let step = &planned.plan.steps[index];
    if step.builds.len() != task.decl.outputs.len() || step.builds.iter().any(|b| b.key != step.key)
    {
        return Err(Error::usage(
            format!("{} is not built in this session", task.id),
            format!("materialize it first: run(\"{}\")", task.id),
        ));
    }
    let id = task.id.to_string();
    promote_builds(loaded, &id, &step.builds, lock_timeout).await?;
    Ok(id)
}

/// Commit `builds`, the outputs of task `id`, into their stage through the same manifest
/// commit as a run, and mark the task tainted until a normal run rebuilds it: `promote`, and
/// the REPL's builds of a task run with inputs given in the session.
pub async fn promote_builds(
    loaded: &Loaded,
    id: &str,
    builds: &[TableBuild],
    lock_timeout: Duration,
) -> Result<()> {
    let Some(first) = builds.first() else {
        return Err(Error::usage(
            format!("{id} has no build to promote"),
            "run it first",
        ));
    };
    let store = &loaded.store;
    let lock = Lock::acquire(store, &new_run_id(), lock_timeout, |_| {}).await?;
    lock.hold(async {
        let mut manifest = store.read_manifest(&first.stage).await?.unwrap_or_default();
        manifest.stage = first.stage.clone();
        manifest.committed_at = chrono::Utc::now().to_rfc3339();
        for b in builds {
            manifest.tables.insert(b.table.clone(), b.clone());
        }
        store.commit_manifest(&manifest).await?;
        store.taint(id, &first.key).await?;
        Ok(())
    })
    .await
}
