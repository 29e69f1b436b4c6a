//! `udf(name, closure)` and `udf(name, closure, #{ args: [...], returns: "...", call_on_null })`:
//! a scalar function for the flow's SQL, recorded with its call position. Its code is checked
//! against the script's functions when the flow is built; it runs only when a query calls it.

use std::sync::{Arc, Mutex};

use rhai::{Array, Dynamic, Engine, FnPtr, Map, NativeCallContext, Position};

use super::recorder::{Recorder, RhaiResult, lock, rt};
use crate::names::is_identifier;
use crate::script::udf::{UdfDecl, parse_type};

pub fn register(engine: &mut Engine, recorder: Arc<Mutex<Recorder>>) {
    let r = recorder.clone();
    engine.register_fn(
        "udf",
        move |ctx: NativeCallContext, name: &str, f: Dynamic| -> RhaiResult<()> {
            declare(&r, &ctx, name, f, Map::new())
        },
    );
    engine.register_fn(
        "udf",
        move |ctx: NativeCallContext, name: &str, f: Dynamic, opts: Map| -> RhaiResult<()> {
            declare(&recorder, &ctx, name, f, opts)
        },
    );
}

fn declare(
    recorder: &Arc<Mutex<Recorder>>,
    ctx: &NativeCallContext,
    name: &str,
    f: Dynamic,
    mut opts: Map,
) -> RhaiResult<()> {
    let pos = ctx.call_position();
    if !is_identifier(name) || name.chars().any(|c| c.is_ascii_uppercase()) {
        return Err(rt(
            format!(
                "UDF name `{name}` must be a lower-case identifier (letters, digits, _): SQL folds unquoted names to lower case"
            ),
            pos,
        ));
    }
    if builtin(name) {
        return Err(rt(
            format!(
                "`{name}` is a built-in SQL function: give the UDF another name, so that SQL keeps meaning what it says"
            ),
            pos,
        ));
    }
    let type_name = f.type_name();
    let Some(func) = f.try_cast::<FnPtr>() else {
        return Err(rt(
            format!(
                "a UDF is a closure such as |s| s.to_upper(), or Fn(\"name\") of a script function, not {type_name}"
            ),
            pos,
        ));
    };
    let args = match opts.remove("args") {
        None => None,
        Some(list) => Some(types(list, pos)?),
    };
    let returns = match opts.remove("returns") {
        None => None,
        Some(t) => Some(parse_type(&t.to_string()).map_err(|m| rt(m, pos))?),
    };
    let call_on_null = match opts.remove("call_on_null") {
        None => false,
        Some(b) => b
            .as_bool()
            .map_err(|_| rt("`call_on_null` must be true or false", pos))?,
    };
    if let Some(k) = opts.keys().next() {
        return Err(rt(
            format!("unknown option `{k}`; udf takes: args, returns, call_on_null"),
            pos,
        ));
    }
    let mut r = lock(recorder);
    if r.is_closed() {
        return Err(rt(
            "UDFs are declared at the top level of the script, not while a task runs",
            pos,
        ));
    }
    let origin = r.origin(ctx);
    // In the REPL a UDF typed again replaces the script's.
    if ctx.call_source() == Some(crate::script::REPL_SOURCE) {
        r.udfs.retain(|u| u.name != name);
    }
    if let Some(first) = r.udfs.iter().find(|u| u.name == name) {
        return Err(rt(
            format!(
                "UDF `{name}` is already declared (line {}): give each UDF its own name",
                first.origin.line
            ),
            pos,
        ));
    }
    r.udfs.push(UdfDecl {
        name: name.to_string(),
        func,
        args,
        returns,
        call_on_null,
        origin,
    });
    Ok(())
}

fn types(list: Dynamic, pos: Position) -> RhaiResult<Vec<datafusion::arrow::datatypes::DataType>> {
    let Some(list) = list.try_cast::<Array>() else {
        return Err(rt(
            "`args` must be an array of type names, e.g. [\"Utf8\", \"Int64\"]",
            pos,
        ));
    };
    list.into_iter()
        .map(|t| parse_type(&t.to_string()).map_err(|m| rt(m, pos)))
        .collect()
}

/// Whether SQL already has a function (scalar, aggregate, window or table) of this name: the
/// names a session of weir's has before any UDF, computed once.
fn builtin(name: &str) -> bool {
    static NAMES: std::sync::OnceLock<std::collections::BTreeSet<String>> =
        std::sync::OnceLock::new();
    NAMES
        .get_or_init(|| {
            let state = datafusion::execution::session_state::SessionStateBuilder::new()
                .with_default_features()
                .build();
            let mut names = std::collections::BTreeSet::new();
            for (n, f) in state.scalar_functions() {
                names.insert(n.clone());
                names.extend(f.aliases().iter().cloned());
            }
            for (n, f) in state.aggregate_functions() {
                names.insert(n.clone());
                names.extend(f.aliases().iter().cloned());
            }
            for (n, f) in state.window_functions() {
                names.insert(n.clone());
                names.extend(f.aliases().iter().cloned());
            }
            names.extend(state.table_functions().keys().cloned());
            names
        })
        .contains(name)
}
