//! The API a script sees, one Rhai namespace a file: `declare` (stages, tasks, params),
//! `sample` (tables from another instance) and `table` (the lazy Table values task functions work on) `data` (tables from Rhai values) and `udf`
//! (scalar functions for SQL).

pub mod checks;
pub mod contracts;
pub mod data;
pub mod declare;
pub mod fresh;
pub mod log;
pub mod options;
pub mod recorder;
pub mod sample;
pub mod table;
pub mod task_logs;
pub mod tests;
pub mod udf;

use std::sync::{Arc, Mutex};

use rhai::{EvalAltResult, Position};

/// Register every namespace of the script's API on `engine`, recording into `recorder`.
pub fn register(
    engine: &mut rhai::Engine,
    recorder: Arc<Mutex<recorder::Recorder>>,
    params: crate::script::Params,
    dir: &std::path::Path,
) {
    declare::register(engine, recorder.clone(), params);
    checks::register(engine, recorder.clone());
    contracts::register(engine, recorder.clone());
    tests::register(engine, recorder.clone());
    udf::register(engine, recorder.clone());
    sample::register(engine, recorder);
    table::register(engine);
    data::register(engine);
    log::register(engine);
    fresh::register(engine, dir);
}

/// A script-facing error at a position in the script.
pub(crate) fn fail<T>(msg: impl Into<String>, pos: Position) -> Result<T, Box<EvalAltResult>> {
    Err(EvalAltResult::ErrorRuntime(msg.into().into(), pos).into())
}

/// Separates a message from its help line in an error a script function raises; the task's
/// diagnostic shows the help as its own line.
pub const HELP_MARK: &str = "\nhelp: ";

/// A DataFusion error from a Table method: what is wrong in one line, and "did you mean" for
/// a misspelled column.
pub(crate) fn df_fail<T>(
    e: &datafusion::error::DataFusionError,
    pos: Position,
) -> Result<T, Box<EvalAltResult>> {
    let (headline, help) = crate::df_message::explain(e);
    match help {
        Some(help) => fail(format!("{headline}{HELP_MARK}{help}"), pos),
        None => fail(headline, pos),
    }
}
