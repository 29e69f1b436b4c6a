//! The REPL's commands, registered as Rhai functions on an engine with the script's API.
//! Each prints its result, or returns a value (`sql`, `table`); errors are printed as
//! diagnostics and the session goes on.

use std::path::Path;
use std::sync::{Arc, Mutex};

use datafusion::prelude::DataFrame;
use rhai::{Engine, EvalAltResult, Map};

use datafusion::arrow::array::Int64Array;
use datafusion::common::TableReference;

use super::values;
use super::{Repl, lock};
use crate::engine::{Engine as Df, register_build};
use crate::report::{
    OutputFormat, StatusLine, note, out, print_batches, print_error, print_status, schema_change,
};
use crate::script::{Params, Table};
use crate::session::{self, Reader, plan_all};
use crate::store::{Store, TableBuild};
use crate::{Error, Result};

type RhaiResult<T> = std::result::Result<T, Box<EvalAltResult>>;

pub const COMMANDS: &[&str] = &[
    "run", "show", "sql", "table", "schema", "status", "diff", "evaluate", "promote", "tables",
    "help",
];

pub fn engine(repl: Arc<Mutex<Repl>>, dir: &Path, params: Params) -> Engine {
    let mut e = crate::script::session_engine(dir, params);
    e.on_print(out);
    register_values(&mut e, &repl);
    let r = repl.clone();
    e.register_fn("run", move || lock(&r).run(Vec::new()));
    let r = repl.clone();
    e.register_fn("run", move |sel: &str| {
        lock(&r).run(vec![format!("+{sel}")])
    });
    let r = repl.clone();
    e.register_fn("show", move |t: &str| lock(&r).show(t, 10));
    let r = repl.clone();
    e.register_fn("show", move |t: &str, n: i64| {
        lock(&r).show(t, n.max(0) as usize)
    });
    let r = repl.clone();
    e.register_fn("schema", move |t: &str| lock(&r).schema(t));
    let r = repl.clone();
    e.register_fn("status", move || lock(&r).status());
    let r = repl.clone();
    e.register_fn("diff", move |t: &str| lock(&r).diff(t));
    let r = repl.clone();
    e.register_fn("evaluate", move |t: &str| lock(&r).evaluate(t, 10));
    let r = repl.clone();
    e.register_fn("evaluate", move |t: &str, n: i64| {
        lock(&r).evaluate(t, n.max(0) as usize)
    });
    let r = repl.clone();
    e.register_fn("promote", move |t: &str| lock(&r).promote(t, false));
    let r = repl.clone();
    e.register_fn("promote", move |t: &str, opts: Map| -> RhaiResult<()> {
        let force = force_option(opts).or_else(values::fail)?;
        lock(&r).promote(t, force);
        Ok(())
    });
    let r = repl.clone();
    e.register_fn("as_of", move |run: &str| lock(&r).as_of(Some(run)));
    let r = repl.clone();
    e.register_fn("as_of", move || lock(&r).as_of(None));
    e.register_fn("tables", move || lock(&repl).tables());
    e.register_fn("help", help);
    e
}

/// The commands that make or take Table values.
fn register_values(e: &mut Engine, repl: &Arc<Mutex<Repl>>) {
    let r = repl.clone();
    e.register_fn("table", move |name: &str| -> RhaiResult<Table> {
        lock(&r).table(name).or_else(values::fail)
    });
    let r = repl.clone();
    e.register_fn("sql", move |q: &str| -> RhaiResult<Table> {
        lock(&r).sql_table(q).or_else(values::fail)
    });
    let r = repl.clone();
    e.register_fn("show", move |t: Table| -> RhaiResult<()> {
        lock(&r).show_table(&t, 10, true).or_else(values::fail)
    });
    let r = repl.clone();
    e.register_fn("show", move |t: Table, n: i64| -> RhaiResult<()> {
        lock(&r)
            .show_table(&t, n.max(0) as usize, false)
            .or_else(values::fail)
    });
    let r = repl.clone();
    e.register_fn("run", move |task: &str, opts: Map| -> RhaiResult<()> {
        lock(&r).run_given(task, opts).or_else(values::fail)
    });
}

pub fn help() {
    out(
        "run()              run every stale task (tainted stages are built, not committed)
run(\"prep.x\")      run prep.x and its upstream
run(\"marts.x\", #{ inputs: #{ \"prep.y\": t } })   run a task with a Table for an input (not committed)
show(\"prep.x\")     first rows of a table (this session's build if tainted), show(t, n)
sql(\"SELECT ...\")  a Table of a query over the committed tables: let t = sql(...)
table(\"prep.x\")    a Table of a table (this session's build if any): t.count(), t.rows(),
                   t.filter(...), show(t), a script function called on it
schema(\"prep.x\")   columns and types
status()           each task: fresh, stale, tainted, given (run with inputs), never built
diff(\"prep.x\")     this session's build against the committed table
evaluate(\"prep.x\") compute a task over its inputs without writing it, evaluate(t, n)
promote(\"prep.x\")  commit this session's build of a tainted task once its data checks pass
                   (promote(t, #{ force: true }) commits it anyway, recorded in the run history)
tables()           committed tables
as_of(\"last~1\")    read tables as committed at the end of a run (an id, last~N, a time);
                   as_of() reads them as committed now
prep.sql(...), fn f(t) { ... }   redefine a task or function for this session
:save              write the session's code into the script (shows the diff, asks; :save! does not)
:reload :reset :quit   re-read the script (keeping the session's code); drop that code; leave
                   (:quit warns about code not saved; :quit! does not)",
    );
}

impl Repl {
    fn report<T>(result: Result<T>) {
        if let Err(e) = result {
            print_error(e);
        }
    }

    fn run(&mut self, select: Vec<String>) {
        let mut opts = self.opts.clone();
        opts.selection = crate::flow::select::Selection::new(select, Vec::new());
        opts.hold = self.held_stages();
        opts.interactive = true;
        let result = self.block(|cancel| {
            self.handle
                .block_on(session::run(&self.current, &opts, &cancel))
        });
        // What is committed may have changed: Tables made from now on read it anew.
        self.cx = None;
        // A run changes what is stored, not any key: the taint stays as it was.
        Self::report(result.and_then(|report| {
            report.print_summary(false)?;
            match report.failure() {
                Some(e) => Err(e),
                None => Ok(()),
            }
        }));
    }

    /// The rows `table("prep.x")` reads: this session's build, else the committed table.
    fn show(&mut self, table: &str, rows: usize) {
        let result = self
            .table(table)
            .and_then(|t| self.show_table(&t, rows, false));
        Self::report(result);
    }

    fn schema(&mut self, table: &str) {
        let query = format!("SELECT * FROM {table} LIMIT 0");
        let result = self.block(|cancel| {
            self.handle.block_on(async {
                let reader = self.reader(true).await?;
                let df = tokio::select! {
                    df = reader.plan(&query) => df?,
                    () = cancel.cancelled() => return Err(Error::Cancelled),
                };
                for f in df.schema().fields() {
                    let null = if f.is_nullable() { "" } else { " not null" };
                    out(&format!("{}  {}{null}", f.name(), f.data_type()));
                }
                Ok(())
            })
        });
        Self::report(result);
    }

    /// The committed tables, with this session's builds of tainted tasks over them when
    /// `session` is set.
    async fn reader(&self, session: bool) -> Result<Reader> {
        let store = &self.current.store;
        let engine = self.current.engine(self.opts.memory_limit)?;
        let reader = Reader::open_as_of(store, &engine, self.as_of.as_deref()).await?;
        reader.add_udfs(&self.current.script)?;
        if session && !self.tainted.is_empty() {
            let planned = plan_all(&self.current, None).await?;
            for (task, step) in planned.flow.tasks.iter().zip(&planned.plan.steps) {
                if !self.tainted.contains(&task.id.to_string()) {
                    continue;
                }
                for b in step.builds.iter().filter(|b| b.key == step.key) {
                    reader.overlay(store, b).await?;
                }
            }
        }
        Ok(reader)
    }

    fn status(&mut self) {
        let planned = match self.handle.block_on(plan_all(&self.current, None)) {
            Ok(p) => p,
            Err(e) => return print_error(e),
        };
        let lines: Vec<StatusLine> = (0..planned.flow.tasks.len())
            .map(|i| {
                let id = planned.flow.tasks[i].id.to_string();
                let step = &planned.plan.steps[i];
                let built =
                    !step.builds.is_empty() && step.builds.iter().all(|b| b.key == step.key);
                let (word, detail) = match planned.state(i) {
                    _ if self.given.contains_key(&id) => (
                        "given",
                        format!(
                            "built with given inputs in this session: promote(\"{id}\") commits it"
                        ),
                    ),
                    _ if self.tainted.contains(&id) && built => {
                        ("tainted", "built in this session".to_string())
                    }
                    _ if self.tainted.contains(&id) => ("tainted", "not built yet".to_string()),
                    state => (state.word, state.detail),
                };
                StatusLine {
                    task: id,
                    state: word.to_string(),
                    detail,
                    extra: Vec::new(),
                }
            })
            .collect();
        Self::report(print_status(&lines).map_err(Error::from));
    }

    fn diff(&mut self, table: &str) {
        match self.handle.block_on(self.diff_counts(table)) {
            Ok(text) => out(&text),
            Err(e) => print_error(e),
        }
    }

    async fn diff_counts(&self, table: &str) -> Result<String> {
        let planned = plan_all(&self.current, None).await?;
        let (index, output) = planned.find(table)?;
        let step = &planned.plan.steps[index];
        let output = output.unwrap_or_else(|| planned.flow.tasks[index].decl.outputs[0].clone());
        let committed = planned.committed_table(index, Some(&output));
        let ours = step
            .builds
            .iter()
            .find(|b| b.table == output && b.key == step.key);
        let (Some(old), Some(new)) = (committed, ours) else {
            return Ok(format!(
                "{table}: {}",
                match (committed, ours) {
                    (None, _) => "not committed yet",
                    _ => "not built for this session's code: run it first",
                }
            ));
        };
        if old.key == new.key {
            return Ok(format!("{table}: same as committed ({} rows)", old.rows));
        }
        let mut text = format!(
            "{table}: committed {} rows, this session {} rows",
            old.rows, new.rows
        );
        let schema = schema_change(&old.schema, &new.schema);
        if !schema.is_empty() {
            return Ok(format!("{text}; schema: {schema}"));
        }
        let engine = self.current.engine(self.opts.memory_limit)?;
        let (added, removed) = row_differences(&self.current.store, &engine, old, new).await?;
        text.push_str(&format!(
            "; {added} rows only in this session, {removed} only committed"
        ));
        Ok(text)
    }

    fn evaluate(&mut self, task: &str, rows: usize) {
        let result = self.block(|cancel| {
            self.handle.block_on(async {
                tokio::select! {
                    r = session::evaluate_task(&self.current, task, rows) => r,
                    () = cancel.cancelled() => Err(Error::Cancelled),
                }
            })
        });
        match result {
            Ok(outputs) => {
                for (table, batches) in outputs {
                    out(&format!("{table} (not materialized):"));
                    Self::report(print_batches(&batches, OutputFormat::Table).map_err(Error::from));
                }
            }
            Err(e) => print_error(e),
        }
    }

    fn promote(&mut self, task: &str, force: bool) {
        let timeout = self.opts.lock_timeout;
        let (result, given) = match self.given_build(task) {
            Some((id, builds)) => {
                let promoted = session::promote_given(&self.current, &id, builds, force, timeout);
                (self.handle.block_on(promoted), Some(id))
            }
            None => {
                let promoted = session::promote(&self.current, task, force, timeout);
                (self.handle.block_on(promoted), None)
            }
        };
        self.cx = None;
        let promoted = match result {
            Ok(promoted) => promoted,
            Err(e) => return print_error(e),
        };
        let how = match &given {
            Some(id) => {
                self.given.remove(id);
                " (run with given inputs)"
            }
            None => "",
        };
        if let Some(failed) = &promoted.forced_past {
            note(&format!(
                "warning: {} committed although {failed}; the run history records it",
                promoted.task
            ));
        }
        out(&format!(
            "promoted {}{how}: committed, tainted until a normal run rebuilds it",
            promoted.task
        ));
    }

    /// The builds of a run with given inputs of `name` (a task or one of its tables).
    fn given_build(&self, name: &str) -> Option<(String, Vec<TableBuild>)> {
        self.given
            .iter()
            .find(|(id, builds)| {
                id.eq_ignore_ascii_case(name)
                    || builds
                        .iter()
                        .any(|b| format!("{}.{}", b.stage, b.table).eq_ignore_ascii_case(name))
            })
            .map(|(id, builds)| (id.clone(), builds.clone()))
    }

    /// `run("marts.x", #{ inputs: #{ "prep.y": t } })`: run one task with Tables in place of
    /// some of its inputs; its builds are this session's until promoted.
    fn run_given(&mut self, task: &str, opts: Map) -> Result<()> {
        let given = given_inputs(opts)?;
        let names: Vec<String> = given.iter().map(|(n, _)| n.clone()).collect();
        let timeout = self.opts.lock_timeout;
        let (id, builds) = self.block(|cancel| {
            self.handle.block_on(async {
                tokio::select! {
                    r = session::run_with_inputs(&self.current, task, given, timeout) => r,
                    () = cancel.cancelled() => Err(Error::Cancelled),
                }
            })
        })?;
        for b in &builds {
            out(&format!(
                "built {}.{} with {} given: {}, not committed (table(\"{}.{}\") reads it; promote(\"{id}\") commits it)",
                b.stage,
                b.table,
                names.join(", "),
                crate::report::plural(b.rows, "row"),
                b.stage,
                b.table
            ));
        }
        self.given.insert(id, builds);
        Ok(())
    }

    /// Read as of a run from now on (`None`: as committed now), once the run is found.
    fn as_of(&mut self, run: Option<&str>) {
        let Some(spec) = run.filter(|r| !r.trim().is_empty()) else {
            self.as_of = None;
            self.cx = None;
            return out("reading the tables as committed now");
        };
        let store = self.current.store.clone();
        match self
            .handle
            .block_on(crate::session::resolve_as_of(&store, spec))
        {
            Ok(run) => {
                out(&format!(
                    "reading the tables as committed at the end of run {}",
                    run.run_id
                ));
                self.as_of = Some(run.run_id);
                self.cx = None;
            }
            Err(e) => print_error(e),
        }
    }

    fn tables(&mut self) {
        match self.handle.block_on(self.reader(false)) {
            Ok(reader) => {
                for name in reader.tables() {
                    let rows = crate::names::TableName::parse(name)
                        .and_then(|t| reader.build(&t).map(|b| b.rows))
                        .unwrap_or(0);
                    out(&format!("{name}  {rows} rows"));
                }
            }
            Err(e) => print_error(e),
        }
    }
}

/// Rows only in `new`, and rows only in `old` (as multisets).
async fn row_differences(
    store: &Store,
    engine: &Df,
    old: &TableBuild,
    new: &TableBuild,
) -> Result<(i64, i64)> {
    let ctx = engine.context(None, ["c", "s"], None);
    let query_error = |cause| Error::Query {
        message: "comparing the builds failed".into(),
        cause,
    };
    for (schema, b) in [("c", old), ("s", new)] {
        register_build(&ctx, store, TableReference::partial(schema, "t"), b)
            .await
            .map_err(query_error)?;
    }
    let count = |q: &'static str| {
        let ctx = ctx.clone();
        async move {
            let b = ctx.sql(q).await?.collect().await?;
            let v = b.first().map(|b| b.column(0).clone());
            Ok::<_, datafusion::error::DataFusionError>(
                v.and_then(|c| c.as_any().downcast_ref::<Int64Array>().map(|a| a.value(0)))
                    .unwrap_or(0),
            )
        }
    };
    let added = count("SELECT count(*) FROM (SELECT * FROM s.t EXCEPT ALL SELECT * FROM c.t)")
        .await
        .map_err(query_error)?;
    let removed = count("SELECT count(*) FROM (SELECT * FROM c.t EXCEPT ALL SELECT * FROM s.t)")
        .await
        .map_err(query_error)?;
    Ok((added, removed))
}

/// The `inputs` of `run(task, #{ inputs: #{ "prep.y": t } })`, each a Table.
fn given_inputs(mut opts: Map) -> Result<Vec<(String, DataFrame)>> {
    const EXAMPLE: &str = "run(\"marts.x\", #{ inputs: #{ \"prep.y\": t } }) with t a Table, e.g. let t = sql(\"SELECT ...\")";
    let inputs = opts.remove("inputs");
    if let Some(k) = opts.keys().next() {
        return Err(Error::usage(
            format!("run(task, options) has no option `{k}` (it has: inputs)"),
            EXAMPLE,
        ));
    }
    let Some(inputs) = inputs.and_then(|i| i.try_cast::<Map>()) else {
        return Err(Error::usage(
            "`inputs` is a map from an input table to a Table",
            EXAMPLE,
        ));
    };
    let mut out = Vec::with_capacity(inputs.len());
    for (name, value) in inputs {
        let type_name = value.type_name();
        let Some(t) = value.try_cast::<Table>() else {
            return Err(Error::usage(
                format!("input `{name}` is given {type_name}, not a Table"),
                EXAMPLE,
            ));
        };
        out.push((name.to_string(), t.df));
    }
    Ok(out)
}

/// `promote(t, #{ force: true })`: the one option of promote.
fn force_option(mut opts: Map) -> Result<bool> {
    const EXAMPLE: &str =
        "promote(\"prep.x\", #{ force: true }) commits a build that fails a data check";
    let force = opts.remove("force");
    if let Some(k) = opts.keys().next() {
        return Err(Error::usage(
            format!("promote(task, options) has no option `{k}` (it has: force)"),
            EXAMPLE,
        ));
    }
    match force.map(|f| f.as_bool()) {
        None => Ok(false),
        Some(Ok(force)) => Ok(force),
        Some(Err(type_name)) => Err(Error::usage(
            format!("`force` is a bool, not {type_name}"),
            EXAMPLE,
        )),
    }
}
