//! `expect(table, check)` and `expect(table, check, #{ severity: "warn" })`: data checks of a
//! table, recorded with their call position; also the `expect` and `primary_key` options.

use std::sync::{Arc, Mutex};

use rhai::{Array, Dynamic, Engine, Map, NativeCallContext, Position};

use super::recorder::{Recorder, RhaiResult, TableRef, lock, rt};
use crate::names::TableName;
use crate::script::checks::{CheckDecl, CheckKind, Severity, parse};

pub fn register(engine: &mut Engine, recorder: Arc<Mutex<Recorder>>) {
    let r = recorder.clone();
    engine.register_fn(
        "expect",
        move |ctx: NativeCallContext, table: Dynamic, check: &str| -> RhaiResult<()> {
            expect(&r, &ctx, table, check, Map::new())
        },
    );
    engine.register_fn(
        "expect",
        move |ctx: NativeCallContext, table: Dynamic, check: &str, opts: Map| -> RhaiResult<()> {
            expect(&recorder, &ctx, table, check, opts)
        },
    );
}

fn expect(
    recorder: &Arc<Mutex<Recorder>>,
    ctx: &NativeCallContext,
    table: Dynamic,
    check: &str,
    mut opts: Map,
) -> RhaiResult<()> {
    let pos = ctx.call_position();
    let table = match table.clone().try_cast::<TableRef>() {
        Some(t) => t.0,
        None => {
            let text = table.to_string();
            TableName::parse(&text).ok_or_else(|| {
                rt(
                    format!("`{text}` is not a table name of the form stage.table"),
                    pos,
                )
            })?
        }
    };
    let severity = severity(opts.remove("severity"), pos)?;
    if let Some(k) = opts.keys().next() {
        return Err(rt(
            format!("unknown option `{k}`; expect takes: severity"),
            pos,
        ));
    }
    let kind = parse_at(check, pos)?;
    let mut r = lock(recorder);
    let origin = r.origin(ctx);
    r.checks.push(CheckDecl {
        table,
        text: check.trim().to_string(),
        kind,
        severity,
        origin,
    });
    Ok(())
}

fn severity(value: Option<Dynamic>, pos: Position) -> RhaiResult<Severity> {
    match value.map(|v| v.to_string()) {
        None => Ok(Severity::Error),
        Some(s) if s == "error" => Ok(Severity::Error),
        Some(s) if s == "warn" => Ok(Severity::Warn),
        Some(s) => Err(rt(
            format!("severity is \"error\" or \"warn\", not `{s}`"),
            pos,
        )),
    }
}

/// A check parsed, or a script error at `pos`.
pub(super) fn parse_at(text: &str, pos: Position) -> RhaiResult<CheckKind> {
    parse(text).map_err(|m| rt(m, pos))
}

/// The `expect` option: a check, or an array of checks, each a string or
/// `#{ check: "...", severity: "warn" }`.
pub(super) fn option(value: Dynamic, pos: Position) -> RhaiResult<Vec<(String, Severity)>> {
    let items = match value.clone().try_cast::<Array>() {
        Some(list) => list,
        None => vec![value],
    };
    items
        .into_iter()
        .map(|item| match item.clone().try_cast::<Map>() {
            Some(mut m) => {
                let check = m
                    .remove("check")
                    .map(|c| c.to_string())
                    .ok_or_else(|| rt("an `expect` entry as a map names its `check`", pos))?;
                parse_at(&check, pos)?;
                Ok((check, severity(m.remove("severity"), pos)?))
            }
            None => {
                let check = item
                    .into_string()
                    .map_err(|t| rt(format!("`expect` takes checks as strings, not {t}"), pos))?;
                parse_at(&check, pos)?;
                Ok((check, Severity::Error))
            }
        })
        .collect()
}

/// The checks a primary key stands for: every key column not null, the key unique.
pub(super) fn primary_key(columns: &[String]) -> Vec<(String, CheckKind)> {
    if columns.is_empty() {
        return Vec::new();
    }
    let mut out: Vec<(String, CheckKind)> = columns
        .iter()
        .map(|c| (format!("not_null({c})"), CheckKind::NotNull(c.clone())))
        .collect();
    out.push((
        format!("unique({})", columns.join(", ")),
        CheckKind::Unique(columns.to_vec()),
    ));
    out
}
