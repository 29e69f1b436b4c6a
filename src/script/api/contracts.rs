//! `contract("stage.t", #{ col: "Type", ... })` and the `columns` / `contract` options: what
//! a table's columns are, enforced or described (`script::contract`).

use std::sync::{Arc, Mutex};

use rhai::{Dynamic, Engine, Map, NativeCallContext, Position};

use super::fail;
use super::recorder::{Recorder, RhaiResult, lock, rt};
use crate::names::{TableName, is_identifier};
use crate::script::checks::{CheckDecl, CheckKind, Severity};
use crate::script::contract::{ContractColumn, ContractDecl};

pub fn register(engine: &mut Engine, recorder: Arc<Mutex<Recorder>>) {
    engine.register_fn(
        "contract",
        move |ctx: NativeCallContext, table: &str, columns: Map| -> RhaiResult<()> {
            let pos = ctx.call_position();
            let Some(table) = TableName::parse(table) else {
                return fail(
                    format!("`{table}` is not a table name of the form stage.table"),
                    pos,
                );
            };
            let columns = parse(Dynamic::from(columns), pos)?;
            let mut r = lock(&recorder);
            let origin = r.origin(&ctx);
            let decl = ContractDecl {
                table,
                columns,
                enforced: true,
                origin,
            };
            push(&mut r, decl);
            Ok(())
        },
    );
}

/// Record `decl`, with a not-null check of each column it says is never null.
pub(super) fn push(r: &mut Recorder, decl: ContractDecl) {
    for c in decl.columns.iter().filter(|c| c.not_null) {
        r.checks.push(CheckDecl {
            table: decl.table.clone(),
            text: format!("not_null({})", c.name),
            kind: CheckKind::NotNull(c.name.clone()),
            severity: Severity::Error,
            origin: decl.origin,
        });
    }
    r.contracts.push(decl);
}

/// The `columns` option (or `contract`'s map): each column's type as an Arrow type name, or a
/// map of `type`, `not_null` and `description`.
pub(super) fn parse(value: Dynamic, pos: Position) -> RhaiResult<Vec<ContractColumn>> {
    let type_name = value.type_name();
    let Some(map) = value.try_cast::<Map>() else {
        return fail(
            format!(
                "`columns` must be a map of column name to type, e.g. #{{ id: \"Int64\", name: #{{ type: \"Utf8\", description: \"...\" }} }}, not {type_name}"
            ),
            pos,
        );
    };
    if map.is_empty() {
        return fail("`columns` must name at least one column", pos);
    }
    map.into_iter()
        .map(|(name, spec)| column(name.as_str(), spec, pos))
        .collect()
}

fn column(name: &str, spec: Dynamic, pos: Position) -> RhaiResult<ContractColumn> {
    if !is_identifier(name) {
        return fail(format!("`{name}` is not a column name"), pos);
    }
    let mut out = ContractColumn {
        name: name.to_string(),
        data_type: None,
        not_null: false,
        description: None,
    };
    if spec.is_string() {
        out.data_type = Some(data_type(name, &spec.to_string(), pos)?);
        return Ok(out);
    }
    let Some(mut map) = spec.try_cast::<Map>() else {
        return fail(
            format!(
                "column `{name}` must be a type (\"Int64\") or a map of type, not_null and description"
            ),
            pos,
        );
    };
    if let Some(t) = map.remove("type") {
        out.data_type = Some(data_type(name, &t.to_string(), pos)?);
    }
    if let Some(n) = map.remove("not_null") {
        out.not_null = n.as_bool().map_err(|_| {
            rt(
                format!("`not_null` of column `{name}` must be true or false"),
                pos,
            )
        })?;
    }
    if let Some(d) = map.remove("description") {
        out.description = Some(d.into_string().map_err(|t| {
            rt(
                format!("the description of column `{name}` must be a string, not {t}"),
                pos,
            )
        })?);
    }
    if let Some(k) = map.keys().next() {
        return fail(
            format!(
                "unknown key `{k}` for column `{name}`; a column takes: type, not_null, description"
            ),
            pos,
        );
    }
    Ok(out)
}

fn data_type(
    name: &str,
    text: &str,
    pos: Position,
) -> RhaiResult<datafusion::arrow::datatypes::DataType> {
    text.parse().map_err(|_| {
        rt(
            format!("`{text}` for column `{name}` is not an Arrow type (e.g. Int64, Float64, Utf8, Date32, Decimal128(12, 2))"),
            pos,
        )
    })
}
