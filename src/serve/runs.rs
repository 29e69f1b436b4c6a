//! Runs: the history, one run as a timeline of its tasks with its failures and events, and two
//! runs side by side.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use axum::extract::{Path, Query, State};
use serde::Deserialize;
use serde_json::{Value, json};

use super::api::recent_records;
use super::reply::{ApiError, Reply, json};
use super::{App, Params};
use crate::store::Store;
use crate::store::runs::RunRecord;

/// Runs the history page lists at most.
const LISTED: usize = 200;

pub(super) async fn list(State(app): State<Arc<App>>, Query(q): Query<Params>) -> Reply {
    let store = app.load(q.instance.as_deref())?.store;
    let records = recent_records(&store, LISTED).await?;
    Ok(json(Value::Array(records.iter().map(summary).collect())))
}

fn summary(r: &RunRecord) -> Value {
    json!({
        "run_id": r.run_id, "started_at": r.started_at, "ended_at": r.ended_at,
        "duration_ms": r.duration_ms, "ok": r.ok,
        "ran": r.count("ran"), "cached": r.count("cached"), "failed": r.count("failed"),
        "skipped": r.count("skipped"), "user": r.origin.user, "host": r.origin.host,
    })
}

/// A run id, a unique prefix of one, or `last`.
async fn find(store: &Store, spec: &str) -> Result<RunRecord, ApiError> {
    let ids = store.run_ids().await?;
    let id = match spec {
        "last" => ids.first(),
        _ => {
            let matching: Vec<&String> = ids.iter().filter(|i| i.starts_with(spec)).collect();
            match matching.as_slice() {
                [one] => Some(*one),
                _ => ids.iter().find(|i| *i == spec),
            }
        }
    };
    let record = match id {
        Some(id) => store.read_run(id).await?,
        None => None,
    };
    record.ok_or_else(|| ApiError::not_found(format!("no run {spec} in this instance")))
}

pub(super) async fn one(
    State(app): State<Arc<App>>,
    Path(id): Path<String>,
    Query(q): Query<Params>,
) -> Reply {
    let store = app.load(q.instance.as_deref())?.store;
    let record = find(&store, &id).await?;
    let log = store
        .read_run_log(&record.run_id)
        .await?
        .unwrap_or_default();
    let events: Vec<Value> = log
        .lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect();
    let spans = timeline(&events);
    let tasks: Vec<Value> = record
        .tasks
        .iter()
        .filter(|t| t.status != "not_selected")
        .map(|t| {
            let span = spans.get(&t.task);
            json!({
                "task": t.task, "status": t.status, "reason": t.reason,
                "start_ms": span.map(|s| s.start), "end_ms": span.map(|s| s.end),
                "lane": span.map(|s| s.lane),
                "rows": t.rows, "bytes": t.bytes, "spilled_bytes": t.spilled_bytes,
                "duration_ms": t.duration_ms, "error": t.error,
            })
        })
        .collect();
    let stages: Vec<Value> = record
        .stages
        .iter()
        .map(|s| {
            let status = match (s.committed, s.changed) {
                (true, true) => "committed",
                (true, false) => "unchanged",
                (false, _) => "not committed",
            };
            json!({ "stage": s.stage, "status": status, "reason": s.reason })
        })
        .collect();
    let mut out = summary(&record);
    out["tasks"] = Value::Array(tasks);
    out["stages"] = Value::Array(stages);
    out["events"] = Value::Array(events);
    Ok(json(out))
}

struct Span {
    start: u64,
    end: u64,
    lane: usize,
}

/// Each task's start and end in milliseconds from the run's start, from its event log, and
/// the timeline row it is drawn in: the first row free when it started.
fn timeline(events: &[Value]) -> BTreeMap<String, Span> {
    let ms = |e: &Value| {
        e["ts"]
            .as_str()
            .and_then(|t| chrono::DateTime::parse_from_rfc3339(t).ok())
            .map(|t| t.timestamp_millis())
    };
    let Some(origin) = events.first().and_then(ms) else {
        return BTreeMap::new();
    };
    let at = |e: &Value| ms(e).map_or(0, |t| (t - origin).max(0) as u64);
    let mut started: BTreeMap<String, u64> = BTreeMap::new();
    let mut ended: Vec<(String, u64, u64)> = Vec::new();
    for e in events {
        let Some(task) = e["task"].as_str() else {
            continue;
        };
        match e["event"].as_str() {
            Some("task_started") => {
                started.insert(task.to_string(), at(e));
            }
            Some("task_done" | "task_failed") => {
                if let Some(start) = started.remove(task) {
                    ended.push((task.to_string(), start, at(e)));
                }
            }
            _ => {}
        }
    }
    ended.sort_by_key(|(_, start, _)| *start);
    let mut lanes: Vec<u64> = Vec::new();
    let mut out = BTreeMap::new();
    for (task, start, end) in ended {
        let lane = match lanes.iter().position(|&free| free <= start) {
            Some(l) => l,
            None => {
                lanes.push(0);
                lanes.len() - 1
            }
        };
        lanes[lane] = end;
        out.insert(task, Span { start, end, lane });
    }
    out
}

#[derive(Deserialize)]
pub(super) struct Pair {
    a: String,
    b: String,
    instance: Option<String>,
}

pub(super) async fn compare(State(app): State<Arc<App>>, Query(q): Query<Pair>) -> Reply {
    let store = app.load(q.instance.as_deref())?.store;
    let (a, b) = (find(&store, &q.a).await?, find(&store, &q.b).await?);
    let by_task = |r: &RunRecord| -> BTreeMap<String, (String, Option<String>)> {
        r.tasks
            .iter()
            .map(|t| (t.task.clone(), (t.status.clone(), t.build.clone())))
            .collect()
    };
    let (ta, tb) = (by_task(&a), by_task(&b));
    let names: BTreeSet<&String> = ta.keys().chain(tb.keys()).collect();
    let tasks: Vec<Value> = names
        .into_iter()
        .map(|name| {
            let (sa, ba) = ta.get(name).cloned().unzip();
            let (sb, bb) = tb.get(name).cloned().unzip();
            let (ba, bb) = (ba.flatten(), bb.flatten());
            json!({
                "task": name, "a": sa, "b": sb, "a_build": ba, "b_build": bb,
                "changed": ba != bb,
            })
        })
        .collect();
    Ok(json(
        json!({ "a": summary(&a), "b": summary(&b), "tasks": tasks }),
    ))
}
