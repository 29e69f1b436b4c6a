//! The top-level error: one variant per module, each carrying that module's diagnostic.
//! The exit code of every error is decided here and nowhere else.

use miette::Diagnostic;
use thiserror::Error;

pub type Result<T, E = Error> = std::result::Result<T, E>;

#[derive(Debug, Error, Diagnostic)]
pub enum Error {
    #[error(transparent)]
    #[diagnostic(transparent)]
    Script(#[from] crate::script::ScriptError),

    #[error(transparent)]
    #[diagnostic(transparent)]
    Config(#[from] crate::config::ConfigError),

    #[error(transparent)]
    #[diagnostic(transparent)]
    Flow(#[from] crate::flow::FlowError),

    #[error(transparent)]
    #[diagnostic(transparent)]
    Store(#[from] crate::store::StoreError),

    #[error(transparent)]
    #[diagnostic(transparent)]
    Exec(#[from] crate::exec::ExecError),

    #[error("{message}")]
    #[diagnostic(code(weir::usage), help("{help}"))]
    Usage { message: String, help: String },

    #[error("{failed} of {total} tasks failed")]
    #[diagnostic(code(weir::run::failed))]
    RunFailed {
        failed: usize,
        total: usize,
        /// The failures shown in full: they point into the user's files or say what to change.
        #[related]
        problems: Vec<crate::exec::TaskError>,
    },

    #[error("{errors} of {total} tasks do not check")]
    #[diagnostic(code(weir::check::failed))]
    CheckFailed {
        errors: usize,
        total: usize,
        #[related]
        problems: Vec<crate::exec::TaskError>,
    },

    #[error("sources changed since their last build, and the cache mode is assert-no-fresh-input:\n  {}", sources.join("\n  "))]
    #[diagnostic(
        code(weir::run::fresh_input),
        help(
            "nothing was built; run with --cache-mode normal (or force-fresh-input) to take the new data in"
        )
    )]
    FreshInput { sources: Vec<String> },

    #[error("{message}: {}", crate::df_message::root_message(cause))]
    #[diagnostic(code(weir::query))]
    Query {
        message: String,
        cause: datafusion::error::DataFusionError,
    },

    /// A query typed on the command line that does not parse or plan, labelled in its text.
    #[error(transparent)]
    #[diagnostic(transparent)]
    QueryAt(#[from] crate::flow::QueryError),

    #[error("{task} failed: {}", error.brief())]
    #[diagnostic(code(weir::task::failed))]
    TaskFailed {
        task: String,
        #[diagnostic_source]
        error: crate::exec::TaskError,
    },

    /// A promote of a build that fails an error-severity data check.
    #[error("{task} is not promoted: {}", error.brief())]
    #[diagnostic(
        code(weir::promote::check_failed),
        help(
            "fix the task, or commit it anyway with promote(\"{task}\", #{{ force: true }}) (the run history records it)"
        )
    )]
    PromoteRefused {
        task: String,
        #[diagnostic_source]
        error: crate::exec::TaskError,
    },

    #[error("{unfinished} of {total} tasks are not fresh")]
    #[diagnostic(code(weir::status::not_fresh), help("`weir run` builds them"))]
    NotFresh { unfinished: usize, total: usize },

    #[error("{failed} of {total} tests failed")]
    #[diagnostic(code(weir::test::failed))]
    TestsFailed { failed: usize, total: usize },

    #[error("the run was cancelled")]
    #[diagnostic(code(weir::run::cancelled))]
    Cancelled,

    /// SIGINT (Ctrl-C) or SIGTERM stopped a command; its exit code is the shell's, 128 + the
    /// signal's number.
    #[error("interrupted by {}: the run was cancelled", signal_name(*signal))]
    #[diagnostic(
        code(weir::interrupted),
        help(
            "stages committed before the signal stay committed, nothing after it is; the next run builds what was cancelled"
        )
    )]
    Interrupted { signal: i32 },

    #[error("cannot write to the terminal")]
    Io(#[from] std::io::Error),
}

impl Error {
    pub fn usage(message: impl Into<String>, help: impl Into<String>) -> Self {
        Self::Usage {
            message: message.into(),
            help: help.into(),
        }
    }

    /// 0 ok, 1 a task or data failure, 2 a usage or script error, 128 + N stopped by signal N
    /// (130 Ctrl-C, 143 SIGTERM).
    pub fn exit_code(&self) -> u8 {
        match self {
            Error::Script(_) | Error::Config(_) | Error::Flow(_) | Error::Usage { .. } => 2,
            // A store URL weir cannot use is a mistake on the command line or in weir.toml.
            Error::Store(
                crate::store::StoreError::UnsupportedScheme { .. }
                | crate::store::StoreError::BadUrl { .. }
                | crate::store::StoreError::Unusable { .. }
                | crate::store::StoreError::UnknownOption { .. }
                | crate::store::StoreError::Config { .. }
                | crate::store::StoreError::NoConditionalPut { .. },
            ) => 2,
            Error::Query { cause, .. } if crate::df_message::is_plan_error(cause) => 2,
            Error::QueryAt(_) | Error::CheckFailed { .. } => 2,
            Error::Interrupted { signal } => u8::try_from(128 + signal).unwrap_or(1),
            _ => 1,
        }
    }
}

fn signal_name(signal: i32) -> &'static str {
    match signal {
        libc::SIGINT => "SIGINT (Ctrl-C)",
        libc::SIGTERM => "SIGTERM",
        _ => "a signal",
    }
}
