//! The API a script sees, one Rhai namespace a file: `declare` (stages, tasks, params),
//! `sample` (tables from another instance) and `table` (the lazy Table values task functions work on).

pub mod declare;
pub mod sample;
pub mod table;

use rhai::{EvalAltResult, Position};

/// A script-facing error at a position in the script.
pub(crate) fn fail<T>(msg: impl Into<String>, pos: Position) -> Result<T, Box<EvalAltResult>> {
    Err(EvalAltResult::ErrorRuntime(msg.into().into(), pos).into())
}
