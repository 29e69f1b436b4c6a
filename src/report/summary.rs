//! The end-of-run summary and the `status` listing.

use std::io::Write;
use std::time::Duration;

use super::{secs, thousands};

pub struct SummaryRow<'a> {
    pub task: String,
    pub status: &'a str,
    pub rows: Option<u64>,
    pub duration: Duration,
    /// Which attempt its status is of (`retries`): 1 unless earlier ones failed.
    pub attempt: usize,
    pub detail: Option<String>,
}

/// Above this many tasks, cached and unselected ones are counted, not listed (unless verbose):
/// a no-op run of a thousand tasks should fit on a screen.
const LIST_ALL_UP_TO: usize = 40;

pub fn print_summary(
    run_id: &str,
    rows: &[SummaryRow<'_>],
    stages: &[crate::store::runs::StageRecord],
    took: Duration,
    verbose: bool,
) -> std::io::Result<()> {
    let mut text = Vec::new();
    let out = &mut text;
    let listed = |r: &&SummaryRow| {
        verbose || rows.len() <= LIST_ALL_UP_TO || !matches!(r.status, "cached" | "not selected")
    };
    let width = rows
        .iter()
        .filter(listed)
        .map(|r| r.task.len())
        .max()
        .unwrap_or(0);
    writeln!(out, "run {run_id}")?;
    for r in rows.iter().filter(listed) {
        summary_row(out, r, width)?;
    }
    let hidden = rows.len() - rows.iter().filter(listed).count();
    if hidden > 0 {
        writeln!(
            out,
            "  ... and {hidden} cached or unselected tasks (--verbose lists them)"
        )?;
    }
    let stage_text: Vec<String> = stages.iter().map(stage_text).collect();
    if stage_text.is_empty() {
        // A run cancelled before any stage was decided has none to list.
        writeln!(out, "stages: none committed")?;
    } else {
        writeln!(out, "stages: {}", stage_text.join(", "))?;
    }
    let count = |s: &str| rows.iter().filter(|r| r.status == s).count();
    let unselected = match count("not selected") {
        0 => String::new(),
        n => format!(", {n} not selected"),
    };
    // Reused builds whose new data checks ran: counted, so the counts add up.
    let unselected = match count("checked") {
        0 => unselected,
        n => format!(", {n} checked{unselected}"),
    };
    writeln!(
        out,
        "{}: {} ran, {} cached, {} failed, {} skipped{unselected} in {}",
        super::plural(rows.len() as u64, "task"),
        count("ran"),
        count("cached"),
        count("failed"),
        count("skipped"),
        secs(took)
    )?;
    if count("failed") > 0 {
        writeln!(out, "details: weir log {run_id}")?;
    }
    // One write, so the redacting writer sees whole lines.
    super::stdout_text(&text)
}

fn summary_row(out: &mut Vec<u8>, r: &SummaryRow<'_>, width: usize) -> std::io::Result<()> {
    let rows_text = r
        .rows
        .map(|n| {
            format!(
                "{:>12} {}",
                thousands(n),
                if n == 1 { "row " } else { "rows" }
            )
        })
        .unwrap_or_default();
    let mut time = if r.status == "ran" || r.status == "failed" {
        format!("  {}", secs(r.duration))
    } else {
        String::new()
    };
    if r.attempt > 1 {
        time.push_str(&format!("  ({} attempt)", ordinal(r.attempt)));
    }
    writeln!(
        out,
        "  {:<width$}  {:<12}{rows_text}{time}",
        r.task, r.status
    )?;
    for line in r.detail.iter().flat_map(|d| d.lines()) {
        writeln!(out, "      {line}")?;
    }
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
    // The counts, by state in the order they first appear.
    let mut counts: Vec<(&str, usize)> = Vec::new();
    for l in lines {
        match counts.iter_mut().find(|(s, _)| *s == l.state) {
            Some((_, n)) => *n += 1,
            None => counts.push((&l.state, 1)),
        }
    }
    let counts: Vec<String> = counts.iter().map(|(s, n)| format!("{n} {s}")).collect();
    let tasks = super::plural(lines.len() as u64, "task");
    writeln!(out, "{tasks}: {}", counts.join(", "))?;
    Ok(())
}

/// `weir run --dry-run`: what a run would do with each task, counted as `print_status` counts.
pub fn print_dry_run(lines: &[StatusLine]) -> std::io::Result<()> {
    writeln!(
        std::io::stdout().lock(),
        "dry run: nothing is run, written or committed"
    )?;
    print_status(lines)
}

/// How a stage came out of a run, as the summary and `weir log` say it.
pub(crate) fn stage_text(s: &crate::store::runs::StageRecord) -> String {
    match (s.committed, s.changed, &s.reason) {
        (true, true, _) => format!("{} committed", s.stage),
        (true, false, _) => format!("{} unchanged", s.stage),
        (false, _, Some(why)) => format!("{} NOT committed ({why})", s.stage),
        (false, _, None) => format!("{} NOT committed", s.stage),
    }
}

/// 1st, 2nd, 3rd, 4th, ... 11th, 12th, 13th, 21st.
pub(crate) fn ordinal(n: usize) -> String {
    let suffix = match (n % 10, n % 100) {
        (_, 11..=13) => "th",
        (1, _) => "st",
        (2, _) => "nd",
        (3, _) => "rd",
        _ => "th",
    };
    format!("{n}{suffix}")
}
