//! `weir runs` (the run history) and `weir log` (one run, task by task).

use std::io::Write;
use std::time::Duration;

use crate::config::secrets::Redacted;
use crate::store::runs::{RunRecord, TaskRecord};

use super::{human_bytes, secs, thousands};

/// One line per run, newest first, as given.
pub fn print_runs(runs: &[RunRecord]) -> std::io::Result<()> {
    let mut out = Redacted(std::io::stdout().lock());
    let width = runs
        .iter()
        .map(|r| r.run_id.len())
        .max()
        .unwrap_or(0)
        .max(3);
    writeln!(
        out,
        "{:<width$}  {:<19}  {:>9}  {:<6}  {:>5}  {:>6}  {:>6}  {:>7}",
        "run", "started (UTC)", "took", "result", "ran", "cached", "failed", "skipped"
    )?;
    for r in runs {
        writeln!(
            out,
            "{:<width$}  {:<19}  {:>9}  {:<6}  {:>5}  {:>6}  {:>6}  {:>7}",
            r.run_id,
            when(&r.started_at),
            secs(took(r)),
            if r.ok { "ok" } else { "failed" },
            r.count("ran"),
            r.count("cached"),
            r.count("failed"),
            r.count("skipped"),
        )?;
    }
    Ok(())
}

/// One run: when, where, and each task's status, time, rows, bytes and error; then its event
/// log if asked for.
pub fn print_run(r: &RunRecord, events: Option<&str>) -> std::io::Result<()> {
    let mut text = Vec::new();
    let out = &mut text;
    let result = if r.ok { "ok" } else { "failed" };
    writeln!(out, "run {}  {result}", r.run_id)?;
    writeln!(out, "  instance {}, script {}", r.instance, r.script)?;
    writeln!(
        out,
        "  started {}, ended {}, took {}",
        when(&r.started_at),
        when(&r.ended_at),
        secs(took(r))
    )?;
    if let Some(q) = &r.requests {
        writeln!(
            out,
            "  store requests {}: {} get, {} head, {} put, {} list, {} delete",
            q.total(),
            q.get,
            q.head,
            q.put,
            q.list,
            q.delete
        )?;
    }
    let width = r
        .tasks
        .iter()
        .map(|t| t.task.len())
        .max()
        .unwrap_or(0)
        .max(4);
    writeln!(
        out,
        "  {:<width$}  {:<12}  {:>12}  {:>10}  {:>9}",
        "task", "status", "rows", "bytes", "took"
    )?;
    for t in &r.tasks {
        task_line(out, t, width)?;
    }
    let stages: Vec<String> = r.stages.iter().map(super::summary::stage_text).collect();
    writeln!(out, "stages: {}", stages.join(", "))?;
    writeln!(
        out,
        "{}: {} ran, {} cached, {} failed, {} skipped",
        super::plural(r.tasks.len() as u64, "task"),
        r.count("ran"),
        r.count("cached"),
        r.count("failed"),
        r.count("skipped"),
    )?;
    if let Some(events) = events {
        writeln!(out, "events:")?;
        out.write_all(events.as_bytes())?;
    }
    // Written at once, so a secret is never split across writes of the redacting writer.
    super::stdout_text(&text)
}

fn task_line(out: &mut Vec<u8>, t: &TaskRecord, width: usize) -> std::io::Result<()> {
    let built = t.status == "ran" || t.status == "cached";
    let (rows, bytes) = if built {
        (thousands(t.rows), human_bytes(t.bytes))
    } else {
        (String::new(), String::new())
    };
    let time = match t.status.as_str() {
        "ran" | "failed" => secs(Duration::from_millis(t.duration_ms)),
        _ => String::new(),
    };
    let mut why = match t.status.as_str() {
        "ran" if !t.reason.is_empty() => format!("  ({})", t.reason.join(", ")),
        _ => String::new(),
    };
    if t.spilled_bytes > 0 {
        why.push_str(&format!("  spilled {}", human_bytes(t.spilled_bytes)));
    }
    if !t.failed_attempts.is_empty() {
        let attempt = super::summary::ordinal(t.failed_attempts.len() + 1);
        why.push_str(&format!("  ({attempt} attempt)"));
    }
    let status = t.status.replace('_', " ");
    let line = format!(
        "  {:<width$}  {status:<12}  {rows:>12}  {bytes:>10}  {time:>9}{why}",
        t.task
    );
    writeln!(out, "{}", line.trim_end())?;
    for line in t.error.iter().flat_map(|e| e.lines()) {
        writeln!(out, "      {line}")?;
    }
    if let Some(total) = t.partitions_total {
        writeln!(out, "      {}", partitions_line(&t.partitions, total))?;
    }
    for c in &t.checks {
        let result = match (c.offending, c.severity.as_str()) {
            (0, _) => "passed".to_string(),
            (n, "warn") => format!("warned: {}", super::plural(n, "offending row")),
            (n, _) => format!("failed: {}", super::plural(n, "offending row")),
        };
        writeln!(out, "      check `{}` {result}", c.check)?;
    }
    for l in &t.logs {
        writeln!(out, "      {:<5} {}", l.level, l.text())?;
    }
    Ok(())
}

/// `partitions: 2 of 365 computed: day=2026-12-01, day=2026-12-02` (the first ten named).
fn partitions_line(computed: &[String], total: usize) -> String {
    const SHOWN: usize = 10;
    let mut line = format!("partitions: {} of {total} computed", computed.len());
    if !computed.is_empty() {
        let named: Vec<&str> = computed.iter().take(SHOWN).map(String::as_str).collect();
        line.push_str(&format!(": {}", named.join(", ")));
        if computed.len() > SHOWN {
            line.push_str(&format!(" and {} more", computed.len() - SHOWN));
        }
    }
    line
}

fn took(r: &RunRecord) -> Duration {
    if r.duration_ms > 0 {
        return Duration::from_millis(r.duration_ms);
    }
    let parse = |s: &str| chrono::DateTime::parse_from_rfc3339(s).ok();
    match (parse(&r.started_at), parse(&r.ended_at)) {
        (Some(a), Some(b)) => (b - a).to_std().unwrap_or_default(),
        _ => Duration::ZERO,
    }
}

/// An RFC 3339 time as `2026-11-22 10:42:31` in UTC; as stored if it does not parse.
fn when(stamp: &str) -> String {
    chrono::DateTime::parse_from_rfc3339(stamp)
        .map(|t| {
            t.with_timezone(&chrono::Utc)
                .format("%Y-%m-%d %H:%M:%S")
                .to_string()
        })
        .unwrap_or_else(|_| stamp.to_string())
}
