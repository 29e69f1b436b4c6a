//! What `weir cache`, `weir clear` and `weir init` print.

use std::collections::BTreeSet;
use std::io::Write;

use super::{human_bytes, stdout_text};
use crate::store::inventory::{Standing, StoredBuild};

/// Every stored build with its standing, then a total per standing.
pub fn print_cache_list(builds: &[(StoredBuild, Standing)]) -> std::io::Result<()> {
    let mut out = Vec::new();
    let width = builds
        .iter()
        .map(|(b, _)| b.stage.len() + b.table.len() + 1)
        .max()
        .unwrap_or(0)
        .max(5);
    let now = chrono::Utc::now();
    // A key built again (--force, clear) has several builds: the build (the run that wrote
    // it) tells them apart.
    let build_width = builds
        .iter()
        .map(|(b, _)| b.build.len())
        .max()
        .unwrap_or(0)
        .max(5);
    if !builds.is_empty() {
        writeln!(
            out,
            "{:<width$}  {:<12}  {:<build_width$}  {:<10}  {:>9}  written",
            "table", "key", "build", "standing", "bytes"
        )?;
    }
    for (b, s) in builds {
        let build = if b.build.is_empty() {
            "-"
        } else {
            b.build.as_str()
        };
        writeln!(
            out,
            "{:<width$}  {}  {build:<build_width$}  {:<10}  {:>9}  {}",
            format!("{}.{}", b.stage, b.table),
            short(&b.key),
            s.label(),
            human_bytes(b.bytes),
            age(now - b.modified),
        )?;
    }
    for s in [
        Standing::Committed,
        Standing::Current,
        Standing::Recent,
        Standing::Held,
        Standing::Old,
        Standing::Incomplete,
    ] {
        let (n, bytes) = builds
            .iter()
            .filter(|(_, st)| *st == s)
            .fold((0, 0), |(n, bytes), (b, _)| (n + 1, bytes + b.bytes));
        if n > 0 {
            let n = super::plural(n as u64, "build");
            writeln!(out, "{}: {n}, {}", s.label(), human_bytes(bytes))?;
        }
    }
    if builds.is_empty() {
        writeln!(out, "nothing is stored for this instance yet")?;
    }
    stdout_text(&out)
}

/// One build gc deletes (or, dry, would delete).
pub fn print_gc_deleting(b: &StoredBuild, dry_run: bool) {
    let verb = if dry_run { "would delete" } else { "delete" };
    let line = format!(
        "{verb}  {}.{}  {}  {}\n",
        b.stage,
        b.table,
        short(&b.key),
        human_bytes(b.bytes)
    );
    let _ = stdout_text(line.as_bytes());
}

/// What gc freed and kept; `leftovers` are half-written files it removed. `(dry_run,
/// kept_recent)` say whether it deleted anything and whether `--older-than` kept recent builds.
pub fn print_gc_summary(
    deleted: &[StoredBuild],
    kept: usize,
    leftovers: &[std::path::PathBuf],
    (dry_run, kept_recent): (bool, bool),
) -> std::io::Result<()> {
    let freed: u64 = deleted.iter().map(|b| b.bytes).sum();
    let done = if dry_run { "would free" } else { "freed" };
    let recent = if kept_recent {
        ", younger than --older-than"
    } else {
        ""
    };
    let mut out = Vec::new();
    let verb = if dry_run { "would delete" } else { "delete" };
    for file in leftovers {
        writeln!(out, "{verb}  half-written {}", file.display())?;
    }
    writeln!(
        out,
        "{done} {} in {}; kept {kept} (committed now or by recent runs, current, held{recent})",
        human_bytes(freed),
        super::plural(deleted.len() as u64, "build"),
    )?;
    stdout_text(&out)
}

/// The tasks `weir clear` marked.
pub fn print_cleared(ids: &BTreeSet<String>) -> std::io::Result<()> {
    let mut out = Vec::new();
    for id in ids {
        writeln!(out, "cleared {id}")?;
    }
    writeln!(
        out,
        "the next run rebuilds {}",
        super::plural(ids.len() as u64, "task")
    )?;
    stdout_text(&out)
}

/// The files `weir init` wrote, and what to do next.
pub fn print_init(dir: &str, files: &[&str], script: &str) -> std::io::Result<()> {
    let mut out = Vec::new();
    writeln!(out, "created {dir} with a pipeline and sample data:")?;
    for file in files {
        writeln!(out, "  {file}")?;
    }
    writeln!(
        out,
        "next: weir run {script}   (then weir status {script}, weir graph {script})"
    )?;
    stdout_text(&out)
}

fn short(key: &str) -> &str {
    &key[..key.len().min(12)]
}

fn age(d: chrono::TimeDelta) -> String {
    let s = d.num_seconds().max(0);
    match s {
        0..60 => format!("{s} s ago"),
        60..3600 => format!("{} min ago", s / 60),
        3600..86400 => format!("{} h ago", s / 3600),
        _ => format!("{} d ago", s / 86400),
    }
}
