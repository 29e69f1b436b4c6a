//! Early cutoff downstream: a task whose key changed only because inputs were rebuilt, and
//! rebuilt with the same content as the builds its committed tables were made from, does not
//! run. Its committed files are copied (hard links on a local store, a server-side copy on an
//! object store) into a build for its new key, so the build is complete on its own: the old
//! one can be collected, and a later run finds the new key built.

use std::collections::HashMap;

use super::{Shared, TaskError};
use crate::flow::Action;
use crate::names::TableName;
use crate::store::TableBuild;

/// A task rebuilt whose tables came out as committed: what reads them need not run.
pub const REBUILT_UNCHANGED: &str = "rebuilt, unchanged";
/// A task that did not run: its inputs were rebuilt with the content it was built from.
pub const INPUTS_UNCHANGED: &str = "inputs rebuilt unchanged";

/// `builds`, just written, hold what their tables' committed builds held.
pub fn same_as_committed(
    builds: &[TableBuild],
    committed: &HashMap<TableName, TableBuild>,
) -> bool {
    !builds.is_empty()
        && builds.iter().all(|b| {
            committed
                .get(&TableName::new(&b.stage, &b.table))
                .is_some_and(|c| c.key != b.key && b.content.is_some() && c.content == b.content)
        })
}

/// The committed builds of task `index` that stand for its new key, when nothing it reads
/// changed in content; `inputs` are the builds it would read now, `committed` what was
/// committed when the run started.
pub fn unchanged(
    shared: &Shared,
    index: usize,
    inputs: &[(TableName, TableBuild)],
    committed: &HashMap<TableName, TableBuild>,
) -> Option<Vec<TableBuild>> {
    let (task, step) = (&shared.flow.tasks[index], &shared.steps[index]);
    if step.action != Action::Run || step.forced || !step.cleared_partitions.is_empty() {
        return None;
    }
    let old: Vec<TableBuild> = task
        .outputs()
        .map(|o| committed.get(&o).cloned())
        .collect::<Option<_>>()?;
    if old.iter().any(|b| b.partial) || inputs.iter().any(|(_, b)| b.partial) {
        return None;
    }
    let then = &old.first()?.parts;
    let mut rest = step.parts.clone();
    rest.inputs.clone_from(&then.inputs);
    if rest != *then || !step.parts.inputs.keys().eq(then.inputs.keys()) {
        return None;
    }
    for (name, key) in &step.parts.inputs {
        if then.inputs.get(name) == Some(key) {
            continue;
        }
        let (table, now) = inputs.iter().find(|(t, _)| t.to_string() == *name)?;
        let before = committed
            .get(table)
            .filter(|b| Some(&b.key) == then.inputs.get(name))?;
        if now.content.is_none() || now.content != before.content {
            return None;
        }
    }
    Some(old)
}

/// `old` as builds of the task's new key, written beside its earlier builds.
pub async fn rekey(
    shared: &Shared,
    index: usize,
    old: Vec<TableBuild>,
) -> Result<Vec<TableBuild>, TaskError> {
    let step = &shared.steps[index];
    let (store, layout) = (&shared.store, &shared.store.layout);
    let mut builds = Vec::with_capacity(old.len());
    for b in old {
        let name = format!("{}.{}", b.stage, b.table);
        let failed = |e| TaskError::store(format!("keeping {name}"), e);
        let from_dir = format!(
            "{}/",
            layout.relative(&layout.build_dir(&b.stage, &b.table, b.key.as_str(), &b.build))
        );
        let to_dir = layout.build_dir(&b.stage, &b.table, step.key.as_str(), &shared.run.id);
        let mut files = Vec::with_capacity(b.files.len());
        for file in &b.files {
            // A partition the build keeps in an earlier build's folder stays there.
            let Some(inside) = file.strip_prefix(&from_dir) else {
                files.push(file.clone());
                continue;
            };
            let to = inside
                .split('/')
                .fold(to_dir.clone(), |path, part| path.join(part));
            store
                .copy(&layout.absolute(file), &to)
                .await
                .map_err(failed)?;
            files.push(layout.relative(&to));
        }
        let build = TableBuild {
            key: step.key.clone(),
            build: shared.run.id.clone(),
            parts: step.parts.clone(),
            files,
            built_at: chrono::Utc::now().to_rfc3339(),
            run_id: shared.run.id.clone(),
            ..b
        };
        let record =
            layout.build_record(&build.stage, &build.table, step.key.as_str(), &build.build);
        store.put_json(&record, &build).await.map_err(failed)?;
        let newest = layout.key_record(&build.stage, &build.table, step.key.as_str());
        store.put_json(&newest, &build).await.map_err(failed)?;
        builds.push(build);
    }
    Ok(builds)
}
