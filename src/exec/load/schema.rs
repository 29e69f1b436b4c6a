//! Files of one glob that do not share a schema. DataFusion merges the schemas of a glob's
//! files: a column some files lack is silently null in their rows, and a type conflict fails
//! with a message that names neither file. weir compares the files itself and names both.

use std::path::{Path, PathBuf};

use datafusion::arrow::datatypes::{DataType, Schema, SchemaRef};
use datafusion::parquet::arrow::arrow_reader::ArrowReaderMetadata;

use super::mismatch;
use crate::exec::TaskError;
use crate::script::LoadSpec;

/// The first Parquet file whose columns or types differ from the first file's. Only the
/// footers are read; a file that is not Parquet is left for DataFusion to report.
pub(super) fn parquet(task: &str, spec: &LoadSpec, files: &[PathBuf]) -> Option<TaskError> {
    if files.len() < 2 {
        return None;
    }
    let first = parquet_schema(&files[0])?;
    for other in &files[1..] {
        let theirs = parquet_schema(other)?;
        if let Some((first_has, second_has)) = difference(&first, &theirs) {
            return Some(mismatch(
                task,
                spec,
                (&files[0], first_has),
                (other, second_has),
                None,
            ));
        }
    }
    None
}

fn parquet_schema(file: &Path) -> Option<SchemaRef> {
    let f = std::fs::File::open(file).ok()?;
    let meta = ArrowReaderMetadata::load(&f, Default::default()).ok()?;
    Some(meta.schema().clone())
}

/// How `b` differs from `a`, said of each: a column only one has, or a column whose type
/// differs. Order and nullability do not count, as DataFusion matches columns by name.
pub(super) fn difference(a: &Schema, b: &Schema) -> Option<(String, String)> {
    for fa in a.fields() {
        match b.field_with_name(fa.name()) {
            Err(_) => {
                return Some((
                    format!("has column `{}`", fa.name()),
                    "does not".to_string(),
                ));
            }
            Ok(fb) if fb.data_type() != fa.data_type() => {
                return Some(types(fa.name(), fa.data_type(), fb.data_type()));
            }
            Ok(_) => {}
        }
    }
    let extra = b
        .fields()
        .iter()
        .find(|f| a.field_with_name(f.name()).is_err())?;
    Some((
        format!("has no column `{}`", extra.name()),
        "has it".to_string(),
    ))
}

/// Each side of a type conflict on one column.
pub(super) fn types(column: &str, a: &DataType, b: &DataType) -> (String, String) {
    (
        format!("has `{column}` as {a}"),
        format!("has `{column}` as {b}"),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use datafusion::arrow::datatypes::Field;

    fn schema(fields: &[(&str, DataType, bool)]) -> Schema {
        Schema::new(
            fields
                .iter()
                .map(|(n, t, null)| Field::new(*n, t.clone(), *null))
                .collect::<Vec<_>>(),
        )
    }

    #[test]
    fn order_and_nullability_do_not_count_but_columns_and_types_do() {
        let a = schema(&[("id", DataType::Int64, false), ("v", DataType::Utf8, true)]);
        let reordered = schema(&[("v", DataType::Utf8, false), ("id", DataType::Int64, true)]);
        assert_eq!(difference(&a, &reordered), None);

        let retyped = schema(&[("id", DataType::Utf8, false), ("v", DataType::Utf8, true)]);
        assert_eq!(
            difference(&a, &retyped),
            Some(("has `id` as Int64".into(), "has `id` as Utf8".into()))
        );
        let fewer = schema(&[("id", DataType::Int64, false)]);
        assert_eq!(
            difference(&a, &fewer),
            Some(("has column `v`".into(), "does not".into()))
        );
        assert_eq!(
            difference(&fewer, &a),
            Some(("has no column `v`".into(), "has it".into()))
        );
    }
}
