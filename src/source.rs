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
        shown(&self.path)
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
        format!("{}:{}:{}", shown(path), self.line, self.column)
    }
}

/// A path as diagnostics show it: relative to the current folder when it is inside it, as
/// compilers do, so `weir run pipeline.rhai` reports `pipeline.rhai:3:5`.
pub fn shown(path: &Path) -> String {
    let relative = std::env::current_dir()
        .ok()
        .and_then(|cwd| path.strip_prefix(cwd).ok().map(Path::to_path_buf));
    match relative {
        Some(r) if !r.as_os_str().is_empty() => r.display().to_string(),
        _ => path.display().to_string(),
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

/// The 1-based (line, column) of a byte offset, columns in characters.
pub fn line_column(text: &str, offset: usize) -> (usize, usize) {
    let before = &text[..offset.min(text.len())];
    let line_start = before.rfind('\n').map_or(0, |n| n + 1);
    (
        before.matches('\n').count() + 1,
        before[line_start..].chars().count() + 1,
    )
}

/// The first string literal at or after byte `from` of a Rhai script whose value is `value`:
/// for each byte offset of the value (and its end), the byte offset in the script it came from.
/// `None` when no literal spells the value out (it was built by code or interpolated).
pub fn literal_map(text: &str, from: usize, value: &str) -> Option<Vec<usize>> {
    let bytes = text.as_bytes();
    let mut i = from.min(text.len());
    while i < bytes.len() {
        match bytes[i] {
            b'/' if bytes.get(i + 1) == Some(&b'/') => {
                i = text[i..].find('\n').map_or(text.len(), |n| i + n);
            }
            b'/' if bytes.get(i + 1) == Some(&b'*') => {
                i = text[i + 2..].find("*/").map_or(text.len(), |n| i + n + 4);
            }
            quote @ (b'"' | b'`') => {
                let (map, end) = decode_literal(text, i + 1, quote);
                if map.len() == value.len() + 1 && decoded_equals(text, &map, value) {
                    return Some(map);
                }
                i = end;
            }
            _ => i += 1,
        }
    }
    None
}

/// Walk a literal's body from `start`: the script offset of every value byte, and the offset
/// after the closing quote. Escapes map their value to the backslash.
fn decode_literal(text: &str, mut start: usize, quote: u8) -> (Vec<usize>, usize) {
    // Rhai drops a newline right after an opening backtick.
    if quote == b'`' {
        for skip in ["\r\n", "\n"] {
            if text[start..].starts_with(skip) {
                start += skip.len();
                break;
            }
        }
    }
    let mut map = Vec::new();
    let mut chars = text[start..].char_indices().map(|(o, c)| (start + o, c));
    while let Some((at, c)) = chars.next() {
        if c as u32 == u32::from(quote) {
            map.push(at);
            return (map, at + 1);
        }
        if c == '\\' && quote == b'"' {
            let Some((_, e)) = chars.next() else { break };
            let value = match e {
                'n' => '\n',
                't' => '\t',
                'r' => '\r',
                '0' => '\0',
                other => other,
            };
            map.extend(std::iter::repeat_n(at, value.len_utf8()));
            continue;
        }
        map.extend((0..c.len_utf8()).map(|k| at + k));
    }
    map.push(text.len());
    (map, text.len())
}

/// Whether the literal mapped by `map` spells `value`; escapes are compared by what they mean.
fn decoded_equals(text: &str, map: &[usize], value: &str) -> bool {
    let vb = value.as_bytes();
    let tb = text.as_bytes();
    vb.iter().enumerate().all(|(k, &b)| {
        let at = map[k];
        tb[at] == b || (tb[at] == b'\\' && escaped(tb.get(at + 1).copied()) == Some(b))
    })
}

fn escaped(e: Option<u8>) -> Option<u8> {
    match e? {
        b'n' => Some(b'\n'),
        b't' => Some(b'\t'),
        b'r' => Some(b'\r'),
        b'0' => Some(0),
        other => Some(other),
    }
}

/// The span of the token at byte `at`: a word (letters, digits, `_`, `.`), a quoted name, or
/// one character; at the end of the text, the last visible character, so miette keeps it.
pub fn token_span(text: &str, at: usize) -> miette::SourceSpan {
    let mut at = at.min(text.len());
    if text[at..].trim().is_empty() {
        at = text.trim_end().len();
        let last = text[..at].chars().next_back().map_or(0, char::len_utf8);
        return miette::SourceSpan::new((at - last).into(), last);
    }
    let rest = &text[at..];
    let word = |c: char| c.is_alphanumeric() || c == '_';
    let len = match rest.chars().next() {
        Some(q @ ('"' | '\'' | '`')) => rest[1..].find(q).map_or(1, |n| n + 2),
        Some(c) if word(c) => rest.find(|c: char| !word(c)).unwrap_or(rest.len()),
        Some(c) => c.len_utf8(),
        None => 0,
    };
    miette::SourceSpan::new(at.into(), len)
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
    fn literals_map_value_bytes_to_script_bytes() {
        let text = "// \"SELECT 1\"\ns.sql(\"a\", `\n  SELECT é,\n  x`);\ns.sql(\"b\", \"SELECT \\\"q\\\" 1\");";
        let map = literal_map(text, 0, "  SELECT é,\n  x").unwrap();
        let x = "  SELECT é,\n  ".len();
        assert_eq!(&text[map[x]..map[x] + 1], "x");
        assert_eq!(map.len(), "  SELECT é,\n  x".len() + 1);
        let map = literal_map(text, 0, "SELECT \"q\" 1").unwrap();
        assert_eq!(&text[map[11]..map[11] + 1], "1");
        assert!(literal_map(text, 0, "SELECT 2").is_none());
    }

    #[test]
    fn token_spans_cover_words_and_stay_inside_the_text() {
        let text = "SELECT valu, 'a b' FROM t\n";
        assert_eq!(token_span(text, 7), miette::SourceSpan::new(7.into(), 4));
        assert_eq!(token_span(text, 13), miette::SourceSpan::new(13.into(), 5));
        assert_eq!(token_span(text, 11), miette::SourceSpan::new(11.into(), 1));
        assert_eq!(token_span(text, 99), miette::SourceSpan::new(24.into(), 1));
        assert_eq!(token_span("", 0), miette::SourceSpan::new(0.into(), 0));
    }

    #[test]
    fn offsets_past_the_end_are_clamped() {
        let text = "abc";
        assert_eq!(offset_of(text, 1, 99), 3);
        assert_eq!(offset_of(text, 7, 1), 3);
        assert_eq!(offset_of("", 1, 1), 0);
    }
}
