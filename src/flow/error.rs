//! Problems in the declared flow, each pointing at the declaration in the script.

use miette::{Diagnostic, NamedSource, SourceSpan};
use thiserror::Error;

use crate::source::{Origin, SourceFile};

/// Where a problem is in the script: the text shown in the message and the labelled span.
#[derive(Debug)]
pub struct At {
    pub location: String,
    pub src: NamedSource<String>,
    pub span: SourceSpan,
}

impl At {
    pub fn new(source: &SourceFile, origin: Origin) -> Self {
        let offset = source.offset(origin.line.max(1), origin.column.max(1));
        let len = source.text[offset..].find(['(', '\n']).unwrap_or(0);
        Self {
            location: origin.display(&source.path),
            src: source.named(),
            span: SourceSpan::new(offset.into(), len),
        }
    }
}

#[derive(Debug, Error, Diagnostic)]
pub enum FlowError {
    #[error("{location}: unknown table `{table}` read by {task}")]
    #[diagnostic(code(weir::flow::unknown_table), help("{help}"))]
    UnknownTable {
        table: String,
        task: String,
        help: String,
        location: String,
        #[source_code]
        src: NamedSource<String>,
        #[label("read here")]
        span: SourceSpan,
    },

    #[error("{location}: {table} has two contracts")]
    #[diagnostic(
        code(weir::flow::two_contracts),
        help("give a table its columns once: the `columns` option or contract(...)")
    )]
    TwoContracts {
        table: String,
        location: String,
        #[source_code]
        src: NamedSource<String>,
        #[label("the second")]
        span: SourceSpan,
    },

    #[error("{location}: the flow has a cycle: {path}")]
    #[diagnostic(
        code(weir::flow::cycle),
        help("a task cannot read, directly or through others, a table it produces")
    )]
    Cycle {
        path: String,
        location: String,
        #[source_code]
        src: NamedSource<String>,
        /// The first task on the cycle, and what it reads.
        #[label("{reads}")]
        span: SourceSpan,
        reads: String,
        /// The other tasks on the cycle declared in the same file.
        #[label(collection)]
        others: Vec<miette::LabeledSpan>,
    },

    #[error("{location}: table `{table}` is declared twice (first at {first})")]
    #[diagnostic(
        code(weir::flow::duplicate),
        help("give each table of a stage its own name")
    )]
    Duplicate {
        table: String,
        first: String,
        location: String,
        #[source_code]
        src: NamedSource<String>,
        #[label("declared again here")]
        span: SourceSpan,
    },

    #[error("{location}: SQL of {task} does not parse: {message}")]
    #[diagnostic(code(weir::flow::sql))]
    Sql {
        task: String,
        message: String,
        location: String,
        #[source_code]
        src: NamedSource<String>,
        #[label("{label}")]
        span: SourceSpan,
        label: &'static str,
        #[help]
        help: &'static str,
    },

    /// A statement of a multi-statement task (`statements: true`) that is not allowed there.
    #[error("{location}: SQL of {task}: {message}")]
    #[diagnostic(code(weir::flow::statement))]
    Statement {
        task: String,
        message: String,
        location: String,
        #[source_code]
        src: NamedSource<String>,
        #[label("{label}")]
        span: SourceSpan,
        label: &'static str,
        #[help]
        help: &'static str,
    },

    #[error("{location}: SQL of {task} is a {statement} statement, not a query")]
    #[diagnostic(
        code(weir::flow::not_a_query),
        help(
            "a task's SQL is one query (SELECT or WITH ... SELECT): COPY, CREATE, INSERT, SET and other statements are not allowed"
        )
    )]
    NotAQuery {
        task: String,
        /// Its first keyword: COPY, CREATE, SET, ...
        statement: String,
        location: String,
        #[source_code]
        src: NamedSource<String>,
        #[label("not a query")]
        span: SourceSpan,
    },

    #[error("{location}: {task}: {message}")]
    #[diagnostic(code(weir::flow::invalid))]
    Invalid {
        task: String,
        message: String,
        location: String,
        #[source_code]
        src: NamedSource<String>,
        #[label("declared here")]
        span: SourceSpan,
    },

    #[error("{count} problems in the flow")]
    #[diagnostic(code(weir::flow::many))]
    Many {
        count: usize,
        #[related]
        problems: Vec<FlowError>,
    },

    /// A load whose location lists no file.
    #[error("{location}: {task} loads `{path}`, and {why}")]
    #[diagnostic(code(weir::flow::missing_source), help("{help}"))]
    MissingSource {
        task: String,
        path: String,
        why: String,
        help: String,
        location: String,
        #[source_code]
        src: NamedSource<String>,
        #[label("loaded here")]
        span: SourceSpan,
    },

    #[error("no task matches `{name}`")]
    #[diagnostic(code(weir::flow::select), help("{help}"))]
    Select { name: String, help: String },
}

impl FlowError {
    /// One error, or all of them together.
    pub fn collect(mut problems: Vec<FlowError>) -> Result<(), FlowError> {
        match problems.len() {
            0 => Ok(()),
            1 => Err(problems.remove(0)),
            count => Err(FlowError::Many { count, problems }),
        }
    }
}

/// "did you mean" for a misspelled table, from the names that exist.
pub fn suggest<'a>(name: &str, known: impl Iterator<Item = &'a str>) -> String {
    crate::names::did_you_mean(name, known, || {
        "declare it with stage(...).load/sql/materialize, or check the stage name".to_string()
    })
}
