//! A table build (what one task wrote for one cache key) and the stage manifest that commits a
//! set of builds together. The manifest is the only thing readers look at.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::cache_key::{CacheKey, KeyParts};
use super::{Store, StoreError};

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
    pub task: String,
    pub stage: String,
    pub table: String,
    pub key: CacheKey,
    pub parts: KeyParts,
    /// Data files, relative to the store's instance root.
    pub files: Vec<String>,
    pub rows: u64,
    pub bytes: u64,
    pub schema: Vec<Column>,
    pub built_at: String,
    pub run_id: String,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct StageManifest {
    pub stage: String,
    pub run_id: String,
    pub committed_at: String,
    pub tables: BTreeMap<String, TableBuild>,
}

impl StageManifest {
    /// The same tables with the same builds: nothing to commit.
    pub fn same_builds(&self, other: &StageManifest) -> bool {
        self.tables.len() == other.tables.len()
            && self
                .tables
                .iter()
                .all(|(name, b)| other.tables.get(name).is_some_and(|o| o.key == b.key))
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
    pub async fn commit_manifest(&self, manifest: &StageManifest) -> Result<(), StoreError> {
        self.put_json(&self.layout.manifest(&manifest.stage), manifest)
            .await
    }

    pub async fn read_build(
        &self,
        stage: &str,
        table: &str,
        key: &CacheKey,
    ) -> Result<Option<TableBuild>, StoreError> {
        self.get_json(&self.layout.build_record(stage, table, key.as_str()))
            .await
    }

    /// The URL of a build's folder, for DataFusion to read.
    pub fn build_url(&self, stage: &str, table: &str, key: &str) -> String {
        format!(
            "{}/",
            self.url_of(&self.layout.build_dir(stage, table, key))
        )
    }
}
