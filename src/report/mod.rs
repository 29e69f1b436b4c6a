//! Everything weir prints goes through here: run events, the end-of-run summary, status
//! listings and query results. Events and diagnostics go to stderr, results to stdout.

mod summary;
mod tables;

pub use summary::{StatusLine, SummaryRow, print_status, print_summary};
pub use tables::{OutputFormat, print_batches};

use std::io::{IsTerminal, Write};

use crate::config::secrets::redact;
use std::time::Duration;

/// An error as weir shows it: a miette diagnostic, monochrome and plain unless stderr is a
/// terminal (and NO_COLOR is unset), secrets masked.
pub fn print_error(e: crate::Error) {
    static HOOK: std::sync::Once = std::sync::Once::new();
    HOOK.call_once(|| {
        let color = std::io::stderr().is_terminal() && std::env::var_os("NO_COLOR").is_none();
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

/// One line to stderr, with secrets masked.
fn event(s: &str) {
    let _ = writeln!(std::io::stderr(), "{}", redact(s));
}

/// Run events, one line each.
pub struct Printer {
    quiet: bool,
    terminal: bool,
}

impl Printer {
    pub fn new(quiet: bool) -> Self {
        Self {
            quiet,
            terminal: std::io::stderr().is_terminal(),
        }
    }

    fn line(&self, s: String) {
        if !self.quiet {
            event(&s);
        }
    }

    pub fn waiting_for_lock(&self, holder: &str) {
        // Shown even with --quiet: otherwise a waiting run looks hung.
        event(&format!(
            "waiting for the instance lock held by {holder} ..."
        ));
    }

    pub fn task_started(&self, task: &str, why: &[String]) {
        let why = if why.is_empty() {
            String::new()
        } else {
            format!(" ({})", why.join(", "))
        };
        self.line(format!("  start   {task}{why}"));
    }

    pub fn task_done(&self, task: &str, rows: u64, took: Duration) {
        self.line(format!(
            "  done    {task}  {} rows  {}",
            thousands(rows),
            secs(took)
        ));
    }

    pub fn task_failed(&self, task: &str, error: &str) {
        let mark = if self.terminal {
            "\x1b[31mfailed\x1b[0m"
        } else {
            "failed"
        };
        self.line(format!("  {mark}  {task}: {}", first_line(error)));
    }

    pub fn stage_committed(&self, stage: &str, changed: bool) {
        if changed {
            self.line(format!("  commit  stage {stage}"));
        }
    }

    pub fn stage_held(&self, stage: &str) {
        self.line(format!(
            "  keep    stage {stage} as committed before (it has tainted tasks: promote them)"
        ));
    }

    pub fn stage_not_committed(&self, stage: &str) {
        self.line(format!(
            "  keep    stage {stage} as committed before (a task did not succeed)"
        ));
    }
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
