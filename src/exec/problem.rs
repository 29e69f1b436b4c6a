//! Why a task failed. Every failure has a message for the log and the summary; when weir can
//! point into the user's file (a query in the script, a row of a data file) it also has a
//! diagnostic, shown with the run's final error.

use miette::{Diagnostic, NamedSource, SourceSpan};
use thiserror::Error;

use crate::flow::At;

pub struct TaskFailure {
    pub message: String,
    pub problem: Option<TaskProblem>,
}

impl From<String> for TaskFailure {
    fn from(message: String) -> Self {
        Self {
            message,
            problem: None,
        }
    }
}

impl From<TaskProblem> for TaskFailure {
    fn from(problem: TaskProblem) -> Self {
        Self {
            message: problem.brief(),
            problem: Some(problem),
        }
    }
}

#[derive(Debug, Clone, Error, Diagnostic)]
pub enum TaskProblem {
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
}

impl TaskProblem {
    /// What the summary and the run log say next to the task's name: the problem without it.
    pub fn brief(&self) -> String {
        match self {
            TaskProblem::Sql {
                message, location, ..
            }
            | TaskProblem::Data {
                message, location, ..
            }
            | TaskProblem::Function {
                message, location, ..
            } => format!("{location}: {message}"),
            TaskProblem::SchemaMismatch { task, .. } => {
                let full = self.to_string();
                full.strip_prefix(&format!("{task}: "))
                    .unwrap_or(&full)
                    .to_string()
            }
        }
    }

    pub fn sql(task: String, message: String, at: At, label: &str, help: Option<String>) -> Self {
        TaskProblem::Sql {
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
        TaskProblem::Data {
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
