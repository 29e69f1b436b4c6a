//! The options every task declaration takes (`version`, `description`, `tags`, `cache`,
//! `retries`, `expect`, `primary_key`, `partition_by`, `incremental`), and the helpers each declaration's own
//! options use.

use std::time::Duration;

use rhai::{Array, Dynamic, FnPtr, Map, NativeCallContext, Position};

use super::fail;
use super::recorder::{RhaiResult, rt};
use crate::names::is_identifier;
use crate::script::decl::TaskOpts;

/// Enough for a flaky source; more would hide a broken one.
const MAX_RETRIES: i64 = 10;
const MAX_RETRY_DELAY: Duration = Duration::from_secs(3600);

/// The options every task takes. A `cache` closure is called here, while the script is
/// evaluated, so its token is known before planning.
pub(super) fn common_opts(ctx: &NativeCallContext, opts: &mut Map) -> RhaiResult<TaskOpts> {
    let pos = ctx.call_position();
    let mut out = TaskOpts::default();
    if let Some(f) = opts.remove("cache") {
        out.cache = Some(cache_token(ctx, f)?);
    }
    if let Some(v) = opts.remove("version") {
        out.key_option("version", v.to_string().into());
        out.version = Some(v.to_string());
    }
    out.description = take_str(opts, "description", pos)?;
    if let Some(v) = opts.remove("tags") {
        out.tags = tags(v, pos)?;
    }
    retry_options(opts, &mut out, pos)?;
    if let Some(columns) = opts.remove("columns") {
        out.columns = Some(super::contracts::parse(columns, pos)?);
    }
    if let Some(v) = opts.remove("contract") {
        out.contract = v
            .as_bool()
            .map_err(|_| rt("`contract` must be true or false", pos))?;
        if out.contract && out.columns.is_none() {
            return fail(
                "`contract: true` needs `columns`: the columns and types the table must have",
                pos,
            );
        }
    }
    if let Some(checks) = opts.remove("expect") {
        out.expect = super::checks::option(checks, pos)?;
    }
    if let Some(cols) = opts.remove("primary_key") {
        out.primary_key = match columns(cols) {
            Some(cols) if !cols.is_empty() && cols.iter().all(|c| is_identifier(c)) => cols,
            _ => {
                return fail(
                    "`primary_key` must be a column name or an array of them",
                    pos,
                );
            }
        };
    }
    if let Some(cols) = opts.remove("partition_by") {
        let Some(cols) = columns(cols) else {
            return fail(
                "`partition_by` must be a column name or an array of them",
                pos,
            );
        };
        if cols.is_empty() {
            return fail("`partition_by` must name at least one column", pos);
        }
        out.key_option("partition_by", cols.clone().into());
        out.partition_by = cols;
    }
    if let Some(v) = opts.remove("incremental") {
        out.incremental = v
            .as_bool()
            .map_err(|_| rt("`incremental` must be true or false", pos))?;
        if out.incremental && out.partition_by.is_empty() {
            return fail(
                "`incremental: true` needs `partition_by`: the column whose values are the partitions computed one by one, e.g. #{ partition_by: [\"day\"], incremental: true }",
                pos,
            );
        }
        if out.incremental {
            out.key_option("incremental", true.into());
        }
    }
    Ok(out)
}

/// The token a `cache` closure returns, as `print` shows it (Rhai's documented conversion,
/// not a Debug format).
fn cache_token(ctx: &NativeCallContext, f: Dynamic) -> RhaiResult<String> {
    let type_name = f.type_name();
    let Some(f) = f.try_cast::<FnPtr>() else {
        return fail(
            format!(
                "option `cache` must be a closure returning a freshness token, e.g. || today(), not {type_name}"
            ),
            ctx.call_position(),
        );
    };
    let token: Dynamic = f.call_within_context(ctx, ())?;
    Ok(token.to_string())
}

/// `retries` (0 to 10) and `retry_delay` (a duration, with `retries` only).
fn retry_options(opts: &mut Map, out: &mut TaskOpts, pos: Position) -> RhaiResult<()> {
    if let Some(v) = opts.remove("retries") {
        out.retries = match v.as_int() {
            Ok(n) if (0..=MAX_RETRIES).contains(&n) => n as u32,
            _ => {
                return fail(
                    format!("`retries` must be a whole number from 0 to {MAX_RETRIES}"),
                    pos,
                );
            }
        };
    }
    let Some(v) = take_str(opts, "retry_delay", pos)? else {
        return Ok(());
    };
    match humantime::parse_duration(v.trim()) {
        Ok(d) if d > Duration::ZERO && d <= MAX_RETRY_DELAY => out.retry_delay = Some(d),
        _ => {
            return fail(
                format!(
                    "`retry_delay` must be a duration from 1ms to 1h, such as \"10s\" or \"2m\", not \"{v}\""
                ),
                pos,
            );
        }
    }
    if out.retries == 0 {
        return fail(
            "`retry_delay` goes with `retries`: how many times to try again",
            pos,
        );
    }
    Ok(())
}

/// A string or an array of strings; `None` when it is neither.
fn columns(value: Dynamic) -> Option<Vec<String>> {
    match value.clone().try_cast::<Array>() {
        Some(list) => list
            .into_iter()
            .map(|c| c.into_string())
            .collect::<Result<Vec<_>, _>>()
            .ok(),
        None => value.into_string().map(|c| vec![c]).ok(),
    }
}

/// The `tags` option: a tag or an array of them, each letters, digits, `_` or `-` (a tag is
/// written in selectors, `tag:NAME`, where spaces, commas and `+` have meanings).
pub(super) fn tags(value: Dynamic, pos: Position) -> RhaiResult<Vec<String>> {
    let valid = |t: &String| {
        !t.is_empty()
            && t.len() <= 64
            && t.chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
    };
    match columns(value) {
        Some(list) if list.iter().all(valid) => {
            let mut out: Vec<String> = Vec::new();
            for t in list {
                if !out.contains(&t) {
                    out.push(t);
                }
            }
            Ok(out)
        }
        _ => fail(
            "`tags` must be a tag or an array of them, e.g. [\"nightly\", \"pii\"]: letters, digits, _ or -",
            pos,
        ),
    }
}

pub(super) fn take_str(opts: &mut Map, key: &str, pos: Position) -> RhaiResult<Option<String>> {
    match opts.remove(key) {
        None => Ok(None),
        Some(v) => v
            .into_string()
            .map(Some)
            .map_err(|t| rt(format!("option `{key}` must be a string, not {t}"), pos)),
    }
}

pub(super) fn reject_unknown(opts: &Map, allowed: &[&str], pos: Position) -> RhaiResult<()> {
    match opts.keys().next() {
        None => Ok(()),
        Some(k) => fail(
            format!(
                "unknown option `{k}`; this task takes: {}",
                allowed.join(", ")
            ),
            pos,
        ),
    }
}
