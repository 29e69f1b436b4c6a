//! A pipeline as every command uses it: load it (config, instance, script, stores), plan it,
//! run it under the lock, read its committed tables, evaluate or promote one task, and take
//! stock of its stored builds. The front ends (`cli`, `watch`, `repl`) call these and print.

mod as_of;
mod cache;
mod check;
mod clear;
mod given;
mod graph;
pub mod hooks;
mod live;
mod load;
mod plan;
mod promote;
mod read;
mod rollback;
mod run;
mod unit_compare;
pub mod unit_tests;

pub use as_of::resolve as resolve_as_of;
pub use cache::{Collected, GcOptions, Inventory, KEEP_RUNS, gc, inventory};
pub use check::{Checked, check};
pub use clear::clear;
pub use given::run_with_inputs;
pub use graph::{failed_last_run, graph};
pub use load::{Loaded, Target};
pub use plan::{Planned, TaskState, find, plan_all, plan_selected};
pub use promote::{Promoted, evaluate_task, promote, promote_given};
pub use read::Reader;
pub use rollback::{RollbackOptions, rollback};
pub use run::{RunOptions, RunReport, run};

use std::sync::Arc;

use crate::engine::Engine;
use crate::exec::{Code, RunId, Shared};
use crate::flow::{Flow, Step};

/// What every task of one run (or one evaluation) shares.
fn shared(
    loaded: &Loaded,
    flow: Flow,
    steps: Vec<Step>,
    engine: Engine,
    run_id: &str,
    interactive: bool,
    partitions: crate::exec::Partitioning,
) -> Arc<Shared> {
    let script = &loaded.script;
    let udfs = crate::exec::udf::functions(&flow.udfs, &script.engine, &script.ast, None);
    Arc::new(Shared {
        flow,
        steps,
        store: loaded.store.clone(),
        instances: loaded.instances.clone(),
        engine,
        code: Code {
            rhai: script.engine.clone(),
            ast: script.ast.clone(),
            udfs,
            source: script.source.clone(),
            modules: script.modules.clone(),
        },
        run: RunId {
            id: run_id.to_string(),
            flow_name: loaded.flow_name.clone(),
            interactive,
        },
        logs: Default::default(),
        partitions,
    })
}
