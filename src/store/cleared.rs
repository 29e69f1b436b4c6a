//! Tasks marked by `weir clear` (`marts.daily`, or some of its partitions:
//! `marts.daily@day=2026-12-01..2026-12-07`): the next run that selects them rebuilds them. The mark is
//! removed only once the rebuild is committed, and clearing deletes nothing, so readers keep
//! seeing the committed tables until then.

use std::collections::{BTreeMap, BTreeSet};

use super::{CacheKey, Store, StoreError};

impl Store {
    pub async fn read_cleared(&self) -> Result<BTreeSet<String>, StoreError> {
        Ok(self
            .get_json::<BTreeSet<String>>(&self.layout.cleared())
            .await?
            .unwrap_or_default())
    }

    /// Mark `tasks` as cleared (callers hold the instance lock).
    pub async fn clear(&self, tasks: &BTreeSet<String>) -> Result<(), StoreError> {
        let mut all = self.read_cleared().await?;
        all.extend(tasks.iter().cloned());
        self.put_json(&self.layout.cleared(), &all).await
    }

    /// Remove the marks of `tasks` (rebuilt and committed); `all` are the marks read under
    /// the same lock, so nothing has changed them since.
    pub async fn uncleared(
        &self,
        all: &BTreeSet<String>,
        tasks: &BTreeSet<String>,
    ) -> Result<(), StoreError> {
        // A task's mark, or a mark of some of its partitions (`task@day=...`).
        let task_of = |mark: &String| mark.split('@').next().unwrap_or_default().to_string();
        let rest: BTreeSet<String> = all
            .iter()
            .filter(|m| !tasks.contains(&task_of(m)))
            .cloned()
            .collect();
        if rest.len() == all.len() {
            return Ok(());
        }
        if rest.is_empty() {
            self.delete(&self.layout.cleared()).await
        } else {
            self.put_json(&self.layout.cleared(), &rest).await
        }
    }
}

/// Tasks whose committed build was promoted from the REPL, with that build's key: `status`
/// shows them as tainted until a normal run rebuilds and commits them.
impl Store {
    pub async fn read_tainted(&self) -> Result<BTreeMap<String, CacheKey>, StoreError> {
        Ok(self
            .get_json::<BTreeMap<String, CacheKey>>(&self.layout.tainted())
            .await?
            .unwrap_or_default())
    }

    pub async fn taint(&self, task: &str, key: &CacheKey) -> Result<(), StoreError> {
        let mut all = self.read_tainted().await?;
        all.insert(task.to_string(), key.clone());
        self.put_json(&self.layout.tainted(), &all).await
    }

    /// Remove the marks of `tasks` (rebuilt from the script and committed).
    pub async fn untaint(&self, tasks: &BTreeSet<String>) -> Result<(), StoreError> {
        let mut all = self.read_tainted().await?;
        let before = all.len();
        all.retain(|t, _| !tasks.contains(t));
        match (before == all.len(), all.is_empty()) {
            (true, _) => Ok(()),
            (false, true) => self.delete(&self.layout.tainted()).await,
            (false, false) => self.put_json(&self.layout.tainted(), &all).await,
        }
    }
}
