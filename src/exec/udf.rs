//! Rhai UDFs as DataFusion scalar functions. A batch of rows is one DataFusion call: each
//! argument array is cast to the type Rhai sees it as (`script::udf::rhai_type`), the closure
//! is called row by row, and its values are built into one array of the return type. A row
//! with a null argument gives null without a call, unless the UDF says `call_on_null`.

use std::hash::{Hash, Hasher};
use std::sync::Arc;

use datafusion::arrow::array::{
    Array, ArrayRef, AsArray, BooleanBuilder, Float64Builder, Int64Builder, StringBuilder,
};
use datafusion::arrow::compute::{CastOptions, cast, cast_with_options};
use datafusion::arrow::datatypes::{DataType, Float64Type, Int64Type};
use datafusion::error::{DataFusionError, Result as DfResult};
use datafusion::logical_expr::{
    ColumnarValue, ScalarFunctionArgs, ScalarUDF, ScalarUDFImpl, Signature, Volatility,
};
use datafusion::prelude::SessionContext;
use rhai::Dynamic;

use super::TaskError;
use crate::flow::{At, Udf};
use crate::script::LogTarget;
use crate::script::udf::rhai_type;
use crate::source::Origin;

/// The flow's UDFs as DataFusion functions calling `engine` with `ast`; what their code logs
/// goes to `log` (a task's), else it is printed.
pub fn functions(
    udfs: &[Udf],
    engine: &Arc<rhai::Engine>,
    ast: &Arc<rhai::AST>,
    log: Option<LogTarget>,
) -> Vec<ScalarUDF> {
    udfs.iter()
        .map(|u| {
            let mut f = RhaiUdf::new(u, engine.clone(), ast.clone());
            f.log.clone_from(&log);
            ScalarUDF::new_from_impl(f)
        })
        .collect()
}

/// Make `functions` callable from the queries of `ctx`.
pub fn register(ctx: &SessionContext, functions: &[ScalarUDF]) {
    for f in functions {
        ctx.register_udf(f.clone());
    }
}

pub struct RhaiUdf {
    name: String,
    /// Its key in the flow: two UDFs of one name and key are the same function.
    key: String,
    func: rhai::FnPtr,
    arity: usize,
    args: Option<Vec<DataType>>,
    returns: Option<DataType>,
    call_on_null: bool,
    origin: Origin,
    signature: Signature,
    engine: Arc<rhai::Engine>,
    ast: Arc<rhai::AST>,
    log: Option<LogTarget>,
}

impl RhaiUdf {
    fn new(udf: &Udf, engine: Arc<rhai::Engine>, ast: Arc<rhai::AST>) -> Self {
        let d = &udf.decl;
        Self {
            name: d.name.clone(),
            key: udf.key.clone(),
            func: d.func.clone(),
            arity: udf.arity,
            args: d.args.clone(),
            returns: d.returns.clone(),
            call_on_null: d.call_on_null,
            origin: d.origin,
            // Its own coercion (`coerce_types`): declared types, else each argument as Rhai
            // sees it. Immutable (its result depends on its arguments only, as its key does)
            // unless it reads the clock: then it is not folded into a constant either.
            signature: Signature::user_defined(match udf.volatile {
                true => Volatility::Volatile,
                false => Volatility::Immutable,
            }),
            engine,
            ast,
            log: None,
        }
    }

    /// Call the closure on every row of `arrays` (already of Rhai's types).
    fn call_rows(&self, arrays: &[ArrayRef], rows: usize, out: &DataType) -> DfResult<ArrayRef> {
        let mut output = Output::new(out, rows);
        for row in 0..rows {
            let null = arrays.iter().any(|a| a.is_null(row));
            if null && !self.call_on_null {
                output.push_null();
                continue;
            }
            let values = || {
                arrays
                    .iter()
                    .map(|a| value(a, row))
                    .collect::<Vec<Dynamic>>()
            };
            let result = crate::script::logging_to(self.log.clone(), || {
                self.func.call::<Dynamic>(&self.engine, &self.ast, values())
            });
            // The call took the values: a failure reads them again for its message.
            let failed = match result {
                Ok(v) => match output.push(v) {
                    Ok(()) => continue,
                    Err(v) => {
                        let message = format!(
                            "it returned {v:?} ({}), not a {} value",
                            v.type_name(),
                            output.type_name()
                        );
                        UdfError::returned(self, &values(), message)
                    }
                },
                Err(e) => UdfError::raised(self, &values(), &e),
            };
            return Err(DataFusionError::External(Box::new(failed)));
        }
        Ok(output.finish())
    }
}

impl std::fmt::Debug for RhaiUdf {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RhaiUdf")
            .field("name", &self.name)
            .field("key", &self.key)
            .finish_non_exhaustive()
    }
}

impl PartialEq for RhaiUdf {
    fn eq(&self, other: &Self) -> bool {
        self.name == other.name && self.key == other.key
    }
}

impl Eq for RhaiUdf {}

impl Hash for RhaiUdf {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.name.hash(state);
        self.key.hash(state);
    }
}

impl ScalarUDFImpl for RhaiUdf {
    fn name(&self) -> &str {
        &self.name
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn coerce_types(&self, arg_types: &[DataType]) -> DfResult<Vec<DataType>> {
        if arg_types.len() != self.arity {
            return Err(DataFusionError::Plan(format!(
                "{} takes {}, not {}",
                self.name,
                crate::report::plural(self.arity as u64, "argument"),
                arg_types.len()
            )));
        }
        Ok(match &self.args {
            Some(declared) => declared.clone(),
            None => arg_types.iter().map(rhai_type).collect(),
        })
    }

    /// Declared, else the type of the first argument as Rhai sees it (Utf8 without one): the
    /// type must be known before any row is seen.
    fn return_type(&self, arg_types: &[DataType]) -> DfResult<DataType> {
        Ok(match (&self.returns, arg_types.first()) {
            (Some(t), _) => t.clone(),
            (None, Some(first)) => rhai_type(first),
            (None, None) => DataType::Utf8,
        })
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> DfResult<ColumnarValue> {
        let rows = args.number_rows;
        let arrays = args
            .args
            .iter()
            .map(|a| {
                let a = a.to_array(rows)?;
                Ok(cast(&a, &rhai_type(a.data_type()))?)
            })
            .collect::<DfResult<Vec<ArrayRef>>>()?;
        let returns = args.return_type().clone();
        let call = || self.call_rows(&arrays, rows, &rhai_type(&returns));
        let values = blocking(|| crate::script::task_code(call))?;
        // Unsafe casts fail instead of giving null: an INT too large for a declared Int32.
        let strict = CastOptions {
            safe: false,
            ..Default::default()
        };
        Ok(ColumnarValue::Array(cast_with_options(
            &values, &returns, &strict,
        )?))
    }
}

/// Run a batch's Rhai calls off the async workers' duty: DataFusion calls a function on a
/// tokio worker, and `block_in_place` hands that worker's other tasks (other partitions, the
/// store's I/O) to another thread while the rows are computed, the way `spawn_blocking`
/// would without moving the batch to another thread and back. Outside a multi-threaded
/// runtime (a plain thread) the rows are computed where they are.
fn blocking<R>(f: impl FnOnce() -> R) -> R {
    use tokio::runtime::{Handle, RuntimeFlavor};
    match Handle::try_current() {
        Ok(h) if h.runtime_flavor() == RuntimeFlavor::MultiThread => tokio::task::block_in_place(f),
        _ => f(),
    }
}

/// Row `row` of `array` (of a type `rhai_type` gives) as a Rhai value.
fn value(array: &ArrayRef, row: usize) -> Dynamic {
    if array.is_null(row) {
        return Dynamic::UNIT;
    }
    match array.data_type() {
        DataType::Int64 => Dynamic::from_int(array.as_primitive::<Int64Type>().value(row)),
        DataType::Float64 => Dynamic::from_float(array.as_primitive::<Float64Type>().value(row)),
        DataType::Boolean => Dynamic::from_bool(array.as_boolean().value(row)),
        _ => Dynamic::from(rhai::ImmutableString::from(
            array.as_string::<i32>().value(row),
        )),
    }
}

/// The array of results being built, of the type Rhai's values are converted to.
enum Output {
    Utf8(StringBuilder),
    Int64(Int64Builder),
    Float64(Float64Builder),
    Boolean(BooleanBuilder),
}

impl Output {
    fn new(ty: &DataType, rows: usize) -> Self {
        match ty {
            DataType::Int64 => Output::Int64(Int64Builder::with_capacity(rows)),
            DataType::Float64 => Output::Float64(Float64Builder::with_capacity(rows)),
            DataType::Boolean => Output::Boolean(BooleanBuilder::with_capacity(rows)),
            _ => Output::Utf8(StringBuilder::with_capacity(rows, rows * 8)),
        }
    }

    /// Append a result: `()` is null; an INT is a fine FLOAT; a value of any other type is
    /// given back.
    fn push(&mut self, v: Dynamic) -> Result<(), Dynamic> {
        if v.is_unit() {
            self.push_null();
            return Ok(());
        }
        let fits = match self {
            Output::Utf8(b) if v.is_string() || v.is_char() => {
                b.append_value(v.to_string());
                true
            }
            Output::Int64(b) if v.is_int() => {
                b.append_option(v.as_int().ok());
                true
            }
            Output::Float64(b) if v.is_float() || v.is_int() => {
                let int = v.as_int().ok().map(|i| i as f64);
                b.append_option(v.as_float().ok().or(int));
                true
            }
            Output::Boolean(b) if v.is_bool() => {
                b.append_option(v.as_bool().ok());
                true
            }
            _ => false,
        };
        match fits {
            true => Ok(()),
            false => Err(v),
        }
    }

    fn push_null(&mut self) {
        match self {
            Output::Utf8(b) => b.append_null(),
            Output::Int64(b) => b.append_null(),
            Output::Float64(b) => b.append_null(),
            Output::Boolean(b) => b.append_null(),
        }
    }

    fn type_name(&self) -> &'static str {
        match self {
            Output::Utf8(_) => "string (Utf8)",
            Output::Int64(_) => "integer (Int64)",
            Output::Float64(_) => "float (Float64)",
            Output::Boolean(_) => "boolean",
        }
    }

    fn finish(self) -> ArrayRef {
        match self {
            Output::Utf8(mut b) => Arc::new(b.finish()),
            Output::Int64(mut b) => Arc::new(b.finish()),
            Output::Float64(mut b) => Arc::new(b.finish()),
            Output::Boolean(mut b) => Arc::new(b.finish()),
        }
    }
}

/// A UDF that failed on a row: which, on what values, why, and where in the script.
#[derive(Debug)]
pub struct UdfError {
    /// The call as SQL would write it with the row's values: `shout("Ann", 3)`.
    pub call: String,
    pub message: String,
    pub help: Option<String>,
    /// Where the closure failed, when that is in the script itself.
    pub position: Option<(usize, usize)>,
    /// Where the UDF is declared.
    pub origin: Origin,
}

impl UdfError {
    fn call(udf: &RhaiUdf, values: &[Dynamic]) -> String {
        let args: Vec<String> = values.iter().map(|v| format!("{v:?}")).collect();
        format!("{}({})", udf.name, args.join(", "))
    }

    fn raised(udf: &RhaiUdf, values: &[Dynamic], e: &rhai::EvalAltResult) -> Self {
        let text = crate::script::runtime_message(e);
        let (message, help) = match text.split_once(crate::script::api::HELP_MARK) {
            Some((m, h)) => (m.to_string(), Some(h.to_string())),
            None => (text, None),
        };
        let pos = crate::script::innermost_position(e);
        let position = match (pos.line(), pos.position()) {
            (Some(l), Some(c)) if !crate::script::failed_outside_script(e) => Some((l, c)),
            _ => None,
        };
        Self {
            call: Self::call(udf, values),
            message,
            help,
            position,
            origin: udf.origin,
        }
    }

    fn returned(udf: &RhaiUdf, values: &[Dynamic], message: String) -> Self {
        let help = match &udf.returns {
            Some(t) => format!("the UDF is declared to return {t}"),
            None => "without `returns` a UDF returns the type of its first argument; declare another, e.g. #{ returns: \"Int64\" }".to_string(),
        };
        Self {
            call: Self::call(udf, values),
            message,
            help: Some(help),
            position: None,
            origin: udf.origin,
        }
    }

    /// The UDF failure a query failed on, if that is why it failed.
    pub fn in_error(e: &DataFusionError) -> Option<&UdfError> {
        let mut cause: Option<&(dyn std::error::Error + 'static)> = Some(e);
        while let Some(c) = cause {
            if let Some(found) = c.downcast_ref::<UdfError>() {
                return Some(found);
            }
            cause = c.source();
        }
        None
    }
}

impl std::fmt::Display for UdfError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} failed: {}", self.call, self.message)
    }
}

impl std::error::Error for UdfError {}

/// A task that failed in a UDF, as a diagnostic pointing where the closure failed (or, when
/// that is not in the script, where the UDF is declared); any other failure as it is.
pub fn located(e: TaskError, code: &super::Code, task: &str) -> TaskError {
    let TaskError::Engine { source, .. } = &e else {
        return e;
    };
    let Some(failure) = UdfError::in_error(source) else {
        return e;
    };
    let (at, label) = match failure.position {
        Some((line, column)) => {
            let src = &code.source;
            let span = crate::source::token_span(&src.text, src.offset(line, column));
            let at = At {
                location: format!("{}:{line}:{column}", src.name()),
                src: src.named(),
                span,
            };
            (at, "failed here")
        }
        None => (
            At::new(code.source_of(failure.origin), failure.origin),
            "UDF declared here",
        ),
    };
    TaskError::Function {
        task: task.to_string(),
        message: failure.to_string(),
        location: at.location,
        src: at.src,
        span: at.span,
        label: label.into(),
        help: failure.help.clone(),
    }
}
