//! What a failed query says, and where: DataFusion's message without its category prefix, the
//! span it reports (shifted into the user's file by `SqlPlace`) and a "did you mean" help.

use datafusion::error::DataFusionError;

use crate::flow::{At, SqlPlace};

pub struct SqlDiagnosis {
    /// What is wrong, in one line.
    pub headline: String,
    pub at: At,
    /// What the label under the span says.
    pub label: String,
    pub help: Option<String>,
}

/// What a DataFusion error says in one line, without its category prefix, and a help line
/// ("did you mean" for a misspelled column) where one helps.
pub fn explain(e: &DataFusionError) -> (String, Option<String>) {
    let message = crate::error::root_message(e);
    let (headline, suggestion) = match message.split_once("\nDid you mean") {
        Some((head, rest)) => (head.to_string(), Some(format!("did you mean{rest}"))),
        None => (message.clone(), None),
    };
    let headline = headline.lines().next().unwrap_or_default();
    let headline = headline.split(". Did you mean").next().unwrap_or(headline);
    let headline = ["Schema error: ", "Error during planning: "]
        .iter()
        .fold(headline, |h, p| h.trim_start_matches(p))
        .trim_end_matches('.')
        .to_string();
    (headline, suggestion.or_else(|| column_suggestion(e)))
}

pub fn diagnose(e: &DataFusionError, place: &SqlPlace, sql: &str) -> SqlDiagnosis {
    let message = crate::error::root_message(e);
    // The label says where; the headline says what.
    let (headline, help) = explain(e);
    if let Some(d) = signature_mismatch(&message, place, sql) {
        return d;
    }
    let Some(d) = e.diagnostic() else {
        return SqlDiagnosis {
            headline,
            at: place.whole(sql),
            label: "in this query".into(),
            help,
        };
    };
    let at = match d.span {
        Some(span) => place.at(
            sql,
            (span.start.line as usize, span.start.column as usize),
            Some((span.end.line as usize, span.end.column as usize)),
        ),
        None => place.whole(sql),
    };
    SqlDiagnosis {
        headline,
        at,
        label: d.message.clone(),
        help: d.helps.first().map(|h| h.message.clone()).or(help),
    }
}

/// A query typed by the user (`weir sql`, the REPL) that does not parse or plan, labelled
/// where DataFusion says; `tables` are the committed ones, for "did you mean".
pub fn typed_query(
    query: &str,
    e: &datafusion::error::DataFusionError,
    tables: &[String],
) -> crate::Error {
    let place = SqlPlace::standalone("query", query);
    let (message, at, label, help) = match crate::flow::sql::parser_error(e) {
        Some((message, start)) => {
            let at = place.at(query, start, None);
            (message, at, "the parser stopped here".to_string(), None)
        }
        None => {
            let d = diagnose(e, &place, query);
            match unknown_table(&d.headline) {
                Some(name) => (
                    format!("table `{name}` is not committed"),
                    d.at,
                    "not committed".into(),
                    Some(committed_help(&name, tables)),
                ),
                None => (d.headline, d.at, d.label, d.help),
            }
        }
    };
    crate::Error::QueryAt {
        message,
        src: at.src,
        span: at.span,
        label,
        help,
    }
}

/// DataFusion's "table 'datafusion.s.x' not found", as the user named it.
fn unknown_table(headline: &str) -> Option<String> {
    let name = headline
        .strip_prefix("table '")?
        .strip_suffix("' not found")?;
    Some(name.strip_prefix("datafusion.").unwrap_or(name).to_string())
}

pub fn committed_help(name: &str, tables: &[String]) -> String {
    match crate::flow::closest(name, tables.iter().map(String::as_str), 0.8) {
        Some(t) => format!("did you mean `{t}`?"),
        None if tables.is_empty() => {
            "nothing is committed in this store yet: run the pipeline first".to_string()
        }
        None => format!("committed tables: {}", tables.join(", ")),
    }
}

/// The `stage.table` names registered in a context.
pub fn registered_tables(ctx: &datafusion::prelude::SessionContext) -> Vec<String> {
    let Some(catalog) = ctx.catalog("datafusion") else {
        return Vec::new();
    };
    let mut names: Vec<String> = catalog
        .schema_names()
        .into_iter()
        .filter_map(|s| catalog.schema(&s).map(|schema| (s, schema)))
        .flat_map(|(s, schema)| {
            schema
                .table_names()
                .into_iter()
                .map(move |t| format!("{s}.{t}"))
        })
        .collect();
    names.sort();
    names
}

/// "Function 'sum' failed to match any signature, errors: ... requires Int64, but received
/// String (DataType: Utf8View) ..." said in one line, labelled at the call.
fn signature_mismatch(message: &str, place: &SqlPlace, sql: &str) -> Option<SqlDiagnosis> {
    let (_, rest) = message.split_once("Function '")?;
    let (name, rest) = rest.split_once("' failed to match any signature")?;
    let mut takes: Vec<&str> = Vec::new();
    let mut received = None;
    for part in rest.split(" requires ").skip(1) {
        let (wanted, got) = part.split_once(", but received ")?;
        takes.push(wanted);
        received = got
            .split("(DataType: ")
            .nth(1)
            .and_then(|t| t.split(')').next())
            .or(received);
    }
    let received = received?;
    let lower = sql.to_lowercase();
    let at = match lower.find(&format!("{}(", name.to_lowercase())) {
        Some(i) => place.at_offset(sql, i, Some(i + name.len())),
        None => place.whole(sql),
    };
    Some(SqlDiagnosis {
        headline: format!("`{name}` does not take {received}"),
        at,
        label: format!("given {received}"),
        help: Some(format!(
            "`{name}` takes {}: cast the argument to one of them",
            takes.join(", ")
        )),
    })
}

/// The closest existing column to one DataFusion could not find.
fn column_suggestion(e: &datafusion::error::DataFusionError) -> Option<String> {
    use datafusion::common::SchemaError;
    use datafusion::error::DataFusionError as D;
    let D::SchemaError(schema_error, _) = e.find_root() else {
        return None;
    };
    let SchemaError::FieldNotFound {
        field,
        valid_fields,
    } = schema_error.as_ref()
    else {
        return None;
    };
    let names: Vec<&str> = valid_fields.iter().map(|c| c.name.as_str()).collect();
    crate::flow::closest(&field.name, names.into_iter(), 0.7)
        .map(|c| format!("did you mean `{c}`? columns: {}", column_list(valid_fields)))
        .or_else(|| Some(format!("columns: {}", column_list(valid_fields))))
}

fn column_list(fields: &[datafusion::common::Column]) -> String {
    let names: Vec<&str> = fields.iter().map(|c| c.name.as_str()).collect();
    names.join(", ")
}
