//! Why an NDJSON load failed: a line that is not JSON, or files of one glob that give a field
//! different types (DataFusion infers each file's schema and cannot merge them).

use std::path::{Path, PathBuf};

use datafusion::arrow::datatypes::{DataType, Schema};

use super::{at, mismatch, source};
use crate::exec::TaskError;
use crate::script::LoadSpec;
use crate::source::{SourceFile, token_span};

/// DataFusion infers an NDJSON file's schema from this many records, so weir looks as far.
const INFER_RECORDS: usize = 1000;

/// The first line of an NDJSON file that is not a JSON value, at the column the parser stopped.
pub(super) fn lines(task: &str, file: &Path) -> Option<TaskError> {
    let src = source(file)?;
    let mut offset = 0;
    for (n, line) in src.text.split_inclusive('\n').enumerate() {
        let start = offset;
        offset += line.len();
        if line.trim().is_empty() {
            continue;
        }
        let line = line.trim_end();
        let Err(e) = serde_json::from_str::<serde_json::Value>(line) else {
            continue;
        };
        // At the end of the line the parser points past it: label its last character.
        let within: usize = if e.is_eof() {
            line.len()
        } else {
            line.chars()
                .take(e.column().saturating_sub(1))
                .map(char::len_utf8)
                .sum()
        };
        let text = e.to_string();
        let what = text.split(" at line ").next().unwrap_or(&text).to_string();
        let span = if e.is_eof() {
            token_span(line, line.len())
        } else {
            token_span(line, within)
        };
        let span = miette::SourceSpan::new((start + span.offset()).into(), span.len());
        let msg = format!("line {} of {} is not valid JSON: {what}", n + 1, src.name());
        return Some(TaskError::data(
            task.to_string(),
            msg,
            at(&src, span),
            &what,
            Some("a JSON load reads newline-delimited JSON: one object per line".into()),
        ));
    }
    None
}

/// The first file that gives a field of the first file another type, with the line where it
/// does. Fields only some files have are fine: JSON records need not all have every field.
pub(super) fn types(task: &str, spec: &LoadSpec, files: &[PathBuf]) -> Option<TaskError> {
    if files.len() < 2 {
        return None;
    }
    let first = infer(&files[0])?;
    for other in &files[1..] {
        let theirs = infer(other)?;
        let conflict = first.fields().iter().find_map(|fa| {
            let fb = theirs.field_with_name(fa.name()).ok()?;
            (fa.data_type() != fb.data_type()).then(|| (fa.clone(), fb.data_type().clone()))
        });
        let Some((field, their_type)) = conflict else {
            continue;
        };
        let (first_has, second_has) =
            super::schema::types(field.name(), field.data_type(), &their_type);
        let src = source(other);
        let at = src
            .as_ref()
            .and_then(|s| value_of(s, field.name(), field.data_type()).map(|span| (s, span)));
        return Some(mismatch(
            task,
            spec,
            (&files[0], first_has),
            (other, second_has),
            at,
        ));
    }
    None
}

fn infer(file: &Path) -> Option<Schema> {
    let reader = std::io::BufReader::new(std::fs::File::open(file).ok()?);
    datafusion::arrow::json::reader::infer_json_schema(reader, Some(INFER_RECORDS))
        .ok()
        .map(|(schema, _)| schema)
}

/// The first value of `field` that is not of type `ty`, as a span in the file.
fn value_of(src: &SourceFile, field: &str, ty: &DataType) -> Option<miette::SourceSpan> {
    let key = serde_json::to_string(field).ok()?;
    let mut offset = 0;
    for line in src.text.split_inclusive('\n').take(INFER_RECORDS) {
        let start = offset;
        offset += line.len();
        let Ok(serde_json::Value::Object(record)) = serde_json::from_str(line) else {
            continue;
        };
        match record.get(field) {
            Some(v) if !v.is_null() && !fits(v, ty) => {}
            _ => continue,
        }
        // The value follows the key's colon; a key that also appears in a string value is
        // rare enough that pointing at its first occurrence is right in practice.
        let after_key = line.find(&key)? + key.len();
        let colon = after_key + line[after_key..].find(':')? + 1;
        let value = colon + (line[colon..].len() - line[colon..].trim_start().len());
        let span = token_span(line, value);
        return Some(miette::SourceSpan::new(
            (start + span.offset()).into(),
            span.len(),
        ));
    }
    None
}

/// Whether a JSON value is what arrow infers as `ty`.
fn fits(v: &serde_json::Value, ty: &DataType) -> bool {
    use serde_json::Value;
    match v {
        Value::Bool(_) => ty == &DataType::Boolean,
        Value::Number(n) if n.is_f64() => ty == &DataType::Float64,
        Value::Number(_) => ty == &DataType::Int64,
        Value::String(_) => ty == &DataType::Utf8,
        Value::Array(_) => matches!(ty, DataType::List(_)),
        Value::Object(_) => matches!(ty, DataType::Struct(_)),
        Value::Null => true,
    }
}
