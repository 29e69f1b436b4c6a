//! Scalar functions a script declares for SQL (`udf("shout", |s| s.to_upper() + "!")`): what
//! the declaration says, and the types a UDF may take and return. `exec::udf` runs them.

use datafusion::arrow::datatypes::DataType;

use crate::source::Origin;

/// One `udf(name, closure, opts)` declaration.
#[derive(Debug, Clone)]
pub struct UdfDecl {
    /// As SQL calls it: lower case, since SQL folds unquoted names.
    pub name: String,
    pub func: rhai::FnPtr,
    /// `args`: the argument types, when declared; else any arguments, as their Rhai values.
    pub args: Option<Vec<DataType>>,
    /// `returns`: when not declared, the type of the first argument (Utf8 without one).
    pub returns: Option<DataType>,
    /// `call_on_null: true`: a row with a null argument calls the closure with `()` instead
    /// of giving null without calling it.
    pub call_on_null: bool,
    pub origin: Origin,
}

impl UdfDecl {
    /// The declaration as the keys of the tasks calling it hold it, besides its code.
    pub fn signature_text(&self) -> String {
        let args = match &self.args {
            Some(types) => types
                .iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
                .join(","),
            None => "any".to_string(),
        };
        let returns = self
            .returns
            .as_ref()
            .map_or_else(|| "first".to_string(), ToString::to_string);
        format!(
            "udf {}({args}) -> {returns} call_on_null={}",
            self.name, self.call_on_null
        )
    }
}

/// The types a UDF may declare, as Arrow names them; each is passed to Rhai as one of its four
/// scalar types (string, INT, FLOAT, bool).
const TYPES: [DataType; 13] = [
    DataType::Utf8,
    DataType::LargeUtf8,
    DataType::Utf8View,
    DataType::Int8,
    DataType::Int16,
    DataType::Int32,
    DataType::Int64,
    DataType::UInt8,
    DataType::UInt16,
    DataType::UInt32,
    DataType::UInt64,
    DataType::Float32,
    DataType::Float64,
];

/// A declared type: an Arrow type name in any case (`"utf8"`, `"Int64"`), or one of the usual
/// SQL spellings (`string`, `bigint`, `double`, `boolean`).
pub fn parse_type(name: &str) -> Result<DataType, String> {
    let lower = name.trim().to_ascii_lowercase();
    let alias = match lower.as_str() {
        "string" | "text" | "varchar" => Some(DataType::Utf8),
        "int" | "integer" | "bigint" => Some(DataType::Int64),
        "float" | "double" => Some(DataType::Float64),
        "bool" | "boolean" => Some(DataType::Boolean),
        _ => None,
    };
    alias
        .or_else(|| {
            TYPES
                .iter()
                .find(|t| t.to_string().to_ascii_lowercase() == lower)
                .cloned()
        })
        .ok_or_else(|| {
            format!(
                "`{name}` is not a type a UDF takes or returns: use Utf8, Int64, Float64 or Boolean (or another Arrow integer, float or string type)"
            )
        })
}

/// The Arrow type a value of `ty` is handled as between SQL and Rhai: strings as Utf8 (Rhai
/// strings), integers as Int64 (INT), floats and decimals as Float64 (FLOAT), booleans as
/// Boolean; anything else (dates, timestamps, lists) as its text.
pub fn rhai_type(ty: &DataType) -> DataType {
    match ty {
        DataType::Int8
        | DataType::Int16
        | DataType::Int32
        | DataType::Int64
        | DataType::UInt8
        | DataType::UInt16
        | DataType::UInt32
        | DataType::UInt64 => DataType::Int64,
        DataType::Float16
        | DataType::Float32
        | DataType::Float64
        | DataType::Decimal32(..)
        | DataType::Decimal64(..)
        | DataType::Decimal128(..)
        | DataType::Decimal256(..) => DataType::Float64,
        DataType::Boolean => DataType::Boolean,
        _ => DataType::Utf8,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn types_parse_in_any_case_and_others_are_refused() {
        assert_eq!(parse_type("utf8"), Ok(DataType::Utf8));
        assert_eq!(parse_type("Int32"), Ok(DataType::Int32));
        assert_eq!(parse_type("BOOLEAN"), Ok(DataType::Boolean));
        assert_eq!(parse_type("double"), Ok(DataType::Float64));
        assert!(parse_type("Date32").is_err());
        assert!(parse_type("nope").is_err());
    }

    #[test]
    fn values_cross_as_the_four_rhai_scalars() {
        assert_eq!(rhai_type(&DataType::Utf8View), DataType::Utf8);
        assert_eq!(rhai_type(&DataType::UInt16), DataType::Int64);
        assert_eq!(rhai_type(&DataType::Decimal128(12, 2)), DataType::Float64);
        assert_eq!(rhai_type(&DataType::Date32), DataType::Utf8);
    }
}
