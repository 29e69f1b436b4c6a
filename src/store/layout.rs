//! Every path in the store, in one place.
//!
//! ```text
//! <root>/<instance>/tables/<stage>/<table>/<cache_key>/part-0.parquet   immutable table data
//! <root>/<instance>/tables/<stage>/<table>/<cache_key>/_build.json      written last: the build is complete
//! <root>/<instance>/manifests/<stage>.json                              the committed stage
//! <root>/<instance>/runs/<run_id>.json                                  run records
//! <root>/<instance>/runs/<run_id>.log.jsonl                             run logs, one event a line
//! <root>/<instance>/lock                                                one writer at a time
//! ```

use object_store::path::Path;

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

    pub fn build_dir(&self, stage: &str, table: &str, key: &str) -> Path {
        self.instance_root
            .clone()
            .join("tables")
            .join(stage)
            .join(table)
            .join(key)
    }

    pub fn data_file(&self, stage: &str, table: &str, key: &str, part: usize) -> Path {
        self.build_dir(stage, table, key)
            .join(format!("part-{part}.parquet"))
    }

    /// Written after all data files of a build: its presence means the build is complete.
    pub fn build_record(&self, stage: &str, table: &str, key: &str) -> Path {
        self.build_dir(stage, table, key).join("_build.json")
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

    pub fn tainted(&self) -> Path {
        self.instance_root.clone().join("tainted.json")
    }

    pub fn cleared(&self) -> Path {
        self.instance_root.clone().join("cleared.json")
    }
}
