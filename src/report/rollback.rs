//! What `weir rollback` says it did.

use std::io::Write;

use super::stdout_text;

/// What a rollback did.
pub struct RolledBack {
    pub run_id: String,
    /// The run rolled back to.
    pub to: String,
    /// Stages committed again, with the tables whose build changed.
    pub stages: Vec<(String, Vec<String>)>,
    /// Stages already as they were then.
    pub unchanged: Vec<String>,
    /// Stages first committed after that run: left as they are.
    pub newer: Vec<String>,
    /// Stages not rolled back that read tables of one that was: (reader, read).
    pub readers: Vec<(String, String)>,
}

pub fn print_rollback(r: &RolledBack) -> std::io::Result<()> {
    let mut out = Vec::new();
    writeln!(out, "run {} rolls back to run {}", r.run_id, r.to)?;
    for (stage, tables) in &r.stages {
        writeln!(out, "  {stage:<12} committed again: {}", tables.join(", "))?;
    }
    for stage in &r.unchanged {
        writeln!(out, "  {stage:<12} unchanged (as it was then)")?;
    }
    for stage in &r.newer {
        writeln!(
            out,
            "  {stage:<12} left as it is: first committed after run {}",
            r.to
        )?;
    }
    for (reader, read) in &r.readers {
        writeln!(
            out,
            "warning: stage {reader} reads {read} and was not rolled back: its tables were built from {read}'s builds before the rollback (roll it back too with --stage {reader}, or run)"
        )?;
    }
    let tables: usize = r.stages.iter().map(|(_, t)| t.len()).sum();
    writeln!(
        out,
        "{} rolled back, {}; nothing was computed",
        super::plural(r.stages.len() as u64, "stage"),
        super::plural(tables as u64, "table"),
    )?;
    stdout_text(&out)
}
