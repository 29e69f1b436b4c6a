//! Run records and run logs: one JSON record per run, with what every task did, and a JSON-lines
//! log of its events beside it. Both are redacted before they are stored.

use object_store::{ObjectStoreExt, PutPayload};
use serde::{Deserialize, Serialize};

use super::counting::Requests;
use super::{CacheKey, Store, StoreError};

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RunRecord {
    pub run_id: String,
    pub instance: String,
    pub script: String,
    pub started_at: String,
    pub ended_at: String,
    /// Wall time of the whole run; absent from records written before it was kept.
    #[serde(default)]
    pub duration_ms: u64,
    pub ok: bool,
    pub tasks: Vec<TaskRecord>,
    pub stages: Vec<StageRecord>,
    /// Requests made to the store, from taking the lock to just before this record is written.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub requests: Option<Requests>,
    /// Who ran it, where, with which weir (absent from records written before they were kept).
    #[serde(default, flatten)]
    pub origin: Origin,
}

/// Who ran a run, on which host, with which weir.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Origin {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub host: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub weir_version: Option<String>,
}

impl Origin {
    /// This process's user, host and version.
    pub fn here() -> Self {
        let user = ["USER", "USERNAME", "LOGNAME"]
            .iter()
            .find_map(|v| std::env::var(v).ok().filter(|u| !u.is_empty()));
        Self {
            user,
            host: hostname(),
            weir_version: Some(env!("CARGO_PKG_VERSION").to_string()),
        }
    }
}

fn hostname() -> Option<String> {
    let mut buf = [0u8; 256];
    // SAFETY: the buffer is valid for its length; gethostname writes at most that much.
    let rc = unsafe { libc::gethostname(buf.as_mut_ptr().cast(), buf.len()) };
    if rc != 0 {
        return None;
    }
    let end = buf.iter().position(|&b| b == 0).unwrap_or(buf.len());
    let name = String::from_utf8_lossy(&buf[..end]).into_owned();
    (!name.is_empty()).then_some(name)
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct TaskRecord {
    pub task: String,
    pub stage: String,
    /// ran, cached, failed, skipped, not_selected
    pub status: String,
    pub key: CacheKey,
    pub reason: Vec<String>,
    pub rows: u64,
    pub bytes: u64,
    /// Bytes its queries spilled to disk to stay within the memory limit.
    #[serde(default)]
    pub spilled_bytes: u64,
    /// The data checks that ran on its builds in this run.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub checks: Vec<super::CheckOutcome>,
    pub duration_ms: u64,
    pub error: Option<String>,
    /// The cluster it ran on (`ballista://...`); absent when it ran in weir's process.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub engine: Option<String>,
    /// What its code logged with `log::info`, `log::warn` and `log::debug`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub logs: Vec<LogLine>,
    /// The errors of its attempts that failed and were tried again (`retries`), in order: the
    /// task's last attempt is its status.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub failed_attempts: Vec<String>,
    /// The name of the builds it wrote or reused (the run that wrote them); absent when it
    /// has none, and from records written before it was kept.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub build: Option<String>,
    /// For a task run partition by partition: the partitions it computed (`day=2026-12-01`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub partitions: Vec<String>,
    /// ... of how many its table has.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub partitions_total: Option<usize>,
}

/// One message a task's code logged, with the fields given beside it.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct LogLine {
    pub ts: String,
    /// info, warn or debug
    pub level: String,
    pub message: String,
    #[serde(default, skip_serializing_if = "serde_json::Map::is_empty")]
    pub fields: serde_json::Map<String, serde_json::Value>,
}

impl LogLine {
    /// A line weir itself logs for a task (where it ran, and why), at info level.
    pub fn info(message: impl Into<String>) -> Self {
        Self::at("info", message.into())
    }

    /// A line weir itself logs for a task when something went wrong but the task goes on (an
    /// attempt that failed and is tried again).
    pub fn warn(message: impl Into<String>) -> Self {
        Self::at("warn", message.into())
    }

    fn at(level: &str, message: String) -> Self {
        Self {
            ts: chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
            level: level.into(),
            message,
            fields: Default::default(),
        }
    }

    /// `message  key=value ...`, as the console and `weir log` show it.
    pub fn text(&self) -> String {
        let mut out = self.message.clone();
        for (k, v) in &self.fields {
            match v {
                serde_json::Value::String(s) => out.push_str(&format!("  {k}={s}")),
                v => out.push_str(&format!("  {k}={v}")),
            }
        }
        out
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct StageRecord {
    pub stage: String,
    pub committed: bool,
    pub changed: bool,
    /// Why a stage whose tasks all succeeded was not committed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

impl RunRecord {
    /// How many tasks ended with `status`.
    pub fn count(&self, status: &str) -> usize {
        self.tasks.iter().filter(|t| t.status == status).count()
    }
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
        let path = self.layout.run_record(&record.run_id);
        let text = serde_json::to_string_pretty(record).map_err(|source| StoreError::Corrupt {
            path: path.to_string(),
            source,
        })?;
        self.put_redacted(&path, &text).await
    }

    /// The run's event log, JSON lines.
    pub async fn write_run_log(&self, run_id: &str, lines: &str) -> Result<(), StoreError> {
        self.put_redacted(&self.layout.run_log(run_id), lines).await
    }

    /// Task errors and log events can quote a URL or a value that holds a secret.
    async fn put_redacted(
        &self,
        path: &object_store::path::Path,
        text: &str,
    ) -> Result<(), StoreError> {
        let text = crate::config::secrets::redact(text);
        self.objects
            .put(path, PutPayload::from(text.into_owned()))
            .await
            .map_err(|e| StoreError::io(path, e))?;
        Ok(())
    }

    /// The ids of every recorded run, newest first (ids sort by their start time).
    pub async fn run_ids(&self) -> Result<Vec<String>, StoreError> {
        let mut ids: Vec<String> = self
            .list(&self.layout.runs())
            .await?
            .into_iter()
            .filter_map(|m| {
                let name = m.location.filename()?;
                name.strip_suffix(".json").map(str::to_string)
            })
            .collect();
        ids.sort_unstable_by(|a, b| b.cmp(a));
        Ok(ids)
    }

    pub async fn read_run(&self, run_id: &str) -> Result<Option<RunRecord>, StoreError> {
        self.get_json(&self.layout.run_record(run_id)).await
    }

    /// The run's event log as stored, if it has one.
    pub async fn read_run_log(&self, run_id: &str) -> Result<Option<String>, StoreError> {
        let path = self.layout.run_log(run_id);
        match self.objects.get(&path).await {
            Ok(r) => {
                let bytes = r.bytes().await.map_err(|e| StoreError::io(&path, e))?;
                Ok(Some(String::from_utf8_lossy(&bytes).into_owned()))
            }
            Err(object_store::Error::NotFound { .. }) => Ok(None),
            Err(e) => Err(StoreError::io(&path, e)),
        }
    }

    pub fn layout_instance(&self) -> String {
        self.layout.instance().to_string()
    }
}
