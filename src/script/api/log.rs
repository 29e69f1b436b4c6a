//! `log::info(message[, fields])`, `log::warn` and `log::trace` (pypedream's `info(msg,
//! **fields)`): inside a task's code the message goes into the run's record and log under the
//! task's name, with the fields as JSON; elsewhere (while the script is evaluated) it is
//! printed like `print`. `debug` is a Rhai keyword, so the debug level is `log::trace`, and
//! Rhai's own `print(...)` and `debug(...)` in a task's code are recorded as well.

use rhai::{Dynamic, Engine, Map, Module};
use serde_json::Value;

use super::task_logs::TARGET;
use crate::store::LogLine;

pub fn register(engine: &mut Engine) {
    let mut module = Module::new();
    for (name, level) in [("info", "info"), ("warn", "warn"), ("trace", "debug")] {
        module.set_native_fn(name, move |message: &str| {
            emit(level, message, Map::new());
            Ok(())
        });
        module.set_native_fn(name, move |message: &str, fields: Map| {
            emit(level, message, fields);
            Ok(())
        });
    }
    engine.register_static_module("log", module.into());
    // Inside a task, `print` and `debug` are the task's log too; elsewhere they are printed.
    engine.on_print(|s| emit("print", s, Map::new()));
    engine.on_debug(|s, _, pos| emit("debug", &format!("[{pos}] {s}"), Map::new()));
}

fn emit(level: &str, message: &str, fields: Map) {
    let fields: serde_json::Map<String, Value> = fields
        .into_iter()
        .map(|(k, v)| (k.to_string(), json(&v)))
        .collect();
    let line = LogLine {
        level: level.to_string(),
        fields,
        ..LogLine::info(message.to_string())
    };
    let target = TARGET
        .with(|t| t.borrow().clone())
        .or_else(|| super::table::current().and_then(|cx| cx.log_sink()));
    match target {
        Some((logs, task)) => logs.push(task, line),
        None if level == "print" => crate::report::script_output(&line.text()),
        None => crate::report::script_output(&format!("[{level}] {}", line.text())),
    }
}

/// A Rhai value as JSON: maps and arrays nest, other values are their text.
fn json(v: &Dynamic) -> Value {
    if v.is_unit() {
        Value::Null
    } else if let Ok(b) = v.as_bool() {
        Value::Bool(b)
    } else if let Ok(i) = v.as_int() {
        Value::from(i)
    } else if let Ok(f) = v.as_float() {
        serde_json::Number::from_f64(f).map_or(Value::Null, Value::Number)
    } else if v.is_array() {
        let items = v
            .read_lock::<rhai::Array>()
            .map(|a| a.iter().map(json).collect());
        Value::Array(items.unwrap_or_default())
    } else if v.is_map() {
        let map = v.read_lock::<Map>().map(|m| {
            m.iter()
                .map(|(k, v)| (k.to_string(), json(v)))
                .collect::<serde_json::Map<_, _>>()
        });
        Value::Object(map.unwrap_or_default())
    } else {
        Value::String(v.to_string())
    }
}
