//! The scheduler of a run: it starts every task whose inputs are ready, up to `jobs` at once
//! and as many as the memory pool is estimated to hold (a task reading many stored bytes
//! alone), settles those that can never run, takes each
//! result as it comes, and lets `commit` decide the stages after every change. Cancelled, it
//! drops what runs and commits nothing more.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::panic::AssertUnwindSafe;
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::FutureExt;
use tokio::task::JoinSet;

use super::commit::Stages;
use super::{
    Options, Outcome, Shared, Status, TaskError, TaskOutcome, cutoff, exhausted, task, udf,
};
use crate::flow::Action;
use crate::names::TableName;
use crate::report::Printer;
use crate::store::{StageManifest, StoreError, TableBuild};

/// The wait before a task's first retry when it sets `retries` without `retry_delay`.
const DEFAULT_RETRY_DELAY: Duration = Duration::from_secs(1);
/// The longest wait between two attempts, however many have failed.
const MAX_RETRY_WAIT: Duration = Duration::from_secs(600);

/// What a running task gives back: its index, its result and how long it took.
type Finished = (usize, Result<task::Ran, TaskError>, Duration);

pub(super) struct Scheduler<'a> {
    shared: Arc<Shared>,
    opts: Options,
    printer: &'a Printer,
    /// Each task's outcome, once it has one.
    done: Vec<Option<TaskOutcome>>,
    started: Vec<bool>,
    running: JoinSet<Finished>,
    stages: Stages,
    /// What was committed when the run started: early cutoff compares rebuilt inputs with it.
    committed: Arc<HashMap<TableName, TableBuild>>,
    /// A task failed without --keep-going: nothing more starts.
    stopping: bool,
    /// What each running task is taken to need of the pool (`EngineSettings::estimated_need`).
    needs: HashMap<usize, u64>,
    /// How each task runs (again) when it starts.
    attempts: Vec<task::Attempt>,
    /// Tasks that ran out of memory, to run again alone, with the error to fail with if they
    /// cannot start.
    retries: VecDeque<(usize, TaskError)>,
    /// The errors of each task's attempts that failed and were tried again (`retries`).
    failures: Vec<Vec<String>>,
}

impl<'a> Scheduler<'a> {
    pub(super) fn new(
        shared: Arc<Shared>,
        manifests: BTreeMap<String, StageManifest>,
        opts: Options,
        printer: &'a Printer,
    ) -> Self {
        let committed = Arc::new(
            manifests
                .values()
                .flat_map(|m| m.tables.values())
                .map(|b| (TableName::new(&b.stage, &b.table), b.clone()))
                .collect(),
        );
        let n = shared.flow.tasks.len();
        let stages = Stages::new(&shared.flow, manifests, opts.hold.clone());
        let mut scheduler = Self {
            done: (0..n).map(|_| None).collect(),
            started: vec![false; n],
            running: JoinSet::new(),
            stages,
            committed,
            stopping: false,
            needs: HashMap::new(),
            attempts: vec![task::Attempt::First; n],
            retries: VecDeque::new(),
            failures: vec![Vec::new(); n],
            shared,
            opts,
            printer,
        };
        scheduler.settle_planned();
        scheduler
    }

    /// Tasks the plan reuses or leaves out are done before anything runs.
    fn settle_planned(&mut self) {
        for (i, step) in self.shared.steps.iter().enumerate() {
            let status = match step.action {
                Action::Reuse => {
                    let id = self.shared.flow.tasks[i].id.to_string();
                    self.printer.task_cached(&id, step.key.as_str());
                    Status::Cached
                }
                Action::NotSelected => Status::NotSelected,
                Action::Run | Action::Check => continue,
            };
            self.done[i] = Some(TaskOutcome {
                builds: step.builds.clone(),
                ..TaskOutcome::empty(status)
            });
        }
    }

    pub(super) async fn run(mut self) -> Result<Outcome, StoreError> {
        let (shared, printer) = (self.shared.clone(), self.printer);
        self.stages
            .commit_ready(&shared, &self.done, printer, false)
            .await?;
        loop {
            self.start_ready();
            self.stages
                .commit_ready(&shared, &self.done, printer, false)
                .await?;
            let joined = tokio::select! {
                joined = self.running.join_next() => joined,
                () = self.opts.cancel.cancelled() => {
                    self.running.abort_all();
                    return Ok(self.outcome("cancelled"));
                }
            };
            match joined {
                None => break,
                Some(Ok((i, result, took))) => self.finish(i, result, took),
                // Panics are caught inside the task and tasks are aborted only on cancel,
                // which returned above; a task lost otherwise ends as "not reached".
                Some(Err(e)) => tracing::error!(error = %e, "a task ended without a result"),
            }
        }
        self.stages
            .commit_ready(&shared, &self.done, printer, true)
            .await?;
        Ok(self.outcome("not reached"))
    }

    /// Start what is ready; settle what can never run. A task to run again with less memory
    /// goes first, alone, once nothing else runs.
    fn start_ready(&mut self) {
        if !self.retries.is_empty() {
            if self.running.is_empty()
                && let Some((i, error)) = self.retries.pop_front()
            {
                self.retry(i, error);
            }
            return;
        }
        let mut hold_back = false;
        for i in 0..self.done.len() {
            if self.done[i].is_some() || self.started[i] {
                continue;
            }
            let id = || self.shared.flow.tasks[i].id.to_string();
            match readiness(&self.shared, i, &self.done) {
                Ready::Wait => {}
                Ready::Never(why) => {
                    self.printer.task_skipped(&id(), &why);
                    self.done[i] = Some(TaskOutcome::empty(Status::Skipped(why)))
                }
                Ready::Fail(error) => {
                    self.printer
                        .task_failed(&id(), &error.brief(), Duration::ZERO);
                    self.done[i] = Some(TaskOutcome::empty(Status::Failed(error)));
                    self.stopping |= !self.opts.keep_going;
                }
                Ready::Go(_) if self.stopping => {
                    let why = "the run stopped after a failure";
                    self.printer.task_skipped(&id(), why);
                    self.done[i] = Some(TaskOutcome::empty(Status::Skipped(why.into())));
                }
                Ready::Go(_) if self.running.len() >= self.opts.jobs || hold_back => {}
                Ready::Go(inputs) => {
                    // Tasks start in order when their needs fit the pool together: two large
                    // joins never hold their hash tables at once (each query already uses
                    // every core, so little is lost), and one that must wait holds back those
                    // after it, so running tasks drain and it goes next.
                    let need = estimated_need(&self.shared, &inputs);
                    if !self.fits(need) {
                        hold_back = true;
                        continue;
                    }
                    self.needs.insert(i, need);
                    self.spawn(i, inputs, task::Attempt::First, Duration::ZERO);
                }
            }
        }
    }

    /// Whether a task needing `need` may start beside the running ones: always when none
    /// runs, else when their needs and its own fit the pool.
    fn fits(&self, need: u64) -> bool {
        let pool = self.shared.engine.settings.pool_bytes();
        let held: u64 = self.needs.values().sum();
        self.needs.is_empty() || (held < pool && held.saturating_add(need) <= pool)
    }

    /// Run task `i`, which ran out of memory, again alone with less memory; if it cannot
    /// start, it fails with the first attempt's `error`.
    fn retry(&mut self, i: usize, error: TaskError) {
        match readiness(&self.shared, i, &self.done) {
            Ready::Go(inputs) => {
                let pool = self.shared.engine.settings.pool_bytes();
                self.needs.insert(i, pool);
                self.spawn(i, inputs, task::Attempt::Frugal, Duration::ZERO);
            }
            _ => self.finish(i, Err(error), Duration::ZERO),
        }
    }

    /// Start task `i` after `delay` (a retry's wait; zero otherwise).
    fn spawn(
        &mut self,
        i: usize,
        inputs: Vec<(TableName, TableBuild)>,
        attempt: task::Attempt,
        delay: Duration,
    ) {
        self.started[i] = true;
        let shared = &self.shared;
        // A task early cutoff keeps is said to be cached when it is done, not started.
        if super::cutoff::unchanged(shared, i, &inputs, &self.committed).is_none() {
            let id = shared.flow.tasks[i].id.to_string();
            let failed = self.failures[i].len();
            let reasons = match attempt {
                _ if failed > 0 => vec![format!(
                    "attempt {} of {}",
                    failed + 1,
                    shared.flow.tasks[i].decl.opts.retries + 1
                )],
                task::Attempt::First => shared.steps[i].reasons(),
                task::Attempt::Frugal => vec!["again, alone, with less memory".to_string()],
            };
            self.printer.task_started(&id, &reasons);
            if let crate::script::TaskKind::Sql { sql, .. } = &shared.flow.tasks[i].decl.kind {
                self.printer.task_sql(&id, sql);
            }
        }
        let (shared, committed) = (shared.clone(), self.committed.clone());
        self.running.spawn(async move {
            tokio::time::sleep(delay).await;
            let t = Instant::now();
            // A task that panics inside DataFusion or Rhai fails alone, by name; the run goes on.
            let result =
                AssertUnwindSafe(super::evaluate::run(shared, i, inputs, &committed, attempt))
                    .catch_unwind()
                    .await
                    .unwrap_or_else(|panic| {
                        Err(TaskError::Panicked {
                            message: panic_message(panic.as_ref()),
                        })
                    });
            (i, result, t.elapsed())
        });
    }

    /// Take task `i`'s result: say it, and keep its outcome.
    fn finish(&mut self, i: usize, result: Result<task::Ran, TaskError>, took: Duration) {
        self.needs.remove(&i);
        // What a finished query freed would otherwise stay resident under the next one's peak.
        if self.shared.engine.settings.memory_limit.is_some() {
            crate::engine::release_freed_memory();
        }
        let shared = &self.shared;
        let id = shared.flow.tasks[i].id.to_string();
        let result = match result {
            Err(e)
                if self.attempts[i] == task::Attempt::First && !self.opts.cancel.is_cancelled() =>
            {
                match exhausted::exhausted(&e, &id, &shared.engine.settings) {
                    Some(brief) => return self.run_again(i, e, &brief),
                    None => Err(e),
                }
            }
            other => other,
        };
        let result = match result {
            Err(e) if self.may_retry(i, &e) => return self.try_again(i, e),
            other => other,
        };
        self.settle(i, result, took);
    }

    /// Say how task `i` ended and keep its outcome.
    fn settle(&mut self, i: usize, result: Result<task::Ran, TaskError>, took: Duration) {
        let (shared, printer) = (&self.shared, self.printer);
        let id = shared.flow.tasks[i].id.to_string();
        let logs = shared.logs.take(i);
        for line in &logs {
            printer.task_log(&id, line);
        }
        let outcome = match result {
            Ok(ran) => {
                let rows = ran.builds.iter().map(|b| b.rows).sum();
                let bytes = ran.builds.iter().map(|b| b.bytes).sum();
                for (table, plan) in &ran.plans {
                    printer.task_plan(&id, table, plan);
                }
                for c in &ran.checks {
                    printer.check(&id, c);
                }
                match ran.note {
                    Some(cutoff::INPUTS_UNCHANGED) => printer.task_kept(&id),
                    _ => printer.task_done(&id, rows, bytes, ran.spilled_bytes, took),
                }
                let status = match shared.steps[i].action {
                    Action::Check => Status::Checked,
                    _ if ran.note == Some(cutoff::INPUTS_UNCHANGED) => Status::Cached,
                    _ => Status::Ran,
                };
                TaskOutcome {
                    status,
                    builds: ran.builds,
                    duration: took,
                    spilled_bytes: ran.spilled_bytes,
                    checks: ran.checks,
                    logs: Vec::new(),
                    note: ran.note,
                    engine: ran.engine,
                    failed_attempts: Vec::new(),
                    partitions: ran.partitions,
                }
            }
            Err(e) => {
                let e = exhausted::exhausted(&e, &id, &shared.engine.settings).unwrap_or(e);
                let e = udf::located(e, &shared.code, &id);
                printer.task_failed(&id, &e.brief(), took);
                self.stopping |= !self.opts.keep_going;
                TaskOutcome {
                    duration: took,
                    ..TaskOutcome::empty(Status::Failed(Box::new(e)))
                }
            }
        };
        let failed_attempts = std::mem::take(&mut self.failures[i]);
        self.done[i] = Some(TaskOutcome {
            logs,
            failed_attempts,
            ..outcome
        });
    }

    /// Whether task `i`, failed with `e`, runs again: its `retries` are not used up, and the
    /// failure is one trying again may mend (`TaskError::transient`).
    fn may_retry(&self, i: usize, e: &TaskError) -> bool {
        let allowed = self.shared.flow.tasks[i].decl.opts.retries as usize;
        !self.opts.cancel.is_cancelled()
            && !self.stopping
            && e.transient()
            && self.failures[i].len() < allowed
    }

    /// Run task `i` again after its delay, doubled for each attempt already failed.
    fn try_again(&mut self, i: usize, e: TaskError) {
        let opts = &self.shared.flow.tasks[i].decl.opts;
        let failed = self.failures[i].len() as u32 + 1;
        let first = opts.retry_delay.unwrap_or(DEFAULT_RETRY_DELAY);
        let delay = first
            .saturating_mul(1 << (failed - 1).min(16))
            .min(MAX_RETRY_WAIT);
        let e = udf::located(
            e,
            &self.shared.code,
            &self.shared.flow.tasks[i].id.to_string(),
        );
        let brief = e.brief();
        let line = crate::store::LogLine::warn(format!(
            "attempt {failed} of {} failed: {brief}; trying again in {}",
            opts.retries + 1,
            crate::report::secs(delay)
        ));
        // Printed with the task's other lines when it ends; its `start` line says the attempt.
        self.shared.logs.push(i, line);
        self.failures[i].push(brief);
        let attempt = self.attempts[i];
        match readiness(&self.shared, i, &self.done) {
            Ready::Go(inputs) => {
                let need = estimated_need(&self.shared, &inputs);
                self.needs.insert(i, need);
                self.spawn(i, inputs, attempt, delay);
            }
            // Its inputs were ready when it started and stay so; fail rather than hang.
            _ => self.settle(i, Err(e), Duration::ZERO),
        }
    }

    /// Task `i` ran out of memory (`brief` says how): it runs again, alone and with less
    /// memory, before anything else starts; only if that fails too does it fail.
    fn run_again(&mut self, i: usize, error: TaskError, brief: &TaskError) {
        let line = crate::store::LogLine::info(format!(
            "{}; running it again, alone, with less memory (two partitions, smaller batches, \
             sort-merge joins)",
            brief.brief()
        ));
        self.shared.logs.push(i, line);
        self.attempts[i] = task::Attempt::Frugal;
        self.retries.push_back((i, error));
    }

    /// The run's outcome; a task without one is skipped, `why` (not reached, cancelled).
    fn outcome(self, why: &str) -> Outcome {
        let tasks = self
            .done
            .into_iter()
            .map(|o| o.unwrap_or(TaskOutcome::empty(Status::Skipped(why.into()))))
            .collect();
        Outcome {
            tasks,
            stages: self.stages.into_outcomes(),
        }
    }
}

enum Ready {
    Wait,
    Go(Vec<(TableName, TableBuild)>),
    Never(String),
    Fail(Box<TaskError>),
}

/// What a panic said, when it said it with a string.
fn panic_message(panic: &(dyn std::any::Any + Send)) -> String {
    panic
        .downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| panic.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "a panic without a message".to_string())
}

/// What a task reading `inputs` is taken to need of the pool: by the stored bytes it reads.
fn estimated_need(shared: &Shared, inputs: &[(TableName, TableBuild)]) -> u64 {
    let bytes = inputs.iter().map(|(_, b)| b.bytes).sum::<u64>();
    shared.engine.settings.estimated_need(bytes)
}

fn readiness(shared: &Shared, i: usize, done: &[Option<TaskOutcome>]) -> Ready {
    let task = &shared.flow.tasks[i];
    let mut inputs = Vec::with_capacity(task.inputs.len());
    // The tables its checks read come too (`evaluate::run` tells them apart).
    let check_only = task
        .check_inputs
        .iter()
        .filter(|c| !task.inputs.contains(c));
    for input in task.inputs.iter().chain(check_only) {
        let p = shared.flow.producers[input];
        let Some(outcome) = &done[p] else {
            return Ready::Wait;
        };
        if !outcome.status.ok() {
            return Ready::Never(format!("input {input} {}", outcome.status.label()));
        }
        match outcome
            .builds
            .iter()
            .find(|b| b.stage == input.stage && b.table == input.table)
        {
            Some(b) => inputs.push((input.clone(), b.clone())),
            None => {
                return Ready::Fail(Box::new(TaskError::invalid(format!(
                    "input {input} has never been built; select it too (--select +{})",
                    task.id
                ))));
            }
        }
    }
    Ready::Go(inputs)
}
