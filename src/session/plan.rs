//! The plan of every task, without the lock: what `status`, `why`, `graph`, `cache` and the
//! REPL look at. Also how a task stands in words, and finding a task by name.

use std::collections::BTreeMap;

use super::Loaded;
use crate::config::CacheMode;
use crate::flow::partitions::{Standing, Wanted, by_inputs, of_load};
use crate::flow::plan::{Action, Freshness, PlanOptions, plan};
use crate::flow::select::{Selection, select};
use crate::flow::{Flow, Plan};
use crate::names::{TableName, did_you_mean};
use crate::store::{CacheKey, TableBuild};
use crate::{Error, Result};

/// The flow and its plan with every task selected.
pub struct Planned {
    pub flow: Flow,
    pub plan: Plan,
    /// Tasks promoted from the REPL, with the key they were promoted at.
    pub tainted: BTreeMap<String, CacheKey>,
    /// The Hive folders of stale partitioned loads (`partitions`).
    folders: BTreeMap<usize, Vec<Wanted>>,
}

/// How a task stands, in a word and a few more.
pub struct TaskState {
    pub word: &'static str,
    pub detail: String,
}

/// Plan every task of `loaded`; `cache_mode` overrides the instance's.
pub async fn plan_all(loaded: &Loaded, cache_mode: Option<CacheMode>) -> Result<Planned> {
    plan_selected(loaded, &Selection::default(), false, cache_mode).await
}

/// Plan the tasks `selection` selects as a run with these options would (`weir run
/// --dry-run`), without the lock: the others are `NotSelected`.
pub async fn plan_selected(
    loaded: &Loaded,
    selection: &Selection,
    force: bool,
    cache_mode: Option<CacheMode>,
) -> Result<Planned> {
    let flow = Flow::build(&loaded.script)?;
    let engine = loaded.engine(None)?;
    let selected = select(&flow, selection)?;
    let store = &loaded.store;
    let opts = PlanOptions {
        selected: &selected,
        force,
        script_dir: &loaded.script.dir,
        cache_mode: cache_mode.unwrap_or(loaded.instance.cache_mode),
        instances: &loaded.instances,
        cleared: &store.read_cleared().await?,
    };
    let state = engine.state(None);
    let plan = plan(&flow, store, &state, opts).await?;
    let tainted = store.read_tainted().await?;
    let folders = stale_folders(&flow, &plan);
    Ok(Planned {
        flow,
        plan,
        tainted,
        folders,
    })
}

/// A fresh build's partitions in `range`, each with no reason to run.
fn fresh(
    build: &TableBuild,
    range: &crate::flow::partitions::PartitionRange,
) -> Vec<(String, String)> {
    build
        .partitions
        .iter()
        .filter(|p| range.contains(&p.path))
        .map(|p| (p.path.clone(), String::new()))
        .collect()
}

/// The Hive folders of each stale partitioned load, as its next run would read them.
fn stale_folders(flow: &Flow, plan: &Plan) -> BTreeMap<usize, Vec<Wanted>> {
    flow.tasks
        .iter()
        .zip(&plan.steps)
        .enumerate()
        .filter(|(_, (_, step))| step.freshness != Freshness::Fresh)
        .filter_map(|(i, (task, step))| Some((i, of_load(task, step)?)))
        .collect()
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

    /// How a partitioned task's partitions stand (`31 partitions: 30 fresh, 1 stale (1
    /// new)`): for a stale one, as its next run would find them, when that can be told
    /// before its inputs run.
    pub fn partitions(&self, task: usize) -> Option<String> {
        let decl = &self.flow.tasks[task].decl;
        if decl.opts.partition_by.is_empty() {
            return None;
        }
        let step = &self.plan.steps[task];
        let committed = self.committed(task);
        let count = |b: &TableBuild| crate::report::plural(b.partitions.len() as u64, "partition");
        if step.freshness == Freshness::Fresh {
            return committed.filter(|b| !b.partitions.is_empty()).map(count);
        }
        let wanted = match &decl.kind {
            crate::script::TaskKind::Load(_) => self.folders.get(&task)?.clone(),
            _ if decl.opts.incremental => {
                let inputs = self.fresh_inputs(task)?;
                by_inputs(&self.flow.tasks[task], &step.parts, &inputs)
                    .ok()?
                    .1
            }
            _ => return committed.filter(|b| !b.partitions.is_empty()).map(count),
        };
        if step.forced {
            return Some(format!(
                "{}: all computed anew",
                crate::report::plural(wanted.len() as u64, "partition")
            ));
        }
        Some(Standing::of(&wanted, committed).summary())
    }

    /// Why each partition of a partitioned task in `range` stands as it does (`weir why
    /// --partition`); `None` when that cannot be told before its inputs run.
    pub fn partition_reasons(
        &self,
        task: usize,
        range: &crate::flow::partitions::PartitionRange,
    ) -> Option<Vec<(String, String)>> {
        let t = &self.flow.tasks[task];
        let step = &self.plan.steps[task];
        let committed = self.committed(task);
        let wanted = match &t.decl.kind {
            crate::script::TaskKind::Load(_) if step.freshness == Freshness::Fresh => {
                return Some(fresh(committed?, range));
            }
            crate::script::TaskKind::Load(_) => self.folders.get(&task)?.clone(),
            _ if t.decl.opts.incremental => {
                let inputs = self.fresh_inputs(task)?;
                by_inputs(t, &step.parts, &inputs).ok()?.1
            }
            _ => return None,
        };
        // What changed in the task as a whole, its partitioned inputs aside.
        let whole: Vec<String> = match committed {
            Some(b) => {
                let partitioned: Vec<&String> =
                    wanted.iter().flat_map(|w| w.inputs.keys()).collect();
                let strip = |p: &crate::store::KeyParts| {
                    let mut p = p.clone();
                    p.inputs.retain(|n, _| !partitioned.contains(&n));
                    p.external = None;
                    p
                };
                strip(&step.parts).changes_since(&strip(&b.parts))
            }
            None => Vec::new(),
        };
        Some(crate::flow::partitions::reasons(
            &wanted, committed, &whole, range,
        ))
    }

    /// The committed builds of a task's inputs, when every one of them is fresh (what it
    /// will read is known).
    fn fresh_inputs(&self, task: usize) -> Option<Vec<(TableName, TableBuild)>> {
        self.flow.tasks[task]
            .inputs
            .iter()
            .map(|name| {
                let producer = *self.flow.producers.get(name)?;
                if self.plan.steps[producer].freshness != Freshness::Fresh {
                    return None;
                }
                let build = self.plan.committed(name)?;
                Some((name.clone(), build.clone()))
            })
            .collect()
    }

    /// Whether the committed build of a task is one promoted from the REPL.
    pub fn promoted(&self, task: usize) -> bool {
        let id = self.flow.tasks[task].id.to_string();
        self.tainted
            .get(&id)
            .is_some_and(|k| self.committed(task).is_some_and(|b| b.key == *k))
    }

    /// How a task stands against what is committed, and why.
    pub fn state(&self, task: usize) -> TaskState {
        let step = &self.plan.steps[task];
        let missing = self.plan.missing_sources.iter().find(|(i, _)| *i == task);
        let volatile = self.volatile_only(task);
        let (word, detail) = match &step.freshness {
            _ if let Some(why) = volatile => (
                "volatile",
                format!("{why}; it re-runs every time, and --exit-code does not count it"),
            ),
            // A run refuses to start while it is so (`refuse_missing_sources`).
            _ if let Some((_, why)) = missing => ("stale", format!("source missing: {why}")),
            _ if step.action == crate::flow::Action::Check => (
                "stale",
                "its build has not passed a data check: one failed, or has not run on it"
                    .to_string(),
            ),
            Freshness::Fresh if warned(&step.builds) > 0 => (
                "fresh",
                format!(
                    "{} warned",
                    crate::report::plural(warned(&step.builds) as u64, "data check")
                ),
            ),
            _ if self.promoted(task) => (
                "tainted",
                "promoted from the REPL; the next run rebuilds it from the script".to_string(),
            ),
            Freshness::Fresh => ("fresh", String::new()),
            Freshness::Stale(why) => ("stale", why.join(", ")),
            Freshness::Uncommitted => (
                "stale",
                "built, not committed: the next run commits it".to_string(),
            ),
            Freshness::Never => ("never built", String::new()),
            Freshness::Cleared if !step.cleared_partitions.is_empty() => {
                let ranges: Vec<String> = step
                    .cleared_partitions
                    .iter()
                    .map(ToString::to_string)
                    .collect();
                (
                    "cleared",
                    format!("the next run computes {} again", ranges.join(" and ")),
                )
            }
            Freshness::Cleared => ("cleared", "the next run rebuilds it".to_string()),
            Freshness::Damaged => (
                "damaged",
                "committed, but its stored files are missing: the next run rebuilds it".to_string(),
            ),
        };
        TaskState { word, detail }
    }

    /// What a run would do with a task, in the words of `weir run --dry-run`.
    pub fn would(&self, task: usize) -> TaskState {
        let state = self.state(task);
        let step = &self.plan.steps[task];
        let (word, detail) = match step.action {
            Action::NotSelected => ("not selected", String::new()),
            Action::Reuse => ("would reuse", state.detail),
            Action::Check => (
                "would check",
                "its stored build's data checks only".to_string(),
            ),
            Action::Run => (
                "would run",
                match (state.word, step.freshness == Freshness::Fresh) {
                    // Fresh, yet run: --force or a forcing cache mode.
                    (_, true) => "forced".to_string(),
                    (_, false) if state.detail.is_empty() => state.word.to_string(),
                    _ => state.detail,
                },
            ),
        };
        TaskState { word, detail }
    }

    /// Why a task is stale when it is stale only because it, or what it reads, is volatile
    /// (calls `now()`, `random()`, ... without a `cache` option): such a task is never fresh.
    pub fn volatile_only(&self, task: usize) -> Option<String> {
        let step = &self.plan.steps[task];
        let Freshness::Stale(why) = &step.freshness else {
            return None;
        };
        let mut reads = Vec::new();
        for reason in why {
            if reason.starts_with("volatile: ") {
                return Some(reason.clone());
            }
            let input = reason.strip_prefix("input ")?.strip_suffix(" changed")?;
            let producer = self
                .flow
                .producers
                .iter()
                .find(|(t, _)| t.to_string() == input)
                .map(|(_, p)| *p)?;
            self.volatile_only(producer)?;
            reads.push(input);
        }
        (!reads.is_empty()).then(|| format!("reads volatile {}", reads.join(", ")))
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

    /// The task that writes table `name` (with which output), or the multi-output task named
    /// `name` (with `None`).
    pub fn find(&self, name: &str) -> Result<(usize, Option<String>)> {
        find(&self.flow, name)
    }
}

/// The task that writes table `name` (with which output), or the multi-output task named
/// `name` (with `None`).
pub fn find(flow: &Flow, name: &str) -> Result<(usize, Option<String>)> {
    // Any spelling of a name's case finds it, as in SQL.
    if let Some(wanted) = TableName::parse(name).map(|n| n.folded())
        && let Some((table, i)) = flow.producers.iter().find(|(t, _)| t.folded() == wanted)
    {
        return Ok((*i, Some(table.table.clone())));
    }
    if let Some(i) = flow
        .tasks
        .iter()
        .position(|t| t.id.to_string().eq_ignore_ascii_case(name))
    {
        return Ok((i, None));
    }
    let known: Vec<String> = flow.producers.keys().map(ToString::to_string).collect();
    let help = did_you_mean(name, known.iter().map(String::as_str), || {
        "`weir status` lists the script's tables".to_string()
    });
    Err(Error::usage(
        format!("the script declares no table `{name}`"),
        help,
    ))
}

/// How many data checks found offending rows (and only warned) on these builds.
fn warned(builds: &[TableBuild]) -> usize {
    builds
        .iter()
        .flat_map(|b| b.checks.values())
        .filter(|c| c.offending > 0)
        .count()
}
