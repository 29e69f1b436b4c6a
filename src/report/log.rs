//! The run's structured log: one JSON object per event (run and task start and end, cached
//! tasks, stage commits), with a timestamp, kept in memory and stored beside the run record as
//! `<run_id>.log.jsonl`. The store redacts it before writing.
//!
//! The events come from the same calls that draw the console, rather than from a tracing
//! layer: tracing's subscriber is process-wide and writes to a `Write`, while the log belongs
//! to one run and goes to the object store, like everything else weir keeps.

use std::sync::{Arc, Mutex};

use serde_json::{Map, Value, json};

pub(super) struct EventLog {
    run_id: String,
    lines: Arc<Mutex<Vec<String>>>,
}

/// The events of a run in progress, as the run writes them to the store while it runs so that
/// `weir serve` (another process) can follow it.
#[derive(Clone)]
pub struct LiveLog {
    lines: Arc<Mutex<Vec<String>>>,
}

impl LiveLog {
    /// How many events so far.
    pub fn len(&self) -> usize {
        self.lines.lock().unwrap_or_else(|p| p.into_inner()).len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Every event so far, one JSON object a line.
    pub fn text(&self) -> String {
        joined(&self.lines.lock().unwrap_or_else(|p| p.into_inner()))
    }
}

fn joined(lines: &[String]) -> String {
    let mut out = lines.join("\n");
    if !out.is_empty() {
        out.push('\n');
    }
    out
}

impl EventLog {
    pub(super) fn new(run_id: &str) -> Self {
        Self {
            run_id: run_id.to_string(),
            lines: Arc::new(Mutex::new(Vec::new())),
        }
    }

    /// Record an event; `fields` is a JSON object of what is particular to it.
    pub(super) fn push(&self, event: &str, fields: Value) {
        let mut object = Map::new();
        object.insert(
            "ts".into(),
            json!(chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true)),
        );
        object.insert("run".into(), json!(self.run_id));
        object.insert("event".into(), json!(event));
        if let Value::Object(fields) = fields {
            object.extend(fields);
        }
        let line = Value::Object(object).to_string();
        self.lines
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push(line);
    }

    /// Every event so far, one JSON object a line.
    pub(super) fn text(&self) -> String {
        joined(&self.lines.lock().unwrap_or_else(|p| p.into_inner()))
    }

    pub(super) fn live(&self) -> LiveLog {
        LiveLog {
            lines: self.lines.clone(),
        }
    }
}

/// The stage of a task id `stage.table`.
pub(super) fn stage_of(task: &str) -> &str {
    task.split_once('.').map_or(task, |(s, _)| s)
}
