//! What the store holds: every build folder under `tables/`, with its size and age, and which
//! of them are still needed. `weir cache list` shows it; `weir cache gc` deletes the rest.

use std::collections::{BTreeMap, BTreeSet};

use chrono::{DateTime, Utc};
use object_store::path::Path as ObjectPath;

use super::layout::BUILD_RECORD;
use super::{StageManifest, Store, StoreError, TableBuild};

/// One build folder: `tables/<stage>/<table>/<key>/<build>/`.
#[derive(Debug, Clone)]
pub struct StoredBuild {
    pub stage: String,
    pub table: String,
    pub key: String,
    /// Its name under the key; empty for a build written before builds had names.
    pub build: String,
    pub bytes: u64,
    pub files: usize,
    pub modified: DateTime<Utc>,
    /// Its `_build.json` is there: the build finished.
    pub complete: bool,
    /// The key's record names it: it is what a run would reuse for that key.
    pub newest: bool,
    /// Other builds whose files its record names (partitions it keeps where they were
    /// written), as `stage/table/key/build`; known for the newest build of each key.
    pub holds: BTreeSet<String>,
    pub prefix: ObjectPath,
}

/// Why a build is kept or can go.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Standing {
    /// A committed table, or an intermediate of a committed task.
    Committed,
    /// What the script would build now: a no-op run reuses it.
    Current,
    /// Committed at the end of one of the last runs `cache gc` keeps (`--keep-runs`), for
    /// reading as of them and rolling back to them.
    Recent,
    /// Holds partitions that a committed, current or recent build keeps in place (its
    /// record names them), though nothing names the build itself.
    Held,
    /// Neither: kept only so going back to old code revives it (or an earlier build of a key
    /// built again since).
    Old,
    /// Never finished (a killed run): nothing reads it.
    Incomplete,
}

impl Standing {
    pub fn label(self) -> &'static str {
        match self {
            Standing::Committed => "committed",
            Standing::Current => "current",
            Standing::Recent => "recent",
            Standing::Held => "held",
            Standing::Old => "old",
            Standing::Incomplete => "incomplete",
        }
    }
}

/// What is committed, as the standing of builds needs it.
pub struct Committed {
    /// `stage/table/key/build` of every committed table.
    builds: BTreeSet<String>,
    /// Keys of committed tasks: their intermediates are committed with them.
    keys: BTreeSet<String>,
    /// `stage/table` of every committed table.
    tables: BTreeSet<String>,
    /// `stage/table/key/build` of what recent runs committed.
    recent: BTreeSet<String>,
    /// `stage/table/key/build` of builds holding files the committed and recent builds name.
    held: BTreeSet<String>,
}

impl Committed {
    pub fn new<'a>(manifests: impl IntoIterator<Item = &'a StageManifest>) -> Self {
        let mut out = Committed {
            builds: BTreeSet::new(),
            keys: BTreeSet::new(),
            tables: BTreeSet::new(),
            recent: BTreeSet::new(),
            held: BTreeSet::new(),
        };
        for b in manifests.into_iter().flat_map(|m| m.tables.values()) {
            out.builds
                .insert(id(&b.stage, &b.table, b.key.as_str(), &b.build));
            out.held.extend(held_by(b));
            out.keys.insert(b.key.to_string());
            out.tables.insert(format!("{}/{}", b.stage, b.table));
        }
        out
    }

    /// The builds `manifests` (what recent runs committed) name count as `Recent`.
    pub fn with_recent<'a>(
        mut self,
        manifests: impl IntoIterator<Item = &'a StageManifest>,
    ) -> Self {
        for b in manifests.into_iter().flat_map(|m| m.tables.values()) {
            self.recent
                .insert(id(&b.stage, &b.table, b.key.as_str(), &b.build));
            self.held.extend(held_by(b));
        }
        self
    }
}

/// The other builds whose files `b` names: the folders of partitions it keeps in place.
fn held_by(b: &TableBuild) -> BTreeSet<String> {
    let own = id(&b.stage, &b.table, b.key.as_str(), &b.build);
    b.files
        .iter()
        .filter_map(|f| match f.split('/').collect::<Vec<_>>().as_slice() {
            ["tables", s, t, k, build, _, ..] => Some(id(s, t, k, build)),
            _ => None,
        })
        .filter(|held| *held != own)
        .collect()
}

fn id(stage: &str, table: &str, key: &str, build: &str) -> String {
    format!("{stage}/{table}/{key}/{build}")
}

impl Store {
    /// Every build folder, in path order.
    pub async fn stored_builds(&self) -> Result<Vec<StoredBuild>, StoreError> {
        let root = self.layout.tables();
        let mut builds: BTreeMap<String, StoredBuild> = BTreeMap::new();
        let mut records: Vec<ObjectPath> = Vec::new();
        for meta in self.list(&root).await? {
            let Some(parts) = meta.location.prefix_match(&root) else {
                continue;
            };
            let parts: Vec<String> = parts.map(|p| p.as_ref().to_string()).collect();
            // A table's Delta log (`store::delta`) sits beside its keys and is no build.
            if parts.get(2).is_some_and(|k| k.starts_with('_')) {
                continue;
            }
            let (stage, table, key, build, file) = match parts.as_slice() {
                [_, _, _, f] if f == BUILD_RECORD => {
                    records.push(meta.location.clone());
                    continue;
                }
                // A build without a name: its files sit in the key's folder.
                [s, t, k, f] => (s, t, k, "", f),
                // A partitioned build's files sit in `col=value/` folders under it.
                [s, t, k, b, .., f] => (s, t, k, b.as_str(), f),
                _ => continue,
            };
            let prefix = self.layout.build_dir(stage, table, key, build);
            let entry = builds
                .entry(id(stage, table, key, build))
                .or_insert_with(|| StoredBuild {
                    stage: stage.clone(),
                    table: table.clone(),
                    key: key.clone(),
                    build: build.to_string(),
                    bytes: 0,
                    files: 0,
                    modified: meta.last_modified,
                    complete: false,
                    newest: false,
                    holds: BTreeSet::new(),
                    prefix,
                });
            entry.bytes += meta.size;
            entry.files += 1;
            entry.modified = entry.modified.max(meta.last_modified);
            entry.complete |= file == BUILD_RECORD;
        }
        for record in records {
            if let Some(b) = self.get_json::<TableBuild>(&record).await? {
                let newest = id(&b.stage, &b.table, b.key.as_str(), &b.build);
                if let Some(entry) = builds.get_mut(&newest) {
                    entry.newest = true;
                    entry.holds = held_by(&b);
                    // A build without a name has no record of its own but this one.
                    entry.complete |= b.build.is_empty();
                }
            }
        }
        Ok(builds.into_values().collect())
    }

    /// Delete a build. The key's record goes first when it names the build, so no record
    /// ever names a build that is gone.
    pub async fn delete_build(&self, build: &StoredBuild) -> Result<(), StoreError> {
        if build.newest && !build.build.is_empty() {
            self.delete(
                &self
                    .layout
                    .key_record(&build.stage, &build.table, &build.key),
            )
            .await?;
        }
        self.delete_prefix(&build.prefix).await
    }
}

impl Store {
    /// Files a killed process left half-written on a local store: object_store writes `x#N`
    /// beside `x` and renames it, and its listings never show such a file. Object stores have
    /// no such leftovers.
    pub async fn leftovers(&self) -> Vec<std::path::PathBuf> {
        let Some(root) = self.local_dir() else {
            return Vec::new();
        };
        let found = tokio::task::spawn_blocking(move || {
            let mut out = Vec::new();
            staging_files(&root, &mut out);
            out
        });
        found.await.unwrap_or_default()
    }
}

fn staging_files(dir: &std::path::Path, out: &mut Vec<std::path::PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        if entry.file_type().is_ok_and(|t| t.is_dir()) {
            staging_files(&path, out);
        } else if is_staging(&entry.file_name().to_string_lossy()) {
            out.push(path);
        }
    }
}

/// `name#123`: the staging file object_store renames into `name` once written.
fn is_staging(name: &str) -> bool {
    name.rsplit_once('#').is_some_and(|(base, n)| {
        !base.is_empty() && !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit())
    })
}

/// How each build stands, given what is committed and the keys of the script's current plan.
pub fn standing(
    build: &StoredBuild,
    committed: &Committed,
    current: &BTreeSet<String>,
) -> Standing {
    let id = id(&build.stage, &build.table, &build.key, &build.build);
    let intermediate = !committed
        .tables
        .contains(&format!("{}/{}", build.stage, build.table));
    if !build.complete && !committed.held.contains(&id) {
        Standing::Incomplete
    } else if committed.builds.contains(&id)
        || (intermediate && build.newest && committed.keys.contains(&build.key))
    {
        Standing::Committed
    } else if build.newest && current.contains(&build.key) {
        Standing::Current
    } else if committed.recent.contains(&id) {
        Standing::Recent
    } else if committed.held.contains(&id) {
        Standing::Held
    } else {
        Standing::Old
    }
}

/// `builds` with those that current builds hold partitions of raised to `Held`: a build the
/// script would reuse names them as much as a committed one does.
pub fn with_held(mut builds: Vec<(StoredBuild, Standing)>) -> Vec<(StoredBuild, Standing)> {
    let held: BTreeSet<String> = builds
        .iter()
        .filter(|(_, s)| *s == Standing::Current)
        .flat_map(|(b, _)| b.holds.iter().cloned())
        .collect();
    for (b, s) in &mut builds {
        if matches!(s, Standing::Old | Standing::Incomplete)
            && held.contains(&id(&b.stage, &b.table, &b.key, &b.build))
        {
            *s = Standing::Held;
        }
    }
    builds
}

/// The builds gc deletes: incomplete ones, and old ones (only those older than `keep` when
/// given, so going back to recent code still revives them). Committed, current and recent
/// ones stay.
pub fn doomed(
    builds: Vec<(StoredBuild, Standing)>,
    keep: Option<std::time::Duration>,
    now: DateTime<Utc>,
) -> Vec<StoredBuild> {
    builds
        .into_iter()
        .filter(|(b, s)| match s {
            Standing::Committed | Standing::Current | Standing::Recent | Standing::Held => false,
            Standing::Incomplete => true,
            Standing::Old => {
                keep.is_none_or(|keep| (now - b.modified).to_std().unwrap_or_default() >= keep)
            }
        })
        .map(|(b, _)| b)
        .collect()
}
