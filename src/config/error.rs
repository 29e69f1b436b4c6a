//! Errors in `weir.toml`: each points at the key it is about, with the file's line and column.

use std::path::PathBuf;

use miette::{Diagnostic, NamedSource, SourceSpan};
use thiserror::Error;

#[derive(Debug, Error, Diagnostic)]
pub enum ConfigError {
    #[error("cannot read config {}", path.display())]
    #[diagnostic(code(weir::config::read))]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },

    #[error("{location}: {message}")]
    #[diagnostic(code(weir::config::invalid), help("{help}"))]
    Invalid {
        message: String,
        location: String,
        help: String,
        #[source_code]
        src: NamedSource<String>,
        #[label("here")]
        span: SourceSpan,
    },

    #[error("no instance `{name}` in {}", path.display())]
    #[diagnostic(code(weir::config::unknown_instance), help("instances: {known}"))]
    UnknownInstance {
        name: String,
        path: PathBuf,
        known: String,
    },
}
