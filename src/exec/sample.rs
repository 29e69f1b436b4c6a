//! Sample tasks: rows of another instance's committed table, chosen reproducibly. Fractions
//! are decided by a stable hash of the row (or of its key column) and the seed, never by a
//! random generator, so the same seed keeps the same keys in every table and every run.

use std::sync::Arc;

use datafusion::arrow::array::{Array, ArrayRef, AsArray, BooleanArray};
use datafusion::arrow::compute::cast;
use datafusion::arrow::datatypes::DataType;
use datafusion::common::{JoinType, TableReference};
use datafusion::error::Result as DfResult;
use datafusion::logical_expr::{
    ColumnarValue, ScalarFunctionArgs, ScalarUDF, ScalarUDFImpl, Signature, Volatility,
};
use datafusion::prelude::{DataFrame, Expr, SessionContext, col, ident};

use super::{Shared, TaskError};
use crate::flow::Step;
use crate::script::{SampleMode, SampleSpec};

const SOURCE: &str = "__weir_sample_source";

pub async fn sample(
    ctx: &SessionContext,
    spec: &SampleSpec,
    shared: &Shared,
    step: &Step,
) -> Result<DataFrame, TaskError> {
    let source = spec.source_name();
    let build = step.sampled.as_ref().ok_or_else(|| {
        TaskError::invalid(format!(
            "instance `{}` has no committed {}: run it first (weir run --instance {})",
            spec.instance, spec.table, spec.instance
        ))
    })?;
    let store = shared
        .instances
        .get(&spec.instance)
        .ok_or_else(|| TaskError::invalid(format!("instance `{}` is not open", spec.instance)))?;
    let reading = |e| TaskError::engine(format!("cannot read {source}"), e);
    crate::engine::register_build(ctx, store, TableReference::bare(SOURCE), build)
        .await
        .map_err(reading)?;
    let df = ctx.table(SOURCE).await.map_err(reading)?;
    let sampled = match &spec.mode {
        SampleMode::Head(n) => df.limit(0, Some(*n as usize)),
        SampleMode::Fraction {
            fraction,
            seed,
            key,
        } => {
            let columns: Vec<Expr> = match key {
                Some(k) => vec![ident(k)],
                None => df.schema().columns().into_iter().map(col).collect(),
            };
            let keep = ScalarUDF::from(Keep::new(*seed, *fraction));
            df.filter(keep.call(columns))
        }
        SampleMode::Follow {
            key,
            parent,
            parent_key,
        } => {
            let parent_df = ctx
                .table(TableReference::partial(
                    parent.stage.as_str(),
                    parent.table.as_str(),
                ))
                .await
                .and_then(|df| df.select(vec![ident(parent_key).alias("__weir_parent_key")]))
                .map_err(|e| TaskError::engine(format!("cannot read {parent}"), e))?;
            df.join_on(
                parent_df,
                JoinType::LeftSemi,
                [ident(key).eq(col("__weir_parent_key"))],
            )
        }
    };
    sampled.map_err(|e| TaskError::engine(format!("sampling {source}"), e))
}

/// `keep(columns...)`: true for the rows whose hashed values fall under the fraction.
#[derive(Debug, PartialEq, Eq, Hash)]
struct Keep {
    seed: u64,
    /// Keep a row when its hash is below this; `None` keeps every row.
    threshold: Option<u64>,
    signature: Signature,
}

impl Keep {
    fn new(seed: u64, fraction: f64) -> Self {
        let threshold = (fraction < 1.0).then_some((fraction * u64::MAX as f64) as u64);
        Self {
            seed,
            threshold,
            signature: Signature::variadic_any(Volatility::Immutable),
        }
    }
}

impl ScalarUDFImpl for Keep {
    fn name(&self) -> &str {
        "weir_sample_keep"
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn return_type(&self, _: &[DataType]) -> DfResult<DataType> {
        Ok(DataType::Boolean)
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> DfResult<ColumnarValue> {
        let rows = args.number_rows;
        let columns: Vec<ArrayRef> = ColumnarValue::values_to_arrays(&args.args)?
            .iter()
            .map(|a| cast(a, &DataType::Utf8))
            .collect::<Result<_, _>>()?;
        let start = FNV_OFFSET ^ splitmix64(self.seed);
        let keep: BooleanArray = (0..rows)
            .map(|row| {
                let h = columns.iter().fold(start, |h, c| {
                    let strings = c.as_string::<i32>();
                    if strings.is_null(row) {
                        fnv1a(&[0xfe], h)
                    } else {
                        fnv1a(&[0xff], fnv1a(strings.value(row).as_bytes(), h))
                    }
                });
                Some(self.threshold.is_none_or(|t| splitmix64(h) < t))
            })
            .collect();
        Ok(ColumnarValue::Array(Arc::new(keep)))
    }
}

const FNV_OFFSET: u64 = 0xcbf2_9ce4_8422_2325;

fn fnv1a(bytes: &[u8], mut h: u64) -> u64 {
    for b in bytes {
        h ^= u64::from(*b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    h
}

/// Spreads FNV's weak low bits over the whole word, so thresholds give even fractions.
fn splitmix64(mut z: u64) -> u64 {
    z = z.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fractions_are_close_and_seeds_differ() {
        let hash = |seed: u64, i: u64| {
            splitmix64(fnv1a(
                &[0xff],
                fnv1a(i.to_string().as_bytes(), FNV_OFFSET ^ splitmix64(seed)),
            ))
        };
        let threshold = (0.1 * u64::MAX as f64) as u64;
        let kept = |seed| {
            (0..100_000u64)
                .filter(|i| hash(seed, *i) < threshold)
                .count()
        };
        let (a, b) = (kept(1), kept(2));
        assert!((9_000..11_000).contains(&a), "kept {a} of 100000 at 10%");
        let same = (0..100_000u64)
            .filter(|i| (hash(1, *i) < threshold) && (hash(2, *i) < threshold))
            .count();
        assert!(
            same < a / 5,
            "seeds 1 and 2 keep mostly the same rows ({same} of {a}, {b})"
        );
    }
}
