//! `Table`: the value a task function receives and returns. It is a lazy DataFusion DataFrame;
//! every method builds a new plan, except `count`, `rows` and `schema` which look at data.
//! Transformations are written as SQL over the frame so expressions, aliases and functions
//! behave exactly as in SQL tasks.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use datafusion::arrow::array::AsArray;
use datafusion::arrow::datatypes::{DataType, Float64Type, Int32Type, Int64Type};
use datafusion::arrow::util::display::{ArrayFormatter, FormatOptions};
use datafusion::prelude::{DataFrame, SessionContext};
use rhai::{Array, Dynamic, Engine, EvalAltResult, Map, NativeCallContext};

use super::{HELP_MARK, df_fail, fail};
use crate::names::TableName;

type RhaiResult<T> = Result<T, Box<EvalAltResult>>;

/// Eager `rows()` is for small data; past this many rows it refuses instead of exhausting memory.
const MAX_EAGER_ROWS: usize = 100_000;

/// Writes an intermediate table of the running task and returns a frame reading it back;
/// provided by `exec`, which owns writing.
pub type Materializer = Box<
    dyn Fn(
            String,
            usize,
            DataFrame,
        )
            -> std::pin::Pin<Box<dyn std::future::Future<Output = Result<DataFrame, String>> + Send>>
        + Send
        + Sync,
>;

/// The DataFusion context one task runs in, shared by all Table values of that task.
pub struct TaskCx {
    pub ctx: SessionContext,
    runtime: tokio::runtime::Handle,
    next_view: AtomicUsize,
    materializer: Option<Materializer>,
    /// Intermediates written so far, and how often; twice is an error outside the REPL.
    materialized: std::sync::Mutex<std::collections::BTreeMap<String, usize>>,
    interactive: bool,
    /// Where `log::info` and friends put what the task's code logs, and the task's index.
    log: std::sync::OnceLock<(Arc<super::task_logs::TaskLogs>, usize)>,
    /// The task it runs and what that task may read.
    scope: std::sync::OnceLock<TaskScope>,
}

/// Which task a context runs, and what it may read: its inputs, among the flow's tables.
pub struct TaskScope {
    pub task: String,
    pub inputs: Vec<TableName>,
    pub tables: Vec<TableName>,
}

impl TaskScope {
    /// Why code of this task cannot read `name`: not an input, or not a table at all.
    fn unreadable(&self, name: &TableName) -> Option<String> {
        let folded = name.folded();
        if self.inputs.iter().any(|i| i.folded() == folded) {
            return None;
        }
        let task = &self.task;
        Some(match self.tables.iter().find(|t| t.folded() == folded) {
            Some(t) => format!(
                "{t} is not an input of {task}{HELP_MARK}add table(\"{t}\") to its inputs: a task reads only the tables it declares, so weir knows to run it after them and again when they change"
            ),
            None => {
                let known = self
                    .inputs
                    .iter()
                    .map(ToString::to_string)
                    .collect::<Vec<_>>();
                let help = crate::names::did_you_mean(
                    &name.to_string(),
                    known.iter().map(String::as_str),
                    || match known.is_empty() {
                        true => format!("{task} reads no table"),
                        false => format!("the inputs of {task}: {}", known.join(", ")),
                    },
                );
                format!("unknown table {name}{HELP_MARK}{help}")
            }
        })
    }
}

impl TaskCx {
    pub fn new(ctx: SessionContext, runtime: tokio::runtime::Handle) -> Arc<Self> {
        Self::with_materializer(ctx, runtime, None, false)
    }

    pub fn with_materializer(
        ctx: SessionContext,
        runtime: tokio::runtime::Handle,
        materializer: Option<Materializer>,
        interactive: bool,
    ) -> Arc<Self> {
        Arc::new(Self {
            ctx,
            runtime,
            next_view: AtomicUsize::new(0),
            materializer,
            materialized: Default::default(),
            interactive,
            log: Default::default(),
            scope: Default::default(),
        })
    }

    /// Run the code of `scope.task`, which may read `scope.inputs`.
    pub fn scope_to(&self, scope: TaskScope) {
        let _ = self.scope.set(scope);
    }

    /// `table("stage.name")` inside a task: its input of that name as a Table.
    pub(super) fn input(
        self: &Arc<Self>,
        name: &TableName,
        pos: rhai::Position,
    ) -> RhaiResult<Table> {
        if let Some(why) = self.scope.get().and_then(|s| s.unreadable(name)) {
            return fail(why, pos);
        }
        let reference =
            datafusion::common::TableReference::partial(name.stage.as_str(), name.table.as_str());
        match self.block_on(self.ctx.table(reference)) {
            Ok(df) => Ok(Table::new(df, self.clone())),
            Err(e) => df_fail(&e, pos),
        }
    }

    /// A query of this task that named a table it cannot read: why, in weir's words.
    fn unreadable_in(&self, e: &datafusion::error::DataFusionError) -> Option<String> {
        let missing = crate::df_message::missing_table(e)?;
        let name = TableName::parse(&missing)?;
        self.scope.get()?.unreadable(&name)
    }

    /// Send what the task's code logs to `logs`, as task `task`'s.
    pub fn log_to(&self, logs: Arc<super::task_logs::TaskLogs>, task: usize) {
        let _ = self.log.set((logs, task));
    }

    pub(super) fn log_sink(&self) -> Option<(Arc<super::task_logs::TaskLogs>, usize)> {
        self.log.get().map(|(logs, task)| (logs.clone(), *task))
    }

    /// `t.materialize("name")`: write `df` now as intermediate `name` of the task's stage.
    fn materialize(&self, name: &str, df: DataFrame) -> Result<DataFrame, String> {
        if !crate::names::is_identifier(name) {
            return Err(format!("`{name}` is not a table name (letters, digits, _)"));
        }
        crate::names::check_length("table name", name)?;
        let Some(write) = &self.materializer else {
            return Err("materialize(name) works only inside a running task".into());
        };
        let attempt = {
            let mut seen = self.materialized.lock().unwrap_or_else(|p| p.into_inner());
            let n = seen.entry(name.to_string()).or_insert(0);
            *n += 1;
            *n - 1
        };
        if attempt > 0 && !self.interactive {
            return Err(format!(
                "`{name}` was already materialized by this task: give each intermediate its own name (materializing one twice is allowed only in the REPL)"
            ));
        }
        self.block_on(write(name.to_string(), attempt, df))
    }

    /// Register a frame under a fresh name so SQL can refer to it.
    fn view(&self, df: &DataFrame) -> datafusion::error::Result<String> {
        let name = format!(
            "__weir_view_{}",
            self.next_view.fetch_add(1, Ordering::Relaxed)
        );
        self.ctx
            .register_table(name.as_str(), df.clone().into_view())?;
        Ok(name)
    }

    fn block_on<F: std::future::Future>(&self, f: F) -> F::Output {
        self.runtime.block_on(f)
    }
}

thread_local! {
    /// The context of the task whose Rhai code runs on this thread, for functions that make
    /// a Table from nothing (`table([...])`).
    static CURRENT: std::cell::RefCell<Option<Arc<TaskCx>>> = const { std::cell::RefCell::new(None) };
}

/// Run `f` as the code of the task whose context is `cx`.
pub fn within<R>(cx: Arc<TaskCx>, f: impl FnOnce() -> R) -> R {
    let before = CURRENT.with(|c| c.replace(Some(cx)));
    let out = f();
    CURRENT.with(|c| c.replace(before));
    out
}

/// The context of the task running on this thread, if any.
pub(super) fn current() -> Option<Arc<TaskCx>> {
    CURRENT.with(|c| c.borrow().clone())
}

#[derive(Clone)]
pub struct Table {
    pub df: DataFrame,
    pub cx: Arc<TaskCx>,
}

impl Table {
    pub fn new(df: DataFrame, cx: Arc<TaskCx>) -> Self {
        Self { df, cx }
    }

    /// Run `SELECT ...` built around this table's view name.
    fn derive(
        &self,
        ctx: &NativeCallContext,
        sql: impl FnOnce(&str) -> String,
    ) -> RhaiResult<Table> {
        let pos = ctx.call_position();
        let name = self.cx.view(&self.df).or_else(|e| df_fail(&e, pos))?;
        let sql = sql(&name);
        match self
            .cx
            .block_on(crate::df_message::plan_query(&self.cx.ctx, &sql))
        {
            Ok(df) => Ok(Table::new(df, self.cx.clone())),
            Err(e) => match crate::df_message::refused_headline(&e, &sql) {
                None if let Some(why) = self.cx.unreadable_in(&e) => fail(why, pos),
                Some(headline) => fail(
                    format!(
                        "{headline}{HELP_MARK}SQL in a task is one query (SELECT or WITH ... SELECT): {}",
                        crate::df_message::ONE_QUERY
                    ),
                    pos,
                ),
                None => df_fail(&e, pos),
            },
        }
    }

    fn columns(&self) -> Array {
        self.df
            .schema()
            .fields()
            .iter()
            .map(|f| f.name().clone().into())
            .collect()
    }
}

pub fn register(engine: &mut Engine) {
    engine
        .register_type_with_name::<Table>("Table")
        .register_fn("to_string", |t: &mut Table| format!("Table({})", join(&t.columns())))
        .register_fn("columns", |t: &mut Table| t.columns())
        .register_fn(
            "materialize",
            |ctx: NativeCallContext, t: &mut Table, name: &str| -> RhaiResult<Table> {
                match t.cx.materialize(name, t.df.clone()) {
                    Ok(df) => Ok(Table::new(df, t.cx.clone())),
                    Err(e) => fail(e, ctx.call_position()),
                }
            },
        )
        .register_fn("filter", |ctx: NativeCallContext, t: &mut Table, predicate: &str| {
            t.derive(&ctx, |v| format!("SELECT * FROM {v} WHERE {predicate}"))
        })
        .register_fn("select", |ctx: NativeCallContext, t: &mut Table, exprs: Array| {
            let list = join(&exprs);
            t.derive(&ctx, |v| format!("SELECT {list} FROM {v}"))
        })
        .register_fn("select", |ctx: NativeCallContext, t: &mut Table, expr: &str| {
            t.derive(&ctx, |v| format!("SELECT {expr} FROM {v}"))
        })
        .register_fn("with_column", with_column)
        .register_fn("aggregate", |ctx: NativeCallContext, t: &mut Table, by: Array, aggs: Array| {
            let (keys, list) = (join(&by), join(&aggs));
            let select = if keys.is_empty() { list.clone() } else { format!("{keys}, {list}") };
            let group = if keys.is_empty() { String::new() } else { format!(" GROUP BY {keys}") };
            t.derive(&ctx, |v| format!("SELECT {select} FROM {v}{group}"))
        })
        .register_fn("sort", |ctx: NativeCallContext, t: &mut Table, col: &str, ascending: bool| {
            sort(&ctx, t, &[(col.to_string(), ascending)])
        })
        .register_fn("sort", |ctx: NativeCallContext, t: &mut Table, col: &str| sort(&ctx, t, &[order_item(col)]))
        .register_fn("sort", |ctx: NativeCallContext, t: &mut Table, order: Array| {
            let items: Vec<(String, bool)> = order.iter().map(|d| order_item(&d.to_string())).collect();
            sort(&ctx, t, &items)
        })
        .register_fn("limit", |ctx: NativeCallContext, t: &mut Table, n: i64| {
            let pos = ctx.call_position();
            let n = usize::try_from(n).or_else(|_| fail("limit must not be negative", pos))?;
            match t.df.clone().limit(0, Some(n)) {
                Ok(df) => Ok(Table::new(df, t.cx.clone())),
                Err(e) => df_fail(&e, pos),
            }
        })
        .register_fn("distinct", |ctx: NativeCallContext, t: &mut Table| {
            t.derive(&ctx, |v| format!("SELECT DISTINCT * FROM {v}"))
        })
        .register_fn("union", |ctx: NativeCallContext, t: &mut Table, other: Table| {
            let other = t.cx.view(&other.df).or_else(|e| df_fail(&e, ctx.call_position()))?;
            t.derive(&ctx, |v| format!("SELECT * FROM {v} UNION ALL BY NAME SELECT * FROM {other}"))
        })
        .register_fn("join", |ctx: NativeCallContext, t: &mut Table, other: Table, on: Dynamic| {
            join_tables(&ctx, t, other, on, "inner")
        })
        .register_fn("join", |ctx: NativeCallContext, t: &mut Table, other: Table, on: Dynamic, how: &str| {
            join_tables(&ctx, t, other, on, how)
        })
        .register_fn("sql", |ctx: NativeCallContext, t: &mut Table, query: &str| {
            if !query.contains("{self}") {
                return fail("the query must name the table as {self}, e.g. \"SELECT * FROM {self} WHERE x > 0\"", ctx.call_position());
            }
            t.derive(&ctx, |v| query.replace("{self}", v))
        })
        .register_fn("count", |ctx: NativeCallContext, t: &mut Table| -> RhaiResult<i64> {
            match t.cx.block_on(t.df.clone().count()) {
                Ok(n) => Ok(i64::try_from(n).unwrap_or(i64::MAX)),
                Err(e) => df_fail(&e, ctx.call_position()),
            }
        })
        .register_fn("schema", |t: &mut Table| -> Map {
            t.df.schema().fields().iter().map(|f| (f.name().into(), f.data_type().to_string().into())).collect()
        })
        .register_fn("rows", rows);
}

/// `"total DESC"` -> ("total", false); a bare expression sorts ascending.
fn order_item(text: &str) -> (String, bool) {
    let t = text.trim();
    let upper = t.to_ascii_uppercase();
    if let Some(stripped) = upper.strip_suffix(" DESC") {
        (t[..stripped.len()].trim().to_string(), false)
    } else if let Some(stripped) = upper.strip_suffix(" ASC") {
        (t[..stripped.len()].trim().to_string(), true)
    } else {
        (t.to_string(), true)
    }
}

/// Sorting and limiting stay on the DataFrame: an ORDER BY inside a view may be optimized
/// away, and then `sort(...).limit(n)` would pick arbitrary rows.
fn sort(ctx: &NativeCallContext, t: &Table, items: &[(String, bool)]) -> RhaiResult<Table> {
    let pos = ctx.call_position();
    let mut exprs = Vec::with_capacity(items.len());
    for (expr, ascending) in items {
        let e = parse_expr(t, expr, pos)?;
        exprs.push(e.sort(*ascending, !*ascending));
    }
    match t.df.clone().sort(exprs) {
        Ok(df) => Ok(Table::new(df, t.cx.clone())),
        Err(e) => df_fail(&e, pos),
    }
}

/// An SQL expression over `t`'s columns, refused like a query when it nests too deeply.
fn parse_expr(t: &Table, expr: &str, pos: rhai::Position) -> RhaiResult<datafusion::prelude::Expr> {
    if let Some(message) = crate::df_message::expression_too_deep(expr) {
        return fail(message, pos);
    }
    t.df.parse_sql_expr(expr).or_else(|e| df_fail(&e, pos))
}

fn with_column(ctx: NativeCallContext, t: &mut Table, name: &str, expr: &str) -> RhaiResult<Table> {
    let pos = ctx.call_position();
    let e = parse_expr(t, expr, pos)?;
    match t.df.clone().with_column(name, e) {
        Ok(df) => Ok(Table::new(df, t.cx.clone())),
        Err(e) => df_fail(&e, pos),
    }
}

fn join_tables(
    ctx: &NativeCallContext,
    t: &mut Table,
    other: Table,
    on: Dynamic,
    how: &str,
) -> RhaiResult<Table> {
    let pos = ctx.call_position();
    let keys = if let Some(list) = on.clone().try_cast::<Array>() {
        join(&list)
    } else {
        on.to_string()
    };
    let kind = match how.to_ascii_lowercase().as_str() {
        "inner" => "INNER",
        "left" => "LEFT",
        "right" => "RIGHT",
        "full" | "outer" => "FULL",
        other => {
            return fail(
                format!("join kind `{other}` is not one of inner, left, right, full"),
                pos,
            );
        }
    };
    let right = t.cx.view(&other.df).or_else(|e| df_fail(&e, pos))?;
    t.derive(ctx, |v| {
        format!("SELECT * FROM {v} {kind} JOIN {right} USING ({keys})")
    })
}

fn rows(ctx: NativeCallContext, t: &mut Table) -> RhaiResult<Array> {
    let pos = ctx.call_position();
    let limited =
        t.df.clone()
            .limit(0, Some(MAX_EAGER_ROWS + 1))
            .or_else(|e| df_fail(&e, pos))?;
    let batches =
        t.cx.block_on(limited.collect())
            .or_else(|e| df_fail(&e, pos))?;
    let total: usize = batches.iter().map(|b| b.num_rows()).sum();
    if total > MAX_EAGER_ROWS {
        return fail(
            format!(
                "rows() is for small tables; this one has more than {MAX_EAGER_ROWS} rows: filter or limit it first"
            ),
            pos,
        );
    }
    let mut out = Array::with_capacity(total);
    for batch in &batches {
        let schema = batch.schema();
        for row in 0..batch.num_rows() {
            let mut map = Map::new();
            for (i, field) in schema.fields().iter().enumerate() {
                map.insert(field.name().into(), cell(batch.column(i), row));
            }
            out.push(map.into());
        }
    }
    Ok(out)
}

/// One Arrow cell as a Rhai value: numbers, booleans and strings natively, the rest as text.
fn cell(array: &dyn datafusion::arrow::array::Array, row: usize) -> Dynamic {
    if array.is_null(row) {
        return Dynamic::UNIT;
    }
    match array.data_type() {
        DataType::Int64 => array.as_primitive::<Int64Type>().value(row).into(),
        DataType::Int32 => i64::from(array.as_primitive::<Int32Type>().value(row)).into(),
        DataType::Float64 => array.as_primitive::<Float64Type>().value(row).into(),
        DataType::Boolean => array.as_boolean().value(row).into(),
        DataType::Utf8 => array.as_string::<i32>().value(row).to_string().into(),
        DataType::Utf8View => array.as_string_view().value(row).to_string().into(),
        _ => ArrayFormatter::try_new(array, &FormatOptions::default())
            .map(|f| f.value(row).to_string())
            .unwrap_or_default()
            .into(),
    }
}

fn join(items: &[Dynamic]) -> String {
    items
        .iter()
        .map(|d| d.to_string())
        .collect::<Vec<_>>()
        .join(", ")
}
