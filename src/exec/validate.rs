//! `weir check`: plan every task without running one. Loads infer their schemas from their
//! files; SQL tasks and data checks are planned against the schemas planned upstream; a task
//! function's (or sample's) table is taken as last committed, since only running the function
//! tells. Nothing is computed and nothing is written.

use std::collections::HashMap;
use std::sync::Arc;

use datafusion::arrow::datatypes::SchemaRef;
use datafusion::common::TableReference;
use datafusion::datasource::MemTable;
use datafusion::prelude::SessionContext;

use super::{Shared, TaskError};
use crate::engine::register_build;
use crate::flow::{At, Task};
use crate::names::TableName;
use crate::script::TaskKind;
use crate::store::TableBuild;

/// How one task came out of the check.
pub enum Verdict {
    /// Planned, with its data checks.
    Planned,
    /// Not planned (a task function or a sample, which it says); its committed table stands
    /// in downstream.
    Committed(&'static str),
    /// Not planned (a task function or a sample, which it says); its contracts' columns stand
    /// in downstream.
    Contracted(&'static str),
    /// Not planned, and why.
    Unchecked(String),
    Failed(Box<TaskError>),
}

/// Where the schemas of tables come from while checking.
struct Known<'a> {
    planned: HashMap<TableName, SchemaRef>,
    committed: &'a HashMap<TableName, TableBuild>,
    failed: Vec<TableName>,
}

/// Plan every task of `shared`'s flow, in dependency order; `committed` are the committed
/// builds of the instance.
pub async fn validate(
    shared: &Arc<Shared>,
    committed: &HashMap<TableName, TableBuild>,
) -> Vec<Verdict> {
    let mut known = Known {
        planned: HashMap::new(),
        committed,
        failed: Vec::new(),
    };
    let mut verdicts = Vec::with_capacity(shared.flow.tasks.len());
    for task in &shared.flow.tasks {
        let verdict = match task_verdict(shared, task, &mut known).await {
            Ok(v) => v,
            Err(e) => Verdict::Failed(Box::new(e)),
        };
        if !matches!(
            verdict,
            Verdict::Planned | Verdict::Committed(_) | Verdict::Contracted(_)
        ) {
            known.failed.extend(task.outputs());
        }
        verdicts.push(verdict);
    }
    verdicts
}

/// A task function's or a sample's verdict: its contracts stand in for it, else its
/// committed tables.
fn stand_in(what: &'static str, task: &Task, known: &mut Known<'_>) -> Verdict {
    let promised: Option<Vec<(TableName, SchemaRef)>> = task
        .outputs()
        .map(|o| {
            let contract = task.contracts.iter().find(|c| c.table == o)?;
            Some((o, contract.schema()?))
        })
        .collect();
    if let Some(promised) = promised {
        known.planned.extend(promised);
        return Verdict::Contracted(what);
    }
    match task.outputs().all(|o| known.committed.contains_key(&o)) {
        true => Verdict::Committed(what),
        false => Verdict::Unchecked(format!(
            "{what}: only `weir run` tells its columns, and it has not committed yet"
        )),
    }
}

async fn task_verdict(
    shared: &Arc<Shared>,
    task: &Task,
    known: &mut Known<'_>,
) -> Result<Verdict, TaskError> {
    match task.decl.kind {
        TaskKind::Rhai { .. } => return Ok(stand_in("a task function", task, known)),
        TaskKind::Sample(_) => return Ok(stand_in("a sample", task, known)),
        TaskKind::Load(_) | TaskKind::Sql { .. } => {}
    }
    let default_stage = task.default_stage();
    // The default stage's schema is where a multi-statement task's views go.
    let stages = task
        .inputs
        .iter()
        .chain(&task.check_inputs)
        .map(|t| t.stage.as_str())
        .chain([task.decl.stage.as_str(), default_stage]);
    let ctx = shared.engine.context(Some(default_stage), stages, None);
    super::udf::register(&ctx, &shared.code.udfs);
    for input in &task.inputs {
        if let Some(why) = register(&ctx, shared, known, input).await? {
            return Ok(Verdict::Unchecked(why));
        }
    }
    let df = match &task.decl.kind {
        TaskKind::Load(spec) => super::load::load(&ctx, task, spec, shared).await?,
        TaskKind::Sql {
            sql,
            statements: true,
            ..
        } => super::statements::plan(&ctx, task, sql).await?,
        TaskKind::Sql { sql, .. } => crate::df_message::plan_query(&ctx, sql)
            .await
            .map_err(|e| super::task::sql_failure(task, sql, &e))?,
        TaskKind::Rhai { .. } => return Ok(stand_in("a task function", task, known)),
        TaskKind::Sample(_) => return Ok(stand_in("a sample", task, known)),
    };
    let schema = df.schema().inner().clone();
    if let Some(contract) = task.contracts.iter().find(|c| c.table == task.id) {
        let broken = contract.violations(&schema);
        if !broken.is_empty() {
            return Err(super::task::contract_broken(shared, task, contract, broken));
        }
    }
    known.planned.insert(task.id.clone(), schema);
    plan_checks(shared, task, &ctx, known).await?;
    Ok(Verdict::Planned)
}

/// Register `table` in `ctx` as an empty table of its planned schema, else its committed
/// build; `Some(why)` when neither is known.
async fn register(
    ctx: &SessionContext,
    shared: &Shared,
    known: &Known<'_>,
    table: &TableName,
) -> Result<Option<String>, TaskError> {
    let name = TableReference::partial(table.stage.as_str(), table.table.as_str());
    let failed = |e| TaskError::engine(format!("cannot plan {table}"), e);
    // A table that does not check is not what a run would read, whatever is committed.
    if known.failed.contains(table) {
        return Ok(Some(format!("reads {table}, which could not be checked")));
    }
    if let Some(schema) = known.planned.get(table) {
        let empty = MemTable::try_new(schema.clone(), vec![vec![]]).map_err(failed)?;
        ctx.register_table(name, Arc::new(empty)).map_err(failed)?;
        return Ok(None);
    }
    if let Some(build) = known.committed.get(table) {
        register_build(ctx, &shared.store, name, build)
            .await
            .map_err(failed)?;
        return Ok(None);
    }
    Ok(Some(format!(
        "reads {table}, whose columns are not known before it is built"
    )))
}

/// Plan each data check of `task` as the query a run would count rows of.
async fn plan_checks(
    shared: &Shared,
    task: &Task,
    ctx: &SessionContext,
    known: &Known<'_>,
) -> Result<(), TaskError> {
    for other in &task.check_inputs {
        if register(ctx, shared, known, other).await?.is_some() {
            return Ok(());
        }
    }
    let own = TableReference::partial(task.id.stage.as_str(), task.id.table.as_str());
    if !ctx.table_exist(own.clone()).unwrap_or(false)
        && let Some(schema) = known.planned.get(&task.id)
        && let Ok(empty) = MemTable::try_new(schema.clone(), vec![vec![]])
    {
        let _ = ctx.register_table(own, Arc::new(empty));
    }
    let columns: Vec<String> = known
        .planned
        .get(&task.id)
        .map(|s| s.fields().iter().map(|f| f.name().clone()).collect())
        .unwrap_or_default();
    for check in &task.checks {
        let sql = super::checks::query(check, &columns);
        if let Err(e) = crate::df_message::plan_query(ctx, &sql).await {
            let at = At::new(shared.code.source_of(check.origin), check.origin);
            return Err(TaskError::sql(
                check.table.to_string(),
                format!(
                    "check `{}` cannot be planned: {}",
                    check.text,
                    crate::df_message::root_message(&e)
                ),
                at,
                "this check",
                None,
            ));
        }
    }
    Ok(())
}
