//! Every stage manifest as it was committed, so that committed tables can be read as of an
//! earlier run (`weir sql --as-of RUN`).
//!
//! The live manifest stays the source of truth; a copy of it goes to
//! `history/<stage>/<run_id>.json` right after it is committed. A process killed between the
//! two leaves the copy missing, and the next run (or reader as of a run) repairs it from the
//! live manifest, which is still the one that run committed. Runs hold the instance's lock and
//! their ids sort by start time, so the stage as committed at the end of run R is its copy with
//! the greatest run id not after R's.

use std::collections::BTreeMap;

use super::manifest::StageManifest;
use super::{Store, StoreError};

/// A run to read the store as of, resolved from what a user typed (`RunSpec::resolve`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AsOf {
    pub run_id: String,
}

impl Store {
    /// Keep a copy of a manifest just committed. It cannot fail the run: the stage is already
    /// committed, and a missing copy is made again from the live manifest.
    pub async fn keep_history(&self, manifest: &StageManifest) {
        let path = self.layout.history(&manifest.stage, &manifest.run_id);
        if let Err(e) = self.put_json(&path, manifest).await {
            tracing::warn!(error = %e, stage = %manifest.stage, "cannot keep the manifest's history copy");
        }
    }

    /// Finish the commits a killed process left half done: a live manifest without its
    /// history copy may lack its tables' Delta versions too (they come before the copy), so
    /// those are published (an up-to-date table is left alone), then the copy is made. One
    /// request a stage when nothing is missing.
    pub async fn repair_history<'a>(
        &self,
        manifests: impl IntoIterator<Item = &'a StageManifest>,
    ) -> Result<(), StoreError> {
        for m in manifests {
            if m.run_id.is_empty() {
                continue;
            }
            let path = self.layout.history(&m.stage, &m.run_id);
            if self.head(&path).await?.is_none() && self.publish_delta(m, None).await {
                self.put_json(&path, m).await?;
            }
        }
        Ok(())
    }

    /// Every stage as committed at the end of run `as_of`: a stage first committed after it is
    /// absent. The live manifests count too, so a missing copy is never a missing commit.
    pub async fn manifests_as_of(
        &self,
        as_of: &AsOf,
    ) -> Result<BTreeMap<String, StageManifest>, StoreError> {
        let live = self.read_manifests().await?;
        let mut chosen: BTreeMap<String, String> = BTreeMap::new();
        for (stage, run) in self.history_entries().await? {
            keep_latest(&mut chosen, stage, run, &as_of.run_id);
        }
        for (stage, m) in &live {
            keep_latest(&mut chosen, stage.clone(), m.run_id.clone(), &as_of.run_id);
        }
        let mut out = BTreeMap::new();
        for (stage, run) in chosen {
            let m = match live.get(&stage).filter(|m| m.run_id == run) {
                Some(m) => Some(m.clone()),
                None => self.get_json(&self.layout.history(&stage, &run)).await?,
            };
            if let Some(m) = m {
                out.insert(stage, m);
            }
        }
        Ok(out)
    }

    /// Every history copy, as (stage, run id), oldest first within a stage.
    pub async fn history_entries(&self) -> Result<Vec<(String, String)>, StoreError> {
        let mut out: Vec<(String, String)> = self
            .list(&self.layout.history_dir())
            .await?
            .into_iter()
            .filter_map(|meta| {
                let mut parts: Vec<String> = meta
                    .location
                    .parts()
                    .map(|p| p.as_ref().to_string())
                    .collect();
                let file = parts.pop()?;
                let stage = parts.pop()?;
                Some((stage, file.strip_suffix(".json")?.to_string()))
            })
            .collect();
        out.sort();
        Ok(out)
    }

    /// What the last `runs` runs left committed: for each stage, its copies from those runs
    /// and the one in effect when the first of them started. `cache gc` keeps their builds, so
    /// that `--as-of` and `rollback` can go back that far.
    pub async fn recent_manifests(&self, runs: usize) -> Result<Vec<StageManifest>, StoreError> {
        let ids = self.run_ids().await?;
        if runs == 0 || ids.is_empty() {
            return Ok(Vec::new());
        }
        let oldest = &ids[runs.min(ids.len()) - 1];
        let mut kept: Vec<(String, String)> = Vec::new();
        let mut before: BTreeMap<String, String> = BTreeMap::new();
        for (stage, run) in self.history_entries().await? {
            if run.as_str() >= oldest.as_str() {
                kept.push((stage, run));
            } else {
                before.insert(stage, run); // entries come oldest first: the last one wins
            }
        }
        kept.extend(before);
        let mut out = Vec::with_capacity(kept.len());
        for (stage, run) in kept {
            if let Some(m) = self.get_json(&self.layout.history(&stage, &run)).await? {
                out.push(m);
            }
        }
        Ok(out)
    }

    /// Each stage's copies, oldest first.
    pub async fn stage_histories(
        &self,
    ) -> Result<BTreeMap<String, Vec<StageManifest>>, StoreError> {
        let mut out: BTreeMap<String, Vec<StageManifest>> = BTreeMap::new();
        for (stage, run) in self.history_entries().await? {
            let path = self.layout.history(&stage, &run);
            if let Some(m) = self.get_json::<StageManifest>(&path).await? {
                out.entry(stage).or_default().push(m);
            }
        }
        Ok(out)
    }
}

fn keep_latest(chosen: &mut BTreeMap<String, String>, stage: String, run: String, cut: &str) {
    if run.as_str() > cut {
        return;
    }
    let slot = chosen.entry(stage).or_default();
    if run > *slot {
        *slot = run;
    }
}

#[cfg(test)]
mod tests {
    use super::keep_latest;
    use std::collections::BTreeMap;

    #[test]
    fn the_latest_commit_not_after_the_run_is_chosen() {
        let mut chosen = BTreeMap::new();
        for run in ["20261201T1", "20261203T1", "20261202T1"] {
            keep_latest(&mut chosen, "s".into(), run.into(), "20261202T9");
        }
        keep_latest(
            &mut chosen,
            "late".into(),
            "20261205T1".into(),
            "20261202T9",
        );
        assert_eq!(chosen.get("s").map(String::as_str), Some("20261202T1"));
        assert!(!chosen.contains_key("late"));
    }
}
