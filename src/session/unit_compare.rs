//! A unit test's result against what it expects: rows (in any order, on the expected columns),
//! a data check, or a function of the rows.

use datafusion::arrow::array::{Array, ArrayRef, AsArray, RecordBatch};
use datafusion::arrow::compute::cast;
use datafusion::arrow::datatypes::{DataType, Float64Type, Int64Type};
use datafusion::arrow::util::display::{ArrayFormatter, FormatOptions};
use datafusion::prelude::SessionContext;

use crate::names::TableName;
use crate::script::checks::{CheckDecl, Severity};

/// `None` when `actual` holds exactly the `expected` rows, compared on their columns;
/// otherwise the rows missing and the rows not expected.
pub fn rows(expected: rhai::Array, actual: &[RecordBatch]) -> Option<String> {
    let total: usize = actual.iter().map(RecordBatch::num_rows).sum();
    if expected.is_empty() {
        return (total > 0).then(|| format!("expected no rows, got {total}"));
    }
    let expected = match crate::script::api::data::rows_batch(expected) {
        Ok(b) => b,
        Err(e) => return Some(format!("the expected rows: {e}")),
    };
    let schema = expected.schema();
    let names: Vec<String> = schema.fields().iter().map(|f| f.name().clone()).collect();
    let mut want = rendered(&names, expected.columns());
    let mut got = Vec::new();
    for batch in actual {
        let mut columns: Vec<ArrayRef> = Vec::new();
        for field in schema.fields() {
            let Some(column) = batch.column_by_name(field.name()) else {
                let has: Vec<&str> = batch
                    .schema_ref()
                    .fields()
                    .iter()
                    .map(|f| f.name().as_str())
                    .collect();
                return Some(format!(
                    "the result has no column `{}` (it has: {})",
                    field.name(),
                    has.join(", ")
                ));
            };
            match cast(column, field.data_type()) {
                Ok(c) => columns.push(c),
                Err(e) => return Some(format!("column `{}`: {e}", field.name())),
            }
        }
        got.extend(rendered(&names, &columns));
    }
    want.sort();
    got.sort();
    let missing = minus(&want, &got);
    let unexpected = minus(&got, &want);
    if missing.is_empty() && unexpected.is_empty() {
        return None;
    }
    let mut out = Vec::new();
    for (label, rows) in [("missing", missing), ("unexpected", unexpected)] {
        for row in rows {
            out.push(format!("{label}: {row}"));
        }
    }
    Some(out.join("\n"))
}

/// Each row of `columns`, named `names`, as `name=value, ...`.
fn rendered(names: &[String], columns: &[ArrayRef]) -> Vec<String> {
    let options = FormatOptions::default().with_null("null");
    let formatters: Vec<ArrayFormatter> = columns
        .iter()
        .filter_map(|c| ArrayFormatter::try_new(c.as_ref(), &options).ok())
        .collect();
    (0..columns.first().map_or(0, |c| c.len()))
        .map(|row| {
            names
                .iter()
                .zip(&formatters)
                .map(|(n, f)| format!("{n}={}", f.value(row)))
                .collect::<Vec<_>>()
                .join(", ")
        })
        .collect()
}

/// The rows of `a` that `b` does not have, as many times as `a` has them more (both sorted).
fn minus(a: &[String], b: &[String]) -> Vec<String> {
    let mut b = b.to_vec();
    let mut out = Vec::new();
    for row in a {
        match b.iter().position(|x| x == row) {
            Some(i) => {
                b.remove(i);
            }
            None => out.push(row.clone()),
        }
    }
    out
}

/// `None` when the result, registered in `ctx` as `table`, passes the data check `text`.
pub async fn check(
    ctx: &SessionContext,
    table: &TableName,
    text: &str,
    actual: &[RecordBatch],
) -> Option<String> {
    let kind = match crate::script::checks::parse(text) {
        Ok(k) => k,
        Err(e) => return Some(e),
    };
    let check = CheckDecl {
        table: table.clone(),
        text: text.to_string(),
        kind,
        severity: Severity::Error,
        origin: Default::default(),
    };
    let columns: Vec<String> = actual
        .first()
        .map(|b| {
            b.schema()
                .fields()
                .iter()
                .map(|f| f.name().clone())
                .collect()
        })
        .unwrap_or_default();
    let sql = crate::exec::check_query(&check, &columns);
    let offending = match ctx.sql(&sql).await {
        Ok(df) => match df.count().await {
            Ok(n) => n,
            Err(e) => return Some(format!("check `{text}`: {e}")),
        },
        Err(e) => return Some(format!("check `{text}`: {e}")),
    };
    (offending > 0).then(|| {
        format!(
            "check `{text}` failed: {}",
            crate::report::plural(offending as u64, "offending row")
        )
    })
}

/// `None` when `f`, called with the result's rows as an array of maps, returns true.
pub fn function(
    script: &crate::script::Script,
    f: &rhai::FnPtr,
    actual: &[RecordBatch],
) -> Option<String> {
    let rows: rhai::Array = actual.iter().flat_map(rhai_rows).collect();
    match f.call::<rhai::Dynamic>(&script.engine, &script.ast, (rows,)) {
        Ok(v) if v.as_bool() == Ok(true) => None,
        Ok(v) if v.is_bool() => Some("the expect function returned false".to_string()),
        Ok(v) => Some(format!(
            "the expect function returned {} ({v}), not true or false",
            v.type_name()
        )),
        Err(e) => Some(format!("the expect function failed: {e}")),
    }
}

/// A batch's rows as Rhai maps: integers, floats (decimals too), booleans and strings as
/// themselves, other values as text, nulls as `()`.
fn rhai_rows(batch: &RecordBatch) -> Vec<rhai::Dynamic> {
    let schema = batch.schema();
    let options = FormatOptions::default();
    let columns: Vec<(String, Value)> = schema
        .fields()
        .iter()
        .zip(batch.columns())
        .map(|(f, c)| (f.name().clone(), Value::of(c, &options)))
        .collect();
    (0..batch.num_rows())
        .map(|row| {
            let mut map = rhai::Map::new();
            for (name, column) in &columns {
                map.insert(name.as_str().into(), column.get(row));
            }
            rhai::Dynamic::from_map(map)
        })
        .collect()
}

enum Value {
    Int(ArrayRef),
    Float(ArrayRef),
    Bool(ArrayRef),
    Text(ArrayRef),
}

impl Value {
    fn of(column: &ArrayRef, _options: &FormatOptions) -> Value {
        let t = column.data_type();
        let as_ = |to: &DataType| cast(column, to).unwrap_or_else(|_| column.clone());
        if t.is_integer() {
            Value::Int(as_(&DataType::Int64))
        } else if t.is_floating()
            || matches!(t, DataType::Decimal128(..) | DataType::Decimal256(..))
        {
            Value::Float(as_(&DataType::Float64))
        } else if t == &DataType::Boolean {
            Value::Bool(column.clone())
        } else {
            Value::Text(as_(&DataType::Utf8))
        }
    }

    fn get(&self, row: usize) -> rhai::Dynamic {
        let array = match self {
            Value::Int(a) | Value::Float(a) | Value::Bool(a) | Value::Text(a) => a,
        };
        if array.is_null(row) {
            return rhai::Dynamic::UNIT;
        }
        match self {
            Value::Int(a) => a
                .as_primitive_opt::<Int64Type>()
                .map_or(rhai::Dynamic::UNIT, |a| a.value(row).into()),
            Value::Float(a) => a
                .as_primitive_opt::<Float64Type>()
                .map_or(rhai::Dynamic::UNIT, |a| a.value(row).into()),
            Value::Bool(a) => a
                .as_boolean_opt()
                .map_or(rhai::Dynamic::UNIT, |a| a.value(row).into()),
            Value::Text(a) => a
                .as_string_opt::<i32>()
                .map_or(rhai::Dynamic::UNIT, |a| a.value(row).into()),
        }
    }
}
