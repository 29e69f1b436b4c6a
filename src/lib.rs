//! weir: data pipelines declared in Rhai, evaluated with DataFusion, stored as Parquet.
//!
//! Data moves one way through the modules:
//! `script` (evaluate the Rhai file into declarations) -> `flow` (validate into a DAG, select,
//! plan what to reuse or run) -> `exec` (evaluate tasks on the `engine`) -> `store` (content-
//! addressed table data, stage manifests, locks, run records) -> `report` (everything printed).
//!
//! The modules form a stack in which each imports only those below it (a test reads the
//! imports and keeps it so):
//!
//! ```text
//! cli        arguments; one function call per subcommand
//! repl       the pipeline at a prompt        } front ends over one session
//! watch      re-run on save                  }
//! session    load, plan, run (under the lock), read, promote, gc: the domain operations
//! error      the top-level error wrapping every module's, and the exit codes
//! exec       the scheduler: tasks run, their builds written and checked, stages committed
//! engine     DataFusion set up for a run: settings, memory pool, optimizer rules, clusters
//! flow       declarations -> a validated DAG; selection; the plan; SQL error placement
//! script     the Rhai engine and the API it registers
//! report     the only code that prints
//! store      object-store layout, cache keys, manifests, the lock, run records
//! config     weir.toml, instances, secrets
//! df_message, names, source   leaves: DataFusion's messages, names, positions in files
//! ```

// Errors carry the script text and spans for their diagnostics, so they are large; they are
// returned once per run, never in a loop, and boxing each one would only add noise.
#![allow(clippy::result_large_err)]

pub mod cli;
pub mod config;
pub mod df_message;
pub mod engine;
pub mod error;
pub mod exec;
pub mod flow;
pub mod names;
pub mod repl;
pub mod report;
pub mod script;
pub mod serve;
pub mod session;
pub mod source;
pub mod store;
pub mod watch;

pub use error::{Error, Result};
