//! `weir status`: how each task stands against what is committed, and why; with `-v`, the
//! parts of each task's cache key and which of them changed.

use std::collections::{BTreeMap, BTreeSet};

use clap::Args;

use super::{ScriptArgs, StoreArgs, load};
use crate::Result;
use crate::config::CacheMode;
use crate::exec;
use crate::flow::Flow;
use crate::flow::plan::{Freshness, Plan, PlanOptions, Step, plan};
use crate::report::{StatusLine, key_parts, part_lines, print_status};
use crate::store::{Store, TableBuild};

#[derive(Debug, Args)]
pub struct StatusArgs {
    #[command(flatten)]
    pub script: ScriptArgs,
    #[command(flatten)]
    pub store: StoreArgs,
    /// Also print each task's cache key, its parts, and which of them changed.
    #[arg(long, short = 'v')]
    pub verbose: bool,
    /// How outside inputs count (default: the instance's `cache_mode`, else normal).
    #[arg(long, value_enum)]
    pub cache_mode: Option<CacheMode>,
}

pub async fn status(args: StatusArgs) -> Result<()> {
    let planned = plan_all(&args.script, &args.store, args.cache_mode).await?;
    let lines: Vec<StatusLine> = planned
        .flow
        .tasks
        .iter()
        .zip(&planned.plan.steps)
        .map(|(task, step)| {
            let (state, detail) = match planned.promoted(step.task) {
                true => (
                    "tainted",
                    "promoted from the REPL; the next run rebuilds it from the script".to_string(),
                ),
                false => state(step),
            };
            let extra = if args.verbose {
                let then = planned.committed(step.task).map(|b| &b.parts);
                let notes = planned.input_notes(step.task);
                let mut lines = vec![format!("    key {}", step.key)];
                lines.extend(part_lines(&key_parts(&step.parts, then, &notes), "    "));
                lines
            } else {
                Vec::new()
            };
            StatusLine {
                task: task.id.to_string(),
                state: state.to_string(),
                detail,
                extra,
            }
        })
        .collect();
    print_status(&lines)?;
    Ok(())
}

/// A task's state in a word, and why in a few.
pub(super) fn state(step: &Step) -> (&'static str, String) {
    match &step.freshness {
        Freshness::Fresh => ("fresh", String::new()),
        Freshness::Stale(why) => ("stale", why.join(", ")),
        Freshness::Uncommitted => (
            "stale",
            "built, not committed: the next run commits it".to_string(),
        ),
        Freshness::Never => ("never built", String::new()),
        Freshness::Cleared => ("cleared", "the next run rebuilds it".to_string()),
    }
}

/// The flow and its plan with every task selected: what status, why and graph look at.
pub(super) struct Planned {
    pub flow: Flow,
    pub plan: Plan,
    pub store: Store,
    /// Tasks promoted from the REPL, with the key they were promoted at.
    pub tainted: BTreeMap<String, String>,
}

pub(super) async fn plan_all(
    script: &ScriptArgs,
    store: &StoreArgs,
    cache_mode: Option<CacheMode>,
) -> Result<Planned> {
    let crate::session::Loaded {
        instance,
        script,
        store,
        instances,
    } = load(script, store)?;
    let flow = Flow::build(&script)?;
    let engine = exec::Engine::new(&store).map_err(exec::ExecError::Engine)?;
    let all: BTreeSet<usize> = (0..flow.tasks.len()).collect();
    let opts = PlanOptions {
        selected: &all,
        force: false,
        script_dir: &script.dir,
        cache_mode: cache_mode.unwrap_or(instance.cache_mode),
        instances: &instances,
        cleared: &store.read_cleared().await?,
    };
    let plan = plan(&flow, &store, &engine.state(None), opts).await?;
    let tainted = store.read_tainted().await?;
    Ok(Planned {
        flow,
        plan,
        store,
        tainted,
    })
}

impl Planned {
    /// The committed build of a task's output `table` (its first output when `None`).
    pub fn committed_table(&self, task: usize, table: Option<&str>) -> Option<&TableBuild> {
        let decl = &self.flow.tasks[task].decl;
        let manifest = self.plan.manifests.get(&decl.stage)?;
        match table {
            Some(t) => manifest.tables.get(t),
            None => decl.outputs.iter().find_map(|o| manifest.tables.get(o)),
        }
    }

    pub fn committed(&self, task: usize) -> Option<&TableBuild> {
        self.committed_table(task, None)
    }

    /// Whether the committed build of a task is one promoted from the REPL.
    pub fn promoted(&self, task: usize) -> bool {
        let id = self.flow.tasks[task].id.to_string();
        self.tainted
            .get(&id)
            .is_some_and(|k| self.committed(task).is_some_and(|b| &b.key == k))
    }

    /// For each input of a task, why its producer's key moved: that task's own reasons.
    pub fn input_notes(&self, task: usize) -> BTreeMap<String, String> {
        self.flow.tasks[task]
            .inputs
            .iter()
            .filter_map(|input| {
                let producer = *self.flow.producers.get(input)?;
                let reasons = self.plan.steps[producer].reasons();
                let note = if reasons.is_empty() {
                    format!("{input} was rebuilt and committed since")
                } else {
                    format!("{input}: {}", reasons.join(", "))
                };
                Some((input.to_string(), note))
            })
            .collect()
    }
}
