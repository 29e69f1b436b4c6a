//! The end-of-run summary and the `status` listing.

use std::io::Write;
use std::time::Duration;

use super::{secs, thousands};

pub struct SummaryRow<'a> {
    pub task: String,
    pub status: &'a str,
    pub rows: Option<u64>,
    pub duration: Duration,
    pub detail: Option<String>,
}

pub fn print_summary(
    run_id: &str,
    rows: &[SummaryRow<'_>],
    stages: &[(String, bool, bool)],
    took: Duration,
) -> std::io::Result<()> {
    let mut out = crate::config::secrets::Redacted(std::io::stdout().lock());
    let width = rows.iter().map(|r| r.task.len()).max().unwrap_or(0);
    writeln!(out, "run {run_id}")?;
    for r in rows {
        let rows_text = r
            .rows
            .map(|n| format!("{:>12} rows", thousands(n)))
            .unwrap_or_default();
        let time = if r.status == "ran" || r.status == "failed" {
            format!("  {}", secs(r.duration))
        } else {
            String::new()
        };
        writeln!(
            out,
            "  {:<width$}  {:<12}{rows_text}{time}",
            r.task, r.status
        )?;
        if let Some(d) = &r.detail {
            for line in d.lines() {
                writeln!(out, "      {line}")?;
            }
        }
    }
    let stage_text: Vec<String> = stages
        .iter()
        .map(|(s, committed, changed)| match (committed, changed) {
            (true, true) => format!("{s} committed"),
            (true, false) => format!("{s} unchanged"),
            (false, _) => format!("{s} NOT committed"),
        })
        .collect();
    writeln!(out, "stages: {}", stage_text.join(", "))?;
    let count = |s: &str| rows.iter().filter(|r| r.status == s).count();
    writeln!(
        out,
        "{} tasks: {} ran, {} cached, {} failed, {} skipped in {}",
        rows.len(),
        count("ran"),
        count("cached"),
        count("failed"),
        count("skipped"),
        secs(took)
    )?;
    Ok(())
}

pub struct StatusLine {
    pub task: String,
    pub state: String,
    pub detail: String,
    /// Lines printed under the task's (`status -v`: its key and the key's parts).
    pub extra: Vec<String>,
}

pub fn print_status(lines: &[StatusLine]) -> std::io::Result<()> {
    let mut out = crate::config::secrets::Redacted(std::io::stdout().lock());
    let width = lines.iter().map(|l| l.task.len()).max().unwrap_or(0);
    for l in lines {
        let detail = if l.detail.is_empty() {
            String::new()
        } else {
            format!("  ({})", l.detail)
        };
        writeln!(out, "{:<width$}  {}{detail}", l.task, l.state)?;
        for line in &l.extra {
            writeln!(out, "{line}")?;
        }
    }
    Ok(())
}
