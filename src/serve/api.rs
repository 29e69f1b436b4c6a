//! The project's views: what the page header needs, the flow with each task's status, one
//! task in full, and the catalog of committed tables.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use axum::extract::{Path, Query, State};
use serde_json::{Value, json};

use super::reply::{ApiError, Reply, json, off_thread};
use super::{App, Params};
use crate::flow::Flow;
use crate::report::{key_parts, render_svg};
use crate::script::TaskKind;
use crate::session::{Loaded, Planned, Reader, failed_last_run, graph, plan_all};
use crate::store::runs::RunRecord;
use crate::store::{Store, TableBuild};

/// How many rows a task's preview shows.
const PREVIEW_ROWS: usize = 20;
/// How many recent runs a task's build history is looked for in.
const HISTORY_RUNS: usize = 30;

pub(super) async fn meta(State(app): State<Arc<App>>, Query(q): Query<Params>) -> Reply {
    let loaded = app.load(q.instance.as_deref())?;
    let running = loaded.store.running().await?;
    Ok(json(json!({
        "project": loaded.flow_name,
        "script": loaded.script.source.name(),
        "instance": loaded.instance.name,
        "instances": instances(&app, &loaded)?,
        "store": loaded.store.display_url(),
        "weir_version": env!("CARGO_PKG_VERSION"),
        "allow_run": app.allow_run,
        "csrf": app.csrf,
        "running": running,
    })))
}

/// The instances the page may switch between (the one in use when weir.toml names none).
fn instances(app: &App, loaded: &Loaded) -> crate::Result<Vec<String>> {
    let mut names = app.target.instance_names()?;
    if !names.contains(&loaded.instance.name) {
        names.insert(0, loaded.instance.name.clone());
    }
    Ok(names)
}

pub(super) async fn flow(State(app): State<Arc<App>>, Query(q): Query<Params>) -> Reply {
    off_thread(move || flow_view(app, q)).await
}

pub(super) async fn flow_view(app: Arc<App>, q: Params) -> Reply {
    let loaded = app.load(q.instance.as_deref())?;
    let planned = plan_all(&loaded, None).await?;
    let selection = crate::flow::select::Selection::new(
        q.select
            .iter()
            .flat_map(|s| s.split_whitespace())
            .map(str::to_string)
            .collect(),
        Vec::new(),
    );
    let selected = crate::flow::select::select(&planned.flow, &selection)?;
    let failed = failed_last_run(&loaded.store).await?;
    let running = super::events::running_tasks(&loaded.store).await?;
    let drawing = graph(&planned, &failed, &selected);
    let svg = render_svg(&drawing, &app.layouts).unwrap_or_default();
    let downstream = downstream(&planned.flow);
    let tasks: Vec<Value> = selected
        .iter()
        .map(|&i| {
            let task = &planned.flow.tasks[i];
            let id = task.id.to_string();
            let (state, detail) = state(&planned, i, &failed, &running);
            json!({
                "id": id,
                "stage": task.decl.stage,
                "name": task.decl.name,
                "kind": task.decl.kind.label(),
                "outputs": task.decl.outputs,
                "deps": task.deps.iter().map(|&d| planned.flow.tasks[d].id.to_string()).collect::<Vec<_>>(),
                "downstream": downstream.get(&i).cloned().unwrap_or_default(),
                "tags": task.decl.opts.tags,
                "state": state,
                "detail": detail,
            })
        })
        .collect();
    Ok(json(json!({
        "stages": planned.flow.stages(),
        "tasks": tasks,
        "svg": svg,
    })))
}

/// A task's status in one word for the page, and why: the plan's, unless the last run failed
/// it (and it is not fresh since) or a run is building it now.
fn state(
    planned: &Planned,
    i: usize,
    failed: &[String],
    running: &BTreeSet<String>,
) -> (&'static str, String) {
    let id = planned.flow.tasks[i].id.to_string();
    let state = planned.state(i);
    if running.contains(&id) {
        return ("running", "a run is building it now".into());
    }
    match state.word {
        "never built" => ("never", "never built".into()),
        "fresh" | "volatile" | "tainted" | "cleared" | "damaged" => (state.word, state.detail),
        _ if failed.contains(&id) => ("failed", state.detail),
        word => (word, state.detail),
    }
}

/// Each task's readers, by task index.
fn downstream(flow: &Flow) -> BTreeMap<usize, Vec<String>> {
    let mut out: BTreeMap<usize, Vec<String>> = BTreeMap::new();
    for task in &flow.tasks {
        for &d in &task.deps {
            out.entry(d).or_default().push(task.id.to_string());
        }
    }
    out
}

pub(super) async fn task(
    State(app): State<Arc<App>>,
    Path(id): Path<String>,
    Query(q): Query<Params>,
) -> Reply {
    off_thread(move || task_view(app, id, q)).await
}

async fn task_view(app: Arc<App>, id: String, q: Params) -> Reply {
    let loaded = app.load(q.instance.as_deref())?;
    let planned = plan_all(&loaded, None).await?;
    let Ok((i, _)) = planned.find(&id) else {
        return Err(ApiError::not_found(format!("no task {id} in this flow")));
    };
    let task = &planned.flow.tasks[i];
    let step = &planned.plan.steps[i];
    let committed = planned.committed(i);
    let failed = failed_last_run(&loaded.store).await?;
    let running = super::events::running_tasks(&loaded.store).await?;
    let (state, detail) = state(&planned, i, &failed, &running);
    let parts = key_parts(
        &step.parts,
        committed.map(|b| &b.parts),
        &planned.input_notes(i),
    );
    let id = task.id.to_string();
    let records = recent_records(&loaded.store, HISTORY_RUNS).await?;
    let builds: Vec<Value> = records
        .iter()
        .filter_map(|r| {
            let t = r.tasks.iter().find(|t| t.task == id)?;
            (t.status != "not_selected").then(|| {
                json!({
                    "run_id": r.run_id, "started_at": r.started_at, "status": t.status,
                    "rows": t.rows, "bytes": t.bytes, "duration_ms": t.duration_ms,
                    "spilled_bytes": t.spilled_bytes, "error": t.error, "reason": t.reason,
                })
            })
        })
        .take(20)
        .collect();
    let logs = records
        .iter()
        .filter_map(|r| r.tasks.iter().find(|t| t.task == id && t.status == "ran"))
        .map(|t| &t.logs)
        .next()
        .cloned()
        .unwrap_or_default();
    let preview = match committed {
        Some(build) => preview(&loaded, build).await,
        None => Value::Null,
    };
    Ok(json(json!({
        "id": id,
        "stage": task.decl.stage,
        "kind": task.decl.kind.label(),
        "state": state,
        "detail": detail,
        "description": task.decl.opts.description,
        "key": step.key.to_string(),
        "committed": committed.map(|b| json!({ "key": b.key.to_string(), "run_id": b.run_id, "built_at": b.built_at })),
        "parts": parts.iter().map(|p| json!({
            "part": p.name, "now": p.now, "then": p.then, "changed": p.changed(), "note": p.note,
        })).collect::<Vec<_>>(),
        "code": code(&loaded, task),
        "inputs": task.inputs.iter().map(ToString::to_string).collect::<Vec<_>>(),
        "outputs": task.decl.outputs.iter().map(|o| format!("{}.{o}", task.decl.stage)).collect::<Vec<_>>(),
        "downstream": downstream(&planned.flow).remove(&i).unwrap_or_default(),
        "checks": checks(task, committed),
        "builds": builds,
        "logs": logs,
        "schema": committed.map(schema),
        "preview": preview,
    })))
}

/// The task's code as the page shows it: its SQL (from its file when it has one), or the
/// script's text of its function, with where it is.
fn code(loaded: &Loaded, task: &crate::flow::Task) -> Value {
    let script = &loaded.script;
    let line = task.decl.origin.line;
    match &task.decl.kind {
        TaskKind::Sql { sql, file, .. } => json!({
            "language": "sql",
            "text": sql,
            "file": file.as_ref().map_or_else(|| script.source.name(), |f| f.display().to_string()),
            "line": if file.is_some() { 1 } else { line },
        }),
        TaskKind::Rhai { func, .. } => {
            // A closure is best shown where it is declared; a named function as defined.
            let text = function_text(&script.source.text, func.fn_name())
                .unwrap_or_else(|| declaration(&script.source.text, line));
            json!({ "language": "rhai", "text": text, "file": script.source.name(), "line": line })
        }
        TaskKind::Load(_) | TaskKind::Sample(_) => json!({
            "language": "rhai",
            "text": declaration(&script.source.text, line),
            "file": script.source.name(),
            "line": line,
        }),
    }
}

/// `fn name(...) { ... }` as written in `text`: from its line to the brace that closes it.
fn function_text(text: &str, name: &str) -> Option<String> {
    let start = text.find(&format!("fn {name}("))?;
    let mut depth = 0i32;
    let mut opened = false;
    for (offset, c) in text[start..].char_indices() {
        match c {
            '{' => {
                depth += 1;
                opened = true;
            }
            '}' => depth -= 1,
            _ => {}
        }
        if opened && depth == 0 {
            return Some(text[start..=start + offset].to_string());
        }
    }
    None
}

/// The statement at `line` of the script (up to its `;`, at most 20 lines).
fn declaration(text: &str, line: usize) -> String {
    let mut out = Vec::new();
    for l in text.lines().skip(line.saturating_sub(1)).take(20) {
        out.push(l);
        if l.trim_end().ends_with(';') {
            break;
        }
    }
    out.join("\n")
}

/// The task's declared checks, with what they found on the committed build.
fn checks(task: &crate::flow::Task, committed: Option<&TableBuild>) -> Vec<Value> {
    let found: Vec<Value> = committed
        .map(|b| {
            b.checks
                .values()
                .map(|c| json!({ "name": c.check, "severity": c.severity, "ok": c.offending == 0, "offending": c.offending }))
                .collect()
        })
        .unwrap_or_default();
    let mut out = found;
    for (check, severity) in &task.decl.opts.expect {
        if !out.iter().any(|c| c["name"] == check.as_str()) {
            out.push(json!({ "name": check, "severity": format!("{severity:?}").to_lowercase(), "ok": Value::Null, "offending": Value::Null }));
        }
    }
    out
}

fn schema(build: &TableBuild) -> Value {
    build
        .schema
        .iter()
        .map(|c| {
            json!({
                "name": c.name, "type": c.data_type, "nullable": c.nullable,
                "description": build.descriptions.get(&c.name),
            })
        })
        .collect()
}

/// The first rows of a committed table, or the error reading them.
async fn preview(loaded: &Loaded, build: &TableBuild) -> Value {
    let read = async {
        let engine = loaded.engine(None)?;
        let reader = Reader::open(&loaded.store, &engine).await?;
        let table = reader.committed(&format!("{}.{}", build.stage, build.table))?;
        reader.head(&table, PREVIEW_ROWS + 1).await
    };
    match read.await {
        Ok(rows) => super::sql::rows_json(&rows, PREVIEW_ROWS),
        Err(e) => json!({ "error": e.to_string() }),
    }
}

/// The newest `n` run records, newest first.
pub(super) async fn recent_records(store: &Store, n: usize) -> crate::Result<Vec<RunRecord>> {
    let ids = store.run_ids().await?;
    let reads = ids.iter().take(n).map(|id| store.read_run(id));
    let records = futures::future::try_join_all(reads).await?;
    Ok(records.into_iter().flatten().collect())
}

pub(super) async fn catalog(State(app): State<Arc<App>>, Query(q): Query<Params>) -> Reply {
    off_thread(move || catalog_view(app, q)).await
}

async fn catalog_view(app: Arc<App>, q: Params) -> Reply {
    let loaded = app.load(q.instance.as_deref())?;
    let flow = Flow::build(&loaded.script)?;
    let manifests = loaded.store.read_manifests().await?;
    let readers = downstream(&flow);
    let mut tables = Vec::new();
    for (stage, manifest) in &manifests {
        for (name, build) in &manifest.tables {
            let id = format!("{stage}.{name}");
            let task = flow
                .producers
                .get(&crate::names::TableName::new(stage, name))
                .copied();
            let decl = task.map(|i| &flow.tasks[i]);
            tables.push(json!({
                "table": id,
                "stage": stage,
                "task": decl.map(|t| t.id.to_string()),
                "description": decl.and_then(|t| t.decl.opts.description.clone()),
                "columns": schema(build),
                "primary_key": build.primary_key,
                "checks": build.checks.values().map(|c| c.check.clone()).collect::<Vec<_>>(),
                "rows": build.rows,
                "bytes": build.bytes,
                "built_run": build.run_id,
                "built_at": build.built_at,
                "upstream": decl.map(|t| t.inputs.iter().map(ToString::to_string).collect::<Vec<_>>()).unwrap_or_default(),
                "downstream": task.and_then(|i| readers.get(&i).cloned()).unwrap_or_default(),
            }));
        }
    }
    Ok(json(Value::Array(tables)))
}
