//! A table's content hash, taken as it is written: every row is hashed (all its columns) and
//! the row hashes are summed, so the hash does not depend on the order rows arrive in, which
//! varies with partitions. Two builds with the same hash hold the same rows: a rebuilt task
//! whose output did not change lets what reads it keep its build (early cutoff).

use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use datafusion::arrow::datatypes::Schema;
use datafusion::common::hash_utils::{QualityRandomState, create_hashes};
use datafusion::common::tree_node::TreeNodeRecursion;
use datafusion::error::Result;
use datafusion::execution::{SendableRecordBatchStream, TaskContext};
use datafusion::physical_expr::PhysicalExpr;
use datafusion::physical_plan::stream::RecordBatchStreamAdapter;
use datafusion::physical_plan::{DisplayAs, DisplayFormatType, ExecutionPlan, PlanProperties};
use futures::StreamExt;

/// Fixed seeds: the hash of a row is the same in every process and run.
const ROWS: QualityRandomState = QualityRandomState::with_seed(0x7765_6972);

/// The running sum of row hashes and the row count, shared by every partition's stream.
#[derive(Debug, Default)]
pub struct Content {
    sum: AtomicU64,
    rows: AtomicU64,
}

impl Content {
    /// The content hash of the rows seen, with the columns' names and types.
    pub fn finish(&self, schema: &Schema) -> String {
        let mut hasher = blake3::Hasher::new();
        for f in schema.fields() {
            hasher.update(format!("{}\t{}\n", f.name(), f.data_type()).as_bytes());
        }
        hasher.update(&self.rows.load(Ordering::Relaxed).to_le_bytes());
        hasher.update(&self.sum.load(Ordering::Relaxed).to_le_bytes());
        hasher.finalize().to_hex()[..32].to_string()
    }
}

/// A plan to run, and where the hash of what it writes accumulates (if it could be hashed).
pub type Hashed = (Arc<dyn ExecutionPlan>, Option<Arc<Content>>);

/// `plan` (a write) with its input hashed on the way: the plan to run, and where the hash
/// accumulates. A plan of another shape is returned as is, without a hash.
pub fn hashed(plan: Arc<dyn ExecutionPlan>) -> Result<Hashed> {
    let children = plan.children();
    let [input] = children.as_slice() else {
        return Ok((plan, None));
    };
    let content = Arc::new(Content::default());
    let node: Arc<dyn ExecutionPlan> = Arc::new(HashRows {
        input: (*input).clone(),
        content: content.clone(),
    });
    #[allow(deprecated)]
    let plan = plan.with_new_children(vec![node])?;
    Ok((plan, Some(content)))
}

/// Passes its input's batches through unchanged, adding their rows' hashes to `content`.
#[derive(Debug)]
struct HashRows {
    input: Arc<dyn ExecutionPlan>,
    content: Arc<Content>,
}

impl DisplayAs for HashRows {
    fn fmt_as(&self, _t: DisplayFormatType, f: &mut fmt::Formatter) -> fmt::Result {
        write!(f, "HashRows")
    }
}

#[allow(deprecated)]
impl ExecutionPlan for HashRows {
    fn name(&self) -> &str {
        "HashRows"
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
        let input = children.swap_remove(0);
        Ok(Arc::new(HashRows {
            input,
            content: self.content.clone(),
        }))
    }

    fn execute(
        &self,
        partition: usize,
        context: Arc<TaskContext>,
    ) -> Result<SendableRecordBatchStream> {
        let stream = self.input.execute(partition, context)?;
        let content = self.content.clone();
        let mut hashes: Vec<u64> = Vec::new();
        let hashed = stream.map(move |batch| {
            let batch = batch?;
            hashes.clear();
            hashes.resize(batch.num_rows(), 0);
            create_hashes(batch.columns(), &ROWS, &mut hashes)?;
            let sum = hashes.iter().fold(0u64, |a, h| a.wrapping_add(*h));
            content.sum.fetch_add(sum, Ordering::Relaxed);
            content
                .rows
                .fetch_add(batch.num_rows() as u64, Ordering::Relaxed);
            Ok(batch)
        });
        Ok(Box::pin(RecordBatchStreamAdapter::new(
            self.input.schema(),
            hashed,
        )))
    }
}
