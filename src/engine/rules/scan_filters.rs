//! Join filters applied to the rows a scan decodes, while they remove most of them.
//!
//! DataFusion hands the keys of a hash join's build side to the probe side's Parquet scan as a
//! dynamic filter. With `pushdown_filters` off (DataFusion's default and weir's: on, it made the
//! 22 TPC-H marts 1.08x-1.17x slower), the scan uses that filter only to skip row groups, and
//! every row it decodes is repartitioned and probed. In TPC-H's q18 that is all 6 M line items
//! and 1.5 M orders, to find the 57 orders its subquery picked. This rule filters the scan's
//! output by its join filters before the rows go anywhere, while that saves work: only by a
//! small build side's keys (DataFusion lists up to 150 of them), not by a lookup in the join's
//! hash table, and only while the filter removes at least half of the rows it sees.

use std::fmt;
use std::hash::{Hash, Hasher};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use datafusion::arrow::array::AsArray;
use datafusion::arrow::datatypes::{DataType, Schema};
use datafusion::arrow::record_batch::RecordBatch;
use datafusion::common::ScalarValue;
use datafusion::common::tree_node::{Transformed, TreeNode};
use datafusion::config::ConfigOptions;
use datafusion::datasource::physical_plan::{FileScanConfig, FileSource, ParquetSource};
use datafusion::datasource::source::DataSourceExec;
use datafusion::error::Result;
use datafusion::logical_expr::ColumnarValue;
use datafusion::logical_expr::Operator;
use datafusion::physical_expr::expressions::{
    BinaryExpr, CaseExpr, Column, DynamicFilterPhysicalExpr, InListExpr, Literal,
};
use datafusion::physical_expr::{PhysicalExpr, conjunction, split_conjunction};
use datafusion::physical_optimizer::PhysicalOptimizerRule;
use datafusion::physical_plan::ExecutionPlan;
use datafusion::physical_plan::filter::FilterExec;
use datafusion::physical_plan::joins::{HashExpr, HashTableLookupExpr};

/// Rows a scan's filter sees before weir judges whether it is worth keeping.
const TRIAL_ROWS: u64 = 256 * 1024;
/// A filter that keeps more than this share of the rows it saw stops filtering.
const KEPT_AT_MOST: f64 = 0.5;

#[derive(Debug, Default)]
pub struct JoinFiltersOnScans;

impl PhysicalOptimizerRule for JoinFiltersOnScans {
    fn optimize(
        &self,
        plan: Arc<dyn ExecutionPlan>,
        _config: &ConfigOptions,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        plan.transform_up(|node| {
            Ok(match filtered(&node)? {
                Some(filtered) => Transformed::yes(filtered),
                None => Transformed::no(node),
            })
        })
        .map(|t| t.data)
    }

    fn name(&self) -> &str {
        "weir_join_filters_on_scans"
    }

    fn schema_check(&self) -> bool {
        true
    }
}

/// `node` under a filter by its dynamic filters, if it is a Parquet scan that has some and does
/// not apply them itself.
fn filtered(node: &Arc<dyn ExecutionPlan>) -> Result<Option<Arc<dyn ExecutionPlan>>> {
    let Some(exec) = node.downcast_ref::<DataSourceExec>() else {
        return Ok(None);
    };
    let Some(config) = exec.data_source().downcast_ref::<FileScanConfig>() else {
        return Ok(None);
    };
    let Some(parquet) = config.file_source().downcast_ref::<ParquetSource>() else {
        return Ok(None);
    };
    let Some(predicate) = parquet.filter() else {
        return Ok(None);
    };
    if parquet.table_parquet_options().global.pushdown_filters {
        return Ok(None);
    }
    let schema = node.schema();
    let filters = split_conjunction(&predicate)
        .into_iter()
        .filter(|e| e.is::<DynamicFilterPhysicalExpr>())
        .filter_map(|e| on_output(e, &schema))
        .map(|filter| Arc::new(WhileSelective::new(filter)) as Arc<dyn PhysicalExpr>)
        .collect::<Vec<_>>();
    if filters.is_empty() {
        return Ok(None);
    }
    let predicate = conjunction(filters);
    Ok(Some(Arc::new(FilterExec::try_new(
        predicate,
        Arc::clone(node),
    )?)))
}

/// `filter` with its columns numbered as in the scan's output (the scan's own copy numbers
/// them as in the file), or `None` if the scan does not output one of them.
fn on_output(filter: &Arc<dyn PhysicalExpr>, schema: &Schema) -> Option<Arc<dyn PhysicalExpr>> {
    let mut missing = false;
    let remapped = Arc::clone(filter)
        .transform_down(|e| {
            let Some(column) = e.downcast_ref::<Column>() else {
                return Ok(Transformed::no(e));
            };
            match schema.index_of(column.name()) {
                Ok(i) => Ok(Transformed::yes(
                    Arc::new(Column::new(column.name(), i)) as _
                )),
                Err(_) => {
                    missing = true;
                    Ok(Transformed::no(e))
                }
            }
        })
        .ok()?
        .data;
    (!missing).then_some(remapped)
}

/// A join filter on a partitioned join as one list of keys. DataFusion writes it as `CASE
/// hash(key) % n WHEN 0 THEN key >= lo0 AND key <= hi0 AND key IN (list0) ... ELSE false END`,
/// which hashes every row and then evaluates a branch per partition over a copy of its rows:
/// 36 ns a row in q17, several times the lookup itself. Each partition's keys hash to that
/// partition, so a key is in its own partition's list exactly when it is in the union of the
/// lists, and within that partition's bounds. `None` for any other shape (a lookup in a hash
/// table, NULL keys kept for the join, ranges), which is then applied as it is.
fn key_list(
    current: &Arc<dyn PhysicalExpr>,
    schema: &Schema,
) -> Result<Option<Arc<dyn PhysicalExpr>>> {
    let branches: Vec<&Arc<dyn PhysicalExpr>> = match current.downcast_ref::<CaseExpr>() {
        Some(case) => {
            let by_hash = case
                .expr()
                .is_some_and(|e| e.children().iter().any(|c| c.is::<HashExpr>()));
            if !by_hash || !case.else_expr().is_some_and(is_false) {
                return Ok(None);
            }
            case.when_then_expr().iter().map(|(_, then)| then).collect()
        }
        None => vec![current],
    };
    let mut lists: Vec<&InListExpr> = Vec::new();
    for branch in branches {
        if is_false(branch) {
            continue;
        }
        let parts = split_conjunction(branch);
        let mut ins = parts.iter().filter_map(|p| p.downcast_ref::<InListExpr>());
        let (Some(list), None) = (ins.next(), ins.next()) else {
            return Ok(None);
        };
        let bounds_only = parts.iter().all(|p| p.is::<InListExpr>() || is_bound(p));
        if list.negated() || !bounds_only {
            return Ok(None);
        }
        lists.push(list);
    }
    let Some(first) = lists.first() else {
        return Ok(None);
    };
    if lists.iter().any(|l| l.expr() != first.expr()) {
        return Ok(None);
    }
    let keys = lists
        .iter()
        .flat_map(|l| l.list().iter().cloned())
        .collect();
    let list = InListExpr::try_new(Arc::clone(first.expr()), keys, false, schema)?;
    Ok(Some(Arc::new(list)))
}

fn is_false(e: &Arc<dyn PhysicalExpr>) -> bool {
    e.downcast_ref::<Literal>()
        .is_some_and(|l| l.value() == &ScalarValue::Boolean(Some(false)))
}

/// `column <op> literal`, as DataFusion bounds a partition's keys.
fn is_bound(e: &&Arc<dyn PhysicalExpr>) -> bool {
    e.downcast_ref::<BinaryExpr>().is_some_and(|b| {
        matches!(
            b.op(),
            Operator::GtEq | Operator::LtEq | Operator::Gt | Operator::Lt
        ) && b.left().is::<Column>()
            && b.right().is::<Literal>()
    })
}

/// Whether `e` is one of this rule's filters, which cannot fail.
pub(super) fn is_join_keys(e: &Arc<dyn PhysicalExpr>) -> bool {
    e.is::<WhileSelective>()
}

/// A dynamic filter that passes every row once it has shown it keeps most of them.
#[derive(Debug)]
struct WhileSelective {
    filter: Arc<dyn PhysicalExpr>,
    seen: AtomicU64,
    kept: AtomicU64,
    off: AtomicBool,
    /// What the filter was turned into, for the filter's generation it was made from.
    made: Mutex<Option<(u64, Arc<dyn PhysicalExpr>)>>,
}

impl WhileSelective {
    fn new(filter: Arc<dyn PhysicalExpr>) -> Self {
        Self {
            filter,
            seen: AtomicU64::new(0),
            kept: AtomicU64::new(0),
            off: AtomicBool::new(false),
            made: Mutex::new(None),
        }
    }

    /// The filter to apply now, `None` to pass every row.
    fn now(&self, schema: &Schema) -> Result<Option<Arc<dyn PhysicalExpr>>> {
        if self.off.load(Ordering::Relaxed) {
            return Ok(None);
        }
        let generation = self.filter.snapshot_generation();
        let mut made = self
            .made
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        if let Some((g, filter)) = made.as_ref()
            && *g == generation
        {
            return Ok(Some(Arc::clone(filter)));
        }
        let current = match self.filter.downcast_ref::<DynamicFilterPhysicalExpr>() {
            Some(dynamic) => dynamic.current()?,
            None => Arc::clone(&self.filter),
        };
        // Not known yet (the build side is still being read): nothing to filter by.
        if current
            .downcast_ref::<Literal>()
            .is_some_and(|l| l.value() == &ScalarValue::Boolean(Some(true)))
        {
            return Ok(None);
        }
        // A lookup in the join's hash table costs what the join's own probe does: filtering by
        // it moves the work, it does not save it (measured: q03, q05, q09 and q20 slower).
        if current.exists(|e| Ok(e.is::<HashTableLookupExpr>()))? {
            self.off.store(true, Ordering::Relaxed);
            return Ok(None);
        }
        let filter = key_list(&current, schema)?.unwrap_or(current);
        *made = Some((generation, Arc::clone(&filter)));
        Ok(Some(filter))
    }

    fn judge(&self, rows: u64, kept: u64) {
        let seen = self.seen.fetch_add(rows, Ordering::Relaxed) + rows;
        let kept = self.kept.fetch_add(kept, Ordering::Relaxed) + kept;
        if seen >= TRIAL_ROWS && kept as f64 > seen as f64 * KEPT_AT_MOST {
            self.off.store(true, Ordering::Relaxed);
        }
    }
}

const ALL: ColumnarValue = ColumnarValue::Scalar(ScalarValue::Boolean(Some(true)));

impl PhysicalExpr for WhileSelective {
    fn data_type(&self, _input_schema: &Schema) -> Result<DataType> {
        Ok(DataType::Boolean)
    }

    fn nullable(&self, _input_schema: &Schema) -> Result<bool> {
        Ok(true)
    }

    fn evaluate(&self, batch: &RecordBatch) -> Result<ColumnarValue> {
        let Some(filter) = self.now(batch.schema_ref())? else {
            return Ok(ALL);
        };
        let mask = filter.evaluate(batch)?.into_array(batch.num_rows())?;
        let kept = mask.as_boolean().true_count();
        self.judge(batch.num_rows() as u64, kept as u64);
        Ok(ColumnarValue::Array(mask))
    }

    fn children(&self) -> Vec<&Arc<dyn PhysicalExpr>> {
        vec![&self.filter]
    }

    fn with_new_children(
        self: Arc<Self>,
        children: Vec<Arc<dyn PhysicalExpr>>,
    ) -> Result<Arc<dyn PhysicalExpr>> {
        let [filter] = <[_; 1]>::try_from(children).map_err(|c| {
            datafusion::error::DataFusionError::Internal(format!(
                "a join filter takes one child, not {}",
                c.len()
            ))
        })?;
        Ok(Arc::new(Self::new(filter)))
    }

    fn fmt_sql(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.filter.fmt_sql(f)
    }
}

impl fmt::Display for WhileSelective {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "join keys, while selective: {}", self.filter)
    }
}

impl PartialEq for WhileSelective {
    fn eq(&self, other: &Self) -> bool {
        self.filter.eq(&other.filter)
    }
}

impl Eq for WhileSelective {}

impl Hash for WhileSelective {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.filter.hash(state);
    }
}
