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

impl TableName {
    /// The name as SQL sees it unquoted: names are kept as declared, but SQL folds unquoted
    /// identifiers to lower case, so two names that differ only in case cannot both exist.
    pub fn folded(&self) -> TableName {
        TableName::new(
            self.stage.to_ascii_lowercase(),
            self.table.to_ascii_lowercase(),
        )
    }
}

impl fmt::Display for TableName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}", self.stage, self.table)
    }
}

/// The schema readers show the run history under (`weir.runs`, ...); no stage may take it.
pub const HISTORY_SCHEMA: &str = "weir";

/// Stage and table names become SQL schemas, tables and folder names: keep them simple.
pub fn is_identifier(s: &str) -> bool {
    let mut chars = s.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

/// The longest stage, table or instance name, as PostgreSQL's identifiers. Names become
/// store paths, `<root>/<instance>/tables/<stage>/<table>/<key>/<build>/part-N.parquet`: at 63
/// each component stays far below the 255 bytes file systems allow, and the whole path below
/// the 1,024 bytes of an S3 key.
pub const MAX_NAME_LEN: usize = 63;

/// A name longer than `MAX_NAME_LEN`, said with the limit and its length; `kind` says what it
/// names ("stage name", "table name", ...).
pub fn check_length(kind: &str, name: &str) -> Result<(), String> {
    let len = name.chars().count();
    if len <= MAX_NAME_LEN {
        return Ok(());
    }
    let shown: String = name.chars().take(24).collect();
    Err(format!(
        "{kind} `{shown}...` is {len} characters long; names are at most {MAX_NAME_LEN} characters (they name folders and object keys in the store)"
    ))
}

/// The known name closest to a misspelled one, if any is close enough (Jaro-Winkler; and one
/// edit or swap away, which Jaro-Winkler misses in short names: `tpo` for `top`).
pub fn closest<'a>(
    name: &str,
    known: impl Iterator<Item = &'a str>,
    threshold: f64,
) -> Option<&'a str> {
    let score = |k: &str| {
        let one_edit = name.chars().count() > 1 && strsim::damerau_levenshtein(name, k) == 1;
        let edits = if one_edit { threshold + 0.01 } else { 0.0 };
        strsim::jaro_winkler(name, k).max(edits)
    };
    known
        .map(|k| (score(k), k))
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_longer_than_the_limit_are_refused_with_their_length() {
        assert!(check_length("stage name", &"a".repeat(MAX_NAME_LEN)).is_ok());
        let long = "b".repeat(250);
        let Err(message) = check_length("table name", &long) else {
            panic!("accepted");
        };
        assert!(message.starts_with("table name `bbbbbbbbbbbbbbbbbbbbbbbb...` is 250 characters long; names are at most 63"), "{message}");
    }
}
