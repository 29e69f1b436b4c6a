//! Decimal `+`, `-` and `*` in 64-bit integers where the values allow it.
//!
//! Arrow computes `Decimal128` arithmetic with checked 128-bit operations, one element at a
//! time, and scales a constant again for every row: `l_extendedprice * (1 - l_discount)` over
//! TPC-H's 6 M line items costs about 110 ms of CPU. Decimals of up to 18 digits (TPC-H's are
//! 15) hold values that fit 64 bits, and the product or scaled sum of two 64-bit values cannot
//! overflow 128 bits, so those need no check and the loops vectorize: 4x faster. This is how
//! DuckDB computes them.
//!
//! A logical optimizer rule, last in DataFusion's list, replaces such an operator in a
//! projection or an aggregate's arguments with a function that computes the same type and the
//! same values, and keeps each expression's name so no schema changes. A batch holding a value
//! beyond 64 bits, or a null constant, goes to Arrow's kernel: the result, and the error on
//! overflow, are then exactly the operator's.

use std::sync::Arc;

use datafusion::arrow::array::Datum;
use datafusion::arrow::array::{Array, ArrayRef, AsArray, Decimal128Array, new_empty_array};
use datafusion::arrow::buffer::NullBuffer;
use datafusion::arrow::compute::kernels::numeric::{add_wrapping, mul_wrapping, sub_wrapping};
use datafusion::arrow::datatypes::{DataType, Decimal128Type, Field, FieldRef};
use datafusion::arrow::error::ArrowError;
use datafusion::common::tree_node::{Transformed, TreeNode};
use datafusion::common::{DFSchema, ScalarValue, internal_err};
use datafusion::error::Result as DfResult;
use datafusion::logical_expr::expr::ScalarFunction;
use datafusion::logical_expr::expr_rewriter::NamePreserver;
use datafusion::logical_expr::utils::merge_schema;
use datafusion::logical_expr::{
    BinaryExpr, ColumnarValue, Expr, ExprSchemable, LogicalPlan, Operator, ReturnFieldArgs,
    ScalarFunctionArgs, ScalarUDF, ScalarUDFImpl, Signature, Volatility,
};
use datafusion::optimizer::optimizer::ApplyOrder;
use datafusion::optimizer::{OptimizerConfig, OptimizerRule};

/// Puts `DecimalOp` in place of decimal `+`, `-` and `*` in projections and aggregates.
#[derive(Debug)]
pub struct DecimalArithmetic;

impl OptimizerRule for DecimalArithmetic {
    fn name(&self) -> &str {
        "weir_decimal_arithmetic"
    }

    fn apply_order(&self) -> Option<ApplyOrder> {
        Some(ApplyOrder::BottomUp)
    }

    fn rewrite(
        &self,
        plan: LogicalPlan,
        _config: &dyn OptimizerConfig,
    ) -> DfResult<Transformed<LogicalPlan>> {
        let aggregate = match &plan {
            LogicalPlan::Projection(_) => false,
            LogicalPlan::Aggregate(_) => true,
            _ => return Ok(Transformed::no(plan)),
        };
        let schema = merge_schema(&plan.inputs());
        let names = NamePreserver::new(&plan);
        plan.map_expressions(|expr| {
            // An aggregate's grouping keys stay as they are: they may be grouping sets, which
            // an alias would break, and they are not where the arithmetic is.
            if aggregate && !matches!(unaliased(&expr), Expr::AggregateFunction(_)) {
                return Ok(Transformed::no(expr));
            }
            let name = names.save(&expr);
            let rewritten = expr.transform_up(|e| Ok(replace(e, &schema)))?;
            Ok(rewritten.update_data(|e| name.restore(e)))
        })
    }
}

fn unaliased(expr: &Expr) -> &Expr {
    match expr {
        Expr::Alias(a) => unaliased(&a.expr),
        e => e,
    }
}

/// `expr` as a `DecimalOp` call if it is a decimal `+`, `-` or `*`.
fn replace(expr: Expr, schema: &DFSchema) -> Transformed<Expr> {
    let decimal = |e: &Expr| matches!(e.get_type(schema), Ok(DataType::Decimal128(..)));
    match expr {
        Expr::BinaryExpr(BinaryExpr { left, op, right }) => match Op::of(op) {
            Some(decimal_op) if decimal(&left) && decimal(&right) => {
                let func = Arc::new(ScalarUDF::new_from_impl(DecimalOp::new(decimal_op)));
                let call = ScalarFunction::new_udf(func, vec![*left, *right]);
                Transformed::yes(Expr::ScalarFunction(call))
            }
            _ => Transformed::no(Expr::BinaryExpr(BinaryExpr { left, op, right })),
        },
        other => Transformed::no(other),
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum Op {
    Add,
    Sub,
    Mul,
}

impl Op {
    fn of(op: Operator) -> Option<Self> {
        match op {
            Operator::Plus => Some(Self::Add),
            Operator::Minus => Some(Self::Sub),
            Operator::Multiply => Some(Self::Mul),
            _ => None,
        }
    }

    /// What DataFusion's operator does: Arrow's kernel (which checks decimals for overflow
    /// even when "wrapping").
    fn arrow(self, l: &dyn Datum, r: &dyn Datum) -> Result<ArrayRef, ArrowError> {
        match self {
            Self::Add => add_wrapping(l, r),
            Self::Sub => sub_wrapping(l, r),
            Self::Mul => mul_wrapping(l, r),
        }
    }
}

/// One decimal operator as a function of two `Decimal128` arguments.
#[derive(Debug, PartialEq, Eq, Hash)]
struct DecimalOp {
    op: Op,
    signature: Signature,
}

impl DecimalOp {
    fn new(op: Op) -> Self {
        Self {
            op,
            signature: Signature::any(2, Volatility::Immutable),
        }
    }
}

impl ScalarUDFImpl for DecimalOp {
    fn name(&self) -> &str {
        match self.op {
            Op::Add => "decimal_add",
            Op::Sub => "decimal_sub",
            Op::Mul => "decimal_mul",
        }
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    /// Arrow's own answer for the two types, as DataFusion types the operator.
    fn return_type(&self, args: &[DataType]) -> DfResult<DataType> {
        let [l, r] = args else {
            return internal_err!("{} takes 2 arguments", self.name());
        };
        let empty = self.op.arrow(&new_empty_array(l), &new_empty_array(r))?;
        Ok(empty.data_type().clone())
    }

    /// Nullable when an argument is, as the operator is.
    fn return_field_from_args(&self, args: ReturnFieldArgs) -> DfResult<FieldRef> {
        let types: Vec<DataType> = args
            .arg_fields
            .iter()
            .map(|f| f.data_type().clone())
            .collect();
        let nullable = args.arg_fields.iter().any(|f| f.is_nullable());
        let returns = self.return_type(&types)?;
        Ok(Arc::new(Field::new(self.name(), returns, nullable)))
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> DfResult<ColumnarValue> {
        let [l, r] = args.args.as_slice() else {
            return internal_err!("{} takes 2 arguments", self.name());
        };
        if let DataType::Decimal128(p, s) = args.return_field.data_type()
            && let Some(out) = fast(self.op, Side::of(l), Side::of(r), *p, *s)
        {
            return Ok(ColumnarValue::Array(out));
        }
        arrow_op(self.op, l, r)
    }
}

/// The operator through Arrow, as DataFusion's `BinaryExpr` evaluates it.
fn arrow_op(op: Op, l: &ColumnarValue, r: &ColumnarValue) -> DfResult<ColumnarValue> {
    let out = match (l, r) {
        (ColumnarValue::Array(l), ColumnarValue::Array(r)) => op.arrow(l, r)?,
        (ColumnarValue::Scalar(l), ColumnarValue::Array(r)) => op.arrow(&l.to_scalar()?, r)?,
        (ColumnarValue::Array(l), ColumnarValue::Scalar(r)) => op.arrow(l, &r.to_scalar()?)?,
        (ColumnarValue::Scalar(l), ColumnarValue::Scalar(r)) => {
            let one = op.arrow(&l.to_scalar()?, &r.to_scalar()?)?;
            return Ok(ColumnarValue::Scalar(ScalarValue::try_from_array(&one, 0)?));
        }
    };
    Ok(ColumnarValue::Array(out))
}

/// An argument the fast path can take: a decimal array, or a non-null decimal constant.
enum Side<'a> {
    Array(&'a Decimal128Array),
    Constant(i128, i8),
    Other,
}

impl<'a> Side<'a> {
    fn of(arg: &'a ColumnarValue) -> Self {
        match arg {
            ColumnarValue::Array(a) => match a.as_primitive_opt::<Decimal128Type>() {
                Some(a) => Side::Array(a),
                None => Side::Other,
            },
            ColumnarValue::Scalar(ScalarValue::Decimal128(Some(v), _, s)) => Side::Constant(*v, *s),
            ColumnarValue::Scalar(_) => Side::Other,
        }
    }

    fn scale(&self) -> Option<i8> {
        match self {
            Side::Array(a) => match a.data_type() {
                DataType::Decimal128(_, s) => Some(*s),
                _ => None,
            },
            Side::Constant(_, s) => Some(*s),
            Side::Other => None,
        }
    }

    /// Whether every value (those under nulls too) fits 64 bits.
    fn fits(&self) -> bool {
        match self {
            Side::Array(a) => a.values().iter().fold(true, |ok, &v| ok & (wide(v) == v)),
            Side::Constant(v, _) => wide(*v) == *v,
            Side::Other => false,
        }
    }
}

/// `v`'s low 64 bits, sign-extended: `v` itself when it fits 64 bits.
fn wide(v: i128) -> i128 {
    v as i64 as i128
}

/// `l op r` in 64-bit arithmetic, or None where that could differ from Arrow's result.
///
/// With values below 2^63 in magnitude and scale multipliers of at most 10^18, a product is
/// below 2^126 and a scaled sum below 2^124: nothing here can overflow 128 bits.
fn fast(op: Op, l: Side, r: Side, precision: u8, scale: i8) -> Option<ArrayRef> {
    let (lm, rm) = match op {
        Op::Mul => (1, 1),
        Op::Add | Op::Sub => (pow10(scale - l.scale()?)?, pow10(scale - r.scale()?)?),
    };
    if !l.fits() || !r.fits() {
        return None;
    }
    let (values, nulls): (Vec<i128>, _) = match (&l, &r) {
        (Side::Array(a), Side::Array(b)) => {
            let pairs = a.values().iter().zip(b.values().iter());
            let values = match op {
                Op::Mul => pairs.map(|(&x, &y)| wide(x) * wide(y)).collect(),
                Op::Add => pairs.map(|(&x, &y)| wide(x) * lm + wide(y) * rm).collect(),
                Op::Sub => pairs.map(|(&x, &y)| wide(x) * lm - wide(y) * rm).collect(),
            };
            (values, NullBuffer::union(a.nulls(), b.nulls()))
        }
        (Side::Constant(k, _), Side::Array(b)) => {
            let (k, ys) = (wide(*k) * lm, b.values().iter());
            let values = match op {
                Op::Mul => ys.map(|&y| k * wide(y)).collect(),
                Op::Add => ys.map(|&y| k + wide(y) * rm).collect(),
                Op::Sub => ys.map(|&y| k - wide(y) * rm).collect(),
            };
            (values, b.nulls().cloned())
        }
        (Side::Array(a), Side::Constant(k, _)) => {
            let (k, xs) = (wide(*k) * rm, a.values().iter());
            let values = match op {
                Op::Mul => xs.map(|&x| wide(x) * k).collect(),
                Op::Add => xs.map(|&x| wide(x) * lm + k).collect(),
                Op::Sub => xs.map(|&x| wide(x) * lm - k).collect(),
            };
            (values, a.nulls().cloned())
        }
        _ => return None,
    };
    let out = Decimal128Array::new(values.into(), nulls).with_precision_and_scale(precision, scale);
    out.ok().map(|a| Arc::new(a) as ArrayRef)
}

fn pow10(exp: i8) -> Option<i128> {
    (0..=18).contains(&exp).then(|| 10i128.pow(exp as u32))
}

#[cfg(test)]
mod tests {
    use datafusion::arrow::datatypes::Schema;
    use datafusion::arrow::record_batch::RecordBatch;
    use datafusion::config::ConfigOptions;
    use datafusion::datasource::MemTable;
    use datafusion::execution::session_state::SessionStateBuilder;
    use datafusion::prelude::SessionContext;

    use super::*;

    fn decimals(values: &[Option<i128>], p: u8, s: i8) -> ColumnarValue {
        let a = Decimal128Array::from(values.to_vec()).with_precision_and_scale(p, s);
        ColumnarValue::Array(Arc::new(a.expect("precision and scale")))
    }

    fn constant(v: i128, p: u8, s: i8) -> ColumnarValue {
        ColumnarValue::Scalar(ScalarValue::Decimal128(Some(v), p, s))
    }

    fn field(v: &ColumnarValue) -> FieldRef {
        let nullable = matches!(v, ColumnarValue::Array(a) if a.null_count() > 0);
        Arc::new(Field::new("x", v.data_type(), nullable))
    }

    /// `l op r` through the function, as a planned query calls it.
    fn call(op: Op, l: &ColumnarValue, r: &ColumnarValue) -> DfResult<ArrayRef> {
        let f = DecimalOp::new(op);
        let fields = vec![field(l), field(r)];
        let returns = f.return_field_from_args(ReturnFieldArgs {
            arg_fields: &fields,
            scalar_arguments: &[None, None],
        })?;
        let out = f.invoke_with_args(ScalarFunctionArgs {
            args: vec![l.clone(), r.clone()],
            arg_fields: fields,
            number_rows: 5,
            return_field: returns.clone(),
            config_options: Arc::new(ConfigOptions::default()),
        })?;
        assert_eq!(out.data_type(), *returns.data_type(), "declared type");
        out.into_array(5)
    }

    fn arrow(op: Op, l: &ColumnarValue, r: &ColumnarValue) -> DfResult<ArrayRef> {
        arrow_op(op, l, r)?.into_array(5)
    }

    #[test]
    fn values_and_types_equal_arrows_and_take_the_fast_path() {
        let price = decimals(
            &[Some(12345), Some(-9999), None, Some(0), Some(99_999_999)],
            15,
            2,
        );
        let rate = decimals(&[Some(5), None, Some(100), Some(-7), Some(3)], 15, 2);
        let count = decimals(&[Some(3), Some(-2), Some(1), None, Some(999_999)], 12, 0);
        let one = constant(1, 20, 0);
        let pairs = [
            (&price, &rate),
            (&price, &count),
            (&count, &price),
            (&one, &rate),
            (&price, &one),
        ];
        for op in [Op::Add, Op::Sub, Op::Mul] {
            for (l, r) in pairs {
                let (ours, theirs) = (
                    call(op, l, r).expect("ours"),
                    arrow(op, l, r).expect("arrow"),
                );
                assert_eq!(ours.as_ref(), theirs.as_ref(), "{op:?}");
                let DataType::Decimal128(p, s) = *theirs.data_type() else {
                    panic!("{:?}", theirs.data_type())
                };
                assert!(fast(op, Side::of(l), Side::of(r), p, s).is_some(), "{op:?}");
            }
        }
    }

    #[test]
    fn values_beyond_64_bits_give_arrows_values_and_overflow_error() {
        let big = decimals(
            &[Some(i64::MAX as i128 + 1), Some(10i128.pow(37)), None],
            38,
            0,
        );
        let small = decimals(&[Some(7), Some(-1), Some(2)], 38, 0);
        assert!(fast(Op::Add, Side::of(&big), Side::of(&small), 38, 0).is_none());
        let sum = call(Op::Add, &big, &small).expect("no overflow");
        assert_eq!(
            sum.as_ref(),
            arrow(Op::Add, &big, &small).expect("arrow").as_ref()
        );
        let hundred = constant(100, 38, 0);
        let ours = call(Op::Mul, &big, &hundred).expect_err("10^39 overflows");
        let theirs = arrow(Op::Mul, &big, &hundred).expect_err("arrow overflows too");
        assert_eq!(ours.to_string(), theirs.to_string());
    }

    /// The rule changes how a query computes, not what it returns: names, types, nullability
    /// and values are those of the plan without it.
    #[test]
    fn the_rule_keeps_names_types_and_values() {
        let rt = tokio::runtime::Runtime::new().expect("tokio");
        let sql = "SELECT k, price * (1 - rate) AS net, price * (1 - rate) * (1 + tax), \
                   sum(price * (1 - rate) * (1 + tax)), avg(price + tax) \
                   FROM t GROUP BY k, price, rate, tax ORDER BY k";
        let run = |rule: bool| {
            rt.block_on(async {
                let mut state = SessionStateBuilder::new().with_default_features();
                if rule {
                    state = state.with_optimizer_rule(Arc::new(DecimalArithmetic));
                }
                let ctx = SessionContext::new_with_state(state.build());
                ctx.register_table("t", Arc::new(table())).expect("table");
                let df = ctx.sql(sql).await.expect("plan");
                let plan = format!(
                    "{}",
                    df.clone()
                        .into_optimized_plan()
                        .expect("plan")
                        .display_indent()
                );
                let schema = df.schema().as_arrow().clone();
                (plan, schema, df.collect().await.expect("run"))
            })
        };
        let (plain_plan, plain_schema, plain) = run(false);
        let (plan, schema, ours) = run(true);
        assert!(!plain_plan.contains("decimal_mul"), "{plain_plan}");
        assert!(
            plan.contains("decimal_mul(") && plan.contains("decimal_sub("),
            "{plan}"
        );
        assert_eq!(schema, plain_schema);
        assert_eq!(ours, plain);
    }

    fn table() -> MemTable {
        let fields = [
            ("k", true),
            ("price", false),
            ("rate", true),
            ("tax", false),
        ];
        let schema = Arc::new(Schema::new(
            fields
                .iter()
                .map(|(n, null)| Field::new(*n, DataType::Decimal128(15, 2), *null))
                .collect::<Vec<_>>(),
        ));
        let column = |v: Vec<Option<i128>>| -> ArrayRef {
            let a = Decimal128Array::from(v).with_precision_and_scale(15, 2);
            Arc::new(a.expect("decimal"))
        };
        let batch = RecordBatch::try_new(
            schema.clone(),
            vec![
                column(vec![Some(1), Some(2), None, Some(4)]),
                column(vec![Some(100_000), Some(2_550), Some(99), Some(1)]),
                column(vec![Some(5), None, Some(10), Some(0)]),
                column(vec![Some(8), Some(0), Some(2), Some(6)]),
            ],
        );
        MemTable::try_new(schema, vec![vec![batch.expect("batch")]]).expect("table")
    }
}
