//! The REPL's look at one task and its way to commit a session's build: `evaluate` computes a
//! task over its inputs without writing anything; `promote` commits a stored build through the
//! same manifest commit a run uses.

use std::time::Duration;

use super::{Loaded, plan_all};
use crate::exec;
use crate::store::TableBuild;
use crate::store::lock::Lock;
use crate::store::runs::{RunRecord, StageRecord, TaskRecord, new_run_id};
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
        Default::default(),
    );
    exec::preview(shared, index, inputs, rows)
        .await
        .map_err(|error| Error::TaskFailed { task, error })
}

/// What a promote committed: the task, and the error checks its build failed, when forced
/// past them.
pub struct Promoted {
    pub task: String,
    pub forced_past: Option<String>,
}

/// Commit the stored build of `name` under `loaded`'s key into its stage, through the same
/// manifest commit as a run, and mark it tainted until a normal run rebuilds it. A build
/// that fails an error-severity data check is refused unless `force`.
pub async fn promote(
    loaded: &Loaded,
    name: &str,
    force: bool,
    lock_timeout: Duration,
) -> Result<Promoted> {
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
    let builds = step.builds.clone();
    promote_builds(loaded, planned, index, builds, force, lock_timeout).await
}

/// Commit the builds of a run of task `id` with inputs given in the REPL, as `promote` does.
pub async fn promote_given(
    loaded: &Loaded,
    id: &str,
    builds: Vec<TableBuild>,
    force: bool,
    lock_timeout: Duration,
) -> Result<Promoted> {
    let planned = plan_all(loaded, None).await?;
    let (index, _) = planned.find(id)?;
    promote_builds(loaded, planned, index, builds, force, lock_timeout).await
}

/// Commit `builds`, the outputs of task `index`, into their stage through the same manifest
/// commit as a run, once every data check of the task has passed on them (checks not run on
/// them yet run now), and mark the task tainted until a normal run rebuilds it. Every promote
/// leaves a run record, so the history shows each manifest switch.
async fn promote_builds(
    loaded: &Loaded,
    mut planned: super::Planned,
    index: usize,
    builds: Vec<TableBuild>,
    force: bool,
    lock_timeout: Duration,
) -> Result<Promoted> {
    let id = planned.flow.tasks[index].id.to_string();
    let Some(first) = builds.first().cloned() else {
        return Err(Error::usage(
            format!("{id} has no build to promote"),
            "run it first",
        ));
    };
    let started_at = chrono::Utc::now().to_rfc3339();
    let run_id = new_run_id();
    let store = &loaded.store;
    let lock = Lock::acquire(store, &run_id, lock_timeout, |_| {}).await?;
    lock.hold(async {
        let inputs = planned.flow.tasks[index]
            .check_inputs
            .iter()
            .map(|t| Ok((t.clone(), super::given::stored_input(&planned, t, &id)?)))
            .collect::<Result<Vec<_>>>()?;
        let step = &mut planned.plan.steps[index];
        step.builds = builds;
        step.action = crate::flow::Action::Check;
        let engine = loaded.engine(None)?;
        let shared = super::shared(
            loaded,
            planned.flow,
            planned.plan.steps,
            engine,
            &run_id,
            true,
            Default::default(),
        );
        let (builds, forced_past) = match exec::run_task(shared.clone(), index, inputs).await {
            Ok(checked) => (checked, None),
            Err(error @ exec::TaskError::Check { .. }) if !force => {
                return Err(Error::PromoteRefused {
                    task: id.clone(),
                    error,
                });
            }
            Err(error @ exec::TaskError::Check { .. }) => {
                (shared.steps[index].builds.clone(), Some(error.brief()))
            }
            Err(error) => {
                return Err(Error::TaskFailed {
                    task: id.clone(),
                    error,
                });
            }
        };
        let previous = store.read_manifest(&first.stage).await?;
        let mut manifest = previous.clone().unwrap_or_default();
        manifest.stage = first.stage.clone();
        manifest.run_id = run_id.clone();
        manifest.committed_at = chrono::Utc::now().to_rfc3339();
        for b in &builds {
            manifest.tables.insert(b.table.clone(), b.clone());
        }
        store.commit_manifest(&manifest, previous.as_ref()).await?;
        store.settle().await;
        store.taint(&id, &first.key).await?;
        let record = record(&shared, &id, &builds, started_at, forced_past.as_deref());
        store.write_run(&record).await?;
        Ok(Promoted {
            task: id.clone(),
            forced_past,
        })
    })
    .await
}

/// The run record of a promote: one task, `promoted`, and its stage committed.
fn record(
    shared: &exec::Shared,
    id: &str,
    builds: &[TableBuild],
    started_at: String,
    forced_past: Option<&str>,
) -> RunRecord {
    let stage = builds.first().map(|b| b.stage.clone()).unwrap_or_default();
    let mut reason = vec!["promoted from the REPL".to_string()];
    reason.extend(forced_past.map(|f| format!("forced past a failed data check: {f}")));
    RunRecord {
        run_id: shared.run.id.clone(),
        instance: shared.store.layout.instance().to_string(),
        script: shared.code.source.path.display().to_string(),
        started_at,
        ended_at: chrono::Utc::now().to_rfc3339(),
        duration_ms: 0,
        ok: forced_past.is_none(),
        tasks: vec![TaskRecord {
            task: id.to_string(),
            stage: stage.clone(),
            status: "promoted".into(),
            key: builds.first().map(|b| b.key.clone()).unwrap_or_default(),
            reason,
            rows: builds.iter().map(|b| b.rows).sum(),
            bytes: builds.iter().map(|b| b.bytes).sum(),
            spilled_bytes: 0,
            checks: builds
                .iter()
                .flat_map(|b| b.checks.values().cloned())
                .collect(),
            duration_ms: 0,
            error: forced_past.map(String::from),
            engine: None,
            logs: Vec::new(),
            failed_attempts: Vec::new(),
            build: builds.first().map(|b| b.build.clone()),
            partitions: Vec::new(),
            partitions_total: None,
        }],
        stages: vec![StageRecord {
            stage,
            committed: true,
            changed: true,
            reason: None,
        }],
        requests: None,
        origin: crate::store::runs::Origin::here(),
    }
}
