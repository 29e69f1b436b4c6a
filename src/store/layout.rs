//! Every path in the store, in one place.
//!
//! ```text
//! <root>/<instance>/tables/<stage>/<table>/<key>/<build>/*.parquet        one build's data, never rewritten
//! <root>/<instance>/tables/<stage>/<table>/<key>/<build>/_build.json     written after it: the build is complete
//! <root>/<instance>/tables/<stage>/<table>/<key>/_build.json             the key's newest complete build
//! <root>/<instance>/manifests/<stage>.json                               the committed stage
//! <root>/<instance>/history/<stage>/<run_id>.json                         each manifest as committed
//! <root>/<instance>/runs/<run_id>.json                                   run records
//! <root>/<instance>/runs/<run_id>.log.jsonl                              run logs, one event a line
//! <root>/<instance>/lock                                                 one writer at a time
//! <root>/<instance>/reserve                                              space `cache gc` frees on a full disk
//! <root>/<instance>/salt                                                 keys the hashes that stand in for secrets
//! <root>/<instance>/lock.takeover/<lock hash>-<n>                        claims on stale locks
//! ```
//!
//! A build is named by the run that wrote it, so building a key again (`--force`, after
//! `weir clear`, a damaged table) writes beside the committed build instead of over it: a run
//! killed at any moment leaves every committed build readable. Stores written before builds had
//! names kept a key's files directly in its folder; such builds have the empty name.

use object_store::path::Path;

/// The file name of build records.
pub const BUILD_RECORD: &str = "_build.json";

#[derive(Debug, Clone)]
pub struct Layout {
    instance: String,
    instance_root: Path,
}

impl Layout {
    pub fn new(root: Path, instance: &str) -> Self {
        Self {
            instance: instance.to_string(),
            instance_root: root.join(instance),
        }
    }

    pub fn instance(&self) -> &str {
        &self.instance
    }

    pub fn instance_root(&self) -> &Path {
        &self.instance_root
    }

    /// A path relative to the instance root, as recorded in builds.
    pub fn relative(&self, path: &Path) -> String {
        path.prefix_match(&self.instance_root)
            .map(|parts| {
                parts
                    .map(|p| p.as_ref().to_string())
                    .collect::<Vec<_>>()
                    .join("/")
            })
            .unwrap_or_else(|| path.to_string())
    }

    pub fn absolute(&self, relative: &str) -> Path {
        relative
            .split('/')
            .fold(self.instance_root.clone(), |p, part| p.join(part))
    }

    pub fn tables(&self) -> Path {
        self.instance_root.clone().join("tables")
    }

    /// The folder of every build of one key.
    pub fn key_dir(&self, stage: &str, table: &str, key: &str) -> Path {
        self.tables().join(stage).join(table).join(key)
    }

    /// The folder of one build; the key's folder itself for a build without a name.
    pub fn build_dir(&self, stage: &str, table: &str, key: &str, build: &str) -> Path {
        let dir = self.key_dir(stage, table, key);
        if build.is_empty() {
            dir
        } else {
            dir.join(build)
        }
    }

    pub fn data_file(&self, stage: &str, table: &str, key: &str, build: &str, part: usize) -> Path {
        self.build_dir(stage, table, key, build)
            .join(format!("part-{part}.parquet"))
    }

    /// Written after all data files of a build: its presence means the build is complete.
    pub fn build_record(&self, stage: &str, table: &str, key: &str, build: &str) -> Path {
        self.build_dir(stage, table, key, build).join(BUILD_RECORD)
    }

    /// The record of the key's newest complete build: what a later run reuses.
    pub fn key_record(&self, stage: &str, table: &str, key: &str) -> Path {
        self.key_dir(stage, table, key).join(BUILD_RECORD)
    }

    pub fn manifest(&self, stage: &str) -> Path {
        self.instance_root
            .clone()
            .join("manifests")
            .join(format!("{stage}.json"))
    }

    pub fn manifests(&self) -> Path {
        self.instance_root.clone().join("manifests")
    }

    /// The stage's manifest as the run `run_id` committed it, kept for reading as of a run.
    pub fn history(&self, stage: &str, run_id: &str) -> Path {
        self.history_dir()
            .join(stage)
            .join(format!("{run_id}.json"))
    }

    pub fn history_dir(&self) -> Path {
        self.instance_root.clone().join("history")
    }

    pub fn run_record(&self, run_id: &str) -> Path {
        self.instance_root
            .clone()
            .join("runs")
            .join(format!("{run_id}.json"))
    }

    pub fn run_log(&self, run_id: &str) -> Path {
        self.instance_root
            .clone()
            .join("runs")
            .join(format!("{run_id}.log.jsonl"))
    }

    pub fn runs(&self) -> Path {
        self.instance_root.clone().join("runs")
    }

    pub fn lock(&self) -> Path {
        self.instance_root.clone().join("lock")
    }

    /// Space kept on a local store's disk, given up by `cache gc` on a full disk so that it
    /// can take the lock it needs to free space.
    pub fn reserve(&self) -> Path {
        self.instance_root.clone().join("reserve")
    }

    /// Claims on stale locks: only the run that creates a claim may remove that lock.
    pub fn lock_takeovers(&self) -> Path {
        self.instance_root.clone().join("lock.takeover")
    }

    pub fn lock_takeover(&self, identity: &str, generation: u32) -> Path {
        self.lock_takeovers()
            .join(format!("{identity}-{generation}"))
    }

    /// The instance's random salt for the hashes that stand in for secrets in cache keys.
    pub fn salt(&self) -> Path {
        self.instance_root.clone().join("salt")
    }

    pub fn tainted(&self) -> Path {
        self.instance_root.clone().join("tainted.json")
    }

    pub fn cleared(&self) -> Path {
        self.instance_root.clone().join("cleared.json")
    }

    /// The content hashes of local source files as last seen (`sources::SourceHashes`).
    pub fn source_hashes(&self) -> Path {
        self.instance_root.clone().join("source_hashes.json")
    }

    /// The keys of the unit tests that passed (`weir test`).
    pub fn passed_tests(&self) -> Path {
        self.instance_root.clone().join("tests.json")
    }
}
