//! A filter's conditions taken one at a time, each over the rows the ones before it kept, in
//! the order that has cost least so far.
//!
//! DataFusion evaluates `a AND b AND c` over every row of a batch for each condition (it skips
//! rows only once the conditions before kept a fifth of them or fewer), in the order the query
//! wrote them. TPC-H's q12 filters 6 M line items by ship mode, two date comparisons and a
//! one-year range of receipt dates, in that order: its filter took 185 ms of CPU, and 80 ms
//! with the range written first. This rule orders a filter's conditions by what they cost and
//! what they removed while the query runs (cost per row over the share of rows removed: the
//! order that does least work when conditions are independent) and gives each only the rows
//! still kept, gathering just the columns it reads.
//!
//! Conditions are reordered only when none of them can fail (comparisons, `IN` lists, `LIKE`,
//! `IS NULL`, and `AND`, `OR`, `NOT` of those, over columns and literals), and one that can
//! fail always gets only the rows kept before it: in `x <> 0 AND 10 / x > 1` the guard guards,
//! where DataFusion alone divides every row by `x` and fails. A condition given fewer rows
//! never fails where it did not before. A filter keeps a row only where its predicate is true,
//! so a row dropped by one condition needs no answer from the others, NULL or not.

use std::collections::HashSet;
use std::fmt;
use std::hash::{Hash, Hasher};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use datafusion::arrow::array::{Array, ArrayRef, AsArray, BooleanArray, UInt32Array};
use datafusion::arrow::buffer::{BooleanBuffer, MutableBuffer};
use datafusion::arrow::compute::{and, filter, prep_null_mask_filter, take};
use datafusion::arrow::datatypes::{DataType, Schema};
use datafusion::arrow::record_batch::{RecordBatch, RecordBatchOptions};
use datafusion::common::ScalarValue;
use datafusion::common::tree_node::{Transformed, TreeNode};
use datafusion::config::ConfigOptions;
use datafusion::error::{DataFusionError, Result};
use datafusion::logical_expr::{ColumnarValue, Operator};
use datafusion::physical_expr::expressions::{
    BinaryExpr, Column, DynamicFilterPhysicalExpr, InListExpr, IsNotNullExpr, IsNullExpr, LikeExpr,
    Literal, NotExpr,
};
use datafusion::physical_expr::utils::collect_columns;
use datafusion::physical_expr::{PhysicalExpr, conjunction, split_conjunction};
use datafusion::physical_optimizer::PhysicalOptimizerRule;
use datafusion::physical_plan::ExecutionPlan;
use datafusion::physical_plan::filter::{FilterExec, FilterExecBuilder};

/// What copying one value of a kept row costs, in nanoseconds, against which a condition's
/// own cost per row decides whether it gets only the kept rows or the whole batch. Measured on
/// TPC-H's line items: a date comparison (0.3-0.5 ns a row) is cheaper over a whole batch than
/// over a copy of a third of it; a string comparison or `LIKE` (2-30 ns) is not.
const COPY_NANOS: f64 = 2.0;
/// One batch in this many gives each condition the whole batch, to measure it there again.
const MEASURE_EVERY: u64 = 32;

#[derive(Debug, Default)]
pub struct ConjunctsInTurn;

impl PhysicalOptimizerRule for ConjunctsInTurn {
    fn optimize(
        &self,
        plan: Arc<dyn ExecutionPlan>,
        _config: &ConfigOptions,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        // Top down, so that a filter takes in the one right under it before that one is seen.
        plan.transform_down(|node| {
            Ok(match in_turn(&node)? {
                Some(filter) => Transformed::yes(filter),
                None => Transformed::no(node),
            })
        })
        .map(|t| t.data)
    }

    fn name(&self) -> &str {
        "weir_conjuncts_in_turn"
    }

    fn schema_check(&self) -> bool {
        true
    }
}

/// `node` with its conditions in turn, if it is a filter of more than one. A filter right under
/// it with no projection or limit (as `scan_filters` puts join keys over a scan) joins in, so
/// that the cheapest of both goes first.
fn in_turn(node: &Arc<dyn ExecutionPlan>) -> Result<Option<Arc<dyn ExecutionPlan>>> {
    let Some(exec) = node.downcast_ref::<FilterExec>() else {
        return Ok(None);
    };
    if exec.predicate().is::<InTurn>() {
        return Ok(None);
    }
    let mut input = Arc::clone(exec.input());
    let mut conjuncts: Vec<Arc<dyn PhysicalExpr>> = Vec::new();
    if let Some(below) = input.downcast_ref::<FilterExec>()
        && below.projection().is_none()
        && below.fetch().is_none()
        && !below.predicate().is::<InTurn>()
    {
        conjuncts.extend(split_conjunction(below.predicate()).into_iter().cloned());
        input = Arc::clone(below.input());
    }
    conjuncts.extend(split_conjunction(exec.predicate()).into_iter().cloned());
    if conjuncts.len() < 2 {
        return Ok(None);
    }
    let predicate = Arc::new(InTurn::new(conjuncts, input.schema().fields().len()));
    let filter = FilterExecBuilder::from(exec)
        .with_input(input)
        .with_predicate(predicate)
        .build()?;
    Ok(Some(Arc::new(filter)))
}

/// Whether `e` cannot fail on any row, so that it may be evaluated before the conditions
/// written ahead of it.
fn cannot_fail(e: &Arc<dyn PhysicalExpr>) -> bool {
    let this = match e.downcast_ref::<BinaryExpr>() {
        Some(binary) => matches!(
            binary.op(),
            Operator::Eq
                | Operator::NotEq
                | Operator::Lt
                | Operator::LtEq
                | Operator::Gt
                | Operator::GtEq
                | Operator::IsDistinctFrom
                | Operator::IsNotDistinctFrom
                | Operator::And
                | Operator::Or
                | Operator::LikeMatch
                | Operator::NotLikeMatch
                | Operator::ILikeMatch
                | Operator::NotILikeMatch
        ),
        None => {
            e.is::<Column>()
                || e.is::<Literal>()
                || e.is::<NotExpr>()
                || e.is::<IsNullExpr>()
                || e.is::<IsNotNullExpr>()
                || e.is::<LikeExpr>()
                || e.is::<InListExpr>()
                || e.is::<DynamicFilterPhysicalExpr>()
                || super::scan_filters::is_join_keys(e)
        }
    };
    this && e.children().into_iter().all(cannot_fail)
}

/// One condition, with what it has cost and kept over every batch of every partition.
#[derive(Debug)]
struct Conjunct {
    expr: Arc<dyn PhysicalExpr>,
    /// Whether it reads the batch's column of that index.
    reads: Vec<bool>,
    /// How many columns it reads: what a copy of a kept row costs it.
    read_count: usize,
    /// Whether it may fail on a row, so that it must see only the rows kept before it.
    may_fail: bool,
    rows: AtomicU64,
    kept: AtomicU64,
    nanos: AtomicU64,
    /// The least it cost per row over a whole batch, in nanoseconds (as `f64` bits): the
    /// least, because a machine's noise only ever adds. Infinite until measured.
    whole_cost: AtomicU64,
}

impl Conjunct {
    fn new(expr: Arc<dyn PhysicalExpr>, columns: usize) -> Self {
        let read: HashSet<usize> = collect_columns(&expr).iter().map(|c| c.index()).collect();
        Self {
            reads: (0..columns).map(|i| read.contains(&i)).collect(),
            read_count: read.len(),
            may_fail: !cannot_fail(&expr),
            expr,
            rows: AtomicU64::new(0),
            kept: AtomicU64::new(0),
            nanos: AtomicU64::new(0),
            whole_cost: AtomicU64::new(f64::INFINITY.to_bits()),
        }
    }

    fn record(&self, rows: usize, kept: usize, started: Instant, whole: bool) {
        let nanos = started.elapsed().as_nanos().min(u64::MAX as u128) as u64;
        self.rows.fetch_add(rows as u64, Ordering::Relaxed);
        self.kept.fetch_add(kept as u64, Ordering::Relaxed);
        self.nanos.fetch_add(nanos, Ordering::Relaxed);
        if whole && rows > 0 {
            // Non-negative floats order as their bits do.
            let cost = nanos as f64 / rows as f64;
            self.whole_cost.fetch_min(cost.to_bits(), Ordering::Relaxed);
        }
    }

    /// Whether this condition costs less over a copy of the `kept` rows of `rows` than over
    /// the whole batch. One never yet run over a whole batch is taken to cost a nanosecond a
    /// row, as a comparison of numbers does.
    fn gathers(&self, kept: usize, rows: usize) -> bool {
        if self.may_fail {
            return true;
        }
        let cost = match f64::from_bits(self.whole_cost.load(Ordering::Relaxed)) {
            c if c.is_finite() => c,
            _ => 1.0,
        };
        let share = kept as f64 / rows as f64;
        share * (self.read_count as f64 * COPY_NANOS + cost) < cost
    }

    /// Its cost per row over the share of rows it removes: lower goes first. One never yet
    /// given a row goes first, so that it gets measured.
    fn rank(&self) -> f64 {
        let rows = self.rows.load(Ordering::Relaxed);
        if rows == 0 {
            return f64::NEG_INFINITY;
        }
        let removed = 1.0 - self.kept.load(Ordering::Relaxed) as f64 / rows as f64;
        let cost = self.nanos.load(Ordering::Relaxed) as f64 / rows as f64;
        cost / removed.max(1e-6)
    }
}

/// The conditions of a filter, evaluated in turn (see the module's comment).
#[derive(Debug)]
pub struct InTurn {
    conjuncts: Vec<Conjunct>,
    reorder: bool,
    order: Mutex<Vec<usize>>,
    batches: AtomicU64,
}

impl InTurn {
    /// Over batches of `columns` columns.
    fn new(conjuncts: Vec<Arc<dyn PhysicalExpr>>, columns: usize) -> Self {
        let conjuncts: Vec<Conjunct> = conjuncts
            .into_iter()
            .map(|e| Conjunct::new(e, columns))
            .collect();
        Self {
            order: Mutex::new((0..conjuncts.len()).collect()),
            reorder: conjuncts.iter().all(|c| !c.may_fail),
            conjuncts,
            batches: AtomicU64::new(0),
        }
    }

    /// The order for the next batch, and that batch's number.
    fn order(&self) -> (Vec<usize>, u64) {
        let mut order = self
            .order
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        let batches = self.batches.fetch_add(1, Ordering::Relaxed) + 1;
        // Often at first, while the measures move most, then every 64 batches.
        if self.reorder && (batches.is_power_of_two() || batches.is_multiple_of(64)) {
            let ranks: Vec<f64> = self.conjuncts.iter().map(Conjunct::rank).collect();
            order.sort_by(|a, b| ranks[*a].total_cmp(&ranks[*b]));
        }
        (order.clone(), batches)
    }

    /// The `AND` of the conditions as they were written.
    fn written(&self) -> Arc<dyn PhysicalExpr> {
        conjunction(self.conjuncts.iter().map(|c| Arc::clone(&c.expr)))
    }

    /// Which rows of `batch` every condition keeps.
    fn mask(&self, batch: &RecordBatch) -> Result<BooleanArray> {
        let rows = batch.num_rows();
        let mut kept = Kept::All;
        let (order, batch_number) = self.order();
        // Every so often each condition runs over a whole batch, so that its cost there is
        // measured again and one noisy first measure does not settle how it runs.
        let measure = batch_number.is_multiple_of(MEASURE_EVERY);
        for i in order {
            let conjunct = &self.conjuncts[i];
            let started = Instant::now();
            if let Kept::Mask(mask) = &kept {
                let count = mask.true_count();
                if (!measure || conjunct.may_fail) && conjunct.gathers(count, rows) {
                    let indices: Vec<u32> = mask.values().set_indices_u32().collect();
                    kept = Kept::Rows(UInt32Array::from(indices));
                }
            }
            let whole = !matches!(kept, Kept::Rows(_));
            let (given, result) = match &kept {
                Kept::All | Kept::Mask(_) => (rows, conjunct.expr.evaluate(batch)?),
                Kept::Rows(indices) => {
                    let gathered = gather(batch, indices, &conjunct.reads)?;
                    (indices.len(), conjunct.expr.evaluate(&gathered)?)
                }
            };
            let Some(result) = true_rows(result, given)? else {
                conjunct.record(given, 0, started, whole);
                return Ok(BooleanArray::new(BooleanBuffer::new_unset(rows), None));
            };
            let passed = result.as_ref().map_or(given, |r| r.true_count());
            conjunct.record(given, passed, started, whole);
            if let Some(result) = result {
                kept = kept.and(result)?;
            }
            if kept.none() {
                return Ok(BooleanArray::new(BooleanBuffer::new_unset(rows), None));
            }
        }
        Ok(kept.into_mask(rows))
    }
}

/// A condition's result as the rows it keeps (NULL drops a row, as in a filter): `None` when
/// it keeps none, `Some(None)` when it keeps all.
fn true_rows(value: ColumnarValue, rows: usize) -> Result<Option<Option<BooleanArray>>> {
    match value {
        ColumnarValue::Scalar(ScalarValue::Boolean(Some(true))) => Ok(Some(None)),
        ColumnarValue::Scalar(ScalarValue::Boolean(_)) => Ok(None),
        value => {
            let array = value.into_array(rows)?;
            let Some(booleans) = array.as_boolean_opt() else {
                return Err(DataFusionError::Internal(format!(
                    "a filter's condition gave {}, not booleans",
                    array.data_type()
                )));
            };
            let booleans = if booleans.null_count() > 0 {
                prep_null_mask_filter(booleans)
            } else {
                booleans.clone()
            };
            Ok(match booleans.true_count() {
                0 => None,
                n if n == rows => Some(None),
                _ => Some(Some(booleans)),
            })
        }
    }
}

/// The rows of a batch kept so far.
enum Kept {
    All,
    /// Over the whole batch.
    Mask(BooleanArray),
    /// Their indices in the batch, in order; the next condition gets only these.
    Rows(UInt32Array),
}

impl Kept {
    /// These rows less those `result` drops; `result` is over the rows the condition was given.
    fn and(self, result: BooleanArray) -> Result<Self> {
        Ok(match self {
            Kept::All => Kept::Mask(result),
            Kept::Mask(mask) => Kept::Mask(and(&mask, &result)?),
            Kept::Rows(indices) => {
                let indices = filter(&indices, &result)?;
                Kept::Rows(indices.as_primitive().clone())
            }
        })
    }

    fn none(&self) -> bool {
        match self {
            Kept::All => false,
            Kept::Mask(mask) => mask.true_count() == 0,
            Kept::Rows(indices) => indices.is_empty(),
        }
    }

    fn into_mask(self, rows: usize) -> BooleanArray {
        match self {
            Kept::All => BooleanArray::new(BooleanBuffer::new_set(rows), None),
            Kept::Mask(mask) => mask,
            Kept::Rows(indices) => {
                let mut bits = MutableBuffer::from_len_zeroed(rows.div_ceil(8));
                for &i in indices.values() {
                    datafusion::arrow::util::bit_util::set_bit(bits.as_slice_mut(), i as usize);
                }
                BooleanArray::new(BooleanBuffer::new(bits.into(), 0, rows), None)
            }
        }
    }
}

/// `batch`'s rows at `indices`: copies of the columns a condition reads, and in place of the
/// others a slice of the right length, which it never looks at and costs nothing.
fn gather(batch: &RecordBatch, indices: &UInt32Array, reads: &[bool]) -> Result<RecordBatch> {
    let rows = indices.len();
    let columns = batch
        .columns()
        .iter()
        .zip(reads)
        .map(|(column, read)| match read {
            true => take(column, indices, None),
            false => Ok(column.slice(0, rows)),
        })
        .collect::<std::result::Result<Vec<ArrayRef>, _>>()?;
    let options = RecordBatchOptions::new().with_row_count(Some(rows));
    Ok(RecordBatch::try_new_with_options(
        batch.schema(),
        columns,
        &options,
    )?)
}

impl PhysicalExpr for InTurn {
    fn data_type(&self, _input_schema: &Schema) -> Result<DataType> {
        Ok(DataType::Boolean)
    }

    fn nullable(&self, _input_schema: &Schema) -> Result<bool> {
        Ok(false)
    }

    fn evaluate(&self, batch: &RecordBatch) -> Result<ColumnarValue> {
        Ok(ColumnarValue::Array(Arc::new(self.mask(batch)?)))
    }

    fn children(&self) -> Vec<&Arc<dyn PhysicalExpr>> {
        self.conjuncts.iter().map(|c| &c.expr).collect()
    }

    fn with_new_children(
        self: Arc<Self>,
        children: Vec<Arc<dyn PhysicalExpr>>,
    ) -> Result<Arc<dyn PhysicalExpr>> {
        let columns = self.conjuncts.first().map_or(0, |c| c.reads.len());
        Ok(Arc::new(Self::new(children, columns)))
    }

    fn fmt_sql(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.written().fmt_sql(f)
    }
}

/// As DataFusion shows the `AND` it replaces, so that plans read the same.
impl fmt::Display for InTurn {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.written())
    }
}

impl PartialEq for InTurn {
    fn eq(&self, other: &Self) -> bool {
        self.conjuncts.len() == other.conjuncts.len()
            && self
                .conjuncts
                .iter()
                .zip(&other.conjuncts)
                .all(|(a, b)| a.expr.eq(&b.expr))
    }
}

impl Eq for InTurn {}

impl Hash for InTurn {
    fn hash<H: Hasher>(&self, state: &mut H) {
        for c in &self.conjuncts {
            c.expr.hash(state);
        }
    }
}

#[cfg(test)]
mod tests {
    use datafusion::arrow::array::{Int64Array, StringArray};
    use datafusion::arrow::datatypes::Field;
    use datafusion::datasource::MemTable;
    use datafusion::execution::session_state::SessionStateBuilder;
    use datafusion::physical_expr::expressions::{binary, col, like, lit};
    use datafusion::physical_optimizer::optimizer::PhysicalOptimizer;
    use datafusion::physical_plan::collect;
    use datafusion::prelude::SessionContext;

    use super::*;

    /// 40 batches of 1,000 rows: `a` counts up with every 10th NULL, `b` is `a` mod 1,000,
    /// `s` a short string that holds "needle" once in 50 rows.
    fn batches() -> (Arc<Schema>, Vec<RecordBatch>) {
        let schema = Arc::new(Schema::new(vec![
            Field::new("a", DataType::Int64, true),
            Field::new("b", DataType::Int64, false),
            Field::new("s", DataType::Utf8, false),
        ]));
        let batches = (0..40)
            .map(|k| {
                let rows = (k * 1000)..(k * 1000 + 1000);
                let a = Int64Array::from_iter(rows.clone().map(|i| (i % 10 != 3).then_some(i)));
                let b = Int64Array::from_iter_values(rows.clone().map(|i| i % 1000));
                let s = StringArray::from_iter_values(rows.map(|i| match i % 50 {
                    7 => format!("hay {i} needle"),
                    _ => format!("hay {i}"),
                }));
                let columns: Vec<ArrayRef> = vec![Arc::new(a), Arc::new(b), Arc::new(s)];
                RecordBatch::try_new(Arc::clone(&schema), columns).expect("batch")
            })
            .collect();
        (schema, batches)
    }

    fn table() -> MemTable {
        let (schema, batches) = batches();
        MemTable::try_new(schema, vec![batches]).expect("table")
    }

    fn context(in_turn: bool) -> SessionContext {
        let mut rules = PhysicalOptimizer::new().rules;
        if in_turn {
            rules.push(Arc::new(ConjunctsInTurn));
        }
        let state = SessionStateBuilder::new()
            .with_default_features()
            .with_physical_optimizer_rules(rules)
            .build();
        let ctx = SessionContext::new_with_state(state);
        ctx.register_table("t", Arc::new(table()))
            .expect("register");
        ctx
    }

    /// The filter predicates of `sql`'s physical plan, and its rows as text, sorted.
    async fn run(
        ctx: &SessionContext,
        sql: &str,
    ) -> Result<(Vec<Arc<dyn PhysicalExpr>>, Vec<String>)> {
        let plan = ctx.sql(sql).await?.create_physical_plan().await?;
        let mut predicates = Vec::new();
        plan.apply(|node| {
            if let Some(filter) = node.downcast_ref::<FilterExec>() {
                predicates.push(Arc::clone(filter.predicate()));
            }
            Ok(datafusion::common::tree_node::TreeNodeRecursion::Continue)
        })?;
        let batches = collect(plan, ctx.task_ctx()).await?;
        let text = datafusion::arrow::util::pretty::pretty_format_batches(&batches)?.to_string();
        let mut rows: Vec<String> = text.lines().map(str::to_string).collect();
        rows.sort();
        Ok((predicates, rows))
    }

    #[tokio::test]
    async fn keeps_the_rows_datafusion_keeps() {
        let queries = [
            // cheap and selective last, NULLs in the first condition
            "SELECT * FROM t WHERE a > 100 AND s LIKE '%needle%' AND b < 20",
            // a condition that keeps every row, one that keeps none
            "SELECT * FROM t WHERE b >= 0 AND a IS NOT NULL AND s <> 'x'",
            "SELECT * FROM t WHERE a > 10 AND b < 0 AND s LIKE '%needle%'",
            // OR inside a condition, NOT, IN, a NULL-bearing comparison
            "SELECT * FROM t WHERE (a < 500 OR b > 990) AND NOT (s LIKE '%needle%') AND b IN (1, 2, 995)",
            // arithmetic, which may fail: kept in the written order
            "SELECT * FROM t WHERE b % 7 = 0 AND a + 1 > 30000 AND s LIKE 'hay 3%'",
        ];
        let (plain, in_turn) = (context(false), context(true));
        for sql in queries {
            let (_, expected) = run(&plain, sql).await.expect("DataFusion alone");
            let (predicates, got) = run(&in_turn, sql).await.expect("in turn");
            assert!(
                predicates.iter().all(|p| p.is::<InTurn>()) && !predicates.is_empty(),
                "{sql}: {predicates:?}"
            );
            assert!(
                expected.len() > 4 || sql.contains("b < 0"),
                "{sql}: {expected:?}"
            );
            assert_eq!(got, expected, "{sql}");
        }
    }

    #[tokio::test]
    async fn a_guard_guards() {
        let ctx = context(true);
        // Without the guard the division fails on the rows where b is 0.
        let unguarded = run(&ctx, "SELECT * FROM t WHERE s <> 'x' AND 10 / b > 1").await;
        assert!(unguarded.is_err(), "{unguarded:?}");
        // The guard keeps 999 rows in 1,000 and the division 5: measured, the division
        // would go first were it free to move, and fail. DataFusion alone divides every row.
        let sql = "SELECT b FROM t WHERE b <> 0 AND 10 / b > 1 AND s <> 'x'";
        let alone = run(&context(false), sql).await;
        assert!(alone.is_err(), "{alone:?}");
        let (predicates, rows) = run(&ctx, sql).await.expect("guarded");
        let in_turn = predicates[0].downcast_ref::<InTurn>().expect("in turn");
        assert!(!in_turn.reorder);
        assert_eq!(rows.len(), 4 + 5 * 40, "{rows:?}");
    }

    #[test]
    fn the_cheapest_condition_that_removes_rows_goes_first() -> Result<()> {
        let (schema, batches) = batches();
        // Written first: a string search that keeps every row. Then a comparison of integers
        // that keeps 1 in 1,000.
        let search = like(false, false, col("s", &schema)?, lit("%hay%"), &schema)?;
        let equal = binary(col("b", &schema)?, Operator::Eq, lit(5i64), &schema)?;
        let in_turn = InTurn::new(vec![search, equal], schema.fields().len());
        let mut kept = 0;
        for batch in &batches {
            kept += in_turn.mask(batch)?.true_count();
        }
        assert_eq!(kept, 40);
        assert_eq!(in_turn.order().0, vec![1, 0]);
        // After the first batch the search saw only the rows the comparison kept, but for
        // the 32nd, on which each condition is measured over the whole batch again.
        let searched = in_turn.conjuncts[0].rows.load(Ordering::Relaxed);
        assert_eq!(searched, 2 * 1000 + 38, "rows given to the search");
        Ok(())
    }
}
