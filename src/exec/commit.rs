//! Stage commits during a run. A stage commits once all its tasks succeeded and every build it
//! read from another stage is committed: by that stage in this run, or before the run. So the
//! committed store is one consistent snapshot: no committed table was derived from a build a
//! reader cannot see. A stage that read a build its stage did not commit keeps its manifest as
//! it was; its builds stay stored and the next run reuses them by key.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use super::{Shared, Status, TaskOutcome};
use crate::flow::Flow;
use crate::names::TableName;
use crate::report::Printer;
use crate::store::{CacheKey, StageManifest, StoreError};

pub struct StageOutcome {
    pub stage: String,
    pub committed: bool,
    /// The manifest changed (a no-op run commits nothing new).
    pub changed: bool,
    /// Why a stage whose own tasks all succeeded was not committed.
    pub reason: Option<String>,
}

impl StageOutcome {
    fn kept(stage: &str, reason: Option<String>) -> Self {
        Self {
            stage: stage.to_string(),
            committed: false,
            changed: false,
            reason,
        }
    }
}

/// Where a stage stands while the run goes on.
enum Standing {
    /// Some of its tasks are still to finish.
    Open,
    /// Its tasks are done and fine, but it read builds of these stages, which are not decided.
    Waiting(BTreeSet<String>),
    Committed,
    NotCommitted,
}

/// Per-stage bookkeeping of a run: which stages are decided, and the manifests as committed.
pub struct Stages {
    /// Stages in flow order, with their tasks.
    tasks: Vec<(String, Vec<usize>)>,
    /// As committed: when the run started, then as this run commits.
    manifests: BTreeMap<String, StageManifest>,
    standing: HashMap<String, Standing>,
    outcomes: Vec<StageOutcome>,
    declared: HashMap<String, Vec<String>>,
    /// Stages not to commit even when all their tasks succeed: the REPL's tainted ones.
    hold: BTreeSet<String>,
}

/// What deciding one stage came to.
enum Verdict {
    Commit(StageManifest),
    Refuse(Option<String>),
    /// Held in the REPL: it has tainted tasks.
    Hold,
    Wait(BTreeSet<String>),
}

impl Stages {
    pub fn new(
        flow: &Flow,
        manifests: BTreeMap<String, StageManifest>,
        hold: BTreeSet<String>,
    ) -> Self {
        let mut declared: HashMap<String, Vec<String>> = HashMap::new();
        for t in &flow.tasks {
            declared
                .entry(t.decl.stage.clone())
                .or_default()
                .extend(t.decl.outputs.iter().cloned());
        }
        let tasks: Vec<(String, Vec<usize>)> = flow
            .stages()
            .into_iter()
            .map(|s| {
                let idx = (0..flow.tasks.len())
                    .filter(|&i| flow.tasks[i].decl.stage == s)
                    .collect();
                (s, idx)
            })
            .collect();
        let standing = tasks
            .iter()
            .map(|(s, _)| (s.clone(), Standing::Open))
            .collect();
        Self {
            tasks,
            manifests,
            standing,
            outcomes: Vec::new(),
            declared,
            hold,
        }
    }

    /// How each decided stage came out, in flow order.
    pub fn into_outcomes(mut self) -> Vec<StageOutcome> {
        let order: Vec<&String> = self.tasks.iter().map(|(s, _)| s).collect();
        self.outcomes
            .sort_by_key(|o| order.iter().position(|s| **s == o.stage));
        self.outcomes
    }

    /// Decide every stage that can be decided now: commit it, or keep it as it was. With
    /// `last`, no task will finish any more: stages that only wait for each other (they read
    /// each other's tables) commit together, and stages waiting for one that did not commit
    /// do not.
    pub async fn commit_ready(
        &mut self,
        shared: &Shared,
        done: &[Option<TaskOutcome>],
        printer: &Printer,
        last: bool,
    ) -> Result<(), StoreError> {
        loop {
            let mut progress = false;
            for s in 0..self.tasks.len() {
                let (stage, idx) = &self.tasks[s];
                if !matches!(self.standing[stage], Standing::Open | Standing::Waiting(_))
                    || idx.iter().any(|&i| done[i].is_none())
                {
                    continue;
                }
                let stage = stage.clone();
                match self.verdict(shared, s, done) {
                    Verdict::Commit(manifest) => self.commit(shared, manifest, printer).await?,
                    Verdict::Refuse(reason) => self.refuse(&stage, reason, printer),
                    Verdict::Hold => {
                        printer.stage_held(&stage);
                        self.standing.insert(stage.clone(), Standing::NotCommitted);
                        self.outcomes.push(StageOutcome::kept(&stage, None));
                    }
                    Verdict::Wait(on) => {
                        self.standing.insert(stage, Standing::Waiting(on));
                        continue;
                    }
                }
                progress = true;
            }
            if !progress {
                break;
            }
        }
        if last {
            self.settle_waiting(shared, done, printer).await?;
        }
        Ok(())
    }

    /// At the end of the run: a stage waiting for a stage that will not commit does not
    /// commit; the rest wait only for each other and commit one after another.
    async fn settle_waiting(
        &mut self,
        shared: &Shared,
        done: &[Option<TaskOutcome>],
        printer: &Printer,
    ) -> Result<(), StoreError> {
        loop {
            let waiting: BTreeSet<String> = self.waiting().map(|(s, _)| s.clone()).collect();
            let blocked = self
                .waiting()
                .find_map(|(s, on)| on.iter().find(|o| !waiting.contains(*o)).map(|o| (s, o)));
            let Some((stage, on)) = blocked else { break };
            let (stage, on) = (stage.clone(), on.clone());
            let reason = self.unread(shared, &stage, &on, done);
            self.refuse(&stage, Some(reason), printer);
        }
        let group: Vec<usize> = (0..self.tasks.len())
            .filter(|&s| matches!(self.standing[&self.tasks[s].0], Standing::Waiting(_)))
            .collect();
        for s in group {
            let manifest = self.manifest(shared, s, done);
            self.commit(shared, manifest, printer).await?;
        }
        Ok(())
    }

    fn waiting(&self) -> impl Iterator<Item = (&String, &BTreeSet<String>)> {
        self.tasks
            .iter()
            .filter_map(|(s, _)| match &self.standing[s] {
                Standing::Waiting(on) => Some((s, on)),
                _ => None,
            })
    }

    fn verdict(&self, shared: &Shared, s: usize, done: &[Option<TaskOutcome>]) -> Verdict {
        let (stage, idx) = &self.tasks[s];
        let ok = idx
            .iter()
            .all(|&i| done[i].as_ref().is_some_and(|o| o.status.ok()));
        if !ok {
            return Verdict::Refuse(None);
        }
        if self.hold.contains(stage) {
            return Verdict::Hold;
        }
        let mut wait = BTreeSet::new();
        for (input, key) in reads(shared, idx, done) {
            if input.stage == *stage || self.committed_key(&input) == Some(key) {
                continue;
            }
            match self.standing[&input.stage] {
                Standing::Committed | Standing::NotCommitted => {
                    return Verdict::Refuse(Some(format!("reads uncommitted {input}")));
                }
                Standing::Open | Standing::Waiting(_) => {
                    wait.insert(input.stage.clone());
                }
            }
        }
        match wait.is_empty() {
            true => Verdict::Commit(self.manifest(shared, s, done)),
            false => Verdict::Wait(wait),
        }
    }

    /// Why `stage` cannot commit: the first table of `on` it read that is not committed.
    fn unread(
        &self,
        shared: &Shared,
        stage: &str,
        on: &str,
        done: &[Option<TaskOutcome>],
    ) -> String {
        let idx = self
            .tasks
            .iter()
            .find(|(s, _)| s == stage)
            .map(|(_, idx)| idx.as_slice())
            .unwrap_or_default();
        reads(shared, idx, done)
            .into_iter()
            .find(|(input, key)| input.stage == on && self.committed_key(input) != Some(key))
            .map(|(input, _)| format!("reads uncommitted {input}"))
            .unwrap_or_else(|| format!("reads uncommitted tables of {on}"))
    }

    /// The key `input` is committed with now.
    fn committed_key(&self, input: &TableName) -> Option<&CacheKey> {
        let manifest = self.manifests.get(&input.stage)?;
        manifest.tables.get(&input.table).map(|b| &b.key)
    }

    /// The stage's manifest with this run's builds in it.
    fn manifest(&self, shared: &Shared, s: usize, done: &[Option<TaskOutcome>]) -> StageManifest {
        let (stage, idx) = &self.tasks[s];
        let old = self.manifests.get(stage).cloned().unwrap_or_default();
        let mut new = StageManifest {
            stage: stage.clone(),
            run_id: shared.run.id.clone(),
            committed_at: chrono::Utc::now().to_rfc3339(),
            tables: old.tables,
        };
        let declared = &self.declared[stage];
        // A table this flow no longer declares leaves the stage; another flow's stays.
        new.tables.retain(|name, b| {
            declared.contains(name) || (!b.flow.is_empty() && b.flow != shared.run.flow_name)
        });
        for outcome in idx.iter().filter_map(|&i| done[i].as_ref()) {
            if matches!(outcome.status, Status::NotSelected) {
                continue;
            }
            for build in &outcome.builds {
                new.tables.insert(build.table.clone(), build.clone());
            }
        }
        new
    }

    async fn commit(
        &mut self,
        shared: &Shared,
        new: StageManifest,
        printer: &Printer,
    ) -> Result<(), StoreError> {
        let stage = new.stage.clone();
        let old = self.manifests.get(&stage).cloned().unwrap_or_default();
        let changed = !new.same_builds(&old);
        if changed {
            shared.store.commit_manifest(&new, Some(&old)).await?;
            self.manifests.insert(stage.clone(), new);
        }
        printer.stage_committed(&stage, changed);
        self.standing.insert(stage.clone(), Standing::Committed);
        self.outcomes.push(StageOutcome {
            stage,
            committed: true,
            changed,
            reason: None,
        });
        Ok(())
    }

    fn refuse(&mut self, stage: &str, reason: Option<String>, printer: &Printer) {
        printer.stage_not_committed(stage, reason.as_deref());
        self.standing
            .insert(stage.to_string(), Standing::NotCommitted);
        self.outcomes.push(StageOutcome::kept(stage, reason));
    }
}

/// The builds of other tables that a stage's new builds were made from: each input of its
/// tasks with the key of the build read. A task outside the selection commits nothing new.
fn reads<'a>(
    shared: &'a Shared,
    idx: &[usize],
    done: &'a [Option<TaskOutcome>],
) -> Vec<(TableName, &'a CacheKey)> {
    let mut out = Vec::new();
    for &i in idx {
        let Some(outcome) = &done[i] else { continue };
        if matches!(outcome.status, Status::NotSelected) {
            continue;
        }
        let task = &shared.flow.tasks[i];
        for build in &outcome.builds {
            for input in &task.inputs {
                if let Some(key) = build.parts.inputs.get(&input.to_string()) {
                    out.push((input.clone(), key));
                }
            }
        }
    }
    out
}
