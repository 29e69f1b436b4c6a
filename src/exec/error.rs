//! Why a task failed, typed until `report` prints it. Every failure has a brief form for the
//! summary and the run log; when weir can point into the user's file (a query in the script,
//! a row of a data file) it is also a located diagnostic, shown with the run's final error.

use std::sync::Arc;

use datafusion::error::DataFusionError;
use miette::{Diagnostic, NamedSource, SourceSpan};
use thiserror::Error;

use crate::flow::At;
use crate::store::StoreError;

#[derive(Debug, Clone, Error, Diagnostic)]
pub enum TaskError {
    #[error("{location}: {task}: {message}")]
    #[diagnostic(code(weir::task::sql))]
    Sql {
        task: String,
        message: String,
        location: String,
        #[source_code]
        src: NamedSource<String>,
        #[label("{label}")]
        span: SourceSpan,
        label: String,
        #[help]
        help: Option<String>,
    },

    #[error("{location}: {task}: {message}")]
    #[diagnostic(code(weir::task::data))]
    Data {
        task: String,
        message: String,
        location: String,
        #[source_code]
        src: NamedSource<String>,
        #[label("{label}")]
        span: SourceSpan,
        label: String,
        #[help]
        help: Option<String>,
    },

    #[error("{location}: {task}: {message}")]
    #[diagnostic(code(weir::task::function))]
    Function {
        task: String,
        message: String,
        location: String,
        #[source_code]
        src: NamedSource<String>,
        #[label("{label}")]
        span: SourceSpan,
        label: String,
        #[help]
        help: Option<String>,
    },

    #[error(
        "{task}: the files of `{pattern}` do not share a schema: {first} {first_has}, {second} {second_has}"
    )]
    #[diagnostic(
        code(weir::task::schema_mismatch),
        help(
            "every file a glob matches must have the same columns and types; load them as separate tables, or fix the odd one"
        )
    )]
    SchemaMismatch {
        task: String,
        pattern: String,
        first: String,
        first_has: String,
        second: String,
        second_has: String,
        /// The second file, when it is text weir can point into.
        #[source_code]
        src: Option<NamedSource<String>>,
        #[label("{second_has}")]
        span: Option<SourceSpan>,
    },

    /// DataFusion failed while reading, computing or writing: what weir was doing, and why.
    #[error("{doing}: {source}")]
    #[diagnostic(code(weir::task::engine))]
    Engine {
        doing: String,
        #[source]
        source: Arc<DataFusionError>,
    },

    /// The store failed while the task wrote or read its builds.
    #[error("{doing}: {source}")]
    #[diagnostic(code(weir::task::store))]
    Store {
        doing: String,
        #[source]
        source: Arc<StoreError>,
    },

    /// The task's Rhai code raised an error weir cannot place in the script.
    #[error("{message}")]
    #[diagnostic(code(weir::task::script))]
    Script { message: String },

    /// What the task declared, returned or was given does not fit: a function returning a
    /// number, two columns of one name, an input never built.
    #[error("{message}")]
    #[diagnostic(code(weir::task::invalid))]
    Invalid { message: String },

    /// A data check (severity error) found rows that break it: the task fails and its stage
    /// is not committed.
    #[error("{location}: {task}: check `{check}` failed: {}", crate::report::plural(*offending, "offending row"))]
    #[diagnostic(code(weir::task::check), help("the first offending rows:\n{rows}"))]
    Check {
        task: String,
        check: String,
        offending: u64,
        location: String,
        #[source_code]
        src: NamedSource<String>,
        #[label("checked here")]
        span: SourceSpan,
        rows: String,
    },

    /// A table whose columns are not its contract's: missing, extra or of another type.
    #[error("{location}: {table} breaks its contract: {problems}")]
    #[diagnostic(
        code(weir::task::contract),
        help(
            "change the task so its table has exactly the contract's columns and types, or change the contract (the `columns` option or contract(...))"
        )
    )]
    Contract {
        task: String,
        table: String,
        problems: String,
        location: String,
        #[source_code]
        src: NamedSource<String>,
        #[label("the contract")]
        span: SourceSpan,
    },

    /// The task needed more memory than the run's limit allows, in an operator that cannot
    /// spill (or could not spill enough).
    #[error(
        "{task} needs more memory than the limit of {limit}: {operator} could not get {wanted} more"
    )]
    #[diagnostic(code(weir::task::memory), help("{help}"))]
    Memory {
        task: String,
        limit: String,
        operator: String,
        wanted: String,
        help: String,
    },

    /// The task's query stopped: neither it nor weir's process made progress for a whole
    /// window (`stall`). A task runs such a query once more before it fails so.
    #[error(
        "{task}: the query writing {table} stopped, and stopped again when run once more: no progress and no CPU for {window}"
    )]
    #[diagnostic(
        code(weir::task::stalled),
        help(
            "DataFusion 55 can hang under a tight memory limit (apache/datafusion#24883), and a source can stop answering; run again (committed stages are kept, finished tasks are cached) or raise --memory-limit; WEIR_STALL_SECS sets the window (0: never)"
        )
    )]
    Stalled {
        task: String,
        table: String,
        window: String,
    },

    /// weir or DataFusion panicked while running the task; the run goes on without it.
    #[error("internal error in weir or DataFusion: {message}")]
    #[diagnostic(
        code(weir::task::panic),
        help("this is a bug in weir; please report it")
    )]
    Panicked { message: String },
}

impl TaskError {
    /// What the summary and the run log say next to the task's name: the problem without it.
    pub fn brief(&self) -> String {
        match self {
            TaskError::Engine { .. }
            | TaskError::Store { .. }
            | TaskError::Script { .. }
            | TaskError::Invalid { .. }
            | TaskError::Memory { .. }
            | TaskError::Panicked { .. } => self.to_string(),
            TaskError::Contract {
                table,
                problems,
                location,
                ..
            } => format!("{location}: {table} breaks its contract: {problems}"),
            TaskError::Check {
                check,
                offending,
                location,
                ..
            } => format!(
                "{location}: check `{check}` failed: {}",
                crate::report::plural(*offending, "offending row")
            ),
            TaskError::Sql {
                message, location, ..
            }
            | TaskError::Data {
                message, location, ..
            }
            | TaskError::Function {
                message, location, ..
            } => format!("{location}: {message}"),
            TaskError::SchemaMismatch { task, .. } | TaskError::Stalled { task, .. } => {
                let full = self.to_string();
                full.strip_prefix(&format!("{task}: "))
                    .unwrap_or(&full)
                    .to_string()
            }
        }
    }

    /// Whether trying again may help: the store or a source failed, or a query stopped; not
    /// the task's code, its data, a check or the memory limit, which fail the same way again.
    pub fn transient(&self) -> bool {
        match self {
            TaskError::Store { .. } | TaskError::Stalled { .. } => true,
            TaskError::Engine { source, .. } => reading_failed(source.find_root()),
            _ => false,
        }
    }

    /// Whether it is shown in full with the run's error: it points into the user's files, or
    /// says what to change (a memory limit).
    pub fn detailed(&self) -> bool {
        matches!(
            self,
            TaskError::Sql { .. }
                | TaskError::Data { .. }
                | TaskError::Function { .. }
                | TaskError::SchemaMismatch { .. }
                | TaskError::Check { .. }
                | TaskError::Contract { .. }
                | TaskError::Memory { .. }
                | TaskError::Stalled { .. }
        )
    }

    pub fn stalled(task: &str, table: &str, window: std::time::Duration) -> Self {
        TaskError::Stalled {
            task: task.to_string(),
            table: table.to_string(),
            window: crate::report::secs(window),
        }
    }

    pub fn engine(doing: impl Into<String>, source: DataFusionError) -> Self {
        TaskError::Engine {
            doing: doing.into(),
            source: Arc::new(source),
        }
    }

    pub fn store(doing: impl Into<String>, source: StoreError) -> Self {
        TaskError::Store {
            doing: doing.into(),
            source: Arc::new(source),
        }
    }

    pub fn invalid(message: impl Into<String>) -> Self {
        TaskError::Invalid {
            message: message.into(),
        }
    }

    pub fn sql(task: String, message: String, at: At, label: &str, help: Option<String>) -> Self {
        TaskError::Sql {
            task,
            message,
            location: at.location,
            src: at.src,
            span: at.span,
            label: label.to_string(),
            help,
        }
    }

    pub fn data(task: String, message: String, at: At, label: &str, help: Option<String>) -> Self {
        TaskError::Data {
            task,
            message,
            location: at.location,
            src: at.src,
            span: at.span,
            label: label.to_string(),
            help,
        }
    }
}

/// Whether a query failed reading or writing through the object store or the file system,
/// rather than on its plan or its data.
fn reading_failed(e: &DataFusionError) -> bool {
    use datafusion::arrow::error::ArrowError;
    use datafusion::parquet::errors::ParquetError;
    let external = |e: &(dyn std::error::Error + Send + Sync + 'static)| {
        e.is::<object_store::Error>() || e.is::<std::io::Error>()
    };
    match e {
        DataFusionError::ObjectStore(_) | DataFusionError::IoError(_) => true,
        DataFusionError::External(e) => match e.downcast_ref::<DataFusionError>() {
            Some(inner) => reading_failed(inner.find_root()),
            None => external(e.as_ref()),
        },
        DataFusionError::ArrowError(a, _) => match a.as_ref() {
            ArrowError::IoError(..) => true,
            ArrowError::ExternalError(e) => external(e.as_ref()),
            _ => false,
        },
        DataFusionError::ParquetError(p) => match p.as_ref() {
            ParquetError::External(e) => external(e.as_ref()),
            _ => false,
        },
        _ => false,
    }
}
