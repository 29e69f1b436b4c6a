//! How much memory a run's queries may hold, and where they spill: one memory pool (fair among
//! the operators that can spill, with headroom for those that cannot: `pool.rs`) shared by every
//! task of the run, and a disk manager writing into the engine's own spill folder
//! (`scratch.rs`), which the run empties when it ends, failed or not.

use std::num::NonZeroUsize;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use datafusion::execution::TaskContext;
use datafusion::execution::disk_manager::{DiskManagerBuilder, DiskManagerMode};
use datafusion::execution::memory_pool::{MemoryLimit, MemoryPool, TrackConsumersPool};
use datafusion::execution::runtime_env::{RuntimeEnv, RuntimeEnvBuilder};
use datafusion::physical_plan::sorts::sort::SortExec;
use datafusion::physical_plan::{ExecutionPlan, ExecutionPlanProperties};

use crate::config::EngineSettings;

/// The share of the machine's memory a run uses when no limit is given. DataFusion accounts for
/// the large buffers (hash tables, sort runs, aggregates), not every allocation, so the pool is
/// kept well under the machine.
const DEFAULT_SHARE: f64 = 0.5;

/// Tasks whose stored inputs exceed this share of the limit run alone (they expand several
/// times in memory as Arrow), and never more than `HEAVY_CAP`: measured at TPC-H SF 1, two large
/// joins at once cost +250 MB of peak memory over running them one after the other.
const HEAVY_SHARE: u64 = 16;
const HEAVY_CAP: u64 = 64 << 20;
/// Of the pool: what spilling operators leave free for those that cannot spill (`pool.rs`).
const HEADROOM_SHARE: usize = 4;
/// The most a sort reserves for merging its spilled runs. At TPC-H SF 10 under 1 GiB an eighth
/// of the pool (128 MiB) for each of the four sorting partitions of a sort-merge join left
/// too little for the sorts themselves.
const MAX_MERGE: usize = 64 << 20;
/// The least a sort reserves for merging, however many sorts share a small pool.
const MIN_MERGE: usize = 1 << 20;
/// The most spilled runs a sort merges at once; more take another pass. DataFusion's default,
/// no bound, let the first sort of TPC-H SF 10 to finish merge ~100 runs at once and hold 695
/// MB of a 1 GiB pool, which memory cannot spill, leaving too little for the other sorts.
const MERGE_FAN_IN: usize = 16;
/// Under a small pool, one run merged at once for each `MERGE_POOL_PER_RUN` of it, and never
/// fewer than `MIN_FAN_IN`: a merge holds a batch or two of each run it reads, and grows its
/// reservation for them while the pool lets it. Under 128 MiB, `lineitem_enriched`'s merges of
/// 16 runs held 41 and 38 MB and the next sort could not reserve 8 MB.
const MERGE_POOL_PER_RUN: usize = 32 << 20;
const MIN_FAN_IN: usize = 4;

/// Rows per row group under a limit (DuckDB's size). A Parquet writer holds its row group's
/// encoded pages until the group ends, unspillably: DataFusion's default of 1 Mi rows was
/// ~100 MB of TPC-H line items, and a writer under 128 MiB could not get 825 KB more.
const LIMITED_ROW_GROUP: usize = 122_880;
/// Rows per batch of a task run again with less memory: every operator buffers whole batches,
/// and a sort reserves twice a batch's size before it can spill.
const FRUGAL_BATCH: usize = 4096;
/// Partitions of a task run again with less memory: the fewest over which DataFusion 55 plans
/// sort-merge joins (with one, every join is a hash join, whose build side cannot spill).
const FRUGAL_PARTITIONS: usize = 2;

/// The size a table's files aim at unless `[engine] target_file_size` says otherwise.
pub const TARGET_FILE_BYTES: u64 = 256 << 20;

/// LZ4 (Parquet's `LZ4_RAW`) rather than DataFusion's zstd(3): most tables weir writes are read
/// again at once by the next task, so decoding speed counts for more than bytes. On the TPC-H
/// pipeline at SF 1, zstd decompression was a fifth of the 22 queries' CPU profile; the codecs
/// side by side are in the README (Memory and large data).
pub const DEFAULT_COMPRESSION: &str = "lz4_raw";

/// What the resolved `[engine]` settings mean for DataFusion: the pool, the spill folder, the
/// planning settings under a limit. The settings are read in `config`; their effect lives here.
impl EngineSettings {
    /// The pool's size in bytes.
    pub fn pool_bytes(&self) -> u64 {
        self.memory_limit
            .unwrap_or_else(|| (physical_memory() as f64 * DEFAULT_SHARE) as u64)
            .max(1 << 20)
    }

    /// The size a table's files aim at.
    pub fn file_bytes(&self) -> u64 {
        self.target_file_size.unwrap_or(TARGET_FILE_BYTES)
    }

    /// Whether the user set a limit: then sorts merge within a bounded reservation and files
    /// are written in small row groups.
    pub fn explicit(&self) -> bool {
        self.memory_limit.is_some()
    }

    /// Stored input bytes from which a task runs alone.
    pub fn heavy_input_bytes(&self) -> u64 {
        self.heavy_input
            .unwrap_or_else(|| (self.pool_bytes() / HEAVY_SHARE).min(HEAVY_CAP))
    }

    /// The memory a task reading `input_bytes` of stored tables is taken to need, for
    /// admission: Arrow in memory is several times the compressed Parquet, and a join or an
    /// aggregate holds more (`HEAVY_SHARE` times, so a heavy task needs the whole pool and
    /// runs alone).
    pub fn estimated_need(&self, input_bytes: u64) -> u64 {
        let pool = self.pool_bytes();
        match input_bytes >= self.heavy_input_bytes() {
            true => pool,
            false => input_bytes.saturating_mul(HEAVY_SHARE).min(pool),
        }
    }

    /// The window after which a query without progress counts as stopped (`engine::stall`).
    pub fn stall_window(&self) -> Option<std::time::Duration> {
        super::stall::window(self.stall)
    }

    /// Settings for queries that must stay within the pool, found by measuring sorts,
    /// aggregates and sort-merge joins of a few million rows at 32 to 96 MiB: a sort merges its
    /// spilled runs within memory it reserves up front, one reservation per sorting partition
    /// (a sort-merge join sorts both sides): an eighth of the pool each let all of them finish,
    /// up to `MAX_MERGE`.
    pub fn tune(&self, options: &mut datafusion::config::ConfigOptions) {
        options.execution.sort_spill_reservation_bytes = self.merge_bytes();
        options.execution.parquet.max_row_group_size = LIMITED_ROW_GROUP;
    }

    /// Settings for a task that ran out of memory, run again alone: two partitions (DataFusion
    /// plans sort-merge joins only over more than one), smaller batches, joins that spill
    /// (sort-merge, but for joins to a small side: `rules::joins`), and one file written at a
    /// time.
    pub(crate) fn frugal(&self, options: &mut datafusion::config::ConfigOptions) {
        self.tune(options);
        options.execution.target_partitions = FRUGAL_PARTITIONS;
        if let Ok(rows) = datafusion::config::ConfigNonZeroUsize::try_new(FRUGAL_BATCH) {
            options.execution.batch_size = rows;
        }
        options.optimizer.prefer_hash_join = false;
        options.execution.parquet.allow_single_file_parallelism = false;
    }

    /// The most spilled runs a sort merges at once.
    fn merge_fan_in(&self) -> usize {
        (self.pool_bytes() as usize / MERGE_POOL_PER_RUN).clamp(MIN_FAN_IN, MERGE_FAN_IN)
    }

    /// What a sort reserves for merging its spilled runs.
    fn merge_bytes(&self) -> usize {
        (self.pool_bytes() as usize / 8).clamp(MIN_MERGE, MAX_MERGE)
    }

    /// The runtime weir's queries run on: the pool, and a disk manager spilling into
    /// `folder`. The benchmark's bare-DataFusion baseline runs on the same.
    pub fn runtime(&self, folder: &Path) -> datafusion::error::Result<Arc<RuntimeEnv>> {
        RuntimeEnvBuilder::new()
            .with_memory_pool(self.pool())
            .with_disk_manager_builder(self.disk(folder))
            .build_arc()
    }

    fn pool(&self) -> Arc<dyn MemoryPool> {
        let size = self.pool_bytes() as usize;
        let pool = super::pool::HeadroomPool::new(size, size / HEADROOM_SHARE);
        // On failure the error names the operators holding the most.
        Arc::new(TrackConsumersPool::new(
            pool,
            NonZeroUsize::MIN.saturating_add(2),
        ))
    }

    /// Where spill and shuffle folders go: `[engine] spill_dir`, else the system's temporary
    /// folder.
    pub fn spill_root(&self) -> PathBuf {
        self.spill_dir.clone().unwrap_or_else(std::env::temp_dir)
    }

    /// Queries spill into `folder` (the engine's own, under `spill_root`).
    fn disk(&self, folder: &Path) -> DiskManagerBuilder {
        DiskManagerBuilder::default()
            .with_mode(DiskManagerMode::Directories(vec![folder.to_path_buf()]))
            .with_max_spill_merge_fan_in(self.merge_fan_in())
    }
}

/// `ctx` with each sort's merge reservation shrunk so that all the sorts of `plan` together
/// reserve at most a `HEADROOM_SHARE`th of the pool. A sort reserves it whether it spills or
/// not, and cannot give it back: TPC-H's `lineitem_enriched`, run again under 128 MiB as
/// sort-merge joins, sorts in 16 partitions at once, and an eighth of the pool each was the
/// whole pool. A merge that needs more grows its reservation while it can, and merges fewer
/// runs at once when it cannot.
pub fn sized_merges(plan: &Arc<dyn ExecutionPlan>, ctx: TaskContext) -> TaskContext {
    let MemoryLimit::Finite(pool) = ctx.runtime_env().memory_pool.memory_limit() else {
        return ctx;
    };
    let sorters = sorting_partitions(plan).max(1);
    let mut config = ctx.session_config().clone();
    let execution = &mut config.options_mut().execution;
    let fair = (pool / HEADROOM_SHARE / sorters).max(MIN_MERGE);
    if execution.sort_spill_reservation_bytes <= fair {
        return ctx;
    }
    execution.sort_spill_reservation_bytes = fair;
    ctx.with_session_config(config)
}

/// How many sorts that may spill `plan` runs at once: one per partition of each sort.
fn sorting_partitions(plan: &Arc<dyn ExecutionPlan>) -> usize {
    let own = match plan.downcast_ref::<SortExec>() {
        // A sort with a limit keeps its top rows in memory and never merges spilled runs.
        Some(sort) if sort.fetch().is_none() => match sort.preserve_partitioning() {
            true => sort.input().output_partitioning().partition_count(),
            false => 1,
        },
        _ => 0,
    };
    own + plan
        .children()
        .into_iter()
        .map(sorting_partitions)
        .sum::<usize>()
}

/// The memory this process may use: the machine's, or its cgroup's limit when lower.
fn physical_memory() -> u64 {
    let total = std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|text| {
            let line = text.lines().find(|l| l.starts_with("MemTotal:"))?;
            let kb: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
            Some(kb * 1024)
        })
        .unwrap_or(8 << 30);
    let cgroup = std::fs::read_to_string("/sys/fs/cgroup/memory.max")
        .ok()
        .and_then(|t| t.trim().parse::<u64>().ok());
    cgroup.map_or(total, |c| c.min(total))
}

/// Give the memory freed since the last call back to the system. glibc keeps freed blocks in
/// its arenas (each thread's) below the trim threshold weir sets, and Arrow's buffers freed
/// by a finished query are many such blocks: measured at TPC-H SF 10 under 1 GiB, a GiB stayed
/// resident after the largest task and the next join's peak came on top of it (1.8 GB). Called
/// when a task ends under a memory limit; elsewhere a no-op.
pub fn release_freed_memory() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: malloc_trim only returns free memory of the allocator's arenas to the system.
    unsafe {
        libc::malloc_trim(0);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use datafusion::prelude::{SessionConfig, SessionContext};

    /// Under 64 MiB a sort alone keeps its eighth of the pool (8 MiB); the sorts of two
    /// sort-merge joins, in two partitions each, share a quarter of it.
    #[tokio::test]
    async fn the_sorts_of_a_plan_share_a_quarter_of_the_pool_for_merging() {
        let settings = EngineSettings {
            memory_limit: Some(64 << 20),
            ..Default::default()
        };
        let mut config = SessionConfig::new().with_target_partitions(2);
        settings.tune(config.options_mut());
        config.options_mut().optimizer.prefer_hash_join = false;
        config
            .options_mut()
            .optimizer
            .hash_join_single_partition_threshold = 0;
        config
            .options_mut()
            .optimizer
            .hash_join_single_partition_threshold_rows = 0;
        let runtime = settings.runtime(&std::env::temp_dir()).unwrap();
        let ctx = SessionContext::new_with_config_rt(config, runtime);
        let reserved = |sql: &'static str| {
            let ctx = ctx.clone();
            async move {
                let plan = ctx
                    .sql(sql)
                    .await
                    .unwrap()
                    .create_physical_plan()
                    .await
                    .unwrap();
                let task = sized_merges(&plan, TaskContext::from(&ctx.state()));
                let each = task
                    .session_config()
                    .options()
                    .execution
                    .sort_spill_reservation_bytes;
                (each, sorting_partitions(&plan))
            }
        };
        let one = "SELECT value FROM generate_series(1, 10) ORDER BY value DESC";
        assert_eq!(reserved(one).await, (8 << 20, 1));
        // Sort-merge joins: two sorts each, in two partitions.
        let joins = "WITH t AS (SELECT value % 7 AS k FROM generate_series(1, 10)) \
                     SELECT a.k FROM t a JOIN t b ON a.k = b.k JOIN t c ON b.k = c.k";
        let (each, sorts) = reserved(joins).await;
        assert!(sorts >= 4, "{sorts}");
        assert_eq!(each, (16 << 20) / sorts);
    }
}
