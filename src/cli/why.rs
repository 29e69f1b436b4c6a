//! `weir why stage.table`: the parts of the table's cache key next to its committed build's,
//! and which of them changed.

use clap::Args;

use super::{ScriptArgs, StoreArgs, target};
use crate::config::CacheMode;
use crate::names::TableName;
use crate::report::{Why, key_parts, print_why};
use crate::session::plan_all;
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
    /// Also say why each of these partitions would be computed (`day=2026-12-01`, `day=a,b`,
    /// `day=FROM..TO`), or that it is fresh.
    #[arg(long, value_name = "COLUMN=VALUES", value_parser = crate::flow::partitions::PartitionRange::parse)]
    pub partition: Option<crate::flow::partitions::PartitionRange>,
}

pub async fn why(args: WhyArgs) -> Result<()> {
    let Some(name) = TableName::parse(&args.table) else {
        return Err(Error::usage(
            format!("`{}` is not a table name", args.table),
            "name a table as stage.table",
        ));
    };
    let loaded = target(&args.script, &args.store).load()?;
    let planned = plan_all(&loaded, args.cache_mode).await?;
    let (index, table) = planned.find(&name.to_string())?;
    let step = &planned.plan.steps[index];
    let task = &planned.flow.tasks[index];
    let committed = planned.committed_table(index, table.as_deref());
    let state = planned.state(index);
    let outputs = &task.decl.outputs;
    let label = if outputs.len() == 1 && outputs[0] == task.decl.name {
        task.id.to_string()
    } else {
        format!("{} (task {}: {})", name, task.id, outputs.join(", "))
    };
    let why = Why {
        task: label,
        state: state.word.to_string(),
        reasons: (!state.detail.is_empty())
            .then_some(state.detail)
            .into_iter()
            .collect(),
        key: step.key.to_string(),
        committed: committed.map(|b| (b.key.to_string(), b.run_id.clone())),
        parts: key_parts(
            &step.parts,
            committed.map(|b| &b.parts),
            &planned.input_notes(index),
        ),
    };
    print_why(&why)?;
    if let Some(range) = &args.partition {
        if !task.decl.opts.partition_by.contains(&range.column) {
            return Err(Error::usage(
                format!("{} is not partitioned by {}", task.id, range.column),
                "name one of its partition columns, or leave out --partition",
            ));
        }
        let lines = match planned.partition_reasons(index, range) {
            Some(reasons) if reasons.is_empty() => vec![format!("no partition in {range}")],
            Some(reasons) => reasons
                .into_iter()
                .map(|(path, why)| match why.is_empty() {
                    true => format!("  {path}: fresh"),
                    false => format!("  {path}: {why}"),
                })
                .collect(),
            None => vec![format!(
                "partitions in {range}: known once the tasks it reads have run (they are stale)"
            )],
        };
        crate::report::stdout_text(lines.join("\n").as_bytes())?;
        crate::report::stdout_text(b"\n")?;
    }
    Ok(())
}
