//! Where a task's SQL text sits in the user's files. DataFusion reports (line, column) inside
//! the SQL; this shifts them into the script (inside the string literal of the declaration) or
//! into the `.sql` file, so a diagnostic labels the offending token where the user wrote it.

use std::path::Path;

use miette::SourceSpan;

use super::At;
use crate::script::{Script, TaskDecl};
use crate::source::{SourceFile, line_column, literal_map, offset_of, token_span};

#[derive(Debug, Clone)]
pub struct SqlPlace {
    file: SourceFile,
    /// For each byte of the SQL, its byte in `file`; `None` when the SQL is the whole file.
    map: Option<Vec<usize>>,
    /// The declaration's call, when the SQL is not spelled out in the text (built by code).
    call: Option<usize>,
}

impl SqlPlace {
    pub fn new(script: &Script, decl: &TaskDecl, sql: &str, sql_file: Option<&Path>) -> Self {
        let source = script.source_of(decl.origin);
        let call = source.offset(decl.origin.line.max(1), decl.origin.column.max(1));
        if let Some(path) = sql_file {
            match std::fs::read_to_string(path) {
                Ok(text) if text == sql => {
                    return Self {
                        file: SourceFile::new(path, text),
                        map: None,
                        call: None,
                    };
                }
                _ => {}
            }
        }
        let map = literal_map(&source.text, call, sql);
        Self {
            file: source.clone(),
            call: map.is_none().then_some(call),
            map,
        }
    }

    /// A query that is its own text, as typed on the command line: `name` is what a
    /// diagnostic calls it.
    pub fn standalone(name: &str, sql: &str) -> Self {
        Self {
            file: SourceFile::new(name, sql),
            map: None,
            call: None,
        }
    }

    /// Where the bytes `range` of the SQL are: one statement of several, placed on its own
    /// text as DataFusion reports it.
    pub fn part(&self, range: std::ops::Range<usize>) -> Self {
        let map = match &self.map {
            // A literal's map has an entry per byte and one for the end: never empty.
            Some(map) if map.is_empty() => return self.clone(),
            Some(map) => {
                let last = map.len() - 1;
                map[range.start.min(last)..=range.end.min(last)].to_vec()
            }
            None => (range.start..=range.end).collect(),
        };
        Self {
            file: self.file.clone(),
            map: Some(map),
            call: self.call,
        }
    }

    /// A 1-based (line, column) of the SQL, with the end of the token when known.
    pub fn at(&self, sql: &str, start: (usize, usize), end: Option<(usize, usize)>) -> At {
        if start.0 == 0 {
            return self.at_offset(sql, sql.len(), None);
        }
        let from = offset_of(sql, start.0, start.1);
        let to = end
            .filter(|e| e.0 > 0)
            .map(|(l, c)| offset_of(sql, l, c))
            .filter(|&to| to > from);
        self.at_offset(sql, from, to)
    }

    /// The whole query, for an error DataFusion does not place.
    pub fn whole(&self, sql: &str) -> At {
        let start = sql.len() - sql.trim_start().len();
        self.at_offset(sql, start, Some(sql.trim_end().len().max(start)))
    }

    /// Byte `from` of the SQL (to `to`, else the token there).
    pub fn at_offset(&self, sql: &str, from: usize, to: Option<usize>) -> At {
        let in_sql = match to {
            Some(to) if to > from => SourceSpan::new(from.into(), to - from),
            _ => token_span(sql, from),
        };
        let span = match (&self.map, self.call) {
            (_, Some(call)) => SourceSpan::new(call.into(), call_len(&self.file.text, call)),
            (None, None) => in_sql,
            (Some(map), None) => {
                let start = map[in_sql.offset().min(map.len() - 1)];
                let end = map[(in_sql.offset() + in_sql.len()).min(map.len() - 1)];
                SourceSpan::new(start.into(), end.saturating_sub(start).max(1))
            }
        };
        let (line, column) = line_column(&self.file.text, span.offset());
        At {
            location: format!("{}:{line}:{column}", self.file.name()),
            src: self.file.named(),
            span,
        }
    }
}

fn call_len(text: &str, call: usize) -> usize {
    text[call..].find(['(', '\n']).unwrap_or(0)
}
