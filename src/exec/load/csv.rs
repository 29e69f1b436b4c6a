//! Why a CSV load failed: headers that differ between the files of a glob, a row with the
//! wrong number of fields, a value that does not parse as its column's type.

use std::path::{Path, PathBuf};

use super::{at, first_line, mismatch, source};
use crate::exec::TaskError;
use crate::script::LoadSpec;
use crate::source::token_span;

/// Files of one glob whose headers differ: name the two files and label the first differing
/// column in the second.
pub(super) fn headers(task: &str, spec: &LoadSpec, files: &[PathBuf]) -> Option<TaskError> {
    if !spec.csv.header || files.len() < 2 {
        return None;
    }
    let first_src = first_line(&files[0])?;
    let first = header(&first_src.text, spec.csv.delimiter);
    for other in &files[1..] {
        let src = first_line(other)?;
        let theirs = header(&src.text, spec.csv.delimiter);
        if theirs.iter().map(|f| &f.1).eq(first.iter().map(|f| &f.1)) {
            continue;
        }
        let differs = (0..first.len().min(theirs.len())).find(|&i| first[i].1 != theirs[i].1);
        let (first_has, second_has, at_field) = match differs {
            Some(i) => (
                format!("has `{}` as column {}", first[i].1, i + 1),
                format!("has `{}`", theirs[i].1),
                i,
            ),
            None => (
                format!("has {} columns", first.len()),
                format!("has {}", theirs.len()),
                first.len().min(theirs.len()).saturating_sub(1),
            ),
        };
        let offset = theirs.get(at_field).map_or(0, |(o, _)| *o);
        let span = token_span(&src.text, offset);
        return Some(mismatch(
            task,
            spec,
            (&files[0], first_has),
            (other, second_has),
            Some((&src, span)),
        ));
    }
    None
}

fn header(text: &str, delimiter: u8) -> Vec<(usize, String)> {
    text.lines()
        .next()
        .map(|line| fields(line, delimiter))
        .unwrap_or_default()
}

/// A row with the wrong number of fields, or the value DataFusion could not parse.
pub(super) fn rows(task: &str, spec: &LoadSpec, file: &Path, message: &str) -> Option<TaskError> {
    let src = source(file)?;
    let rows = lines(&src.text, spec.csv.delimiter);
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
                src.name(),
                row.fields.len(),
                names.len()
            );
            let help = "every row of a CSV file has as many fields as its header; quote fields \
                        that hold the delimiter";
            let label = format!("{} fields", row.fields.len());
            return Some(TaskError::data(
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
            return Some(TaskError::data(
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
struct CsvLine {
    number: usize,
    start: usize,
    len: usize,
    fields: Vec<(usize, String)>,
}

fn lines(text: &str, delimiter: u8) -> Vec<CsvLine> {
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

/// The fields of a CSV line, unquoted as CSV reads them (csv-core), each with the byte offset
/// it starts at in the line.
fn fields(line: &str, delimiter: u8) -> Vec<(usize, String)> {
    use csv_core::ReadFieldResult;
    let mut reader = csv_core::ReaderBuilder::new().delimiter(delimiter).build();
    let input = line.as_bytes();
    let mut out = Vec::new();
    let (mut pos, mut start) = (0, 0);
    let mut field = vec![0u8; input.len() + 1];
    let mut len = 0;
    loop {
        let (result, read, written) = reader.read_field(&input[pos..], &mut field[len..]);
        pos += read;
        len += written;
        match result {
            ReadFieldResult::InputEmpty if pos < input.len() => continue,
            // The line's end is the input's: a last call with nothing ends its last field.
            ReadFieldResult::InputEmpty => {
                let (result, _, written) = reader.read_field(&[], &mut field[len..]);
                len += written;
                if matches!(result, ReadFieldResult::Field { .. }) {
                    out.push((start, String::from_utf8_lossy(&field[..len]).into_owned()));
                }
                break;
            }
            ReadFieldResult::Field { record_end } => {
                out.push((start, String::from_utf8_lossy(&field[..len]).into_owned()));
                (start, len) = (pos, 0);
                if record_end {
                    break;
                }
            }
            ReadFieldResult::OutputFull | ReadFieldResult::End => break,
        }
    }
    if out.is_empty() {
        out.push((0, String::new()));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn csv_fields_keep_their_offsets_and_respect_quotes() {
        let shown = |line: &str| -> Vec<(usize, String)> { fields(line, b',') };
        let owned = |v: &[(usize, &str)]| -> Vec<(usize, String)> {
            v.iter().map(|(o, s)| (*o, s.to_string())).collect()
        };
        assert_eq!(
            shown("1,\"a,b\",c"),
            owned(&[(0, "1"), (2, "a,b"), (8, "c")])
        );
        assert_eq!(
            shown("x,\"say \"\"hi\"\"\",z"),
            owned(&[(0, "x"), (2, "say \"hi\""), (15, "z")])
        );
        assert_eq!(shown(""), owned(&[(0, "")]));
        assert_eq!(shown("a,"), owned(&[(0, "a"), (2, "")]));
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
