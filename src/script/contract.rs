//! Contracts on outputs: `#{ columns: #{ id: "Int64", ... }, contract: true }` on a task, or
//! `contract("stage.t", #{ ... })`. A contract's table must have exactly its columns with its
//! types; `columns` without `contract` only describes them. A leaf: Arrow types and names.

use datafusion::arrow::datatypes::{DataType, Field, Schema, SchemaRef};

use crate::names::TableName;
use crate::source::Origin;

#[derive(Debug, Clone, PartialEq)]
pub struct ContractDecl {
    pub table: TableName,
    pub columns: Vec<ContractColumn>,
    /// `contract: true` or `contract(...)`: the columns and types are enforced; otherwise
    /// they describe the table.
    pub enforced: bool,
    pub origin: Origin,
}

#[derive(Debug, Clone, PartialEq)]
pub struct ContractColumn {
    pub name: String,
    pub data_type: Option<DataType>,
    pub not_null: bool,
    pub description: Option<String>,
}

impl ContractDecl {
    /// The schema it promises, when it is enforced and gives every column's type: what
    /// `weir check` plans downstream tasks against before the table is built.
    pub fn schema(&self) -> Option<SchemaRef> {
        if !self.enforced {
            return None;
        }
        let fields = self
            .columns
            .iter()
            .map(|c| {
                let t = c.data_type.clone()?;
                Some(Field::new(&c.name, t, !c.not_null))
            })
            .collect::<Option<Vec<_>>>()?;
        Some(std::sync::Arc::new(Schema::new(fields)))
    }

    /// How `schema` breaks the contract: missing, extra and mistyped columns, in that order;
    /// empty when it keeps it (or is not enforced).
    pub fn violations(&self, schema: &Schema) -> Vec<String> {
        if !self.enforced {
            return Vec::new();
        }
        let mut out = Vec::new();
        let has = |name: &str| schema.fields().iter().any(|f| f.name() == name);
        let missing: Vec<&str> = self
            .columns
            .iter()
            .map(|c| c.name.as_str())
            .filter(|n| !has(n))
            .collect();
        if !missing.is_empty() {
            out.push(format!("missing {}", missing.join(", ")));
        }
        let extra: Vec<&str> = schema
            .fields()
            .iter()
            .map(|f| f.name().as_str())
            .filter(|n| !self.columns.iter().any(|c| c.name == *n))
            .collect();
        if !extra.is_empty() {
            out.push(format!("extra {}", extra.join(", ")));
        }
        for c in &self.columns {
            let (Some(want), Ok(field)) = (&c.data_type, schema.field_with_name(&c.name)) else {
                continue;
            };
            if !same_type(want, field.data_type()) {
                out.push(format!("{} is {}, not {want}", c.name, field.data_type()));
            }
        }
        out
    }

    /// What the cache key keeps of it: the enforced columns and types, not the descriptions.
    pub fn keyed(&self) -> serde_json::Value {
        let columns: Vec<serde_json::Value> = self
            .columns
            .iter()
            .map(|c| {
                serde_json::json!([
                    c.name,
                    c.data_type.as_ref().map(ToString::to_string),
                    c.not_null
                ])
            })
            .collect();
        serde_json::json!({ "table": self.table.to_string(), "columns": columns })
    }
}

/// Arrow's string and binary layouts (plain, large, view) hold the same values: a contract
/// saying `Utf8` is kept by a `Utf8View` column, as DataFusion reads Parquet strings.
fn same_type(want: &DataType, got: &DataType) -> bool {
    let family = |t: &DataType| match t {
        DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View => DataType::Utf8,
        DataType::Binary | DataType::LargeBinary | DataType::BinaryView => DataType::Binary,
        other => other.clone(),
    };
    family(want) == family(got)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn contract() -> ContractDecl {
        let col = |name: &str, t: DataType| ContractColumn {
            name: name.into(),
            data_type: Some(t),
            not_null: false,
            description: None,
        };
        ContractDecl {
            table: TableName::new("s", "t"),
            columns: vec![
                col("id", DataType::Int64),
                col("amount", DataType::Decimal128(12, 2)),
                col("segment", DataType::Utf8),
            ],
            enforced: true,
            origin: Origin::default(),
        }
    }

    #[test]
    fn a_schema_breaks_a_contract_by_missing_extra_and_mistyped_columns() {
        let schema = Schema::new(vec![
            Field::new("id", DataType::Int32, true),
            Field::new("segment", DataType::Utf8View, true),
            Field::new("note", DataType::Utf8, true),
        ]);
        assert_eq!(
            contract().violations(&schema),
            ["missing amount", "extra note", "id is Int32, not Int64"]
        );
        let kept = Schema::new(vec![
            Field::new("segment", DataType::LargeUtf8, true),
            Field::new("amount", DataType::Decimal128(12, 2), true),
            Field::new("id", DataType::Int64, false),
        ]);
        assert!(contract().violations(&kept).is_empty());
    }
}
