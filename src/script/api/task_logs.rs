//! Where what a task's code logs goes: the run's lines by task, and the task whose code runs
//! on this thread. A leaf of `api`: `log` writes here, `table` keeps the task's sink.

use std::cell::RefCell;
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use crate::store::LogLine;

/// What the tasks of a run logged, by task index, until the run takes each task's lines.
#[derive(Default)]
pub struct TaskLogs(Mutex<BTreeMap<usize, Vec<LogLine>>>);

impl TaskLogs {
    pub fn push(&self, task: usize, line: LogLine) {
        let mut logs = self.0.lock().unwrap_or_else(|p| p.into_inner());
        logs.entry(task).or_default().push(line);
    }

    /// The task's lines so far, in order; they are not kept.
    pub fn take(&self, task: usize) -> Vec<LogLine> {
        let mut logs = self.0.lock().unwrap_or_else(|p| p.into_inner());
        logs.remove(&task).unwrap_or_default()
    }
}

/// Where a task's log goes, and the task's index.
pub type LogTarget = (Arc<TaskLogs>, usize);

thread_local! {
    /// The task whose UDF runs on this thread: UDFs run inside DataFusion, outside any task
    /// function's context.
    pub(super) static TARGET: RefCell<Option<LogTarget>> = const { RefCell::new(None) };
}

/// Run `f` with what it logs going to `target` (a UDF called for a task's query).
pub fn logging_to<R>(target: Option<LogTarget>, f: impl FnOnce() -> R) -> R {
    let before = TARGET.with(|t| t.replace(target));
    let out = f();
    TARGET.with(|t| *t.borrow_mut() = before);
    out
}
