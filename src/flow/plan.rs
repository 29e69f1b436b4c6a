//! The plan: for every task its cache key, and whether to reuse a stored build or run.
//! Keys depend only on code, options, parameters, external fingerprints and the keys of the
//! inputs, so the whole plan is known before any task runs.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::Path;

use datafusion::execution::context::SessionState;

use super::Flow;
use crate::script::{TableName, TaskKind};
use crate::store::cache_key::FORMAT_VERSION;
use crate::store::{CacheKey, KeyParts, StageManifest, Store, StoreError, TableBuild, sources};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    /// Every output is stored for this key: no work.
    Reuse,
    Run,
    /// Outside `--select`: neither run nor committed anew.
    NotSelected,
}

/// How a task stands against what is committed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Freshness {
    Fresh,
    /// Committed with another key; the reasons say which parts changed.
    Stale(Vec<String>),
    /// Never committed, but a complete build for this key is stored (a run that failed later).
    Uncommitted,
    Never,
}

pub struct Step {
    pub task: usize,
    pub parts: KeyParts,
    pub key: CacheKey,
    pub action: Action,
    pub freshness: Freshness,
    /// The builds of the outputs when they are stored for this key (or, for a task outside
    /// the selection, as committed).
    pub builds: Vec<TableBuild>,
}

impl Step {
    pub fn reasons(&self, forced: bool) -> Vec<String> {
        match &self.freshness {
            _ if forced && self.action == Action::Run => vec!["forced".into()],
            Freshness::Fresh => vec![],
            Freshness::Stale(why) => why.clone(),
            Freshness::Uncommitted => vec!["built, not committed".into()],
            Freshness::Never => vec!["never built".into()],
        }
    }
}

pub struct Plan {
    pub steps: Vec<Step>,
    pub manifests: BTreeMap<String, StageManifest>,
}

pub struct PlanOptions<'a> {
    pub selected: &'a BTreeSet<usize>,
    pub force: bool,
    pub script_dir: &'a Path,
}

pub async fn plan(
    flow: &Flow,
    store: &Store,
    state: &SessionState,
    opts: PlanOptions<'_>,
) -> Result<Plan, StoreError> {
    let mut manifests = BTreeMap::new();
    for stage in flow.stages() {
        if let Some(m) = store.read_manifest(&stage).await? {
            manifests.insert(stage, m);
        }
    }
    let external = fingerprints(flow, state, opts.script_dir).await;

    // The key each table is read at, filled in dependency order.
    let mut table_keys: HashMap<TableName, String> = HashMap::new();
    let mut steps = Vec::with_capacity(flow.tasks.len());
    for (i, task) in flow.tasks.iter().enumerate() {
        let inputs = task
            .inputs
            .iter()
            .map(|t| {
                (
                    t.to_string(),
                    table_keys.get(t).cloned().unwrap_or_default(),
                )
            })
            .collect();
        let parts = KeyParts {
            format: FORMAT_VERSION,
            kind: task.decl.kind.label().to_string(),
            code: task.code.clone(),
            options: task.decl.opts.keyed.clone(),
            inputs,
            external: external.get(&i).cloned(),
            params: task.params.clone(),
        };
        let key = parts.key();
        let committed: Vec<Option<&TableBuild>> = task
            .outputs()
            .map(|o| {
                manifests
                    .get(&o.stage)
                    .and_then(|m: &StageManifest| m.tables.get(&o.table))
            })
            .collect();
        let mut freshness = if committed.iter().all(|c| c.is_some_and(|b| b.key == key.0)) {
            Freshness::Fresh
        } else if let Some(old) = committed.iter().flatten().next() {
            Freshness::Stale(parts.changes_since(&old.parts))
        } else {
            Freshness::Never
        };
        let mut builds: Vec<TableBuild> =
            committed.iter().flatten().map(|b| (*b).clone()).collect();
        if freshness != Freshness::Fresh {
            builds = stored_builds(store, task, &key).await?;
            if !builds.is_empty() && freshness == Freshness::Never {
                freshness = Freshness::Uncommitted;
            }
        }
        let selected = opts.selected.contains(&i);
        let action = match () {
            _ if !selected => Action::NotSelected,
            _ if opts.force => Action::Run,
            _ if builds.len() == task.decl.outputs.len()
                && builds.iter().all(|b| b.key == key.0) =>
            {
                Action::Reuse
            }
            _ => Action::Run,
        };
        for (out, committed) in task.outputs().zip(&committed) {
            // A task outside the selection is read as committed, if it is.
            let k = match (action, committed) {
                (Action::NotSelected, Some(b)) => b.key.clone(),
                _ => key.0.clone(),
            };
            table_keys.insert(out, k);
        }
        if action == Action::NotSelected {
            builds = committed.iter().flatten().map(|b| (*b).clone()).collect();
        }
        steps.push(Step {
            task: i,
            parts,
            key,
            action,
            freshness,
            builds,
        });
    }
    Ok(Plan { steps, manifests })
}

/// Complete builds of every output at `key`, or none if any output is missing.
async fn stored_builds(
    store: &Store,
    task: &super::Task,
    key: &CacheKey,
) -> Result<Vec<TableBuild>, StoreError> {
    let mut out = Vec::new();
    for o in task.outputs() {
        match store.read_build(&o.stage, &o.table, &key.0).await? {
            Some(b) => out.push(b),
            None => return Ok(Vec::new()),
        }
    }
    Ok(out)
}

/// Fingerprints of every load task's files, listed concurrently. A location that cannot be
/// listed gets a fingerprint that never matches, so the task runs and reports the error.
async fn fingerprints(flow: &Flow, state: &SessionState, dir: &Path) -> HashMap<usize, String> {
    let loads = flow
        .tasks
        .iter()
        .enumerate()
        .filter_map(|(i, t)| match &t.decl.kind {
            TaskKind::Load(spec) => Some((i, spec)),
            _ => None,
        });
    let futures = loads.map(|(i, spec)| async move {
        let location = sources::resolve(&spec.location, dir);
        let fp = match sources::fingerprint(state, &location, spec.format.extension()).await {
            Ok((fp, _)) => fp,
            Err(e) => format!(
                "unreadable {}: {e}",
                chrono::Utc::now().timestamp_nanos_opt().unwrap_or(0)
            ),
        };
        (i, fp)
    });
    futures::future::join_all(futures)
        .await
        .into_iter()
        .collect()
}
