//! Run records (`<store>/default/runs/<run_id>.json`), read from the files of a store: what each
//! task took, wrote and spilled, and the requests the run made to its store.

use std::collections::BTreeMap;
use std::path::Path;

use serde::Deserialize;

#[derive(Debug, Clone, Deserialize)]
pub struct RunRecord {
    pub tasks: Vec<TaskRecord>,
    #[serde(default)]
    pub requests: Option<Requests>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct TaskRecord {
    pub task: String,
    pub stage: String,
    pub status: String,
    pub rows: u64,
    #[serde(default)]
    pub spilled_bytes: u64,
    pub duration_ms: u64,
}

#[derive(Debug, Clone, Copy, Default, Deserialize, serde::Serialize)]
pub struct Requests {
    pub get: u64,
    pub head: u64,
    pub put: u64,
    pub list: u64,
    pub delete: u64,
}

impl Requests {
    pub fn total(&self) -> u64 {
        self.get + self.head + self.put + self.list + self.delete
    }
}

impl RunRecord {
    /// Seconds the tasks of `stage` that ran took, added up (tasks running at once count twice).
    pub fn stage_s(&self, stage: &str) -> f64 {
        self.tasks
            .iter()
            .filter(|t| t.stage == stage && t.status == "ran")
            .map(|t| t.duration_ms as f64 / 1000.0)
            .sum()
    }

    pub fn ran(&self) -> BTreeMap<&str, &TaskRecord> {
        self.tasks
            .iter()
            .filter(|t| t.status == "ran")
            .map(|t| (t.task.as_str(), t))
            .collect()
    }
}

/// The newest record in the store whose files are under `dir` (run ids sort by time).
pub fn last(dir: &Path) -> Result<RunRecord, String> {
    let runs = dir.join("default/runs");
    let newest = std::fs::read_dir(&runs)
        .map_err(|e| format!("{}: {e}", runs.display()))?
        .filter_map(|e| e.ok())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".json"))
        .max()
        .ok_or_else(|| format!("no run record in {}", runs.display()))?;
    let path = runs.join(newest);
    let text = std::fs::read_to_string(&path).map_err(|e| format!("{}: {e}", path.display()))?;
    serde_json::from_str(&text).map_err(|e| format!("{}: {e}", path.display()))
}
