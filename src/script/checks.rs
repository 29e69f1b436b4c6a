//! Data checks as a script writes them (`expect("prep.orders", "unique(order_id)")`, or a
//! table's `expect` option), parsed when the script is evaluated so that a malformed check is
//! an error at its line. `exec` turns each into a query for the rows that break it.

use crate::names::{TableName, is_identifier};
use crate::source::Origin;

/// What happens when a check finds offending rows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Severity {
    /// The task fails and its stage is not committed.
    Error,
    /// The check is reported and recorded; the stage commits.
    Warn,
}

impl Severity {
    pub fn name(self) -> &'static str {
        match self {
            Severity::Error => "error",
            Severity::Warn => "warn",
        }
    }
}

/// One check of one table, where it was declared.
#[derive(Debug, Clone)]
pub struct CheckDecl {
    pub table: TableName,
    /// As written, trimmed: what messages quote and the key hashes.
    pub text: String,
    pub kind: CheckKind,
    pub severity: Severity,
    pub origin: Origin,
}

#[derive(Debug, Clone, PartialEq)]
pub enum CheckKind {
    /// `not_null(col)`
    NotNull(String),
    /// `unique(a, b, ...)`
    Unique(Vec<String>),
    /// `accepted_values(col, ['a', 'b', 3])`: the values as SQL literals.
    AcceptedValues(String, Vec<String>),
    /// `relationships(col, stage.table.col)`: every value is found in the other column.
    Relationship {
        column: String,
        other: TableName,
        other_column: String,
    },
    /// `row_count > 0`, `row_count between 10 and 100`: the predicate after `row_count`.
    RowCount(String),
    /// `sql(SELECT ... FROM {self} ...)`: a query returning the offending rows.
    Sql(String),
}

impl CheckKind {
    /// The tables besides its own that a check reads.
    pub fn reads(&self) -> Option<&TableName> {
        match self {
            CheckKind::Relationship { other, .. } => Some(other),
            _ => None,
        }
    }
}

/// Parse a check as written.
pub fn parse(text: &str) -> Result<CheckKind, String> {
    let text = text.trim();
    if let Some(rest) = text.strip_prefix("row_count") {
        let predicate = rest.trim();
        if predicate.is_empty() {
            return Err("`row_count` needs a condition, e.g. `row_count > 0` or `row_count between 1 and 100`".into());
        }
        return Ok(CheckKind::RowCount(predicate.to_string()));
    }
    let Some((name, args)) = call(text) else {
        return Err(format!(
            "`{text}` is not a check: use not_null(col), unique(col, ...), accepted_values(col, [...]), relationships(col, stage.table.col), row_count > 0 or sql(...)"
        ));
    };
    if name == "sql" {
        if !args.contains("{self}") {
            return Err(
                "a sql(...) check reads its table as {self}: sql(SELECT * FROM {self} WHERE ...)"
                    .into(),
            );
        }
        return Ok(CheckKind::Sql(args.trim().to_string()));
    }
    let parts = split_args(args);
    let column = |s: &str| -> Result<String, String> {
        let s = s.trim();
        match is_identifier(s) {
            true => Ok(s.to_string()),
            false => Err(format!("`{s}` is not a column name in `{text}`")),
        }
    };
    match (name, parts.as_slice()) {
        ("not_null", [c]) => Ok(CheckKind::NotNull(column(c)?)),
        ("unique", cols) if !cols.is_empty() => Ok(CheckKind::Unique(
            cols.iter().map(|c| column(c)).collect::<Result<_, _>>()?,
        )),
        ("accepted_values", [c, values]) => Ok(CheckKind::AcceptedValues(
            column(c)?,
            literals(values).ok_or_else(|| {
                format!("accepted_values takes a list of values in [...], e.g. accepted_values({}, ['a', 'b'])", c.trim())
            })?,
        )),
        ("relationships", [c, other]) => {
            let (table, other_column) = other.trim().rsplit_once('.').ok_or_else(|| {
                format!("`{}` is not stage.table.column", other.trim())
            })?;
            let other = TableName::parse(table)
                .ok_or_else(|| format!("`{table}` is not a table name of the form stage.table"))?;
            Ok(CheckKind::Relationship {
                column: column(c)?,
                other,
                other_column: column(other_column)?,
            })
        }
        (name, _) => Err(format!(
            "`{name}` is not a check, or takes other arguments: use not_null(col), unique(col, ...), accepted_values(col, [...]), relationships(col, stage.table.col), row_count ... or sql(...)"
        )),
    }
}

/// `name(args)`: the name and what is between the outer parentheses.
fn call(text: &str) -> Option<(&str, &str)> {
    let open = text.find('(')?;
    let inner = text.strip_suffix(')')?;
    let name = text[..open].trim();
    is_identifier(name).then(|| (name, &inner[open + 1..]))
}

/// Split on commas outside brackets and quotes.
fn split_args(args: &str) -> Vec<&str> {
    let (mut out, mut depth, mut quote, mut start) = (Vec::new(), 0i32, None, 0);
    for (i, c) in args.char_indices() {
        match (c, quote) {
            ('\'' | '"', None) => quote = Some(c),
            (c, Some(q)) if c == q => quote = None,
            ('[' | '(', None) => depth += 1,
            (']' | ')', None) => depth -= 1,
            (',', None) if depth == 0 => {
                out.push(&args[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    if !args[start..].trim().is_empty() || !out.is_empty() {
        out.push(&args[start..]);
    }
    out
}

/// `['a', 'b', 3]` as SQL literals; `None` if it is not such a list.
fn literals(list: &str) -> Option<Vec<String>> {
    let inner = list.trim().strip_prefix('[')?.strip_suffix(']')?;
    let values: Vec<String> = split_args(inner)
        .into_iter()
        .map(|v| v.trim())
        .filter(|v| !v.is_empty())
        .map(
            |v| match v.strip_prefix('"').and_then(|v| v.strip_suffix('"')) {
                Some(s) => format!("'{}'", s.replace('\'', "''")),
                None => v.to_string(),
            },
        )
        .collect();
    let valid = |v: &String| {
        (v.starts_with('\'') && v.ends_with('\'') && v.len() >= 2)
            || v.parse::<f64>().is_ok()
            || matches!(v.to_ascii_lowercase().as_str(), "true" | "false")
    };
    (!values.is_empty() && values.iter().all(valid)).then_some(values)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn checks_parse_as_written() {
        assert_eq!(parse("not_null(id)"), Ok(CheckKind::NotNull("id".into())));
        assert_eq!(
            parse("unique(a, b)"),
            Ok(CheckKind::Unique(vec!["a".into(), "b".into()]))
        );
        assert_eq!(
            parse("accepted_values(seg, ['a', \"b\", 3])"),
            Ok(CheckKind::AcceptedValues(
                "seg".into(),
                vec!["'a'".into(), "'b'".into(), "3".into()]
            ))
        );
        assert_eq!(
            parse("relationships(customer_id, raw.customers.customer_id)"),
            Ok(CheckKind::Relationship {
                column: "customer_id".into(),
                other: TableName::new("raw", "customers"),
                other_column: "customer_id".into()
            })
        );
        assert_eq!(
            parse("row_count between 1 and 9"),
            Ok(CheckKind::RowCount("between 1 and 9".into()))
        );
        assert!(matches!(
            parse("sql(SELECT * FROM {self} WHERE x < 0)"),
            Ok(CheckKind::Sql(_))
        ));
        for bad in [
            "",
            "unique()",
            "nope(x)",
            "not_null(a b)",
            "accepted_values(x, [a])",
            "sql(SELECT 1)",
        ] {
            assert!(parse(bad).is_err(), "{bad}");
        }
    }
}
