//! Load tasks: read CSV, NDJSON or Parquet files into a DataFrame, and, when that fails, look
//! at the local files to say which file, row and column is wrong (DataFusion's messages name
//! neither the file of a glob nor the row as the user counts it).

use std::path::{Path, PathBuf};

use datafusion::arrow::datatypes::{DataType, Field, Schema};
use datafusion::prelude::{
    CsvReadOptions, DataFrame, JsonReadOptions, ParquetReadOptions, SessionContext,
};

use super::{Shared, TaskFailure, TaskProblem};
use crate::flow::{At, Task};
use crate::script::{FileFormat, LoadSpec};
use crate::source::{SourceFile, token_span};
use crate::store::sources;

/// Files larger than this are not read again to explain an error.
const EXPLAIN_LIMIT: u64 = 64 << 20;

pub(super) async fn load(
    ctx: &SessionContext,
    spec: &LoadSpec,
    shared: &Shared,
) -> Result<DataFrame, String> {
    let location = sources::resolve(&spec.location, &shared.script_dir);
    // A single file or a glob is read as named, whatever its extension.
    let named = !location.ends_with('/') && !std::path::Path::new(&location).is_dir();
    let ext = if named {
        String::new()
    } else {
        spec.format.extension().to_string()
    };
    let context =
        |e: datafusion::error::DataFusionError| format!("cannot load {}: {e}", spec.location);
    match spec.format {
        FileFormat::Parquet => ctx
            .read_parquet(location, ParquetReadOptions::default().file_extension(&ext))
            .await
            .map_err(context),
        FileFormat::Json => ctx
            .read_json(location, JsonReadOptions::default().file_extension(&ext))
            .await
            .map_err(context),
        FileFormat::Csv => {
            let opts = || {
                CsvReadOptions::new()
                    .has_header(spec.csv.header)
                    .delimiter(spec.csv.delimiter)
                    .file_extension(&ext)
            };
            let df = ctx
                .read_csv(location.clone(), opts())
                .await
                .map_err(context)?;
            if spec.csv.types.is_empty() {
                return Ok(df);
            }
            let schema = override_types(df.schema().as_arrow(), &spec.csv.types)?;
            ctx.read_csv(location, opts().schema(&schema))
                .await
                .map_err(context)
        }
    }
}

/// The inferred CSV schema with the types the script gave.
fn override_types(
    inferred: &Schema,
    types: &std::collections::BTreeMap<String, String>,
) -> Result<Schema, String> {
    for name in types.keys() {
        if inferred.field_with_name(name).is_err() {
            let columns: Vec<&str> = inferred
                .fields()
                .iter()
                .map(|f| f.name().as_str())
                .collect();
            return Err(format!(
                "schema names column `{name}`, which the file does not have (columns: {})",
                columns.join(", ")
            ));
        }
    }
    let fields = inferred
        .fields()
        .iter()
        .map(|f| match types.get(f.name()) {
            None => Ok(f.as_ref().clone()),
            Some(ty) => ty
                .parse::<DataType>()
                .map(|t| Field::new(f.name(), t, true))
                .map_err(|_| format!("`{ty}` for column `{}` is not an Arrow type (e.g. Int64, Float64, Utf8, Date32)", f.name())),
        })
        .collect::<Result<Vec<_>, _>>()?;
    Ok(Schema::new(fields))
}

/// A failed load, with the file, row and column at fault when the files show it.
pub(super) fn explain(
    task: &Task,
    spec: &LoadSpec,
    shared: &Shared,
    message: String,
) -> TaskFailure {
    let location = sources::resolve(&spec.location, &shared.script_dir);
    let files = local_files(&location, spec.format);
    let dir = &shared.script_dir;
    let id = task.id.to_string();
    let problem = match spec.format {
        FileFormat::Csv => csv_headers(&id, spec, &files, dir).or_else(|| {
            files
                .iter()
                .find_map(|f| csv_rows(&id, spec, f, dir, &message))
        }),
        FileFormat::Json => files.iter().find_map(|f| json_lines(&id, f, dir)),
        FileFormat::Parquet => None,
    };
    match problem {
        Some(p) => p.into(),
        None => message.into(),
    }
}

/// The local files behind a location: one file, a folder's files of the format, or a glob.
fn local_files(location: &str, format: FileFormat) -> Vec<PathBuf> {
    let location = location.strip_prefix("file://").unwrap_or(location);
    if location.contains("://") {
        return Vec::new();
    }
    let path = Path::new(location);
    let mut files: Vec<PathBuf> = if path.is_dir() {
        std::fs::read_dir(path)
            .map(|d| d.flatten().map(|e| e.path()).collect::<Vec<_>>())
            .unwrap_or_default()
            .into_iter()
            .filter(|p: &PathBuf| p.to_string_lossy().ends_with(format.extension()))
            .collect()
    } else if location.contains(['*', '?', '[']) {
        glob::glob(location)
            .map(|g| g.flatten().collect())
            .unwrap_or_default()
    } else {
        vec![path.to_path_buf()]
    };
    files.retain(|f| std::fs::metadata(f).is_ok_and(|m| m.is_file() && m.len() <= EXPLAIN_LIMIT));
    files.sort();
    files
}

fn source(file: &Path, dir: &Path) -> Option<SourceFile> {
    let text = std::fs::read_to_string(file).ok()?;
    Some(SourceFile::new(
        file.strip_prefix(dir).unwrap_or(file),
        text,
    ))
}

fn at(src: &SourceFile, span: miette::SourceSpan) -> At {
    let (line, column) = crate::source::line_column(&src.text, span.offset());
    At {
        location: format!("{}:{line}:{column}", src.path.display()),
        src: src.named(),
        span,
    }
}

/// Files of one glob whose headers differ: name the two files and the first differing column.
fn csv_headers(task: &str, spec: &LoadSpec, files: &[PathBuf], dir: &Path) -> Option<TaskProblem> {
    if !spec.csv.header || files.len() < 2 {
        return None;
    }
    let header = |f: &PathBuf| -> Option<Vec<String>> {
        let text = std::fs::read_to_string(f).ok()?;
        let line = text.lines().next()?;
        Some(
            fields(line, spec.csv.delimiter)
                .into_iter()
                .map(|(_, s)| s.to_string())
                .collect(),
        )
    };
    let first = header(&files[0])?;
    for other in &files[1..] {
        let theirs = header(other)?;
        if theirs == first {
            continue;
        }
        let (first_has, second_has) =
            match (0..first.len().min(theirs.len())).find(|&i| first[i] != theirs[i]) {
                Some(i) => (
                    format!("has `{}` as column {}", first[i], i + 1),
                    format!("has `{}`", theirs[i]),
                ),
                None => (
                    format!("has {} columns", first.len()),
                    format!("has {}", theirs.len()),
                ),
            };
        let name = |f: &PathBuf| f.strip_prefix(dir).unwrap_or(f).display().to_string();
        return Some(TaskProblem::SchemaMismatch {
            task: task.to_string(),
            pattern: spec.location.clone(),
            first: name(&files[0]),
            first_has,
            second: name(other),
            second_has,
        });
    }
    None
}

/// A row with the wrong number of fields, or the value DataFusion could not parse.
fn csv_rows(
    task: &str,
    spec: &LoadSpec,
    file: &Path,
    dir: &Path,
    message: &str,
) -> Option<TaskProblem> {
    let src = source(file, dir)?;
    let rows = csv_lines(&src.text, spec.csv.delimiter);
    let names: Vec<String> = match (rows.first(), spec.csv.header) {
        (None, _) => return None,
        (Some(head), true) => head.fields.iter().map(|(_, s)| s.to_string()).collect(),
        (Some(head), false) => (1..=head.fields.len())
            .map(|i| format!("column_{i}"))
            .collect(),
    };
    let unparsed = unparsable_value(message);
    for row in &rows[usize::from(spec.csv.header)..] {
        if row.fields.len() != names.len() {
            let span = miette::SourceSpan::new(row.start.into(), row.len);
            let msg = format!(
                "row {} of {} has {} fields, not {}",
                row.number,
                src.path.display(),
                row.fields.len(),
                names.len()
            );
            let help = "every row of a CSV file has as many fields as its header; quote fields \
                        that hold the delimiter";
            let label = format!("{} fields", row.fields.len());
            return Some(TaskProblem::data(
                task.into(),
                msg,
                at(&src, span),
                &label,
                Some(help.into()),
            ));
        }
        if let Some((value, ty, col)) = &unparsed
            && let Some((field_at, _)) = row.fields.get(*col).filter(|(_, s)| s == value)
        {
            let name = &names[*col];
            let span = token_span(&src.text, row.start + field_at);
            let msg = format!(
                "`{value}` in column `{name}` (row {}) is not {ty}",
                row.number
            );
            let help = format!(
                "fix the value, or read the column as text: #{{ schema: #{{ {name}: \"Utf8\" }} }}"
            );
            let label = format!("not {ty}");
            return Some(TaskProblem::data(
                task.into(),
                msg,
                at(&src, span),
                &label,
                Some(help),
            ));
        }
    }
    None
}

/// One non-empty line of a CSV file: its 1-based number, byte range and fields.
struct CsvLine<'a> {
    number: usize,
    start: usize,
    len: usize,
    fields: Vec<(usize, &'a str)>,
}

fn csv_lines(text: &str, delimiter: u8) -> Vec<CsvLine<'_>> {
    let mut offset = 0;
    let mut out = Vec::new();
    for (n, line) in text.split_inclusive('\n').enumerate() {
        let start = offset;
        offset += line.len();
        let line = line.trim_end_matches(['\n', '\r']);
        if !line.is_empty() {
            out.push(CsvLine {
                number: n + 1,
                start,
                len: line.len(),
                fields: fields(line, delimiter),
            });
        }
    }
    out
}

/// Arrow's "Error while parsing value 'x' as type 'Int64' for column 0": value, type, column.
fn unparsable_value(message: &str) -> Option<(String, String, usize)> {
    let rest = message.split("Error while parsing value '").nth(1)?;
    let (value, rest) = rest.split_once("' as type '")?;
    let (ty, rest) = rest.split_once("' for column ")?;
    let col = rest
        .split(|c: char| !c.is_ascii_digit())
        .next()?
        .parse()
        .ok()?;
    Some((value.to_string(), ty.to_string(), col))
}

/// The fields of a CSV line with their byte offsets; quotes are removed around a field.
fn fields(line: &str, delimiter: u8) -> Vec<(usize, &str)> {
    let mut out = Vec::new();
    let (mut start, mut quoted) = (0, false);
    for (i, b) in line.bytes().enumerate() {
        match b {
            b'"' => quoted = !quoted,
            b if b == delimiter && !quoted => {
                out.push((start, line[start..i].trim_matches('"')));
                start = i + 1;
            }
            _ => {}
        }
    }
    out.push((start, line[start..].trim_matches('"')));
    out
}

/// The first line of an NDJSON file that is not a JSON value, at the column the parser stopped.
fn json_lines(task: &str, file: &Path, dir: &Path) -> Option<TaskProblem> {
    let src = source(file, dir)?;
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
        let msg = format!(
            "line {} of {} is not valid JSON: {what}",
            n + 1,
            src.path.display()
        );
        return Some(TaskProblem::data(
            task.to_string(),
            msg,
            at(&src, span),
            &what,
            Some("a JSON load reads newline-delimited JSON: one object per line".into()),
        ));
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn csv_fields_keep_their_offsets_and_respect_quotes() {
        assert_eq!(
            fields("1,\"a,b\",c", b','),
            [(0, "1"), (2, "a,b"), (8, "c")]
        );
        assert_eq!(fields("", b','), [(0, "")]);
    }

    #[test]
    fn arrow_parse_errors_give_value_type_and_column() {
        let m = "Arrow error: Parser error: Error while parsing value 'three' as type 'Int64' for column 0 at line 3. Row data: '[three,z]'";
        assert_eq!(
            unparsable_value(m),
            Some(("three".into(), "Int64".into(), 0))
        );
    }
}
