//! `table(rows)` and `table(columns)`: a small table from Rhai values, for a task that makes
//! its data (a lookup list, a calendar) and for trying things at the REPL. Types are inferred
//! per column from the values (integers, floats, booleans, strings; `()` is null); a column
//! that mixes kinds is an error naming the rows, except integers with floats, which are floats.

use std::collections::BTreeMap;
use std::sync::Arc;

use datafusion::arrow::array::{
    ArrayRef, BooleanArray, Float64Array, Int64Array, NullArray, StringArray,
};
use datafusion::arrow::datatypes::{DataType, Field, Schema};
use datafusion::arrow::record_batch::RecordBatch;
use rhai::{Array, Dynamic, Engine, EvalAltResult, Map, NativeCallContext};

use super::fail;
use super::table::{Table, current};

type RhaiResult<T> = Result<T, Box<EvalAltResult>>;

pub fn register(engine: &mut Engine) {
    engine
        .register_fn("table", |ctx: NativeCallContext, rows: Array| {
            make(&ctx, from_rows(rows), Map::new())
        })
        .register_fn("table", |ctx: NativeCallContext, rows: Array, opts: Map| {
            make(&ctx, from_rows(rows), opts)
        })
        .register_fn("table", |ctx: NativeCallContext, columns: Map| {
            make(&ctx, from_columns(columns), Map::new())
        })
        .register_fn(
            "table",
            |ctx: NativeCallContext, columns: Map, opts: Map| {
                make(&ctx, from_columns(columns), opts)
            },
        );
}

fn make(
    ctx: &NativeCallContext,
    columns: Result<Vec<(String, Vec<Dynamic>)>, String>,
    mut opts: Map,
) -> RhaiResult<Table> {
    let pos = ctx.call_position();
    let types = match opts.remove("types") {
        None => Map::new(),
        Some(t) => match t.try_cast::<Map>() {
            Some(m) => m,
            None => {
                return fail(
                    "`types` is a map of column name to Arrow type, e.g. #{ day: \"Date32\" }",
                    pos,
                );
            }
        },
    };
    if let Some(k) = opts.keys().next() {
        return fail(
            format!("table(...) has no option `{k}` (it has: types)"),
            pos,
        );
    }
    let Some(cx) = current() else {
        return fail(
            "table(...) builds a table inside a task function: declare one, e.g. prep.materialize(\"codes\", || table([#{ code: 1 }]), [])",
            pos,
        );
    };
    let batch = columns
        .and_then(|c| batch(c, &types))
        .or_else(|e| fail(e, pos))?;
    match cx.ctx.read_batch(batch) {
        Ok(df) => Ok(Table::new(df, cx)),
        Err(e) => super::df_fail(&e, pos),
    }
}

/// `[#{ id: 1, name: "a" }, ...]`: a column for every key any row has; a row without it is null.
fn from_rows(rows: Array) -> Result<Vec<(String, Vec<Dynamic>)>, String> {
    let mut names: Vec<String> = Vec::new();
    let mut maps = Vec::with_capacity(rows.len());
    for (i, row) in rows.into_iter().enumerate() {
        let type_name = row.type_name();
        let Some(map) = row.try_cast::<Map>() else {
            return Err(format!(
                "row {} is {type_name}, not a map: table([#{{ id: 1, name: \"a\" }}, ...])",
                i + 1
            ));
        };
        for k in map.keys() {
            if !names.iter().any(|n| n == k.as_str()) {
                names.push(k.to_string());
            }
        }
        maps.push(map);
    }
    names.sort();
    Ok(names
        .into_iter()
        .map(|name| {
            let values = maps
                .iter()
                .map(|m| m.get(name.as_str()).cloned().unwrap_or(Dynamic::UNIT))
                .collect();
            (name, values)
        })
        .collect())
}

/// `#{ id: [1, 2], name: ["a", "b"] }`: every column as long as the others.
fn from_columns(columns: Map) -> Result<Vec<(String, Vec<Dynamic>)>, String> {
    let mut out: Vec<(String, Vec<Dynamic>)> = Vec::with_capacity(columns.len());
    for (name, values) in columns {
        let type_name = values.type_name();
        let Some(values) = values.try_cast::<Array>() else {
            return Err(format!(
                "column `{name}` is {type_name}, not an array: table(#{{ id: [1, 2], name: [\"a\", \"b\"] }})"
            ));
        };
        if let Some((first, first_values)) = out.first()
            && first_values.len() != values.len()
        {
            return Err(format!(
                "column `{name}` has {} values and `{first}` has {}: columns must be as long as each other",
                values.len(),
                first_values.len()
            ));
        }
        out.push((name.to_string(), values));
    }
    Ok(out)
}

/// The kind of a column's values, as far as seen.
#[derive(Clone, Copy, PartialEq, Debug)]
enum Kind {
    Int,
    Float,
    Bool,
    Text,
}

impl Kind {
    fn of(v: &Dynamic) -> Result<Option<Kind>, String> {
        Ok(Some(if v.is_unit() {
            return Ok(None);
        } else if v.is_int() {
            Kind::Int
        } else if v.is_float() {
            Kind::Float
        } else if v.is_bool() {
            Kind::Bool
        } else if v.is_string() || v.is_char() {
            Kind::Text
        } else {
            return Err(format!(
                "{} values cannot go in a column (numbers, booleans, strings and () for null can)",
                v.type_name()
            ));
        }))
    }

    fn name(self) -> &'static str {
        match self {
            Kind::Int => "integers",
            Kind::Float => "floats",
            Kind::Bool => "booleans",
            Kind::Text => "strings",
        }
    }
}

/// Rows of Rhai maps as a batch, types inferred as `table(rows)` infers them: a unit test's
/// given and expected rows.
pub fn rows_batch(rows: Array) -> Result<RecordBatch, String> {
    batch(from_rows(rows)?, &Map::new())
}

fn batch(columns: Vec<(String, Vec<Dynamic>)>, types: &Map) -> Result<RecordBatch, String> {
    if columns.is_empty() {
        return Err("table(...) needs at least one column".into());
    }
    let declared = declared_types(types, &columns)?;
    let mut fields = Vec::with_capacity(columns.len());
    let mut arrays: Vec<ArrayRef> = Vec::with_capacity(columns.len());
    for (name, values) in &columns {
        let array = column(name, values)?;
        let array = match declared.get(name) {
            None => array,
            Some(ty) => datafusion::arrow::compute::cast(&array, ty)
                .map_err(|e| format!("column `{name}` cannot be {ty}: {e}"))?,
        };
        fields.push(Field::new(name, array.data_type().clone(), true));
        arrays.push(array);
    }
    RecordBatch::try_new(Arc::new(Schema::new(fields)), arrays).map_err(|e| e.to_string())
}

fn declared_types(
    types: &Map,
    columns: &[(String, Vec<Dynamic>)],
) -> Result<BTreeMap<String, DataType>, String> {
    let mut out = BTreeMap::new();
    for (name, ty) in types {
        if !columns.iter().any(|(c, _)| c == name.as_str()) {
            let names: Vec<&str> = columns.iter().map(|(c, _)| c.as_str()).collect();
            return Err(format!(
                "`types` names column `{name}`, which the table does not have (columns: {})",
                names.join(", ")
            ));
        }
        let text = ty.to_string();
        let parsed = text.parse::<DataType>().map_err(|_| {
            format!("`{text}` for column `{name}` is not an Arrow type (e.g. Int64, Float64, Utf8, Date32)")
        })?;
        out.insert(name.to_string(), parsed);
    }
    Ok(out)
}

/// One column's values as an Arrow array of the kind they share.
fn column(name: &str, values: &[Dynamic]) -> Result<ArrayRef, String> {
    let mut kind: Option<(Kind, usize)> = None;
    for (i, v) in values.iter().enumerate() {
        let Some(k) = Kind::of(v).map_err(|e| format!("column `{name}`, row {}: {e}", i + 1))?
        else {
            continue;
        };
        kind = match kind {
            None => Some((k, i)),
            Some((seen, at)) if seen == k => Some((seen, at)),
            Some((Kind::Int, at)) | Some((Kind::Float, at))
                if matches!(k, Kind::Int | Kind::Float) =>
            {
                Some((Kind::Float, at))
            }
            Some((seen, at)) => {
                return Err(format!(
                    "column `{name}` mixes {} (row {}: {}) and {} (row {}: {})",
                    seen.name(),
                    at + 1,
                    show(&values[at]),
                    k.name(),
                    i + 1,
                    show(v)
                ));
            }
        };
    }
    Ok(match kind.map(|(k, _)| k) {
        None => Arc::new(NullArray::new(values.len())),
        Some(Kind::Int) => Arc::new(
            values
                .iter()
                .map(|v| some(v).and_then(|v| v.as_int().ok()))
                .collect::<Int64Array>(),
        ),
        Some(Kind::Float) => Arc::new(
            values
                .iter()
                .map(|v| {
                    some(v).and_then(|v| {
                        v.as_float()
                            .ok()
                            .or_else(|| v.as_int().ok().map(|i| i as f64))
                    })
                })
                .collect::<Float64Array>(),
        ),
        Some(Kind::Bool) => Arc::new(
            values
                .iter()
                .map(|v| some(v).and_then(|v| v.as_bool().ok()))
                .collect::<BooleanArray>(),
        ),
        Some(Kind::Text) => Arc::new(
            values
                .iter()
                .map(|v| some(v).map(|v| v.to_string()))
                .collect::<StringArray>(),
        ),
    })
}

/// A Rhai `()` is a SQL NULL.
fn some(v: &Dynamic) -> Option<&Dynamic> {
    (!v.is_unit()).then_some(v)
}

fn show(v: &Dynamic) -> String {
    if v.is_string() {
        format!("{:?}", v.to_string())
    } else {
        v.to_string()
    }
}
