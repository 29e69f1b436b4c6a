//! Errors raised while reading and evaluating a script.

use std::path::PathBuf;

use miette::{Diagnostic, NamedSource, SourceSpan};
use thiserror::Error;

use crate::source::SourceFile;

#[derive(Debug, Error, Diagnostic)]
pub enum ScriptError {
    #[error("cannot read script {}", path.display())]
    #[diagnostic(
        code(weir::script::read),
        help("check the path; weir runs `pipeline.rhai` files")
    )]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },

    #[error("syntax error at {location}: {message}")]
    #[diagnostic(code(weir::script::syntax))]
    Syntax {
        message: String,
        location: String,
        #[source_code]
        src: NamedSource<String>,
        #[label("here")]
        span: SourceSpan,
    },

    #[error("script error at {location}: {message}")]
    #[diagnostic(code(weir::script::runtime))]
    Runtime {
        message: String,
        location: String,
        #[source_code]
        src: NamedSource<String>,
        #[label("here")]
        span: SourceSpan,
    },

    /// A `--param` the script does not read, or whose value is not of its default's type.
    #[error("{message}")]
    #[diagnostic(code(weir::script::param), help("{help}"))]
    Param { message: String, help: String },
}

impl ScriptError {
    pub fn syntax(source: &SourceFile, e: rhai::ParseError) -> Self {
        let (location, span) = locate(source, e.position());
        ScriptError::Syntax {
            message: e.err_type().to_string(),
            location,
            src: source.named(),
            span,
        }
    }

    pub fn runtime(source: &SourceFile, e: rhai::EvalAltResult) -> Self {
        let pos = e.position();
        Self::runtime_at(source, e, pos)
    }

    /// A runtime error labelled at `pos` of `source` rather than where Rhai says.
    pub fn runtime_at(source: &SourceFile, e: rhai::EvalAltResult, pos: rhai::Position) -> Self {
        let (location, span) = locate(source, pos);
        ScriptError::Runtime {
            message: runtime_message(&e),
            location,
            src: source.named(),
            span,
        }
    }
}

/// The innermost message of a Rhai error, without Rhai's own position suffix.
pub fn runtime_message(e: &rhai::EvalAltResult) -> String {
    use rhai::EvalAltResult as E;
    match e {
        E::ErrorInFunctionCall(name, _, inner, _) if !name.starts_with("anon$") => {
            format!("in function `{name}`: {}", runtime_message(inner))
        }
        E::ErrorInFunctionCall(_, _, inner, _) | E::ErrorInModule(_, inner, _) => {
            runtime_message(inner)
        }
        E::ErrorRuntime(value, _) | E::ErrorTerminated(value, _) => value.to_string(),
        E::ErrorFunctionNotFound(signature, _)
            if let Some(text) = super::signatures::explain(signature) =>
        {
            text
        }
        other => {
            // Rhai appends " (line L, position P)"; the diagnostic shows the place itself.
            let text = other.to_string();
            match text.rfind(" (line ") {
                Some(i) if text.ends_with(')') => text[..i].to_string(),
                _ => text,
            }
        }
    }
}

/// Whether the innermost failing code is outside the script (a module, or REPL input): its
/// position then refers to another text.
pub fn failed_outside_script(e: &rhai::EvalAltResult) -> bool {
    use rhai::EvalAltResult as E;
    match e {
        E::ErrorInFunctionCall(_, source, inner, _) => {
            failed_outside_script(inner) || (!source.is_empty() && innermost_is_here(inner))
        }
        E::ErrorInModule(..) => true,
        _ => false,
    }
}

/// True when `e` has no nested call of its own: the position is in the enclosing function.
fn innermost_is_here(e: &rhai::EvalAltResult) -> bool {
    !matches!(
        e,
        rhai::EvalAltResult::ErrorInFunctionCall(..) | rhai::EvalAltResult::ErrorInModule(..)
    )
}

/// The innermost position of a Rhai error: where the user's code actually failed.
pub fn innermost_position(e: &rhai::EvalAltResult) -> rhai::Position {
    use rhai::EvalAltResult as E;
    match e {
        E::ErrorInFunctionCall(_, _, inner, pos) | E::ErrorInModule(_, inner, pos) => {
            let p = innermost_position(inner);
            if p.is_none() { *pos } else { p }
        }
        other => other.position(),
    }
}

fn locate(source: &SourceFile, pos: rhai::Position) -> (String, SourceSpan) {
    let line = pos.line().unwrap_or(1);
    let column = pos.position().unwrap_or(1);
    // Rhai gives no length: label the whole token there (a name, a string, an operator).
    let span = crate::source::token_span(&source.text, source.offset(line, column));
    (format!("{}:{line}:{column}", source.name()), span)
}
