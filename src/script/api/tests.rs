//! `test("stage.table", #{ given: #{ "stage.input": [rows] }, expect: [rows], params: #{} })`:
//! a unit test of a task, recorded for `weir test` (`script::unit_test`).

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use rhai::{Array, Dynamic, Engine, FnPtr, Map, NativeCallContext, Position};

use super::fail;
use super::recorder::{Recorder, RhaiResult, lock, rt};
use crate::names::TableName;
use crate::script::unit_test::{Expect, TestDecl};

pub fn register(engine: &mut Engine, recorder: Arc<Mutex<Recorder>>) {
    engine.register_fn(
        "test",
        move |ctx: NativeCallContext, task: &str, spec: Map| -> RhaiResult<()> {
            let pos = ctx.call_position();
            if TableName::parse(task).is_none() {
                return fail(
                    format!("`{task}` is not a table name of the form stage.table"),
                    pos,
                );
            }
            let mut r = lock(&recorder);
            let origin = r.origin(&ctx);
            let decl = declare(task, spec, pos, origin)?;
            r.tests.push(decl);
            Ok(())
        },
    );
}

fn declare(
    task: &str,
    mut spec: Map,
    pos: Position,
    origin: crate::source::Origin,
) -> RhaiResult<TestDecl> {
    let given = match spec.remove("given") {
        None => Vec::new(),
        Some(g) => given(g, pos)?,
    };
    let expect = match spec.remove("expect") {
        None => return fail("a test needs `expect`: rows, a check or a function", pos),
        Some(e) => expect(e, pos)?,
    };
    let params = match spec.remove("params") {
        None => BTreeMap::new(),
        Some(p) => {
            let Some(map) = p.try_cast::<Map>() else {
                return fail("`params` must be a map, e.g. #{ top: 1 }", pos);
            };
            map.into_iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect()
        }
    };
    let name = match spec.remove("name") {
        None => format!("{task} (line {})", origin.line),
        Some(n) => n
            .into_string()
            .map_err(|t| rt(format!("`name` must be a string, not {t}"), pos))?,
    };
    if let Some(k) = spec.keys().next() {
        return fail(
            format!("unknown key `{k}`; a test takes: given, expect, params, name"),
            pos,
        );
    }
    Ok(TestDecl {
        task: task.to_string(),
        name,
        given,
        expect,
        params,
        origin,
    })
}

fn given(value: Dynamic, pos: Position) -> RhaiResult<Vec<(String, Array)>> {
    let Some(map) = value.try_cast::<Map>() else {
        return fail(
            "`given` must be a map of input table to rows, e.g. #{ \"prep.orders\": [#{ id: 1 }] }",
            pos,
        );
    };
    map.into_iter()
        .map(|(table, rows)| match rows.try_cast::<Array>() {
            Some(rows) => Ok((table.to_string(), rows)),
            None => fail(
                format!("the rows given for `{table}` must be an array of maps"),
                pos,
            ),
        })
        .collect()
}

fn expect(value: Dynamic, pos: Position) -> RhaiResult<Expect> {
    if value.is_array() {
        return Ok(Expect::Rows(value.cast::<Array>()));
    }
    if value.is_string() {
        let text = value.to_string();
        crate::script::checks::parse(&text).map_err(|e| rt(e, pos))?;
        return Ok(Expect::Check(text));
    }
    match value.try_cast::<FnPtr>() {
        Some(f) => Ok(Expect::Function(f)),
        None => fail(
            "`expect` must be rows ([#{ ... }]), a check (\"row_count > 0\") or a function of the rows (|rows| rows.len() == 1)",
            pos,
        ),
    }
}
