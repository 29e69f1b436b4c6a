//! What the store holds: every build folder under `tables/`, with its size and age, and which
//! of them are still needed. `weir cache list` shows it; `weir cache gc` deletes the rest.

use std::collections::{BTreeMap, BTreeSet};

use chrono::{DateTime, Utc};
use object_store::path::Path as ObjectPath;

use super::{Store, StoreError};

/// One build folder: `tables/<stage>/<table>/<key>/`.
#[derive(Debug, Clone)]
pub struct StoredBuild {
    pub stage: String,
    pub table: String,
    /// The folder name: a cache key, or `key-N` for a repeated REPL intermediate.
    pub key: String,
    pub bytes: u64,
    pub files: usize,
    pub modified: DateTime<Utc>,
    /// `_build.json` is there: the build finished.
    pub complete: bool,
    pub prefix: ObjectPath,
}

impl StoredBuild {
    /// The task key the folder belongs to (an intermediate's repeats share it).
    pub fn task_key(&self) -> &str {
        self.key.split_once('-').map_or(&self.key, |(k, _)| k)
    }
}

/// Why a build is kept or can go.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Standing {
    /// A committed table, or an intermediate of a committed task.
    Committed,
    /// What the script would build now: a no-op run reuses it.
    Current,
    /// Neither: kept only so going back to old code revives it.
    Old,
    /// Never finished (a killed run); the next build of that key replaces it anyway.
    Incomplete,
}

impl Standing {
    pub fn label(self) -> &'static str {
        match self {
            Standing::Committed => "committed",
            Standing::Current => "current",
            Standing::Old => "old",
            Standing::Incomplete => "incomplete",
        }
    }
}

impl Store {
    /// Every build folder, in path order.
    pub async fn stored_builds(&self) -> Result<Vec<StoredBuild>, StoreError> {
        let root = self.layout.instance_root().clone().join("tables");
        let mut builds: BTreeMap<String, StoredBuild> = BTreeMap::new();
        for meta in self.list(&root).await? {
            let Some(parts) = meta.location.prefix_match(&root) else {
                continue;
            };
            let parts: Vec<String> = parts.map(|p| p.as_ref().to_string()).collect();
            let [stage, table, key, file] = parts.as_slice() else {
                continue;
            };
            let prefix = root
                .clone()
                .join(stage.as_str())
                .join(table.as_str())
                .join(key.as_str());
            let entry = builds
                .entry(prefix.to_string())
                .or_insert_with(|| StoredBuild {
                    stage: stage.clone(),
                    table: table.clone(),
                    key: key.clone(),
                    bytes: 0,
                    files: 0,
                    modified: meta.last_modified,
                    complete: false,
                    prefix,
                });
            entry.bytes += meta.size;
            entry.files += 1;
            entry.modified = entry.modified.max(meta.last_modified);
            entry.complete |= file == "_build.json";
        }
        Ok(builds.into_values().collect())
    }
}

/// How each build stands, given the keys of committed tasks and of the script's current plan.
pub fn standing(
    build: &StoredBuild,
    committed: &BTreeSet<String>,
    current: &BTreeSet<String>,
) -> Standing {
    if !build.complete {
        Standing::Incomplete
    } else if committed.contains(build.task_key()) {
        Standing::Committed
    } else if current.contains(build.task_key()) {
        Standing::Current
    } else {
        Standing::Old
    }
}

/// The builds gc deletes: incomplete ones, and old ones (only those older than `keep` when
/// given, so going back to recent code still revives them). Committed and current ones stay.
pub fn doomed(
    builds: Vec<(StoredBuild, Standing)>,
    keep: Option<std::time::Duration>,
    now: DateTime<Utc>,
) -> Vec<StoredBuild> {
    builds
        .into_iter()
        .filter(|(b, s)| match s {
            Standing::Committed | Standing::Current => false,
            Standing::Incomplete => true,
            Standing::Old => {
                keep.is_none_or(|keep| (now - b.modified).to_std().unwrap_or_default() >= keep)
            }
        })
        .map(|(b, _)| b)
        .collect()
}
