//! Reading REPL input: line editing, history and completion on a terminal (rustyline); plain
//! lines from stdin otherwise, so scripts and tests can drive the REPL. An entry spans lines
//! while its brackets or a template string are open.

use std::io::BufRead;
use std::sync::{Arc, Mutex};

use rustyline::completion::Completer;
use rustyline::error::ReadlineError;
use rustyline::highlight::Highlighter;
use rustyline::hint::Hinter;
use rustyline::history::DefaultHistory;
use rustyline::validate::Validator;
use rustyline::{Context, Editor, Helper};

pub enum Source {
    Terminal(Box<Editor<Names, DefaultHistory>>),
    Lines(std::io::Lines<std::io::StdinLock<'static>>),
}

pub enum Entry {
    Text(String),
    /// Ctrl-C at the prompt: drop what was typed.
    Interrupted,
    Eof,
}

impl Source {
    pub fn new(names: Names) -> Self {
        use std::io::IsTerminal;
        if std::io::stdin().is_terminal()
            && let Ok(mut editor) = Editor::<Names, DefaultHistory>::new()
        {
            editor.set_helper(Some(names));
            return Source::Terminal(Box::new(editor));
        }
        Source::Lines(std::io::stdin().lock().lines())
    }

    pub fn is_terminal(&self) -> bool {
        matches!(self, Source::Terminal(_))
    }

    /// Ask `question` and read the answer: yes for `y` or `yes`. Without a terminal the
    /// answer is the next line of input.
    pub fn confirm(&mut self, question: &str) -> bool {
        let answer = match self {
            Source::Terminal(editor) => editor.readline(&format!("{question} [y/N] ")).ok(),
            Source::Lines(lines) => {
                crate::report::out(&format!("{question} [y/N]"));
                lines.next().and_then(|l| l.ok())
            }
        };
        matches!(
            answer
                .as_deref()
                .map(|a| a.trim().to_ascii_lowercase())
                .as_deref(),
            Some("y" | "yes")
        )
    }

    /// One entry, which may span several lines.
    pub fn read(&mut self) -> Entry {
        let mut text = String::new();
        loop {
            let prompt = if text.is_empty() { "weir> " } else { "  ... " };
            let line = match self {
                Source::Terminal(editor) => match editor.readline(prompt) {
                    Ok(l) => l,
                    Err(ReadlineError::Interrupted) => return Entry::Interrupted,
                    Err(_) => return Entry::Eof,
                },
                Source::Lines(lines) => match lines.next() {
                    Some(Ok(l)) => l,
                    _ if !text.is_empty() => return Entry::Text(text),
                    _ => return Entry::Eof,
                },
            };
            if !text.is_empty() {
                text.push('\n');
            }
            text.push_str(&line);
            if is_complete(&text) {
                if let Source::Terminal(editor) = self {
                    let _ = editor.add_history_entry(text.as_str());
                }
                return Entry::Text(text);
            }
        }
    }
}

/// Whether every bracket and string of `text` is closed.
pub fn is_complete(text: &str) -> bool {
    let mut depth = 0i64;
    let mut quote: Option<char> = None;
    let mut escaped = false;
    for c in text.chars() {
        if let Some(q) = quote {
            match c {
                _ if escaped => escaped = false,
                '\\' if q != '`' => escaped = true,
                _ if c == q => quote = None,
                _ => {}
            }
            continue;
        }
        match c {
            '"' | '`' | '\'' => quote = Some(c),
            '(' | '[' | '{' => depth += 1,
            ')' | ']' | '}' => depth -= 1,
            _ => {}
        }
    }
    quote.is_none() && depth <= 0
}

/// Completion of task and table names and REPL functions.
#[derive(Clone, Default)]
pub struct Names(pub Arc<Mutex<Vec<String>>>);

impl Completer for Names {
    type Candidate = String;

    fn complete(
        &self,
        line: &str,
        pos: usize,
        _: &Context<'_>,
    ) -> rustyline::Result<(usize, Vec<String>)> {
        let names = self.0.lock().unwrap_or_else(|p| p.into_inner());
        Ok(candidates(&names, line, pos))
    }
}

/// Where the word before `pos` starts, and the names that complete it. Inside a string
/// (`show("pr`) the word is what follows the quote: table names are typed there.
pub fn candidates(names: &[String], line: &str, pos: usize) -> (usize, Vec<String>) {
    let pos = pos.min(line.len());
    let before = line.get(..pos).unwrap_or("");
    let start = before
        .rfind(|c: char| !(c.is_alphanumeric() || c == '_' || c == '.' || c == ':'))
        .map_or(0, |i| i + 1);
    let word = &before[start..];
    let mut found: Vec<String> = names
        .iter()
        .filter(|n| n.starts_with(word) && n.as_str() != word)
        .cloned()
        .collect();
    // After `t.`, the methods of a Table.
    if let Some((value, method)) = word.rsplit_once('.')
        && !value.is_empty()
    {
        found.extend(
            TABLE_METHODS
                .iter()
                .filter(|m| m.starts_with(method))
                .map(|m| format!("{value}.{m}(")),
        );
    }
    (start, found)
}

/// The methods of a Table value, offered after a dot.
const TABLE_METHODS: &[&str] = &[
    "aggregate",
    "columns",
    "count",
    "distinct",
    "filter",
    "join",
    "limit",
    "materialize",
    "rows",
    "schema",
    "select",
    "sort",
    "sql",
    "union",
    "with_column",
];

impl Hinter for Names {
    type Hint = String;
}
impl Highlighter for Names {}
impl Validator for Names {}
impl Helper for Names {}

#[cfg(test)]
mod tests {
    use super::{candidates, is_complete};

    #[test]
    fn completion_offers_the_commands_by_their_names() {
        let names: Vec<String> = crate::repl::completion_names(&[]);
        let (start, found) = candidates(&names, "ev", 2);
        assert_eq!((start, found), (0, vec!["evaluate(".to_string()]));
        let (start, found) = candidates(&names, "x = sh", 6);
        assert_eq!((start, found), (4, vec!["show(".to_string()]));
        for c in crate::repl::COMMANDS {
            assert!(names.contains(&format!("{c}(")), "{c}");
        }
        assert!(!names.iter().any(|n| n == "eval("), "{names:?}");
        let (start, found) = candidates(&names, "show(t.fil", 10);
        assert_eq!((start, found), (5, vec!["t.filter(".to_string()]));
    }

    #[test]
    fn entries_span_lines_until_closed() {
        assert!(is_complete("run()"));
        assert!(!is_complete("prep.sql(\"x\", `SELECT"));
        assert!(is_complete("prep.sql(\"x\", `SELECT\n 1 AS x`)"));
        assert!(!is_complete("fn f(t) {"));
        assert!(is_complete("show(\"a(b\")"));
    }
}
