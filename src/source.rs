//! Script text and the translation of (line, column) positions into byte spans for diagnostics.

use std::path::{Path, PathBuf};
use std::sync::Arc;

/// A user file held in memory so diagnostics can point into it.
#[derive(Debug, Clone)]
pub struct SourceFile {
    pub path: PathBuf,
    pub text: Arc<str>,
}

impl SourceFile {
    pub fn new(path: impl Into<PathBuf>, text: impl Into<Arc<str>>) -> Self {
        Self {
            path: path.into(),
            text: text.into(),
        }
    }

    pub fn name(&self) -> String {
        self.path.display().to_string()
    }

    /// Byte offset of a 1-based (line, column), columns counted in characters as Rhai does.
    /// Positions past the end are clamped so miette never drops the label.
    pub fn offset(&self, line: usize, column: usize) -> usize {
        offset_of(&self.text, line, column)
    }

    /// A named source for miette labels.
    pub fn named(&self) -> miette::NamedSource<String> {
        miette::NamedSource::new(self.name(), self.text.to_string())
    }
}

/// Where something was declared: 1-based line and column in the script (`file` 0) or in the
/// `file`-th module it imported.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
pub struct Origin {
    pub line: usize,
    pub column: usize,
    #[serde(default)]
    pub file: usize,
}

impl Origin {
    pub fn from_rhai(pos: rhai::Position) -> Self {
        Self {
            line: pos.line().unwrap_or(0),
            column: pos.position().unwrap_or(0),
            file: 0,
        }
    }

    pub fn display(&self, path: &Path) -> String {
        format!("{}:{}:{}", path.display(), self.line, self.column)
    }
}

pub fn offset_of(text: &str, line: usize, column: usize) -> usize {
    let mut offset = 0;
    for (i, l) in text.split_inclusive('\n').enumerate() {
        if i + 1 == line {
            let col = column.saturating_sub(1);
            let within: usize = l.chars().take(col).map(char::len_utf8).sum();
            return (offset + within).min(text.len());
        }
        offset += l.len();
    }
    text.len()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn offsets_count_characters_not_bytes() {
        let text = "let a = 1;\nlet é = \"ü\"; x\n";
        assert_eq!(offset_of(text, 1, 1), 0);
        assert_eq!(offset_of(text, 2, 1), 11);
        // column 14 is `x`, after two 2-byte characters
        assert_eq!(&text[offset_of(text, 2, 14)..offset_of(text, 2, 15)], "x");
    }

    #[test]
    fn offsets_past_the_end_are_clamped() {
        let text = "abc";
        assert_eq!(offset_of(text, 1, 99), 3);
        assert_eq!(offset_of(text, 7, 1), 3);
        assert_eq!(offset_of("", 1, 1), 0);
    }
}
