//! The query engine tasks run on: DataFusion's session set up once per run (settings, the
//! memory pool and its limits, the spill folder, the stores it reads), the optimizer rules weir
//! adds to DataFusion's (`rules`), where a task runs (here or on a Ballista cluster), and the
//! runtime pieces: the pool that keeps headroom for operators that cannot spill, the watch for
//! queries that stop, scratch folders. It knows nothing of tasks' scheduling, builds or
//! commits, which are `exec`'s; as DataFusion keeps its optimizer apart from execution.

mod cluster;
mod history;
mod limits;
mod pool;
mod rules;
mod scratch;
mod session;
mod stall;
#[cfg(feature = "ballista")]
mod standalone;

pub use cluster::{ClusterError, Placement, placement, undistributable};
pub use history::{HISTORY_SCHEMA, HISTORY_TABLES};
pub use limits::{DEFAULT_COMPRESSION, TARGET_FILE_BYTES, release_freed_memory, sized_merges};
pub use scratch::Scratch;
pub use session::{DamagedTable, Engine, committed_context, overlay_build, register_build};
pub use stall::unless_stalled;
