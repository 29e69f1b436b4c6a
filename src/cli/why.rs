//! `weir why stage.table`: the parts of the table's cache key next to its committed build's,
//! and which of them changed.

use clap::Args;

use super::status::{Planned, plan_all, state};
use super::{ScriptArgs, StoreArgs};
use crate::config::CacheMode;
use crate::report::{Why, key_parts, print_why};
use crate::script::TableName;
use crate::{Error, Result};

#[derive(Debug, Args)]
pub struct WhyArgs {
    /// The table (or multi-output task) to explain, `stage.table`.
    pub table: String,
    #[command(flatten)]
    pub script: ScriptArgs,
    #[command(flatten)]
    pub store: StoreArgs,
    /// How outside inputs count (default: the instance's `cache_mode`, else normal).
    #[arg(long, value_enum)]
    pub cache_mode: Option<CacheMode>,
}

pub async fn why(args: WhyArgs) -> Result<()> {
    let Some(name) = TableName::parse(&args.table) else {
        return Err(Error::usage(
            format!("`{}` is not a table name", args.table),
            "name a table as stage.table",
        ));
    };
    let planned = plan_all(&args.script, &args.store, args.cache_mode).await?;
    let (index, table) = find(&planned, &name)?;
    let step = &planned.plan.steps[index];
    let task = &planned.flow.tasks[index];
    let committed = planned.committed_table(index, table.as_deref());
    let (state, detail) = state(step);
    let outputs = &task.decl.outputs;
    let label = if outputs.len() == 1 && outputs[0] == task.decl.name {
        task.id.to_string()
    } else {
        format!("{} (task {}: {})", name, task.id, outputs.join(", "))
    };
    let why = Why {
        task: label,
        state: state.to_string(),
        reasons: (!detail.is_empty()).then_some(detail).into_iter().collect(),
        key: step.key.0.clone(),
        committed: committed.map(|b| (b.key.clone(), b.run_id.clone())),
        parts: key_parts(
            &step.parts,
            committed.map(|b| &b.parts),
            &planned.input_notes(index),
        ),
    };
    print_why(&why)?;
    Ok(())
}

/// The task producing `name` (or named `name`, for a multi-output task) and which output.
fn find(planned: &Planned, name: &TableName) -> Result<(usize, Option<String>)> {
    if let Some(&i) = planned.flow.producers.get(name) {
        return Ok((i, Some(name.table.clone())));
    }
    if let Some(i) = planned.flow.tasks.iter().position(|t| t.id == *name) {
        return Ok((i, None));
    }
    let known: Vec<String> = planned
        .flow
        .producers
        .keys()
        .map(ToString::to_string)
        .collect();
    let help = match crate::flow::closest(&name.to_string(), known.iter().map(String::as_str), 0.8)
    {
        Some(t) => format!("did you mean `{t}`?"),
        None => "`weir status` lists the script's tables".to_string(),
    };
    Err(Error::usage(
        format!("the script declares no table `{name}`"),
        help,
    ))
}
