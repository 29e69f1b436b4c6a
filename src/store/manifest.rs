//! A table build (what one task wrote for one cache key) and the stage manifest that commits a
//! set of builds together. The manifest is the only thing readers look at.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};

use futures::{StreamExt, TryStreamExt};

use serde::{Deserialize, Serialize};

use super::cache_key::{CacheKey, KeyParts};
use object_store::path::Path as ObjectPath;

use super::{Store, StoreError};
use crate::names::TableName;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Column {
    pub name: String,
    pub data_type: String,
    pub nullable: bool,
}

/// One complete build of one table: written as `_build.json` after its data files, and copied
/// into the stage manifest when the stage commits.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct TableBuild {
    /// The flow that built it (weir.toml's `name`, else the script's file name without
    /// `.rhai`): several flows may share a store and its stages, each owning its tables.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub flow: String,
    pub task: String,
    pub stage: String,
    pub table: String,
    pub key: CacheKey,
    /// The build's name under its key folder: the run that wrote it (empty in stores written
    /// before builds had names, whose files sit in the key folder itself).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub build: String,
    pub parts: KeyParts,
    /// Data files, relative to the store's instance root.
    pub files: Vec<String>,
    pub rows: u64,
    pub bytes: u64,
    pub schema: Vec<Column>,
    /// Hive-style partition columns: files sit under `col=value/` folders, without them.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub partition_by: Vec<Column>,
    /// Its partitions, one per folder, in order: what each holds, so that an incremental task
    /// reading it computes only the partitions that changed.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub partitions: Vec<Partition>,
    /// Some partitions were left as they were (`--partition`), or it was made from a build
    /// that was: readable, but stale until a run computes the rest.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub partial: bool,
    /// A Parquet source read where it is (`copy: false`): then `files` are its files' URLs and
    /// the build holds no data, only this record, pinned by the fingerprint in `parts`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source: Option<InPlace>,
    /// The data checks run on this build, by check key: a check whose key is here passed (or
    /// only warned) and is not run again.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub checks: BTreeMap<String, CheckOutcome>,
    /// `primary_key`, as declared.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub primary_key: Vec<String>,
    /// Column descriptions from `columns` (or `contract`), as declared when it was built.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub descriptions: BTreeMap<String, String>,
    /// A hash of its rows, whatever their order (see `exec::content`): a rebuild with the
    /// same content lets what reads it keep its build.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub content: Option<String>,
    pub built_at: String,
    pub run_id: String,
}

/// One partition of a partitioned build: the files under one folder.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Partition {
    /// Its folder under the build's: `col=value` for each partition column, joined by `/`.
    pub path: String,
    pub rows: u64,
    pub bytes: u64,
    /// The hash of its rows (`exec::content`): what a task reading it compares.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub content: Option<String>,
    /// For a partition of an incremental task, what it was computed from (its code and its
    /// inputs' partitions): a run that finds the same key keeps it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key: Option<String>,
    /// What its key took from its partitioned inputs: each input's partition's row hash (or
    /// `absent`), or a load's fingerprint of the folder's files (`files`): what `weir why
    /// --partition` compares.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub inputs: BTreeMap<String, String>,
    /// The run that computed it: a partition kept from an earlier build keeps its run.
    pub run_id: String,
}

impl Partition {
    /// The values of partition columns, by column, from a folder's name (`day=2026-12-01`).
    pub fn values_of(path: &str) -> Vec<(String, String)> {
        path.split('/')
            .filter_map(|segment| {
                let decoded = percent_encoding::percent_decode_str(segment).decode_utf8_lossy();
                let (column, value) = decoded.split_once('=')?;
                Some((column.to_string(), value.to_string()))
            })
            .collect()
    }

    /// The partition a file of a table partitioned by `depth` columns is in: the last `depth`
    /// folders of its path, each `col=value` (`day=2026-12-01`), in whichever build's folder it
    /// is. `None` for a file outside such folders.
    pub fn of_file(file: &str, depth: usize) -> Option<String> {
        let (folder, _) = file.rsplit_once('/')?;
        let mut segments: Vec<&str> = folder.rsplit('/').take(depth).collect();
        if depth == 0 || segments.len() < depth || !segments.iter().all(|s| s.contains('=')) {
            return None;
        }
        segments.reverse();
        Some(segments.join("/"))
    }
}

/// What a data check found on a build.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CheckOutcome {
    /// The check as written.
    pub check: String,
    /// `error` or `warn`.
    pub severity: String,
    /// How many rows broke it (0: it passed).
    pub offending: u64,
}

/// Where an in-place table's files are, and how they are fingerprinted.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct InPlace {
    /// The location as DataFusion reads it: a file, a folder or a glob, as a URL or path.
    pub location: String,
    /// Fingerprinted by content, not size and time.
    #[serde(default)]
    pub strict: bool,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct StageManifest {
    pub stage: String,
    pub run_id: String,
    pub committed_at: String,
    pub tables: BTreeMap<String, TableBuild>,
}

impl StageManifest {
    /// The tables, sorted, whose build differs from `before`'s: added, rebuilt or dropped
    /// (every table without `before`).
    pub fn changed_since(&self, before: Option<&StageManifest>) -> Vec<String> {
        let mut names: BTreeSet<&String> = self.tables.keys().collect();
        names.extend(before.into_iter().flat_map(|b| b.tables.keys()));
        names
            .into_iter()
            .filter(|t| {
                let old = before.and_then(|b| b.tables.get(*t));
                !matches!((old, self.tables.get(*t)), (Some(a), Some(b)) if a.key == b.key && a.build == b.build)
            })
            .cloned()
            .collect()
    }

    /// The same tables with the same builds and check results: nothing to commit.
    pub fn same_builds(&self, other: &StageManifest) -> bool {
        self.tables.len() == other.tables.len()
            && self.tables.iter().all(|(name, b)| {
                other
                    .tables
                    .get(name)
                    .is_some_and(|o| o.key == b.key && o.build == b.build && o.checks == b.checks)
            })
    }
}

impl Store {
    pub async fn read_manifest(&self, stage: &str) -> Result<Option<StageManifest>, StoreError> {
        self.get_json(&self.layout.manifest(stage)).await
    }

    /// Every committed stage, by name.
    pub async fn read_manifests(&self) -> Result<BTreeMap<String, StageManifest>, StoreError> {
        let mut out = BTreeMap::new();
        for meta in self.list(&self.layout.manifests()).await? {
            let Some(stage) = meta
                .location
                .filename()
                .and_then(|f| f.strip_suffix(".json"))
            else {
                continue;
            };
            if let Some(m) = self.read_manifest(stage).await? {
                out.insert(stage.to_string(), m);
            }
        }
        Ok(out)
    }

    /// Commit a stage: one object replaced whole, so readers see the old or the new stage.
    /// The data of the builds it adds is made durable first (fsync; the builds `previous`
    /// already committed were synced then), and the manifest itself before the stage counts as
    /// committed. Then the Delta versions of the
    /// tables whose build changed from `previous` (`delta.rs`) and the history copy.
    pub async fn commit_manifest(
        &self,
        manifest: &StageManifest,
        previous: Option<&StageManifest>,
    ) -> Result<(), StoreError> {
        let committed_before = |b: &TableBuild| {
            previous
                .and_then(|p| p.tables.get(&b.table))
                .is_some_and(|old| old.key == b.key && old.build == b.build)
        };
        // Files a build keeps in place in an earlier build's folder were synced with it.
        let data: Vec<ObjectPath> = manifest
            .tables
            .values()
            .filter(|b| b.source.is_none() && !committed_before(b))
            .flat_map(|b| {
                let own = format!("{}/", self.layout.relative(&self.build_dir(b)));
                b.files
                    .iter()
                    .filter(move |f| f.starts_with(&own))
                    .map(|f| self.layout.absolute(f))
            })
            .collect();
        self.sync(&data).await?;
        let path = self.layout.manifest(&manifest.stage);
        self.put_json(&path, manifest).await?;
        self.sync(&[path]).await?;
        // The stage is committed. Its Delta versions and then its history copy are written
        // beside the tasks still running (`settle` waits for them at the end of the run); while
        // the copy is missing, the next run publishes again.
        let (store, manifest, previous) = (self.clone(), manifest.clone(), previous.cloned());
        let work = tokio::spawn(async move {
            if store.publish_delta(&manifest, previous.as_ref()).await {
                store.keep_history(&manifest).await;
            }
        });
        self.post_commit
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(work);
        Ok(())
    }

    /// Wait for what commits still write in the background (Delta versions, history copies).
    pub async fn settle(&self) {
        let pending: Vec<_> =
            std::mem::take(&mut *self.post_commit.lock().unwrap_or_else(|e| e.into_inner()));
        for work in pending {
            if let Err(e) = work.await {
                tracing::warn!(error = %e, "a commit's Delta versions were not all written");
            }
        }
    }

    /// The committed tables whose stored files are gone or cut short (deleted by hand, a
    /// disk that lost them): the next run rebuilds them, and `status` says so.
    pub async fn damaged<'a>(
        &self,
        manifests: impl IntoIterator<Item = &'a StageManifest>,
    ) -> Result<HashSet<TableName>, StoreError> {
        let builds: Vec<&TableBuild> = manifests
            .into_iter()
            .flat_map(|m| m.tables.values())
            .collect();
        let intact = self.intact(&builds).await?;
        Ok(builds
            .iter()
            .zip(intact)
            .filter(|(_, ok)| !*ok)
            .map(|(b, _)| TableName::new(&b.stage, &b.table))
            .collect())
    }

    /// For each build, whether its files are all there with the bytes it recorded. On a local
    /// store one stat per file, off the async threads (a no-op run of a thousand tasks checks
    /// a thousand files); on an object store one listing per stage, so that the requests of a
    /// no-op grow with the stages, not the tables. An in-place table counts as intact: its
    /// files are its source's, pinned by their fingerprint instead.
    pub async fn intact(&self, builds: &[&TableBuild]) -> Result<Vec<bool>, StoreError> {
        let stored = |b: &&&TableBuild| b.source.is_none();
        let files = |b: &TableBuild| -> Vec<ObjectPath> {
            b.files.iter().map(|f| self.layout.absolute(f)).collect()
        };
        let sizes: HashMap<ObjectPath, u64> = if self.local_dir().is_some() {
            let paths: Vec<(ObjectPath, std::path::PathBuf)> = builds
                .iter()
                .filter(stored)
                .flat_map(|b| files(b))
                .filter_map(|p| Some((p.clone(), self.local_path(&p)?)))
                .collect();
            let sized = tokio::task::spawn_blocking(move || {
                paths
                    .into_iter()
                    .filter_map(|(object, path): (ObjectPath, std::path::PathBuf)| {
                        Some((object, local_size(path.as_path())?))
                    })
                    .collect()
            });
            sized.await.unwrap_or_default()
        } else {
            let stages: BTreeSet<&str> = builds
                .iter()
                .filter(stored)
                .map(|b| b.stage.as_str())
                .collect();
            let listings = stages
                .into_iter()
                .map(|stage| async move { self.list(&self.layout.tables().join(stage)).await });
            let listed: Vec<Vec<object_store::ObjectMeta>> = futures::stream::iter(listings)
                .buffered(8)
                .try_collect()
                .await?;
            listed
                .into_iter()
                .flatten()
                .map(|m| (m.location, m.size))
                .collect()
        };
        Ok(builds
            .iter()
            .map(|b| {
                let total: Option<u64> = files(b).iter().map(|p| sizes.get(p).copied()).sum();
                b.source.is_some() || total == Some(b.bytes)
            })
            .collect())
    }

    /// The newest complete build of `key`, if there is one.
    pub async fn read_build(
        &self,
        stage: &str,
        table: &str,
        key: &CacheKey,
    ) -> Result<Option<TableBuild>, StoreError> {
        self.get_json(&self.layout.key_record(stage, table, key.as_str()))
            .await
    }

    /// The URL of a build's folder, for DataFusion to read: or the files an in-place table
    /// reads.
    pub fn build_url(&self, build: &TableBuild) -> String {
        match &build.source {
            Some(source) => source.location.clone(),
            None => format!("{}/", self.url_of(&self.build_dir(build))),
        }
    }

    pub fn build_dir(&self, build: &TableBuild) -> ObjectPath {
        self.layout
            .build_dir(&build.stage, &build.table, build.key.as_str(), &build.build)
    }
}

/// The size of a local file; `None` if it is missing or not a file.
fn local_size(path: &std::path::Path) -> Option<u64> {
    std::fs::metadata(path)
        .ok()
        .filter(|m| m.is_file())
        .map(|m| m.len())
}
