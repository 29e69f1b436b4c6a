//! Run events as they happen: plain lines on stderr (or a live display on a terminal), and
//! the same events as the run's JSON log.

use std::time::Duration;

use serde_json::json;

use super::log::{EventLog, stage_of};
use super::progress::Live;
use super::{event, first_line, secs};

/// How much `weir run` says while it runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Verbosity {
    /// The summary only.
    Quiet,
    /// Tasks that run, fail or commit, with why they run.
    Normal,
    /// Also cached and skipped tasks, and the SQL of each SQL task that runs (`-v`).
    Verbose,
    /// Also the physical plan each task ran (`-vv`).
    Plans,
}

pub struct Printer {
    verbosity: Verbosity,
    terminal: bool,
    /// Colour and unicode allowed (a terminal without NO_COLOR).
    color: bool,
    live: Option<Live>,
    log: EventLog,
}

impl Printer {
    pub fn new(run_id: &str, verbosity: Verbosity) -> Self {
        let mut printer = Self::with_terminal(run_id, verbosity, super::stderr_is_terminal());
        printer.color = super::color_on_stderr();
        printer
    }

    fn with_terminal(run_id: &str, verbosity: Verbosity, terminal: bool) -> Self {
        Self {
            verbosity,
            terminal,
            color: false,
            live: None,
            log: EventLog::new(run_id),
        }
    }

    /// The run starts: `to_run` of `total` tasks will run. On a terminal the live display
    /// starts here, once nothing else (the lock wait) prints on its own.
    pub fn begin(&mut self, instance: &str, engine: &str, to_run: usize, total: usize) {
        self.log.push(
            "run_started",
            json!({ "instance": instance, "engine": engine, "tasks": total, "to_run": to_run }),
        );
        if engine != "local" && to_run > 0 {
            self.line(format!(
                "engine {engine}: SQL tasks and loads run on the cluster"
            ));
        }
        if self.terminal && self.verbosity != Verbosity::Quiet && to_run > 0 {
            self.live = Some(Live::start(to_run, self.color));
        }
    }

    /// The run ended; the live display is cleared before the summary prints.
    pub fn end(&mut self, ok: bool, took: Duration) {
        if let Some(live) = self.live.take() {
            live.finish();
        }
        self.log.push(
            "run_finished",
            json!({ "ok": ok, "duration_ms": took.as_millis() as u64 }),
        );
    }

    /// The JSON lines of every event so far.
    pub fn log_text(&self) -> String {
        self.log.text()
    }

    /// The events as they come, for writing the log while the run goes on.
    pub fn live_log(&self) -> super::log::LiveLog {
        self.log.live()
    }

    fn line(&self, s: String) {
        if self.verbosity != Verbosity::Quiet {
            event(&s);
        }
    }

    fn verbose(&self, s: String) {
        if self.verbosity >= Verbosity::Verbose {
            event(&s);
        }
    }

    /// With `-v`: the SQL a task runs, as the script made it (after `${...}` interpolation).
    pub fn task_sql(&self, task: &str, sql: &str) {
        if self.verbosity >= Verbosity::Verbose {
            event(&format!("  sql     {task}\n{}", indented(sql)));
        }
    }

    /// With `-vv`: the physical plan that wrote `table` of `task`.
    pub fn task_plan(&self, task: &str, table: &str, plan: &str) {
        if self.verbosity < Verbosity::Plans {
            return;
        }
        let output = match task.rsplit_once('.') {
            Some((_, name)) if name == table => String::new(),
            _ => format!(" (output {table})"),
        };
        event(&format!("  plan    {task}{output}\n{}", indented(plan)));
    }

    pub fn waiting_for_lock(&self, holder: &str) {
        // Shown even with --quiet: otherwise a waiting run looks hung.
        event(&format!(
            "waiting for the instance lock held by {holder} ..."
        ));
    }

    pub fn task_started(&self, task: &str, why: &[String]) {
        self.log.push(
            "task_started",
            json!({ "task": task, "stage": stage_of(task), "reasons": why }),
        );
        // On a terminal the task's spinner says it started; a line would say it twice.
        match &self.live {
            Some(live) => live.task_started(task),
            None => self.line(format!("  start   {task}{}", because(why))),
        }
    }

    pub fn task_cached(&self, task: &str, key: &str) {
        self.log.push(
            "task_cached",
            json!({ "task": task, "stage": stage_of(task), "key": key }),
        );
        self.verbose(format!("  cached  {task}  (key {key} is stored)"));
    }

    /// A task that did not run because its inputs were rebuilt with the content it was built
    /// from (early cutoff): its committed files now stand for its new key.
    pub fn task_kept(&self, task: &str) {
        self.log.push(
            "task_cached",
            json!({ "task": task, "stage": stage_of(task), "reason": "inputs rebuilt unchanged" }),
        );
        if let Some(live) = &self.live {
            live.task_ended(task);
        }
        self.line(format!("  cached  {task}  (inputs rebuilt unchanged)"));
    }

    pub fn task_skipped(&self, task: &str, why: &str) {
        self.log.push(
            "task_skipped",
            json!({ "task": task, "stage": stage_of(task), "reason": why }),
        );
        self.verbose(format!("  skip    {task}  ({why})"));
    }

    /// A task finished: its rows and bytes written, the bytes it spilled to stay within the
    /// memory limit, and its time.
    pub fn task_done(&self, task: &str, rows: u64, bytes: u64, spilled: u64, took: Duration) {
        self.log.push(
            "task_done",
            json!({
                "task": task, "stage": stage_of(task), "rows": rows, "bytes": bytes,
                "spilled_bytes": spilled, "duration_ms": took.as_millis() as u64,
            }),
        );
        if let Some(live) = &self.live {
            live.task_ended(task);
        }
        let spill = match spilled {
            0 => String::new(),
            n => format!("  spilled {}", super::human_bytes(n)),
        };
        self.line(format!(
            "  done    {task}  {}  {}{spill}",
            super::plural(rows, "row"),
            secs(took)
        ));
    }

    /// A line the task's code logged: recorded in the log; a warning is shown, info with -v and
    /// debug with -vv.
    pub fn task_log(&self, task: &str, line: &crate::store::LogLine) {
        self.log.push(
            "log",
            json!({
                "task": task, "stage": stage_of(task), "level": line.level,
                "message": line.message, "fields": line.fields, "logged_at": line.ts,
            }),
        );
        let shown = match line.level.as_str() {
            "warn" | "print" => Verbosity::Normal,
            "info" => Verbosity::Verbose,
            _ => Verbosity::Plans,
        };
        if self.verbosity < shown {
            return;
        }
        let text = format!("  {:<7} {task}: {}", line.level, line.text());
        match &self.live {
            Some(_) => event(&text),
            None => self.line(text),
        }
    }

    /// A data check ran: recorded in the log; a warning is shown.
    pub fn check(&self, task: &str, check: &crate::store::CheckOutcome) {
        self.log.push(
            "check",
            json!({
                "task": task, "stage": stage_of(task), "check": check.check,
                "severity": check.severity, "offending": check.offending,
            }),
        );
        if check.offending > 0 && check.severity == "warn" {
            let line = format!(
                "  warn    {task}: check `{}`: {}",
                check.check,
                super::plural(check.offending, "offending row")
            );
            match &self.live {
                Some(_) => event(&line),
                None => self.line(line),
            }
        }
    }

    pub fn task_failed(&self, task: &str, error: &str, took: Duration) {
        self.log.push(
            "task_failed",
            json!({
                "task": task, "stage": stage_of(task), "error": error,
                "duration_ms": took.as_millis() as u64,
            }),
        );
        if let Some(live) = &self.live {
            live.task_ended(task);
        }
        let mark = if self.color {
            "\x1b[31mfailed\x1b[0m"
        } else {
            "failed"
        };
        self.line(format!("  {mark}  {task}: {}", first_line(error)));
    }

    pub fn stage_committed(&self, stage: &str, changed: bool) {
        self.log.push(
            "stage_committed",
            json!({ "stage": stage, "changed": changed }),
        );
        if changed {
            self.line(format!("  commit  stage {stage}"));
        }
    }

    pub fn stage_held(&self, stage: &str) {
        self.log.push("stage_held", json!({ "stage": stage }));
        self.line(format!(
            "  keep    stage {stage} as committed before (it has tainted tasks: promote them)"
        ));
    }

    /// A stage kept as committed before: a task did not succeed, or (`reason`) it read a
    /// build that its own stage did not commit.
    pub fn stage_not_committed(&self, stage: &str, reason: Option<&str>) {
        self.log.push(
            "stage_not_committed",
            json!({ "stage": stage, "reason": reason }),
        );
        let why = reason.unwrap_or("a task did not succeed");
        self.line(format!(
            "  keep    stage {stage} as committed before ({why})"
        ));
    }
}

/// `text` indented under an event line, its own common indentation and blank edges removed.
fn indented(text: &str) -> String {
    let lines: Vec<&str> = text.trim_matches('\n').lines().collect();
    let margin = lines
        .iter()
        .filter(|l| !l.trim().is_empty())
        .map(|l| l.len() - l.trim_start().len())
        .min()
        .unwrap_or(0);
    lines
        .iter()
        .map(|l| {
            format!("          {}", l.get(margin..).unwrap_or(l.trim_start()))
                .trim_end()
                .to_string()
        })
        .collect::<Vec<_>>()
        .join("\n")
}

fn because(why: &[String]) -> String {
    if why.is_empty() {
        String::new()
    } else {
        format!(" ({})", why.join(", "))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_event_is_one_json_line() {
        let mut p = Printer::with_terminal("r1", Verbosity::Quiet, false);
        p.begin("default", "local", 2, 3);
        p.task_cached("raw.a", "k1");
        p.task_started("prep.b", &["code changed".into()]);
        p.task_failed("prep.b", "boom\nsecond line", Duration::from_millis(5));
        p.stage_not_committed("prep", None);
        p.end(false, Duration::from_millis(9));
        let text = p.log_text();
        let events: Vec<serde_json::Value> = text
            .lines()
            .map(|l| serde_json::from_str(l).expect("json line"))
            .collect();
        let names: Vec<&str> = events
            .iter()
            .map(|e| e["event"].as_str().unwrap())
            .collect();
        assert_eq!(
            names,
            [
                "run_started",
                "task_cached",
                "task_started",
                "task_failed",
                "stage_not_committed",
                "run_finished"
            ]
        );
        assert_eq!(events[3]["stage"], "prep");
        assert_eq!(events[3]["error"], "boom\nsecond line");
        assert!(
            events
                .iter()
                .all(|e| e["run"] == "r1" && e["ts"].is_string())
        );
    }
}
