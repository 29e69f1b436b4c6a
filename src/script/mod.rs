//! The Rhai side: the engine (limits, sandbox, modules), the API it registers, and evaluation
//! of a pipeline script. Evaluating a script only records declarations; it runs no task.
//! Task functions are kept as `FnPtr` with the script's AST and called later by `exec`.

pub mod api;
pub mod checks;
pub mod contract;
mod decl;
mod engine;
mod error;
mod fn_source;
mod limits;
mod params;
mod signatures;
pub mod udf;
pub mod unit_test;

pub use api::table::{Materializer, Table, TaskCx, TaskScope, within};
pub use api::task_logs::{LogTarget, TaskLogs, logging_to};
pub use decl::{
    CsvOptions, FileFormat, LoadSpec, SampleMode, SampleSpec, TaskDecl, TaskKind, TaskOpts,
};
pub use error::{ScriptError, failed_outside_script, innermost_position, runtime_message};
pub use fn_source::FnSources;
pub use limits::{DEFAULT_TASK_TIMEOUT, DEFAULT_TIMEOUT, task_code};
pub use params::{ParamValue, Params, Read as ParamsRead};

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use crate::source::SourceFile;

/// A script after evaluation: what it declared, plus what is needed to call its functions.
pub struct Script {
    pub source: SourceFile,
    /// Imported modules that declared tasks; `Origin::file` n is `modules[n - 1]`.
    pub modules: Vec<SourceFile>,
    /// Every project module the script imported (declaring tasks or not), as files.
    pub imports: Vec<PathBuf>,
    /// The folder relative paths in the script are resolved against.
    pub dir: PathBuf,
    pub engine: Arc<rhai::Engine>,
    pub ast: Arc<rhai::AST>,
    pub tasks: Vec<TaskDecl>,
    /// Data checks, of any declared table.
    pub checks: Vec<checks::CheckDecl>,
    /// Contracts and column descriptions of declared tables.
    pub contracts: Vec<contract::ContractDecl>,
    /// Unit tests of tasks, for `weir test`.
    pub tests: Vec<unit_test::TestDecl>,
    /// Scalar functions for the flow's SQL, in declaration order.
    pub udfs: Vec<udf::UdfDecl>,
    pub params: Params,
    /// The instance's attrs, canonical (`name -> JSON`), for the keys of tasks that read them
    /// (which mask secrets in them).
    pub attrs: std::collections::BTreeMap<String, String>,
    pub functions: FnSources,
}

impl Script {
    /// The file a declaration at `origin` is in.
    pub fn source_of(&self, origin: crate::source::Origin) -> &SourceFile {
        match origin.file {
            0 => &self.source,
            n => self.modules.get(n - 1).unwrap_or(&self.source),
        }
    }
}

/// What a script sees of the world besides its own text: `--param`s, and the instance's name
/// and attrs from weir.toml.
#[derive(Debug, Clone, Default)]
pub struct Context {
    pub params: Params,
    pub instance: String,
    pub attrs: toml::Table,
    /// How long evaluating the script may take: `None` for `DEFAULT_TIMEOUT`, zero for no limit.
    pub timeout: Option<std::time::Duration>,
    /// How long one call into task code may take: `None` for `DEFAULT_TASK_TIMEOUT`, zero for
    /// no limit.
    pub task_timeout: Option<std::time::Duration>,
}

/// The source name of code typed into the REPL.
pub const REPL_SOURCE: &str = "<repl>";

/// A variable set once the script's own statements ran and the REPL's begin: an error's
/// position is then known to be in the one text or the other.
const IN_REPL_CODE: &str = "__weir_in_repl_code";

/// Read, compile and evaluate a pipeline script, recording the tasks it declares.
pub fn evaluate(path: &Path, context: Context) -> Result<Script, ScriptError> {
    evaluate_with(path, context, &[])
}

/// An engine with the script's API for code typed at the REPL prompt (Tables, `table(rows)`,
/// `param`, `log`), that declares nothing: declarations go through the session's code.
pub fn session_engine(dir: &Path, params: Params) -> rhai::Engine {
    let recorder = Arc::new(Mutex::new(api::recorder::Recorder::new(dir.to_path_buf())));
    api::recorder::Recorder::finish(&recorder);
    let imports = engine::Imports::default();
    engine::build(
        dir,
        recorder,
        params,
        limits::Evaluation::default(),
        imports,
    )
}

/// `evaluate`, with `entries` of code typed into the REPL run after the script: their
/// functions replace the script's of the same name and arity, their declarations the
/// script's of the same table. Each entry is a unit of its own: a missing `;` at its end
/// does not run into the next, and an error in one is shown in that entry's text.
pub fn evaluate_with(
    path: &Path,
    context: Context,
    entries: &[String],
) -> Result<Script, ScriptError> {
    let typed = TypedCode::new(entries);
    let extra = typed.text.as_str();
    let params = context.params;
    let text = std::fs::read_to_string(path).map_err(|source| ScriptError::Read {
        path: path.to_path_buf(),
        source,
    })?;
    let path = std::path::absolute(path).unwrap_or_else(|_| path.to_path_buf());
    let dir = path.parent().map(Path::to_path_buf).unwrap_or_default();
    let source = SourceFile::new(&path, text);

    let recorder = Arc::new(Mutex::new(api::recorder::Recorder::new(dir.clone())));
    let evaluation = limits::Evaluation::default();
    let imports = engine::Imports::default();
    let engine = engine::build(
        &dir,
        recorder.clone(),
        params.clone(),
        evaluation.clone(),
        imports.clone(),
    );
    let repl = SourceFile::new(REPL_SOURCE, extra);
    let mut scope = rhai::Scope::new();
    let (ast, functions) = compile(&engine, &source, &typed, &mut scope)?;
    scope.push_constant("instance", context.instance);
    scope.push_constant(
        "attrs",
        params::toml_to_dynamic(toml::Value::Table(context.attrs.clone())),
    );
    let task_limit = context.task_timeout.unwrap_or(DEFAULT_TASK_TIMEOUT);
    evaluation.limit_task_code((!task_limit.is_zero()).then_some(task_limit));
    let limit = context.timeout.unwrap_or(DEFAULT_TIMEOUT);
    evaluation.arm((!limit.is_zero()).then_some(limit));
    let evaluated = engine.run_ast_with_scope(&mut scope, &ast);
    evaluation.disarm();
    evaluated.map_err(|e| match scope.get_value::<bool>(IN_REPL_CODE) {
        Some(true) => typed.runtime_error(*e),
        _ => ScriptError::runtime(&source, *e),
    })?;

    let declared = api::recorder::Recorder::finish(&recorder);
    let modules = module_files(declared.modules, &dir, &repl);
    let imports: Vec<PathBuf> = imports
        .lock()
        .map(|files| files.iter().cloned().collect())
        .unwrap_or_default();
    check_params(&params, &source.text, extra, &imports)?;
    Ok(Script {
        source,
        modules,
        imports,
        dir,
        engine: Arc::new(engine),
        ast: Arc::new(ast),
        tasks: declared.tasks,
        checks: declared.checks,
        contracts: declared.contracts,
        tests: declared.tests,
        udfs: declared.udfs,
        params,
        attrs: context
            .attrs
            .iter()
            .map(|(k, v)| (k.clone(), serde_json::to_string(v).unwrap_or_default()))
            .collect(),
        functions,
    })
}

/// The script compiled with the code typed into the REPL after it (each entry checked on its
/// own first, so an error points into the entry), and the source of every script function.
fn compile(
    engine: &rhai::Engine,
    source: &SourceFile,
    typed: &TypedCode<'_>,
    scope: &mut rhai::Scope,
) -> Result<(rhai::AST, FnSources), ScriptError> {
    let ast = engine
        .compile(&*source.text)
        .map_err(|e| ScriptError::syntax(source, e))?;
    let mut functions = FnSources::new(&ast, &source.text);
    let extra = typed.text.as_str();
    if extra.is_empty() {
        return Ok((ast, functions));
    }
    let repl = SourceFile::new(REPL_SOURCE, extra);
    for entry in typed.entries {
        engine
            .compile(entry)
            .map_err(|e| ScriptError::syntax(&SourceFile::new(REPL_SOURCE, entry.as_str()), e))?;
    }
    let mut compiled = engine
        .compile(extra)
        .map_err(|e| ScriptError::syntax(&repl, e))?;
    compiled.set_source(REPL_SOURCE);
    functions.overlay(&compiled, extra);
    scope.push(IN_REPL_CODE, false);
    let mark = engine
        .compile(format!("{IN_REPL_CODE} = true; __weir_repl_code();"))
        .map_err(|e| ScriptError::syntax(&repl, e))?;
    Ok((ast.merge(&mark).merge(&compiled), functions))
}

/// The files of the modules that declared tasks, by the names Rhai gives them.
fn module_files(names: Vec<String>, dir: &Path, repl: &SourceFile) -> Vec<SourceFile> {
    names
        .into_iter()
        .map(|name| {
            if name == REPL_SOURCE {
                return repl.clone();
            }
            // Rhai names a module by its import path; project modules live next to the script.
            let file = dir.join(format!("{name}.rhai"));
            let text = std::fs::read_to_string(&file).unwrap_or_default();
            SourceFile::new(file, text)
        })
        .collect()
}

/// Every `--param` is one the script or its modules read, with a value of its default's type.
fn check_params(
    params: &Params,
    script: &str,
    typed: &str,
    imports: &[PathBuf],
) -> Result<(), ScriptError> {
    let mut read = ParamsRead::scan(script);
    read.add(typed);
    for file in imports {
        read.add(&std::fs::read_to_string(file).unwrap_or_default());
    }
    params
        .check(&read)
        .map_err(|(message, help)| ScriptError::Param { message, help })
}

/// The REPL's entries as one text, each followed by a `;` on a line of its own, and the line
/// each starts on, to show an error in the entry it happened in.
struct TypedCode<'a> {
    entries: &'a [String],
    text: String,
    starts: Vec<usize>,
}

impl<'a> TypedCode<'a> {
    fn new(entries: &'a [String]) -> Self {
        let mut text = String::new();
        let mut starts = Vec::with_capacity(entries.len());
        let mut line = 1;
        for entry in entries {
            starts.push(line);
            text.push_str(entry);
            text.push_str("\n;\n");
            // The entry's lines, then the `;` line.
            line += entry.matches('\n').count() + 2;
        }
        Self {
            entries,
            text,
            starts,
        }
    }

    /// `e`, raised in the typed code, labelled in the entry it happened in.
    fn runtime_error(&self, e: rhai::EvalAltResult) -> ScriptError {
        let pos = e.position();
        let line = pos.line().unwrap_or(1);
        let Some(i) = self.starts.iter().rposition(|s| *s <= line) else {
            return ScriptError::runtime(&SourceFile::new(REPL_SOURCE, self.text.as_str()), e);
        };
        let entry = SourceFile::new(REPL_SOURCE, self.entries[i].as_str());
        let line = u16::try_from(line - self.starts[i] + 1).unwrap_or(u16::MAX);
        let column = u16::try_from(pos.position().unwrap_or(1)).unwrap_or(u16::MAX);
        let at = rhai::Position::new(line, column);
        ScriptError::runtime_at(&entry, e, at)
    }
}
