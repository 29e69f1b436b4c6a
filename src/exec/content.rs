//! A table's content hash, taken as it is written: every row is hashed (all its columns) and
//! the row hashes are summed, so the hash does not depend on the order rows arrive in, which
//! varies with partitions. Two builds with the same hash hold the same rows: a rebuilt task
//! whose output did not change lets what reads it keep its build (early cutoff).

use std::collections::HashMap;
use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use datafusion::arrow::array::{AsArray, RecordBatch, StringArray};
use datafusion::arrow::compute::cast;
use datafusion::arrow::datatypes::{DataType, Schema};
use datafusion::common::hash_utils::{QualityRandomState, create_hashes};
use datafusion::common::tree_node::TreeNodeRecursion;
use datafusion::error::DataFusionError;
use datafusion::error::Result;
use datafusion::execution::{SendableRecordBatchStream, TaskContext};
use datafusion::physical_expr::PhysicalExpr;
use datafusion::physical_plan::stream::RecordBatchStreamAdapter;
use datafusion::physical_plan::{DisplayAs, DisplayFormatType, ExecutionPlan, PlanProperties};
use futures::StreamExt;
use object_store::path::{Path as ObjectPath, PathPart};

/// Fixed seeds: the hash of a row is the same in every process and run.
const ROWS: QualityRandomState = QualityRandomState::with_seed(0x7765_6972);

/// The running sum of row hashes and the row count, shared by every partition's stream; for a
/// table written in Hive folders (`partition_by`), also by folder.
#[derive(Debug, Default)]
pub struct Content {
    sum: AtomicU64,
    rows: AtomicU64,
    /// The partition columns, whose values name the folders.
    partition_by: Vec<String>,
    /// Row hashes and rows by folder (`day=2026-12-01`, as the writer names it).
    folders: Mutex<HashMap<String, Sum>>,
}

/// The sum of some rows' hashes and their count.
#[derive(Debug, Default, Clone, Copy)]
pub struct Sum {
    pub sum: u64,
    pub rows: u64,
}

impl Sum {
    /// The content hash of these rows, with the columns' names and types.
    pub fn finish(&self, schema: &Schema) -> String {
        let mut hasher = blake3::Hasher::new();
        for f in schema.fields() {
            hasher.update(format!("{}\t{}\n", f.name(), f.data_type()).as_bytes());
        }
        hasher.update(&self.rows.to_le_bytes());
        hasher.update(&self.sum.to_le_bytes());
        hasher.finalize().to_hex()[..32].to_string()
    }
}

impl Content {
    /// The content hash of the rows seen, with the columns' names and types.
    pub fn finish(&self, schema: &Schema) -> String {
        Sum {
            sum: self.sum.load(Ordering::Relaxed),
            rows: self.rows.load(Ordering::Relaxed),
        }
        .finish(schema)
    }

    /// What each folder of a partitioned write received, by its name.
    pub fn folders(&self) -> HashMap<String, Sum> {
        self.folders
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// Add a batch's row hashes, by folder when the write is partitioned.
    fn add(&self, batch: &RecordBatch, hashes: &[u64]) -> Result<()> {
        let sum = hashes.iter().fold(0u64, |a, h| a.wrapping_add(*h));
        self.sum.fetch_add(sum, Ordering::Relaxed);
        self.rows
            .fetch_add(batch.num_rows() as u64, Ordering::Relaxed);
        if self.partition_by.is_empty() || batch.num_rows() == 0 {
            return Ok(());
        }
        let mut values = Vec::with_capacity(self.partition_by.len());
        for name in &self.partition_by {
            let column = batch.column_by_name(name).ok_or_else(|| {
                DataFusionError::Plan(format!("no column {name} to partition by"))
            })?;
            if column.null_count() > 0 {
                // The writer would name their folder after a default value (0, "", 1970-01-01).
                return Err(DataFusionError::Execution(format!(
                    "partition column `{name}` is null in {} rows: a partition needs a value (filter them out or give them one with COALESCE)",
                    column.null_count()
                )));
            }
            values.push(cast(column, &DataType::Utf8)?);
        }
        let strings: Vec<&StringArray> = values.iter().map(|v| v.as_string::<i32>()).collect();
        let mut local: HashMap<String, Sum> = HashMap::new();
        let mut start = 0;
        // Rows of one folder usually come in runs: one name per run, not per row.
        for row in 1..=batch.num_rows() {
            let same =
                row < batch.num_rows() && strings.iter().all(|s| s.value(row) == s.value(start));
            if same {
                continue;
            }
            let folder = self.folder(&strings, start);
            let run = local.entry(folder).or_default();
            run.rows += (row - start) as u64;
            run.sum = hashes[start..row]
                .iter()
                .fold(run.sum, |a, h| a.wrapping_add(*h));
            start = row;
        }
        let mut folders = self.folders.lock().unwrap_or_else(|e| e.into_inner());
        for (folder, run) in local {
            let total = folders.entry(folder).or_default();
            total.rows += run.rows;
            total.sum = total.sum.wrapping_add(run.sum);
        }
        Ok(())
    }

    /// The folder of row `row`, named as DataFusion's writer names it (an object path's
    /// segments, escaped as object_store escapes them).
    fn folder(&self, strings: &[&StringArray], row: usize) -> String {
        let parts = self
            .partition_by
            .iter()
            .zip(strings)
            .map(|(name, s)| PathPart::from(format!("{name}={}", s.value(row))));
        ObjectPath::from_iter(parts).to_string()
    }
}

/// A plan to run, and where the hash of what it writes accumulates (if it could be hashed).
pub type Hashed = (Arc<dyn ExecutionPlan>, Option<Arc<Content>>);

/// `plan` (a write) with its input hashed on the way: the plan to run, and where the hash
/// accumulates. A plan of another shape is returned as is, without a hash.
pub fn hashed(plan: Arc<dyn ExecutionPlan>, partition_by: &[String]) -> Result<Hashed> {
    let children = plan.children();
    let [input] = children.as_slice() else {
        return Ok((plan, None));
    };
    let content = Arc::new(Content {
        partition_by: partition_by.to_vec(),
        ..Content::default()
    });
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
            content.add(&batch, &hashes)?;
            Ok(batch)
        });
        Ok(Box::pin(RecordBatchStreamAdapter::new(
            self.input.schema(),
            hashed,
        )))
    }
}
