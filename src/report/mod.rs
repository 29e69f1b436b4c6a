//! Everything weir prints goes through here: run events, the end-of-run summary, status
//! listings and query results. Events and diagnostics go to stderr, results to stdout.

mod cache;
mod graph;
mod log;
mod printer;
mod progress;
mod rollback;
mod runs;
mod summary;
mod tables;
mod tests;
mod why;

pub use cache::{print_cache_list, print_cleared, print_gc_deleting, print_gc_summary, print_init};
pub use graph::{Graph, GraphFormat, Layouts, Node, NodeState, render as render_graph, render_svg};
pub use log::LiveLog;
pub use printer::{Printer, Verbosity};
pub use rollback::{RolledBack, print_rollback};
pub use runs::{print_run, print_runs};
pub use summary::{StatusLine, SummaryRow, print_dry_run, print_status, print_summary};
pub use tables::{OutputFormat, Rows, format_rows, print_batches, print_schema};
pub use tests::{TestFormat, TestOutcome, TestResult, print_tests};
pub use why::{Part, Why, key_parts, part_lines, print_why, schema_change};

use std::io::{IsTerminal, Write};
use std::time::Duration;

use crate::config::secrets::{Redacted, redact};

/// An error as weir shows it: a miette diagnostic, monochrome and plain unless stderr is a
/// terminal (and NO_COLOR is unset), secrets masked.
pub fn print_error(e: impl miette::Diagnostic + Send + Sync + 'static) {
    static HOOK: std::sync::Once = std::sync::Once::new();
    HOOK.call_once(|| {
        let color = color_on_stderr();
        let _ = miette::set_hook(Box::new(move |_| {
            Box::new(
                miette::MietteHandlerOpts::new()
                    .color(color)
                    .unicode(color)
                    .wrap_lines(color)
                    .build(),
            )
        }));
    });
    event(&format!("{:?}", miette::Report::new(e)));
}

/// Output of `print` and `debug` in scripts.
pub fn script_output(s: &str) {
    event(s);
}

/// One line of a command's result (the REPL's answers), on stdout, secrets masked.
pub fn out(line: &str) {
    let _ = stdout_text(format!("{line}\n").as_bytes());
}

/// One line about what weir is doing (watch's progress), on stderr, secrets masked.
pub fn note(line: &str) {
    event(line);
}

/// Text for stdout, written at once so that a secret never straddles two writes.
pub fn stdout_text(text: &[u8]) -> std::io::Result<()> {
    Redacted(std::io::stdout().lock()).write_all(text)
}

/// One line to stderr, with secrets masked; above the live display when one is drawn.
fn event(s: &str) {
    let s = redact(s);
    if !progress::println_above(&s) {
        let _ = writeln!(std::io::stderr(), "{s}");
    }
}

fn stderr_is_terminal() -> bool {
    std::io::stderr().is_terminal()
}

/// Colour and unicode on stderr: only on a terminal, and not when NO_COLOR is set.
pub fn color_on_stderr() -> bool {
    stderr_is_terminal() && std::env::var_os("NO_COLOR").is_none()
}

pub(crate) fn thousands(n: u64) -> String {
    let s = n.to_string();
    let mut out = String::with_capacity(s.len() + s.len() / 3);
    for (i, c) in s.chars().enumerate() {
        if i > 0 && (s.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// `n` of `noun`, with the noun in the plural unless `n` is 1: `1 row`, `1,024 rows`.
pub fn plural(n: impl Into<u64>, noun: &str) -> String {
    let n = n.into();
    match n {
        1 => format!("1 {noun}"),
        _ => format!("{} {noun}s", thousands(n)),
    }
}

/// A byte count in binary units: `512 B`, `1.5 KiB`, `20.0 MiB`.
pub(crate) fn human_bytes(n: u64) -> String {
    const UNITS: [&str; 4] = ["KiB", "MiB", "GiB", "TiB"];
    if n < 1024 {
        return format!("{n} B");
    }
    let mut value = n as f64 / 1024.0;
    let mut unit = 0;
    while value >= 1024.0 && unit + 1 < UNITS.len() {
        value /= 1024.0;
        unit += 1;
    }
    format!("{value:.1} {}", UNITS[unit])
}

pub(crate) fn secs(d: Duration) -> String {
    if d < Duration::from_secs(1) {
        format!("{} ms", d.as_millis())
    } else {
        format!("{:.2} s", d.as_secs_f64())
    }
}

fn first_line(s: &str) -> &str {
    s.lines().next().unwrap_or(s)
}
