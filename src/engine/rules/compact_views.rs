//! Strings a sort buffers are compacted first. A string column of DataFusion 55 is a view
//! array: each row points into shared data buffers, and a join's or a filter's output batch of
//! a few thousand rows can point into megabytes of its input's buffers. A sort reserves twice
//! each batch's size as it buffers it, counting every buffer the batch points into, so under a
//! memory limit a batch of 150 KB of rows was counted as 2.1 MB and, once the sort had spilled
//! all it held, could not be reserved at all (`ExternalSorter[0] could not get 2.1 MB more`, a
//! 200,000-row join sorted under 16 MiB). This rule, run under a limit, puts a node before each
//! sort that copies the strings a batch uses into buffers of its own when the buffers it points
//! into are much larger: what the sort counts is then what it holds. DataFusion does the same
//! to batches it spills (`gc_view_arrays`), not to those it keeps.

use std::fmt;
use std::sync::Arc;

use datafusion::arrow::array::{
    Array, ArrayRef, AsArray, GenericByteViewArray, RecordBatch, RecordBatchOptions,
};
use datafusion::arrow::datatypes::{ByteViewType, DataType, Schema};
use datafusion::common::tree_node::{Transformed, TreeNode, TreeNodeRecursion};
use datafusion::config::ConfigOptions;
use datafusion::error::Result;
use datafusion::execution::{SendableRecordBatchStream, TaskContext};
use datafusion::physical_expr::PhysicalExpr;
use datafusion::physical_optimizer::PhysicalOptimizerRule;
use datafusion::physical_plan::sorts::sort::SortExec;
use datafusion::physical_plan::stream::RecordBatchStreamAdapter;
use datafusion::physical_plan::{DisplayAs, DisplayFormatType, ExecutionPlan, PlanProperties};
use futures::StreamExt;

/// A view array is compacted when the buffers it points into are this many times the bytes
/// its rows use there: copying costs about what the sort's own copy costs, so only a large
/// overcount is worth it.
const WASTE: usize = 4;
/// Nor when those buffers are smaller than this: the overcount is then too small to matter.
const MIN_BUFFERS: usize = 256 << 10;

#[derive(Debug, Default)]
pub struct CompactViewsBeforeSorts;

impl PhysicalOptimizerRule for CompactViewsBeforeSorts {
    fn optimize(
        &self,
        plan: Arc<dyn ExecutionPlan>,
        _config: &ConfigOptions,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        plan.transform_up(|node| {
            let Some(sort) = node.downcast_ref::<SortExec>() else {
                return Ok(Transformed::no(node));
            };
            let input = sort.input();
            if !has_views(&input.schema()) || input.downcast_ref::<CompactViews>().is_some() {
                return Ok(Transformed::no(node));
            }
            let compact: Arc<dyn ExecutionPlan> = Arc::new(CompactViews {
                input: input.clone(),
            });
            #[allow(deprecated)]
            let sort = node.clone().with_new_children(vec![compact])?;
            Ok(Transformed::yes(sort))
        })
        .map(|t| t.data)
    }

    fn name(&self) -> &str {
        "weir_compact_views_before_sorts"
    }

    fn schema_check(&self) -> bool {
        true
    }
}

fn has_views(schema: &Schema) -> bool {
    schema
        .fields()
        .iter()
        .any(|f| matches!(f.data_type(), DataType::Utf8View | DataType::BinaryView))
}

/// Passes its input's batches on, with view columns that point into much more than they use
/// copied into buffers of their own.
#[derive(Debug)]
pub struct CompactViews {
    input: Arc<dyn ExecutionPlan>,
}

impl DisplayAs for CompactViews {
    fn fmt_as(&self, _t: DisplayFormatType, f: &mut fmt::Formatter) -> fmt::Result {
        write!(f, "CompactViews")
    }
}

#[allow(deprecated)]
impl ExecutionPlan for CompactViews {
    fn name(&self) -> &str {
        "CompactViews"
    }

    fn properties(&self) -> &Arc<PlanProperties> {
        self.input.properties()
    }

    fn children(&self) -> Vec<&Arc<dyn ExecutionPlan>> {
        vec![&self.input]
    }

    fn maintains_input_order(&self) -> Vec<bool> {
        vec![true]
    }

    fn benefits_from_input_partitioning(&self) -> Vec<bool> {
        vec![false]
    }

    fn apply_expressions(
        &self,
        _f: &mut dyn FnMut(&Arc<dyn PhysicalExpr>) -> Result<TreeNodeRecursion>,
    ) -> Result<TreeNodeRecursion> {
        Ok(TreeNodeRecursion::Continue)
    }

    fn with_new_children(
        self: Arc<Self>,
        mut children: Vec<Arc<dyn ExecutionPlan>>,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        Ok(Arc::new(CompactViews {
            input: children.swap_remove(0),
        }))
    }

    fn execute(
        &self,
        partition: usize,
        context: Arc<TaskContext>,
    ) -> Result<SendableRecordBatchStream> {
        let stream = self.input.execute(partition, context)?;
        let compacted = stream.map(|batch| compact(batch?));
        Ok(Box::pin(RecordBatchStreamAdapter::new(
            self.input.schema(),
            compacted,
        )))
    }
}

/// `batch` with its wasteful view columns compacted (as is when none is).
fn compact(batch: RecordBatch) -> Result<RecordBatch> {
    let mut columns: Vec<ArrayRef> = batch.columns().to_vec();
    let mut changed = false;
    for column in &mut columns {
        let compacted = match column.data_type() {
            DataType::Utf8View => compacted(column.as_string_view()),
            DataType::BinaryView => compacted(column.as_binary_view()),
            _ => None,
        };
        if let Some(c) = compacted {
            *column = c;
            changed = true;
        }
    }
    if !changed {
        return Ok(batch);
    }
    let options = RecordBatchOptions::new().with_row_count(Some(batch.num_rows()));
    Ok(RecordBatch::try_new_with_options(
        batch.schema(),
        columns,
        &options,
    )?)
}

/// `array` with its strings in buffers of its own, when the buffers it points into are much
/// larger than what it uses of them.
fn compacted<T: ByteViewType + ?Sized>(array: &GenericByteViewArray<T>) -> Option<ArrayRef> {
    let buffers: usize = array.data_buffers().iter().map(|b| b.capacity()).sum();
    if buffers < MIN_BUFFERS || buffers < array.total_buffer_bytes_used().saturating_mul(WASTE) {
        return None;
    }
    Some(Arc::new(array.gc()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use datafusion::arrow::array::StringViewArray;

    /// A slice of a few rows of a large view array is compacted to what it uses; the large
    /// array itself is left as is.
    #[test]
    fn slices_of_large_view_arrays_are_compacted() {
        let values: Vec<String> = (0..50_000)
            .map(|i| format!("a string longer than twelve {i}"))
            .collect();
        let whole = StringViewArray::from_iter_values(values.iter());
        assert!(compacted(&whole).is_none());
        let slice = whole.slice(100, 10);
        let small = compacted(&slice).expect("a slice pointing into 1.5 MB is compacted");
        let small = small.as_string_view();
        assert_eq!(small.len(), 10);
        assert_eq!(small.value(0), values[100]);
        let bytes: usize = small.data_buffers().iter().map(|b| b.capacity()).sum();
        assert!(bytes < 4096, "{bytes}");
    }
}
