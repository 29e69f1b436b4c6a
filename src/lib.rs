//! weir: data pipelines declared in Rhai, evaluated with DataFusion, stored as Parquet.
//!
//! Data moves one way through the modules:
//! `script` (evaluate the Rhai file into declarations) -> `flow` (validate into a DAG, select,
//! plan what to reuse or run) -> `exec` (evaluate tasks with DataFusion) -> `store` (content-
//! addressed table data, stage manifests, locks, run records) -> `report` (everything printed).
//! `cli` wires these together per subcommand; nothing imports `cli`.

// Errors carry the script text and spans for their diagnostics, so they are large; they are
// returned once per run, never in a loop, and boxing each one would only add noise.
#![allow(clippy::result_large_err)]

pub mod cli;
pub mod config;
pub mod error;
pub mod exec;
pub mod flow;
pub mod repl;
pub mod report;
pub mod script;
pub mod session;
pub mod source;
pub mod store;
pub mod watch;

pub use error::{Error, Result};
