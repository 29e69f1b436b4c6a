//! Run records: one JSON object per run, with what every task did.

use object_store::{ObjectStoreExt, PutPayload};
use serde::{Deserialize, Serialize};

use super::{Store, StoreError};

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RunRecord {
    pub run_id: String,
    pub instance: String,
    pub script: String,
    pub started_at: String,
    pub ended_at: String,
    pub ok: bool,
    pub tasks: Vec<TaskRecord>,
    pub stages: Vec<StageRecord>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct TaskRecord {
    pub task: String,
    pub stage: String,
    /// ran, cached, failed, skipped, not_selected
    pub status: String,
    pub key: String,
    pub reason: Vec<String>,
    pub rows: u64,
    pub bytes: u64,
    pub duration_ms: u64,
    pub error: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct StageRecord {
    pub stage: String,
    pub committed: bool,
    pub changed: bool,
}

/// A run id that sorts by time and is unique across processes.
pub fn new_run_id() -> String {
    let now = chrono::Utc::now();
    let salt = blake3::hash(
        format!(
            "{}-{}",
            std::process::id(),
            now.timestamp_nanos_opt().unwrap_or(0)
        )
        .as_bytes(),
    );
    format!(
        "{}-{}",
        now.format("%Y%m%dT%H%M%S%.3fZ"),
        &salt.to_hex()[..6]
    )
    .replace('.', "")
}

impl Store {
    pub async fn write_run(&self, record: &RunRecord) -> Result<(), StoreError> {
        // Task errors can quote a URL or a value that holds a secret.
        let path = self.layout.run_record(&record.run_id);
        let text = serde_json::to_string_pretty(record).map_err(|source| StoreError::Corrupt {
            path: path.to_string(),
            source,
        })?;
        let text = crate::config::secrets::redact(&text);
        self.objects
            .put(&path, PutPayload::from(text.into_owned()))
            .await
            .map_err(|e| StoreError::io(&path, e))?;
        Ok(())
    }

    pub fn layout_instance(&self) -> String {
        self.layout.instance().to_string()
    }
}
