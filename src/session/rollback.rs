//! `weir rollback RUN`: commit again the builds that were committed at the end of an earlier
//! run, without computing anything, under the instance's lock, as a run of its own.

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

use crate::report::RolledBack;
use crate::store::lock::Lock;
use crate::store::runs::{Origin, RunRecord, StageRecord, TaskRecord, new_run_id};
use crate::store::{StageManifest, Store};
use crate::{Error, Result};

pub struct RollbackOptions {
    /// `RUN` as typed: an id or its start, `last~N`, a time.
    pub to: String,
    /// Only these stages (all when empty).
    pub stages: Vec<String>,
    pub lock_timeout: Duration,
    /// The script, for the run record.
    pub script: String,
}

/// Roll the instance's stages (or `opts.stages`) back to the end of run `opts.to`. Stage by
/// stage, each commit atomic; one cut short is finished by running the same rollback again.
pub async fn rollback(
    store: &Store,
    opts: &RollbackOptions,
    on_wait: impl FnOnce(&str),
) -> Result<RolledBack> {
    let started = Instant::now();
    let started_at = chrono::Utc::now().to_rfc3339();
    let run_id = new_run_id();
    let lock = Lock::acquire(store, &run_id, opts.lock_timeout, on_wait).await?;
    lock.hold(async {
        let to = super::as_of::resolve(store, &opts.to).await?;
        let then = super::as_of::manifests(store, &to).await?;
        let now = store.read_manifests().await?;
        let chosen = chosen_stages(&opts.stages, &then, &now)?;
        let mut done = RolledBack {
            run_id: run_id.clone(),
            to: to.run_id.clone(),
            stages: Vec::new(),
            unchanged: Vec::new(),
            newer: Vec::new(),
            readers: readers(&chosen, &now),
        };
        let mut tasks = Vec::new();
        let mut stage_records = Vec::new();
        for stage in &chosen {
            let Some(old) = then.get(stage) else {
                done.newer.push(stage.clone());
                continue;
            };
            let current = now.get(stage);
            if current.is_some_and(|c| c.same_builds(old)) {
                done.unchanged.push(stage.clone());
                continue;
            }
            let mut manifest = old.clone();
            manifest.run_id = run_id.clone();
            manifest.committed_at = chrono::Utc::now().to_rfc3339();
            let changed = manifest.changed_since(current);
            store.commit_manifest(&manifest, current).await?;
            tasks.extend(
                changed
                    .iter()
                    .filter_map(|t| manifest.tables.get(t))
                    .map(|b| TaskRecord {
                        task: b.task.clone(),
                        stage: b.stage.clone(),
                        status: "rolled_back".into(),
                        key: b.key.clone(),
                        reason: vec![format!("rolled back to run {}", to.run_id)],
                        rows: b.rows,
                        bytes: b.bytes,
                        spilled_bytes: 0,
                        checks: Vec::new(),
                        duration_ms: 0,
                        error: None,
                        engine: None,
                        logs: Vec::new(),
                        failed_attempts: Vec::new(),
                        build: Some(b.build.clone()),
                        partitions: Vec::new(),
                        partitions_total: None,
                    }),
            );
            stage_records.push(StageRecord {
                stage: stage.clone(),
                committed: true,
                changed: true,
                reason: None,
            });
            done.stages.push((stage.clone(), changed));
        }
        store.settle().await;
        store
            .write_run(&RunRecord {
                run_id: run_id.clone(),
                instance: store.layout.instance().to_string(),
                script: opts.script.clone(),
                started_at,
                ended_at: chrono::Utc::now().to_rfc3339(),
                duration_ms: started.elapsed().as_millis() as u64,
                ok: true,
                tasks,
                stages: stage_records,
                requests: None,
                origin: Origin::here(),
            })
            .await?;
        Ok(done)
    })
    .await
}

/// The stages to roll back: the ones named (each must have been committed then or now), or
/// every stage committed then or now.
fn chosen_stages(
    named: &[String],
    then: &BTreeMap<String, StageManifest>,
    now: &BTreeMap<String, StageManifest>,
) -> Result<Vec<String>> {
    let known: BTreeSet<&String> = then.keys().chain(now.keys()).collect();
    if named.is_empty() {
        return Ok(known.into_iter().cloned().collect());
    }
    for s in named {
        if !known.contains(s) {
            let list: Vec<&str> = known.iter().map(|s| s.as_str()).collect();
            return Err(Error::usage(
                format!("stage `{s}` was never committed in this instance"),
                format!("stages: {}", list.join(", ")),
            ));
        }
    }
    Ok(named.to_vec())
}

/// Stages left as they are whose tables read a table of a rolled-back stage: their builds
/// were made from that stage's builds as they are now.
fn readers(chosen: &[String], now: &BTreeMap<String, StageManifest>) -> Vec<(String, String)> {
    let rolled: BTreeSet<&str> = chosen.iter().map(String::as_str).collect();
    let mut out = BTreeSet::new();
    for (stage, m) in now.iter().filter(|(s, _)| !rolled.contains(s.as_str())) {
        for b in m.tables.values() {
            for input in b.parts.inputs.keys() {
                if let Some((read, _)) = input.split_once('.')
                    && rolled.contains(read)
                {
                    out.insert((stage.clone(), read.to_string()));
                }
            }
        }
    }
    out.into_iter().collect()
}
