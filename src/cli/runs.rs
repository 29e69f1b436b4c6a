//! `weir runs` and `weir log`: the run history of an instance, from its run records.

use std::path::PathBuf;

use clap::Args;

use super::StoreArgs;
use crate::report::{print_run, print_runs};
use crate::store::Store;
use crate::store::runs::RunRecord;
use crate::{Error, Result};

#[derive(Debug, Args)]
pub struct RunsArgs {
    /// Pipeline script, for its weir.toml and store.
    #[arg(default_value = "pipeline.rhai")]
    pub script: PathBuf,
    #[command(flatten)]
    pub store: StoreArgs,
    /// How many runs to list.
    #[arg(long, short = 'n', default_value_t = 20)]
    pub limit: usize,
}

#[derive(Debug, Args)]
pub struct LogArgs {
    /// A run id, a unique prefix of one, or `last`.
    pub run: String,
    /// Pipeline script, for its weir.toml and store.
    #[arg(default_value = "pipeline.rhai")]
    pub script: PathBuf,
    #[command(flatten)]
    pub store: StoreArgs,
    /// Also print the run's event log (JSON lines).
    #[arg(long)]
    pub events: bool,
    /// Only this task (`stage.table`): its status, checks, error and what its code logged.
    #[arg(long, value_name = "TASK")]
    pub task: Option<String>,
}

pub async fn runs(args: RunsArgs) -> Result<()> {
    let store = open(&args.script, &args.store)?;
    let mut records = Vec::new();
    for id in store.run_ids().await?.into_iter().take(args.limit) {
        if let Some(r) = store.read_run(&id).await? {
            records.push(r);
        }
    }
    print_runs(&records)?;
    Ok(())
}

pub async fn log(args: LogArgs) -> Result<()> {
    let store = open(&args.script, &args.store)?;
    let mut record = find_run(&store, &args.run).await?;
    let mut events = if args.events {
        store.read_run_log(&record.run_id).await?
    } else {
        None
    };
    if let Some(task) = &args.task {
        let known: Vec<String> = record.tasks.iter().map(|t| t.task.clone()).collect();
        record.tasks.retain(|t| t.task.eq_ignore_ascii_case(task));
        let Some(found) = record.tasks.first().map(|t| t.task.clone()) else {
            return Err(Error::usage(
                format!("run {} has no task `{task}`", record.run_id),
                crate::names::did_you_mean(task, known.iter().map(String::as_str), || {
                    format!("`weir log {}` lists its tasks", record.run_id)
                }),
            ));
        };
        events = events.map(|text| only_task(&text, &found));
    }
    print_run(&record, events.as_deref())?;
    Ok(())
}

fn open(script: &std::path::Path, store: &StoreArgs) -> Result<Store> {
    store.target(script).store()
}

/// The run named by `last` or by a unique prefix of its id.
async fn find_run(store: &Store, spec: &str) -> Result<RunRecord> {
    let ids = store.run_ids().await?;
    let instance = store.layout.instance();
    if ids.is_empty() {
        return Err(Error::usage(
            format!("instance `{instance}` has no recorded runs"),
            "run the pipeline first: weir run",
        ));
    }
    let matches: Vec<&String> = if spec == "last" {
        ids.iter().take(1).collect()
    } else {
        ids.iter().filter(|id| id.starts_with(spec)).collect()
    };
    let id = match matches.as_slice() {
        [id] => *id,
        [] => {
            let recent: Vec<&str> = ids.iter().take(3).map(String::as_str).collect();
            return Err(Error::usage(
                format!("no run of instance `{instance}` has an id starting with `{spec}`"),
                format!(
                    "recent runs: {} (`weir runs` lists them; `last` is the newest)",
                    recent.join(", ")
                ),
            ));
        }
        several => {
            let shown: Vec<&str> = several.iter().take(5).map(|s| s.as_str()).collect();
            return Err(Error::usage(
                format!("`{spec}` is the start of {} run ids", several.len()),
                format!("give more of the id: {}", shown.join(", ")),
            ));
        }
    };
    store.read_run(id).await?.ok_or_else(|| {
        Error::usage(
            format!("run {id} disappeared while it was read"),
            "try again",
        )
    })
}

/// The event lines about `task`.
fn only_task(events: &str, task: &str) -> String {
    events
        .lines()
        .filter(|line| {
            serde_json::from_str::<serde_json::Value>(line)
                .is_ok_and(|v| v.get("task").and_then(|t| t.as_str()) == Some(task))
        })
        .map(|line| format!("{line}\n"))
        .collect()
}
