//! Names: what a stage, table or instance may be called, the `stage.table` address, and "did
//! you mean" for a misspelled one. A leaf: it imports nothing of weir, so every module may use it.

use std::fmt;

/// A table address, `stage.table`.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct TableName {
    pub stage: String,
    pub table: String,
}

impl TableName {
    pub fn new(stage: impl Into<String>, table: impl Into<String>) -> Self {
        Self {
            stage: stage.into(),
            table: table.into(),
        }
    }

    /// Parse `stage.table`; both parts must be plain identifiers.
    pub fn parse(s: &str) -> Option<Self> {
        let (stage, table) = s.split_once('.')?;
        (is_identifier(stage) && is_identifier(table)).then(|| Self::new(stage, table))
    }
}

impl fmt::Display for TableName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}", self.stage, self.table)
    }
}

/// Stage and table names become SQL schemas, tables and folder names: keep them simple.
pub fn is_identifier(s: &str) -> bool {
    let mut chars = s.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

/// The known name closest to a misspelled one, if any is close enough (Jaro-Winkler).
pub fn closest<'a>(
    name: &str,
    known: impl Iterator<Item = &'a str>,
    threshold: f64,
) -> Option<&'a str> {
    known
        .map(|k| (strsim::jaro_winkler(name, k), k))
        .filter(|(score, _)| *score > threshold)
        .max_by(|a, b| a.0.total_cmp(&b.0))
        .map(|(_, k)| k)
}

/// "did you mean `x`?" for a misspelled name, else `otherwise`.
pub fn did_you_mean<'a>(
    name: &str,
    known: impl Iterator<Item = &'a str>,
    otherwise: impl FnOnce() -> String,
) -> String {
    match closest(name, known, 0.8) {
        Some(k) => format!("did you mean `{k}`?"),
        None => otherwise(),
    }
}
