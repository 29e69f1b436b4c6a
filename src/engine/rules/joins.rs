//! Joins under a memory limit. A hash join's build side cannot spill in DataFusion 55, so with
//! a limit weir plans sort-merge joins (`prefer_hash_join = false`), which can. But a sort-merge
//! join sorts both of its inputs, and a chain of them sorts the large side again at every join:
//! TPC-H's `lineitem_enriched` (line items joined to orders, customers, nations and regions)
//! sorted 60 M wide rows four times at SF 10, and four external sorts' merge reservations did not
//! fit in 1 GiB together. A join whose smaller side is known to be small needs no sort: this rule
//! makes it a hash join again, building on that side, as long as the builds of one query stay
//! within a share of the pool. It runs first, before DataFusion's own rules place the joins'
//! partitioning, choose their build sides and add the sorts the remaining merge joins need.

use std::sync::Arc;

use datafusion::arrow::datatypes::Schema;
use datafusion::common::JoinType;
use datafusion::common::stats::Precision;
use datafusion::common::tree_node::{Transformed, TreeNode};
use datafusion::config::ConfigOptions;
use datafusion::error::Result;
use datafusion::physical_optimizer::PhysicalOptimizerRule;
use datafusion::physical_plan::ExecutionPlan;
use datafusion::physical_plan::joins::{HashJoinExec, PartitionMode, SortMergeJoinExec};
use datafusion::physical_plan::statistics::{StatisticsArgs, StatisticsContext};

/// Of the pool: what a query's hash builds may take together.
const BUILDS_SHARE: u64 = 4;
/// A hash table's own cost per build row (its hash, its chain link, spare capacity).
const TABLE_BYTES_PER_ROW: u64 = 32;
/// What a value of a type without a fixed width is taken to cost (offsets included).
const VARIABLE_WIDTH: u64 = 32;

#[derive(Debug)]
pub struct SmallJoinsHashed {
    pool_bytes: u64,
}

impl SmallJoinsHashed {
    pub fn new(pool_bytes: u64) -> Self {
        Self { pool_bytes }
    }
}

impl PhysicalOptimizerRule for SmallJoinsHashed {
    fn optimize(
        &self,
        plan: Arc<dyn ExecutionPlan>,
        _config: &ConfigOptions,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        let mut budget = self.pool_bytes / BUILDS_SHARE;
        plan.transform_up(|node| {
            let Some(smj) = node.downcast_ref::<SortMergeJoinExec>() else {
                return Ok(Transformed::no(node));
            };
            match hashed(smj, budget)? {
                Some((join, bytes)) => {
                    budget -= bytes;
                    Ok(Transformed::yes(join))
                }
                None => Ok(Transformed::no(node)),
            }
        })
        .map(|t| t.data)
    }

    fn name(&self) -> &str {
        "weir_small_joins_hashed"
    }

    fn schema_check(&self) -> bool {
        true
    }
}

/// `smj` as a hash join building on its smaller side, with what that build is estimated to
/// hold, if it is at most `limit` bytes.
fn hashed(smj: &SortMergeJoinExec, limit: u64) -> Result<Option<(Arc<dyn ExecutionPlan>, u64)>> {
    let (left, right) = (estimate(smj.left()), estimate(smj.right()));
    let build_left = match (left, right) {
        (Some(l), Some(r)) => l <= r,
        (Some(_), None) => true,
        (None, Some(_)) => false,
        (None, None) => return Ok(None),
    };
    let bytes = if build_left { left } else { right }.unwrap_or(u64::MAX);
    let join_type = smj.join_type();
    let streams = streams_with_build(join_type, build_left);
    if bytes > limit || !streams || (!build_left && !join_type.supports_swap()) {
        tracing::debug!(
            ?left,
            ?right,
            limit,
            "{join_type} join kept as a sort-merge join"
        );
        return Ok(None);
    }
    tracing::debug!(?left, ?right, limit, "{join_type} join made a hash join");
    let join = HashJoinExec::try_new(
        smj.left().clone(),
        smj.right().clone(),
        smj.on().to_vec(),
        smj.filter().clone(),
        &join_type,
        None,
        PartitionMode::Auto,
        smj.null_equality(),
        false,
    )?;
    let join: Arc<dyn ExecutionPlan> = match build_left {
        true => Arc::new(join),
        false => join.swap_inputs(PartitionMode::Auto)?,
    };
    Ok(Some((join, bytes)))
}

/// Whether a hash join of `join_type` building on the left (`build_left`) or right input emits
/// its rows as it probes. One that must also emit build rows when probing ends (the matched or
/// unmatched rows of the side kept whole) emits them all in one batch: TPC-H q21's semi join,
/// built on its kept side, gave a sort one batch of 54 MB at SF 10.
fn streams_with_build(join_type: JoinType, build_left: bool) -> bool {
    match join_type {
        JoinType::Inner => true,
        JoinType::Left | JoinType::LeftSemi | JoinType::LeftAnti | JoinType::LeftMark => {
            !build_left
        }
        JoinType::Right | JoinType::RightSemi | JoinType::RightAnti | JoinType::RightMark => {
            build_left
        }
        JoinType::Full => false,
    }
}

/// The bytes a hash table of `plan`'s rows would hold, from its statistics; `None` when its
/// row count is unknown. The larger of the statistics' byte size and the schema's row width
/// times the rows, as a Parquet file's byte size counts only the columns' encoded bytes.
fn estimate(plan: &Arc<dyn ExecutionPlan>) -> Option<u64> {
    let stats = StatisticsContext::new()
        .compute(plan.as_ref(), &StatisticsArgs::new())
        .ok()?;
    // An estimate (after a filter, say) counts double: DataFusion's default selectivity of a
    // filter is 20%, and TPC-H q21's `o_orderstatus = 'F'` keeps 49%.
    let rows = match stats.num_rows {
        Precision::Exact(n) => n as u64,
        Precision::Inexact(n) => (n as u64).saturating_mul(2),
        Precision::Absent => return None,
    };
    let by_schema = rows.saturating_mul(row_width(&plan.schema()));
    let by_stats = stats.total_byte_size.get_value().map_or(0, |b| *b as u64);
    Some(
        by_schema
            .max(by_stats)
            .saturating_add(rows.saturating_mul(TABLE_BYTES_PER_ROW)),
    )
}

fn row_width(schema: &Schema) -> u64 {
    schema
        .fields()
        .iter()
        .map(|f| {
            f.data_type()
                .primitive_width()
                .map_or(VARIABLE_WIDTH, |w| w as u64)
        })
        .sum()
}
