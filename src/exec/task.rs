//! Evaluating one task: set up its context, turn it into DataFrames (a load, a query, or a call
//! of the task's Rhai function), and write every output.

use std::collections::HashMap;
use std::sync::Arc;

use datafusion::common::TableReference;
use datafusion::prelude::{DataFrame, ParquetReadOptions, SessionContext};
use rhai::Dynamic;

use super::write::{Target, write};
use super::{Shared, TaskError};
use crate::engine::register_build;
use crate::engine::{Placement, placement};
use crate::flow::{At, Step, Task};
use crate::names::TableName;
use crate::script::{Materializer, Table, TaskCx, TaskKind, TaskScope};
use crate::store::TableBuild;

/// What a task run produced: the builds of its outputs, the bytes it spilled to disk, the
/// physical plan of each output it wrote (output table, plan), and the data checks that ran on
/// them.
pub struct Ran {
    pub builds: Vec<TableBuild>,
    pub spilled_bytes: u64,
    pub plans: Vec<(String, String)>,
    pub checks: Vec<crate::store::CheckOutcome>,
    /// Early cutoff (`cutoff::REBUILT_UNCHANGED`, `cutoff::INPUTS_UNCHANGED`).
    pub note: Option<&'static str>,
    /// The cluster it ran on; `None`: weir's process.
    pub engine: Option<String>,
    /// For a task run partition by partition: which ran, of how many.
    pub partitions: Option<crate::flow::partitions::Counted>,
}

impl Ran {
    /// Builds that were checked, kept or pinned, but not computed by a query.
    pub(super) fn computing_nothing(
        builds: Vec<TableBuild>,
        checks: Vec<crate::store::CheckOutcome>,
        note: Option<&'static str>,
    ) -> Self {
        Self {
            builds,
            spilled_bytes: 0,
            plans: Vec::new(),
            checks,
            note,
            engine: None,
            partitions: None,
        }
    }
}

/// How long a task run again with less memory waits for its first attempt to let go of the
/// pool (`Engine::drained`).
const DRAIN_LIMIT: std::time::Duration = std::time::Duration::from_secs(60);

/// How a task runs: with the engine's settings, or once more, alone, with settings that need
/// less memory after it ran out (`Engine::frugal`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Attempt {
    First,
    Frugal,
}

/// Compute task `index` whole over `inputs` (what it reads; `others`, what its checks read
/// besides), and write its outputs; `committed` is what was committed when the run started.
pub async fn whole(
    shared: Arc<Shared>,
    index: usize,
    inputs: Vec<(TableName, TableBuild)>,
    others: &[(TableName, TableBuild)],
    committed: &HashMap<TableName, TableBuild>,
    attempt: Attempt,
) -> Result<Ran, TaskError> {
    let task = &shared.flow.tasks[index];
    let bytes_per_row = bytes_per_row(&inputs);
    let partial = inputs.iter().any(|(_, b)| b.partial);
    // A remote cluster's executors would not see partitions an input keeps in another build's
    // folder (`store::views`).
    let held = inputs.iter().any(|(_, b)| shared.store.holds_in_place(b));
    let mut frames = frames(&shared, index, inputs, attempt, None).await?;
    if let TaskKind::Load(spec) = &task.decl.kind
        && spec.in_place
        && let Some((_, df)) = frames.pop()
    {
        let mut builds = vec![super::load::in_place(&shared, task, spec, df).await?];
        let checks = super::checks::verify(&shared, index, &mut builds, others).await?;
        return Ok(Ran::computing_nothing(builds, checks, None));
    }
    let mut ran = Ran::computing_nothing(Vec::with_capacity(frames.len()), Vec::new(), None);
    let mut on_cluster = shared.engine.cluster.is_some()
        && placement(task) == Placement::Cluster
        && attempt == Attempt::First;
    if on_cluster && held && shared.engine.remote() {
        shared.logs.push(
            index,
            crate::store::LogLine::info(
                "ran locally: an input keeps partitions in an earlier build's folder, which only weir's process sees as its own".to_string(),
            ),
        );
        on_cluster = false;
    }
    for (table, df) in frames {
        let how = Output {
            on_cluster,
            // The failed attempt's files stay in their folder, which no record names.
            suffix: match attempt {
                Attempt::First => "",
                Attempt::Frugal => "-frugal",
            },
            bytes_per_row,
            partial,
        };
        let mut written = write_output(&shared, index, &table, df.clone(), how).await;
        if on_cluster
            && let Err(e) = &written
            && let Some(why) = crate::engine::undistributable(&e.to_string())
        {
            // Nothing of it ran on the cluster, but a build folder of its own all the same.
            shared.logs.push(index, crate::store::LogLine::info(why));
            let local = shared.engine.state(Some(task.default_stage()));
            let (_, plan) = df.into_parts();
            let df = DataFrame::new(local, plan);
            let how = Output {
                on_cluster: false,
                suffix: "-local",
                bytes_per_row,
                partial,
            };
            written = write_output(&shared, index, &table, df, how).await;
            on_cluster = false;
        }
        let written = written?;
        ran.spilled_bytes += written.spilled_bytes;
        ran.plans.push((table, written.plan));
        ran.builds.push(written.build);
    }
    ran.engine = on_cluster.then(|| shared.engine.label());
    ran.checks = super::checks::verify(&shared, index, &mut ran.builds, others).await?;
    if super::cutoff::same_as_committed(&ran.builds, committed) {
        ran.note = Some(super::cutoff::REBUILT_UNCHANGED);
    }
    Ok(ran)
}

/// How one output of a task is written: on the cluster or here, and the build's name after
/// the run's (`-local` when the cluster could not take it), and its inputs' bytes per row.
struct Output<'a> {
    on_cluster: bool,
    suffix: &'a str,
    bytes_per_row: Option<f64>,
    /// An input is partial (`TableBuild::partial`): so is this.
    partial: bool,
}

/// Write output `table` of task `index`.
async fn write_output(
    shared: &Arc<Shared>,
    index: usize,
    table: &str,
    df: DataFrame,
    how: Output<'_>,
) -> Result<super::write::Written, TaskError> {
    let (on_cluster, suffix) = (how.on_cluster, how.suffix);
    let task = &shared.flow.tasks[index];
    let build = format!("{}{suffix}", shared.run.id);
    keep_contract(shared, index, table, &df)?;
    let mut target = self::target(shared, index, table, &build);
    target.bytes_per_row = how.bytes_per_row;
    target.partial = how.partial;
    // The cluster works while weir waits, so weir's idle CPU says nothing there.
    target.stall = target.stall.filter(|_| !on_cluster);
    write_watched(shared, index, df, target).await.map_err(|e| {
        match &task.decl.kind {
            // A CSV or JSON file is read while the output is written: say which row.
            TaskKind::Load(spec) => super::load::explain(task, spec, e),
            _ => e,
        }
    })
}

/// Where output `table` of task `index` is written, as build `build` of the task's key.
pub(super) fn target<'a>(
    shared: &'a Shared,
    index: usize,
    table: &'a str,
    build: &'a str,
) -> Target<'a> {
    let task = &shared.flow.tasks[index];
    let step: &Step = &shared.steps[index];
    Target {
        flow: &shared.run.flow_name,
        task: task.id.to_string(),
        stage: &task.decl.stage,
        table,
        parts: &step.parts,
        key: &step.key,
        build,
        run_id: &shared.run.id,
        partition_by: &task.decl.opts.partition_by,
        bytes_per_row: None,
        file_bytes: shared.engine.settings.file_bytes(),
        primary_key: &task.decl.opts.primary_key,
        descriptions: task.descriptions(table),
        stall: shared.engine.settings.stall_window(),
        partial: false,
    }
}

/// Refuse output `table` when it lacks what its contract promises.
pub(super) fn keep_contract(
    shared: &Shared,
    index: usize,
    table: &str,
    df: &DataFrame,
) -> Result<(), TaskError> {
    let task = &shared.flow.tasks[index];
    if let Some(contract) = task.contracts.iter().find(|c| c.table.table == table) {
        let broken = contract.violations(df.schema().as_arrow());
        if !broken.is_empty() {
            return Err(contract_broken(shared, task, contract, broken));
        }
    }
    Ok(())
}

/// `write`, and once more, into a build folder of its own, when its query stopped (`stall`):
/// the hang it guards against is a race.
async fn write_watched(
    shared: &Arc<Shared>,
    index: usize,
    df: DataFrame,
    target: Target<'_>,
) -> Result<super::write::Written, TaskError> {
    let first = write(&shared.store, df.clone(), target.clone()).await;
    let Err(TaskError::Stalled { window, .. }) = &first else {
        return first;
    };
    let message = format!(
        "{}'s query stopped: no progress and no CPU for {window}; running it once more",
        target.table
    );
    tracing::warn!(task = %target.task, "{message}");
    shared
        .logs
        .push(index, crate::store::LogLine::info(message));
    // The stopped attempt's files stay in their folder, which no record names: never read.
    let build = format!("{}-again", target.build);
    let again = Target {
        build: &build,
        ..target
    };
    write(&shared.store, df, again).await
}

/// Stored bytes per row of a task's inputs: outputs are usually about as wide.
fn bytes_per_row(inputs: &[(TableName, TableBuild)]) -> Option<f64> {
    let rows: u64 = inputs.iter().map(|(_, b)| b.rows).sum();
    let bytes: u64 = inputs.iter().map(|(_, b)| b.bytes).sum();
    (rows > 0).then(|| bytes as f64 / rows as f64)
}

/// Which rows of some inputs a task reads: one partition's, for an incremental task.
pub struct Only {
    /// The inputs restricted; the others are read whole.
    pub tables: std::collections::BTreeSet<TableName>,
    /// The partition's values, by column.
    pub values: Vec<(String, String)>,
}

/// The task's outputs as lazy DataFrames over its stored inputs (`only` restricting some of
/// them to one partition): nothing is computed yet.
pub async fn frames(
    shared: &Arc<Shared>,
    index: usize,
    inputs: Vec<(TableName, TableBuild)>,
    attempt: Attempt,
    only: Option<&Only>,
) -> Result<Vec<(String, DataFrame)>, TaskError> {
    let task = &shared.flow.tasks[index];
    let step: &Step = &shared.steps[index];
    let ctx = context(shared, index, &inputs, attempt).await?;
    for (name, build) in &inputs {
        let table = TableReference::partial(name.stage.as_str(), name.table.as_str());
        register_build(&ctx, &shared.store, table.clone(), build)
            .await
            .map_err(|e| TaskError::engine(format!("cannot read input {name}"), e))?;
        if let Some(only) = only.filter(|o| o.tables.contains(name)) {
            restrict(&ctx, table, build, &only.values)
                .await
                .map_err(|e| TaskError::engine(format!("cannot read input {name}"), e))?;
        }
    }

    let frames: Vec<(String, DataFrame)> = match &task.decl.kind {
        TaskKind::Load(spec) => vec![(
            task.decl.outputs[0].clone(),
            super::load::load(&ctx, task, spec, shared).await?,
        )],
        TaskKind::Sql {
            sql,
            statements: true,
            ..
        } => vec![(
            task.decl.outputs[0].clone(),
            super::statements::plan(&ctx, task, sql).await?,
        )],
        TaskKind::Sql { sql, .. } => vec![(
            task.decl.outputs[0].clone(),
            crate::df_message::plan_query(&ctx, sql)
                .await
                .map_err(|e| sql_failure(task, sql, &e))?,
        )],
        TaskKind::Rhai {
            func,
            inputs: names,
        } => call(shared, index, ctx, func.clone(), names).await?,
        TaskKind::Sample(spec) => vec![(
            task.decl.outputs[0].clone(),
            super::sample::sample(&ctx, spec, shared, step).await?,
        )],
    };
    Ok(frames)
}

/// The context task `index` is evaluated in (on the cluster, or here; with the engine's
/// settings, or the frugal ones after it ran out of memory), with the flow's UDFs.
pub(super) async fn context(
    shared: &Arc<Shared>,
    index: usize,
    inputs: &[(TableName, TableBuild)],
    attempt: Attempt,
) -> Result<SessionContext, TaskError> {
    let task = &shared.flow.tasks[index];
    let default_stage = task.default_stage();
    // The default stage's schema is where a multi-statement task's views go.
    let stages = inputs
        .iter()
        .map(|(t, _)| t.stage.as_str())
        .chain([task.decl.stage.as_str(), default_stage]);
    // A sample's `head` takes rows in stored order, which needs a single partition.
    let partitions = matches!(task.decl.kind, TaskKind::Sample(_)).then_some(1);
    let placed = match attempt {
        Attempt::First => shared.engine.cluster.as_ref().map(|_| placement(task)),
        Attempt::Frugal => None,
    };
    let ctx = match placed {
        Some(Placement::Cluster) => shared
            .engine
            .cluster_context(Some(default_stage), stages)
            .unwrap_or_else(|| Ok(shared.engine.context(Some(default_stage), [], None)))
            .map_err(|e| TaskError::engine("cannot plan for the cluster".to_string(), e))?,
        placed => {
            if let Some(Placement::Local(why)) = placed {
                shared.logs.push(index, crate::store::LogLine::info(why));
            }
            let frugal;
            let engine = match attempt {
                Attempt::First => &shared.engine,
                Attempt::Frugal => {
                    let held = shared.engine.drained(DRAIN_LIMIT).await;
                    if held > 0 {
                        shared.logs.push(
                            index,
                            crate::store::LogLine::info(format!(
                                "{} of the pool still held after {}s: starting all the same",
                                crate::report::human_bytes(held as u64),
                                DRAIN_LIMIT.as_secs()
                            )),
                        );
                    }
                    frugal = shared.engine.frugal();
                    &frugal
                }
            };
            engine.context(Some(default_stage), stages, partitions)
        }
    };
    // The task's own instances of the UDFs: what they log is the task's.
    let udfs = super::udf::functions(
        &shared.flow.udfs,
        &shared.code.rhai,
        &shared.code.ast,
        Some((shared.logs.clone(), index)),
    );
    super::udf::register(&ctx, &udfs);
    Ok(ctx)
}

/// Input `table` (registered over `build`) read as the rows of one partition only: a filter
/// on its partition columns, which DataFusion answers by listing that partition's folder.
async fn restrict(
    ctx: &SessionContext,
    table: TableReference,
    build: &TableBuild,
    values: &[(String, String)],
) -> datafusion::error::Result<()> {
    use datafusion::arrow::datatypes::DataType;
    use datafusion::prelude::{cast, ident, lit};
    let mut df = ctx.table(table.clone()).await?;
    for (column, value) in values {
        let ty = build
            .partition_by
            .iter()
            .find(|c| &c.name == column)
            .and_then(|c| c.data_type.parse::<DataType>().ok())
            .unwrap_or(DataType::Utf8);
        df = df.filter(ident(column).eq(cast(lit(value.as_str()), ty)))?;
    }
    let view = df.into_view();
    ctx.deregister_table(table.clone())?;
    ctx.register_table(table.clone(), view.clone())?;
    // The name folded to lower case (`engine::register_build`) is the same table.
    if let TableReference::Partial {
        schema,
        table: name,
    } = &table
    {
        let folded = name.to_ascii_lowercase();
        if folded != name.as_ref() {
            let lower = TableReference::partial(schema.as_ref(), folded.as_str());
            ctx.deregister_table(lower.clone())?;
            ctx.register_table(lower, view)?;
        }
    }
    Ok(())
}

/// A query that does not plan: located in the script (or `.sql` file) when DataFusion says
/// where, with "did you mean" for a misspelled column.
pub(super) fn sql_failure(
    task: &Task,
    sql: &str,
    e: &datafusion::error::DataFusionError,
) -> TaskError {
    let Some(place) = &task.sql else {
        return TaskError::invalid(crate::df_message::root_message(e));
    };
    let d = crate::flow::sql_error::diagnose(e, place, sql);
    TaskError::sql(task.id.to_string(), d.headline, d.at, &d.label, d.help)
}

/// Call the task's Rhai function with its inputs as Tables; it returns a Table, or a map of
/// Tables when the task declares several outputs.
async fn call(
    shared: &Arc<Shared>,
    index: usize,
    ctx: SessionContext,
    func: rhai::FnPtr,
    names: &[TableName],
) -> Result<Vec<(String, DataFrame)>, TaskError> {
    let cx = TaskCx::with_materializer(
        ctx.clone(),
        tokio::runtime::Handle::current(),
        Some(materializer(shared, index, &ctx)),
        shared.run.interactive,
    );
    cx.log_to(shared.logs.clone(), index);
    cx.scope_to(TaskScope {
        task: shared.flow.tasks[index].id.to_string(),
        inputs: shared.flow.tasks[index].inputs.clone(),
        tables: shared.flow.producers.keys().cloned().collect(),
    });
    let mut args: Vec<Dynamic> = Vec::with_capacity(names.len());
    for n in names {
        let df = ctx
            .table(TableReference::partial(n.stage.as_str(), n.table.as_str()))
            .await
            .map_err(|e| TaskError::engine(format!("cannot read input {n}"), e))?;
        args.push(Dynamic::from(Table::new(df, cx.clone())));
    }
    let (engine, ast) = (shared.code.rhai.clone(), shared.code.ast.clone());
    let task = &shared.flow.tasks[index];
    let (name, given) = (func.fn_name().to_string(), names.len());
    let result = tokio::task::spawn_blocking(move || {
        let call = || func.call::<Dynamic>(&engine, &ast, args);
        crate::script::within(cx, || crate::script::task_code(call))
    })
    .await
    .map_err(|e| TaskError::Panicked {
        message: format!("the task function stopped: {e}"),
    })?
    .map_err(|e| match &*e {
        // The function itself could not be called with the task's inputs.
        rhai::EvalAltResult::ErrorFunctionNotFound(sig, _)
            if sig.starts_with(&format!("{name} (")) =>
        {
            let inputs: Vec<String> = names.iter().map(ToString::to_string).collect();
            let shown = if name.starts_with("anon$") {
                "the task's closure"
            } else {
                &name
            };
            let message = format!(
                "{shown} cannot be called with the task's {} ({})",
                crate::report::plural(given as u64, "input"),
                inputs.join(", ")
            );
            let help = "give the function one parameter per input, in the order of the inputs";
            at_task(shared, task, message, Some(help.into()))
        }
        _ => function_failure(shared, task, &e),
    })?;
    outputs(task, result).map_err(TaskError::invalid)
}

/// A failure of a task function's call as a whole, labelled at the task's declaration.
fn at_task(shared: &Shared, task: &Task, message: String, help: Option<String>) -> TaskError {
    let at = At::new(shared.code.source_of(task.decl.origin), task.decl.origin);
    function_error(task, message, at, "this task's code", help)
}

fn function_error(
    task: &Task,
    message: String,
    at: At,
    label: &str,
    help: Option<String>,
) -> TaskError {
    TaskError::Function {
        task: task.id.to_string(),
        message,
        location: at.location,
        src: at.src,
        span: at.span,
        label: label.into(),
        help,
    }
}

/// A task function that raised an error: labelled where in the script it failed, with the
/// Table API's help (e.g. "did you mean" for a column) as its own line.
fn function_failure(shared: &Shared, task: &Task, e: &rhai::EvalAltResult) -> TaskError {
    let text = crate::script::runtime_message(e);
    let (message, help) = match text.split_once(crate::script::api::HELP_MARK) {
        Some((m, h)) => (m.to_string(), Some(h.to_string())),
        None => (text, None),
    };
    let pos = crate::script::innermost_position(e);
    let (Some(line), Some(column)) = (pos.line(), pos.position()) else {
        // Stopped from outside its code (the time limit): labelled at the task.
        return at_task(shared, task, message, help);
    };
    if crate::script::failed_outside_script(e) {
        return TaskError::Script { message };
    }
    let src = &shared.code.source;
    let span = crate::source::token_span(&src.text, src.offset(line, column));
    let at = At {
        location: format!("{}:{line}:{column}", src.name()),
        src: src.named(),
        span,
    };
    function_error(task, message, at, "failed here", help)
}

/// `t.materialize("name")` inside this task: write the frame as intermediate `name` of the
/// task's stage, under the task's key (so a cached task never writes it again), and read it
/// back. Intermediates are stored, not committed: the task's declared outputs are its tables.
fn materializer(shared: &Arc<Shared>, index: usize, ctx: &SessionContext) -> Materializer {
    let shared = shared.clone();
    let ctx = ctx.clone();
    Box::new(move |name: String, attempt: usize, df: DataFrame| {
        let (shared, ctx) = (shared.clone(), ctx.clone());
        Box::pin(async move {
            let task = &shared.flow.tasks[index];
            let step = &shared.steps[index];
            let stage = task.decl.stage.as_str();
            if shared
                .flow
                .producers
                .contains_key(&TableName::new(stage, &name))
            {
                return Err(format!(
                    "`{stage}.{name}` is a table of the flow: give the intermediate its own name"
                ));
            }
            let id = task.id.to_string();
            // A repeat (REPL only) goes beside the first: `df` may still read the first.
            let build = match attempt {
                0 => shared.run.id.clone(),
                n => format!("{}-{n}", shared.run.id),
            };
            let target = Target {
                flow: &shared.run.flow_name,
                task: id,
                stage,
                table: &name,
                parts: &step.parts,
                key: &step.key,
                build: &build,
                run_id: &shared.run.id,
                partition_by: &[],
                bytes_per_row: None,
                file_bytes: shared.engine.settings.file_bytes(),
                primary_key: &[],
                descriptions: Default::default(),
                stall: None,
                partial: false,
            };
            let written = write(&shared.store, df, target)
                .await
                .map_err(|e| format!("materializing {stage}.{name}: {e}"))?;
            let url = shared.store.build_url(&written.build);
            ctx.read_parquet(url, ParquetReadOptions::default())
                .await
                .map_err(|e| format!("reading {stage}.{name} back: {e}"))
        })
    })
}

fn outputs(task: &Task, result: Dynamic) -> Result<Vec<(String, DataFrame)>, String> {
    let outs = &task.decl.outputs;
    if let Some(t) = result.clone().try_cast::<Table>() {
        if outs.len() == 1 {
            return Ok(vec![(outs[0].clone(), t.df)]);
        }
        return Err(format!(
            "the task declares outputs {} and must return a map of them, not one Table",
            outs.join(", ")
        ));
    }
    let type_name = result.type_name();
    let Some(map) = result.try_cast::<rhai::Map>() else {
        return Err(format!(
            "a task function must return a Table (or a map of Tables), not {type_name}"
        ));
    };
    if let Some(extra) = map.keys().find(|k| !outs.iter().any(|o| o == k.as_str())) {
        return Err(format!(
            "the task returned `{extra}`, which is not among its declared outputs ({})",
            outs.join(", ")
        ));
    }
    outs.iter()
        .map(|o| {
            let value = map
                .get(o.as_str())
                .cloned()
                .ok_or_else(|| format!("the task did not return its output `{o}`"))?;
            let tn = value.type_name();
            value
                .try_cast::<Table>()
                .map(|t| (o.clone(), t.df))
                .ok_or_else(|| format!("output `{o}` is {tn}, not a Table"))
        })
        .collect()
}

/// A table that does not have its contract's columns, labelled at the contract.
pub(super) fn contract_broken(
    shared: &Shared,
    task: &Task,
    contract: &crate::script::contract::ContractDecl,
    broken: Vec<String>,
) -> TaskError {
    let at = At::new(shared.code.source_of(contract.origin), contract.origin);
    TaskError::Contract {
        task: task.id.to_string(),
        table: contract.table.to_string(),
        problems: broken.join("; "),
        location: at.location,
        src: at.src,
        span: at.span,
    }
}
