//! The live display on a terminal: one spinner per running task under a bar of done / total
//! and the elapsed time. Event lines are printed above it, so they scroll as usual. When stderr
//! is not a terminal none of this exists and events stay plain lines.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

use indicatif::{MultiProgress, ProgressBar, ProgressStyle};

/// The display of the run in progress, reachable from `print` in scripts too: any line written
/// to stderr while the bars are drawn must go through them, or it tears the display.
static ACTIVE: Mutex<Option<MultiProgress>> = Mutex::new(None);

/// Print one line to stderr above the live display, if there is one; `false` when there is none.
pub(super) fn println_above(line: &str) -> bool {
    let active = ACTIVE.lock().unwrap_or_else(|p| p.into_inner());
    match active.as_ref() {
        Some(multi) => multi.println(line).is_ok(),
        None => false,
    }
}

/// A spinner's frames without unicode; the last is shown when it is done.
const ASCII_TICKS: &str = "-\\|/ ";

pub(super) struct Live {
    color: bool,
    multi: MultiProgress,
    overall: ProgressBar,
    running: Mutex<HashMap<String, ProgressBar>>,
}

impl Live {
    /// Start drawing: `total` tasks will run; without `color`, in plain ASCII (NO_COLOR).
    pub(super) fn start(total: usize, color: bool) -> Self {
        let multi = MultiProgress::new();
        let template = if color {
            "{spinner:.cyan} [{elapsed_precise}] {bar:30.cyan/blue} {pos}/{len} tasks {msg}"
        } else {
            "{spinner} [{elapsed_precise}] {bar:30} {pos}/{len} tasks {msg}"
        };
        let style = ProgressStyle::with_template(template)
            .unwrap_or_else(|_| ProgressStyle::default_bar())
            .progress_chars("=> ");
        let style = if color {
            style
        } else {
            style.tick_chars(ASCII_TICKS)
        };
        let overall = multi.add(ProgressBar::new(total as u64).with_style(style));
        overall.enable_steady_tick(Duration::from_millis(120));
        *ACTIVE.lock().unwrap_or_else(|p| p.into_inner()) = Some(multi.clone());
        Self {
            color,
            multi,
            overall,
            running: Mutex::new(HashMap::new()),
        }
    }

    pub(super) fn task_started(&self, task: &str) {
        let style = if self.color {
            ProgressStyle::with_template("  {spinner:.green} {msg} {elapsed:.dim}")
        } else {
            ProgressStyle::with_template("  {spinner} {msg} {elapsed}")
        }
        .unwrap_or_else(|_| ProgressStyle::default_spinner());
        let style = if self.color {
            style
        } else {
            style.tick_chars(ASCII_TICKS)
        };
        let bar = self.multi.add(
            ProgressBar::new_spinner()
                .with_style(style)
                .with_message(task.to_string()),
        );
        bar.enable_steady_tick(Duration::from_millis(100));
        self.running
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(task.to_string(), bar);
    }

    /// A task ended, well or not: its spinner goes, the count goes up.
    pub(super) fn task_ended(&self, task: &str) {
        let bar = self
            .running
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(task);
        if let Some(bar) = bar {
            bar.finish_and_clear();
            self.multi.remove(&bar);
        }
        self.overall.inc(1);
    }

    /// Clear the display, so the summary prints on a clean screen.
    pub(super) fn finish(&self) {
        *ACTIVE.lock().unwrap_or_else(|p| p.into_inner()) = None;
        for (_, bar) in self
            .running
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .drain()
        {
            bar.finish_and_clear();
        }
        self.overall.finish_and_clear();
        let _ = self.multi.clear();
    }
}
