//! The recorder of declarations, and the values the API hands back for them: a leaf of `api`
//! that `declare`, `checks`, `udf` and `sample` each record into.

use std::path::PathBuf;
use std::sync::{Arc, Mutex, MutexGuard};

use rhai::{EvalAltResult, NativeCallContext, Position};

use crate::names::TableName;
use crate::script::checks::CheckDecl;
use crate::script::contract::ContractDecl;
use crate::script::decl::TaskDecl;
use crate::source::Origin;

pub(super) type RhaiResult<T> = Result<T, Box<EvalAltResult>>;

/// Collects declarations while the script's top level runs; closed afterwards, so a task
/// function cannot declare tasks while it executes.
pub struct Recorder {
    /// The project folder: `sql_file` paths are relative to it and may not leave it.
    pub(super) dir: PathBuf,
    pub(super) tasks: Vec<TaskDecl>,
    /// `expect(...)` and the `expect` / `primary_key` options.
    pub(super) checks: Vec<CheckDecl>,
    /// `contract(...)` and the `columns` option.
    pub(super) contracts: Vec<ContractDecl>,
    /// `test(...)`: unit tests of tasks.
    pub(super) tests: Vec<crate::script::unit_test::TestDecl>,
    /// `udf(...)`: scalar functions for the flow's SQL.
    pub(super) udfs: Vec<crate::script::udf::UdfDecl>,
    /// Modules whose functions declared tasks, as Rhai names them (their paths).
    pub(super) modules: Vec<String>,
    pub(super) closed: bool,
    /// The script's own statements have run; what runs now is code typed into the REPL.
    /// (The REPL's code is merged into the script's AST, so Rhai names one source for both.)
    pub(super) in_repl: bool,
}

/// Everything a script declared, and the modules their `Origin::file` numbers refer to (from 1).
pub struct Declared {
    pub tasks: Vec<TaskDecl>,
    pub checks: Vec<CheckDecl>,
    pub contracts: Vec<ContractDecl>,
    pub tests: Vec<crate::script::unit_test::TestDecl>,
    pub udfs: Vec<crate::script::udf::UdfDecl>,
    pub modules: Vec<String>,
}

impl Recorder {
    pub fn new(dir: PathBuf) -> Self {
        Self {
            dir,
            tasks: Vec::new(),
            checks: Vec::new(),
            contracts: Vec::new(),
            tests: Vec::new(),
            udfs: Vec::new(),
            modules: Vec::new(),
            closed: false,
            in_repl: false,
        }
    }

    /// What was declared; nothing more can be.
    pub fn finish(this: &Arc<Mutex<Recorder>>) -> Declared {
        let mut r = lock(this);
        r.closed = true;
        Declared {
            tasks: std::mem::take(&mut r.tasks),
            checks: std::mem::take(&mut r.checks),
            contracts: std::mem::take(&mut r.contracts),
            tests: std::mem::take(&mut r.tests),
            udfs: std::mem::take(&mut r.udfs),
            modules: std::mem::take(&mut r.modules),
        }
    }

    /// Whether the script's top level has finished: declarations are refused from then on.
    pub(super) fn is_closed(&self) -> bool {
        self.closed
    }

    /// Whether the call is in code typed into the REPL.
    pub(super) fn in_repl_code(&self, ctx: &NativeCallContext) -> bool {
        self.in_repl && ctx.call_source() == Some(crate::script::REPL_SOURCE)
    }

    /// The origin of a call: its position, and which module it is in.
    pub(super) fn origin(&mut self, ctx: &NativeCallContext) -> Origin {
        let mut origin = Origin::from_rhai(ctx.call_position());
        let script = ctx.call_source() == Some(crate::script::REPL_SOURCE) && !self.in_repl;
        if let Some(module) = ctx.call_source().filter(|_| !script) {
            origin.file = match self.modules.iter().position(|m| m == module) {
                Some(i) => i + 1,
                None => {
                    self.modules.push(module.to_string());
                    self.modules.len()
                }
            };
        }
        origin
    }
}

/// A panic in another declaration cannot leave the list half-written, so a poisoned lock is
/// still safe to read.
pub(super) fn lock(recorder: &Arc<Mutex<Recorder>>) -> MutexGuard<'_, Recorder> {
    recorder.lock().unwrap_or_else(|p| p.into_inner())
}

/// A stage handle in the script.
#[derive(Debug, Clone)]
pub struct Stage {
    pub name: String,
    /// `stage(name, #{ tags })`: tags every task declared on it has.
    pub tags: Vec<String>,
}

/// A reference to a declared table, used as a task input.
#[derive(Debug, Clone)]
pub struct TableRef(pub TableName);

pub(super) fn rt(msg: impl Into<String>, pos: Position) -> Box<EvalAltResult> {
    EvalAltResult::ErrorRuntime(msg.into().into(), pos).into()
}
