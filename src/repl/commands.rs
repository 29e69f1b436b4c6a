//! The REPL's commands, registered as Rhai functions. Each prints its result; errors are
//! printed as diagnostics and the session goes on.

use std::sync::{Arc, Mutex};

use rhai::Engine;

use super::{Repl, lock};
use crate::exec::{Engine as Df, ExecError, committed_context, register_build};
use crate::report::{OutputFormat, print_batches, print_error};
use crate::session::{self, find_task, plan_all};
use crate::{Error, Result};

pub const COMMANDS: &[&str] = &[
    "run", "show", "sql", "schema", "status", "diff", "eval", "promote", "tables", "help",
];

pub fn engine(repl: Arc<Mutex<Repl>>) -> Engine {
    let mut e = Engine::new();
    e.disable_symbol("eval");
    e.on_print(|s| println!("{s}"));
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
    e.register_fn("sql", move |q: &str| lock(&r).sql(q));
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
    e.register_fn("promote", move |t: &str| lock(&r).promote(t));
    e.register_fn("tables", move || lock(&repl).tables());
    e.register_fn("help", help);
    e
}

pub fn help() {
    println!(
        "run()              run every stale task (tainted stages are built, not committed)
run(\"prep.x\")      run prep.x and its upstream
show(\"prep.x\")     first rows of a table (this session's build if tainted), show(t, n)
sql(\"SELECT ...\")  query the committed tables
schema(\"prep.x\")   columns and types
status()           each task: fresh, stale, tainted, never built
diff(\"prep.x\")     this session's build against the committed table
evaluate(\"prep.x\") compute a task over its inputs without writing it, evaluate(t, n)
promote(\"prep.x\")  commit this session's build of a tainted task
tables()           committed tables
prep.sql(...), fn f(t) {{ ... }}   redefine a task or function for this session
:reload :reset :quit   re-read the script (keeping the session's code); drop that code; leave"
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
        opts.select = select;
        opts.hold = self.held_stages();
        opts.interactive = true;
        let result = self.block(|cancel| {
            self.handle
                .block_on(session::run(&self.current, &opts, &cancel))
        });
        // A run changes what is stored, not any key: the taint stays as it was.
        Self::report(result.and_then(|report| {
            report.print_summary(false)?;
            match report.failure() {
                Some(e) => Err(e),
                None => Ok(()),
            }
        }));
    }

    fn show(&mut self, table: &str, rows: usize) {
        let query = format!("SELECT * FROM {table} LIMIT {rows}");
        Self::report(self.query(&query, true));
    }

    fn sql(&mut self, query: &str) {
        Self::report(self.query(query, false));
    }

    fn schema(&mut self, table: &str) {
        let query = format!("SELECT * FROM {table} LIMIT 0");
        let result = self.block(|cancel| {
            self.handle.block_on(async {
                let ctx = self.context(true).await?;
                let df = tokio::select! {
                    df = ctx.sql(&query) => df.map_err(|e| typed(&query, &e, &ctx))?,
                    () = cancel.cancelled() => return Err(Error::Cancelled),
                };
                for f in df.schema().fields() {
                    let null = if f.is_nullable() { "" } else { " not null" };
                    println!("{}  {}{null}", f.name(), f.data_type());
                }
                Ok(())
            })
        });
        Self::report(result);
    }

    /// Run `query` over the committed tables, or, with `session`, over this session's builds
    /// of tainted tasks where there are some.
    fn query(&self, query: &str, session: bool) -> Result<()> {
        let batches = self.block(|cancel| {
            self.handle.block_on(async {
                let ctx = self.context(session).await?;
                tokio::select! {
                    b = async {
                        let df = ctx.sql(query).await.map_err(|e| typed(query, &e, &ctx))?;
                        df.collect().await.map_err(query_error)
                    } => b,
                    () = cancel.cancelled() => Err(Error::Cancelled),
                }
            })
        })?;
        print_batches(&batches, OutputFormat::Table)
    }

    async fn context(&self, session: bool) -> Result<datafusion::prelude::SessionContext> {
        let store = &self.current.store;
        let manifests = store.read_manifests().await?;
        let engine = Df::new(store).map_err(ExecError::Engine)?;
        let ctx = committed_context(&engine, store, &manifests)
            .await
            .map_err(|(t, cause)| Error::Query {
                message: format!("cannot read committed table {t}"),
                cause,
            })?;
        if session && !self.tainted.is_empty() {
            let (flow, plan) = plan_all(&self.current).await?;
            for (task, step) in flow.tasks.iter().zip(&plan.steps) {
                if !self.tainted.contains(&task.id.to_string()) {
                    continue;
                }
                for b in step.builds.iter().filter(|b| b.key == step.key.0) {
                    if let Some(schema) = ctx.catalog("datafusion").and_then(|c| c.schema(&b.stage))
                    {
                        let _ = schema.deregister_table(&b.table);
                    }
                    register_build(&ctx, store, &b.stage, &b.table, b)
                        .await
                        .map_err(query_error)?;
                }
            }
        }
        Ok(ctx)
    }

    fn status(&mut self) {
        let result = self.handle.block_on(plan_all(&self.current));
        let (flow, plan) = match result {
            Ok(p) => p,
            Err(e) => return print_error(e),
        };
        let width = flow
            .tasks
            .iter()
            .map(|t| t.id.to_string().len())
            .max()
            .unwrap_or(0);
        for (task, step) in flow.tasks.iter().zip(&plan.steps) {
            let id = task.id.to_string();
            let built = !step.builds.is_empty() && step.builds.iter().all(|b| b.key == step.key.0);
            let state = match &step.freshness {
                _ if self.tainted.contains(&id) && built => {
                    "tainted (built in this session)".into()
                }
                _ if self.tainted.contains(&id) => "tainted (not built yet)".into(),
                crate::flow::plan::Freshness::Fresh => "fresh".to_string(),
                crate::flow::plan::Freshness::Never => "never built".to_string(),
                _ => format!("stale ({})", step.reasons().join(", ")),
            };
            println!("{id:<width$}  {state}");
        }
    }

    fn diff(&mut self, table: &str) {
        let result = self.handle.block_on(self.diff_counts(table));
        match result {
            Ok(text) => println!("{text}"),
            Err(e) => print_error(e),
        }
    }

    async fn diff_counts(&self, table: &str) -> Result<String> {
        let (flow, plan) = plan_all(&self.current).await?;
        let index = find_task(&flow, table)?;
        let step = &plan.steps[index];
        let name = crate::script::TableName::parse(table).ok_or_else(|| {
            Error::usage(format!("`{table}` is not stage.table"), "e.g. prep.orders")
        })?;
        let committed = plan.committed(&name);
        let ours = step
            .builds
            .iter()
            .find(|b| b.table == name.table && b.key == step.key.0);
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
        let store = &self.current.store;
        let ctx = Df::new(store)
            .map_err(ExecError::Engine)?
            .context(None, ["c", "s"], None);
        for (schema, b) in [("c", old), ("s", new)] {
            let url = store.build_url(&b.stage, &b.table, &b.key);
            let opts = datafusion::prelude::ParquetReadOptions::default();
            ctx.register_parquet(
                datafusion::common::TableReference::partial(schema, "t"),
                url,
                opts,
            )
            .await
            .map_err(query_error)?;
        }
        let schema = crate::watch::changes::schema_change(&old.schema, &new.schema);
        let mut text = format!(
            "{table}: committed {} rows, this session {} rows",
            old.rows, new.rows
        );
        if !schema.is_empty() {
            return Ok(format!("{text}; schema: {schema}"));
        }
        let count = |q: &'static str| {
            let ctx = ctx.clone();
            async move {
                let b = ctx.sql(q).await?.collect().await?;
                let v = b.first().map(|b| b.column(0).clone());
                Ok::<_, datafusion::error::DataFusionError>(
                    v.and_then(|c| {
                        c.as_any()
                            .downcast_ref::<datafusion::arrow::array::Int64Array>()
                            .map(|a| a.value(0))
                    })
                    .unwrap_or(0),
                )
            }
        };
        let added = count("SELECT count(*) FROM (SELECT * FROM s.t EXCEPT ALL SELECT * FROM c.t)")
            .await
            .map_err(query_error)?;
        let removed =
            count("SELECT count(*) FROM (SELECT * FROM c.t EXCEPT ALL SELECT * FROM s.t)")
                .await
                .map_err(query_error)?;
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
                    println!("{table} (not materialized):");
                    Self::report(print_batches(&batches, OutputFormat::Table));
                }
            }
            Err(e) => print_error(e),
        }
    }

    fn promote(&mut self, task: &str) {
        let result = self.handle.block_on(session::promote(
            &self.current,
            task,
            self.opts.lock_timeout,
        ));
        match result {
            Ok(id) => println!("promoted {id}: committed, tainted until a normal run rebuilds it"),
            Err(e) => print_error(e),
        }
    }

    fn tables(&mut self) {
        match self.handle.block_on(self.current.store.read_manifests()) {
            Ok(m) => {
                for (stage, manifest) in m {
                    for (table, b) in manifest.tables {
                        println!("{stage}.{table}  {} rows", b.rows);
                    }
                }
            }
            Err(e) => print_error(e.into()),
        }
    }
}

/// A query that does not parse or plan, labelled in its text.
fn typed(
    query: &str,
    e: &datafusion::error::DataFusionError,
    ctx: &datafusion::prelude::SessionContext,
) -> Error {
    let tables = crate::exec::sql_error::registered_tables(ctx);
    crate::exec::sql_error::typed_query(query, e, &tables)
}

fn query_error(cause: datafusion::error::DataFusionError) -> Error {
    Error::Query {
        message: "query failed".into(),
        cause,
    }
}
