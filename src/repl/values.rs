//! Values at the prompt: an entry that is not a definition is evaluated in the session's
//! scope, so `let t = sql(...)` keeps `t` for the next entries, with the script's functions
//! callable on Tables (`top_customers(table("prep.orders_clean"))`). Tables read the
//! committed tables, or this session's builds of them; a Table an entry ends with is shown.

use std::sync::{Arc, Mutex};

use datafusion::common::TableReference;
use datafusion::prelude::DataFrame;
use rhai::{Dynamic, EvalAltResult};

use super::{Repl, lock};
use crate::report::{OutputFormat, Rows, out, print_batches, print_error};
use crate::script::{REPL_SOURCE, ScriptError, Table, TaskCx};
use crate::session::{Reader, plan_all};
use crate::source::SourceFile;
use crate::store::TableBuild;
use crate::{Error, Result};

/// How many rows of a Table an entry ends with are shown.
const SHOWN_ROWS: usize = 20;

/// The error a command returns once it has printed its own diagnostic: nothing more is said.
pub const REPORTED: &str = "__weir_reported";

/// The committed tables as one DataFusion context for the session's Table values.
pub struct SessionCx {
    reader: Reader,
    cx: Arc<TaskCx>,
    /// Session builds registered so far, for a fresh name each.
    registered: usize,
}

/// Evaluate `entry` as a command in `scope`, with the session's functions.
pub fn eval(repl: &Arc<Mutex<Repl>>, engine: &rhai::Engine, scope: &mut rhai::Scope, entry: &str) {
    let src = SourceFile::new(REPL_SOURCE, entry);
    let ast = match engine.compile_with_scope(scope, entry) {
        Ok(ast) => ast,
        Err(e) => return print_error(ScriptError::syntax(&src, e)),
    };
    let (functions, cx) = {
        let mut r = lock(repl);
        let functions = r.current.script.ast.clone_functions_only();
        (functions, r.session_cx().map(|s| s.cx.clone()))
    };
    let merged = functions.merge(&ast);
    let mut run = || engine.eval_ast_with_scope::<Dynamic>(scope, &merged);
    // A store that cannot be read must not stop `run()` or `:reload`, which may mend it:
    // the entry runs without tables, and `table(...)` says why there are none.
    let result = match cx {
        Ok(cx) => crate::script::within(cx, run),
        Err(_) => run(),
    };
    match result {
        Ok(v) if v.is_unit() => {}
        Ok(v) if v.is::<Table>() => {
            if let Some(t) = v.try_cast::<Table>()
                && let Err(e) = lock(repl).show_table(&t, SHOWN_ROWS, true)
            {
                print_error(e);
            }
        }
        Ok(v) => out(&v.to_string()),
        Err(e) if reported(&e) => {}
        Err(e) => print_error(ScriptError::runtime(&src, *e)),
    }
}

/// Whether the innermost error is a command's own, already printed.
fn reported(e: &EvalAltResult) -> bool {
    match e {
        EvalAltResult::ErrorInFunctionCall(_, _, inner, _) => reported(inner),
        EvalAltResult::ErrorRuntime(v, _) => v.is_string() && v.to_string() == REPORTED,
        _ => false,
    }
}

/// A command's failure as the Rhai error that stops the entry, printed first.
pub fn fail<T>(e: Error) -> std::result::Result<T, Box<EvalAltResult>> {
    print_error(e);
    Err(EvalAltResult::ErrorRuntime(REPORTED.into(), rhai::Position::NONE).into())
}

impl Repl {
    /// The first `rows` rows of `t`, printed (Ctrl-C cancels); with `more`, a line says when
    /// there are more.
    pub(super) fn show_table(&self, t: &Table, rows: usize, more: bool) -> Result<()> {
        self.block(|cancel| {
            self.handle.block_on(async {
                tokio::select! {
                    r = print_head(t, rows, more) => r,
                    () = cancel.cancelled() => Err(Error::Cancelled),
                }
            })
        })
    }
}

async fn print_head(t: &Table, rows: usize, more: bool) -> Result<()> {
    let query_error = |cause| Error::Query {
        message: "computing the table failed".into(),
        cause,
    };
    let schema = Arc::new(t.df.schema().as_arrow().clone());
    let limited = t.df.clone().limit(0, Some(rows + 1)).map_err(query_error)?;
    let mut batches = limited.collect().await.map_err(query_error)?;
    let total: usize = batches.iter().map(|b| b.num_rows()).sum();
    if total > rows {
        // Drop the one row fetched to know there are more.
        let all = datafusion::arrow::compute::concat_batches(&schema, &batches)
            .map_err(|e| query_error(e.into()))?;
        batches = vec![all.slice(0, rows)];
    }
    print_batches(&Rows { schema, batches }, OutputFormat::Table)?;
    if more && total > rows {
        out(&format!("(first {rows} rows: show(t, n) shows n)"));
    }
    Ok(())
}

impl Repl {
    /// The session's context, opened on first use.
    fn session_cx(&mut self) -> Result<&mut SessionCx> {
        if self.cx.is_none() {
            let engine = self.current.engine(self.opts.memory_limit)?;
            let reader = self.handle.block_on(Reader::open_as_of(
                &self.current.store,
                &engine,
                self.as_of.as_deref(),
            ))?;
            // The script's UDFs, as its tasks call them.
            reader.add_udfs(&self.current.script)?;
            let cx = TaskCx::with_materializer(
                reader.context().clone(),
                self.handle.clone(),
                None,
                true,
            );
            self.cx = Some(SessionCx {
                reader,
                cx,
                registered: 0,
            });
        }
        match self.cx.as_mut() {
            Some(cx) => Ok(cx),
            None => Err(Error::usage("the session's tables cannot be read", "")),
        }
    }

    /// `table("prep.x")` at the prompt: a lazy Table over this session's build of it (of a
    /// run with given inputs, or of a tainted task), else the committed table.
    pub(super) fn table(&mut self, name: &str) -> Result<Table> {
        let build = self.session_build(name)?;
        let store = self.current.store.clone();
        let handle = self.handle.clone();
        let session = self.session_cx()?;
        let ctx = session.cx.ctx.clone();
        let reference = match build {
            Some(build) => {
                session.registered += 1;
                let name = TableReference::bare(format!("__weir_session_{}", session.registered));
                handle
                    .block_on(crate::engine::register_build(
                        &ctx,
                        &store,
                        name.clone(),
                        &build,
                    ))
                    .map_err(|cause| Error::Query {
                        message: format!("cannot read {}.{}", build.stage, build.table),
                        cause,
                    })?;
                name
            }
            None => {
                let t = session.reader.committed(name)?;
                TableReference::partial(t.stage.as_str(), t.table.as_str())
            }
        };
        let df = handle
            .block_on(ctx.table(reference))
            .map_err(|cause| Error::Query {
                message: format!("cannot read {name}"),
                cause,
            })?;
        Ok(Table::new(df, session.cx.clone()))
    }

    /// `sql("SELECT ...")`: a lazy Table of the query over the committed tables.
    pub(super) fn sql_table(&mut self, query: &str) -> Result<Table> {
        let handle = self.handle.clone();
        let session = self.session_cx()?;
        let df: DataFrame = handle.block_on(session.reader.plan(query))?;
        Ok(Table::new(df, session.cx.clone()))
    }

    /// This session's build of table `name`, if it has one.
    fn session_build(&self, name: &str) -> Result<Option<TableBuild>> {
        let wanted = name.to_ascii_lowercase();
        let given = self
            .given
            .values()
            .flatten()
            .find(|b| format!("{}.{}", b.stage, b.table).to_ascii_lowercase() == wanted);
        if let Some(b) = given {
            return Ok(Some(b.clone()));
        }
        if self.tainted.is_empty() {
            return Ok(None);
        }
        let planned = self.handle.block_on(plan_all(&self.current, None))?;
        let Ok((index, output)) = planned.find(name) else {
            return Ok(None);
        };
        if !self
            .tainted
            .contains(&planned.flow.tasks[index].id.to_string())
        {
            return Ok(None);
        }
        let step = &planned.plan.steps[index];
        let output = output.unwrap_or_else(|| planned.flow.tasks[index].decl.outputs[0].clone());
        Ok(step
            .builds
            .iter()
            .find(|b| b.table == output && b.key == step.key)
            .cloned())
    }
}
