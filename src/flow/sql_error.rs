//! Where a failed query went wrong: the span DataFusion reports, shifted into the user's file
//! by `SqlPlace`, with DataFusion's message in one line and a "did you mean" help.

use datafusion::error::DataFusionError;
use miette::{Diagnostic, NamedSource, SourceSpan};
use thiserror::Error;

use super::{At, SqlPlace};
use crate::df_message::{
    ONE_QUERY, explain, first_keyword, is_refused_statement, refused_headline, root_message,
};
use crate::names::did_you_mean;

/// A query typed by the user (`weir sql`, the REPL) that does not parse or plan, labelled in
/// its text.
#[derive(Debug, Error, Diagnostic)]
#[error("query failed: {message}")]
#[diagnostic(code(weir::query))]
pub struct QueryError {
    pub message: String,
    #[source_code]
    pub src: NamedSource<String>,
    #[label("{label}")]
    pub span: SourceSpan,
    pub label: String,
    #[help]
    pub help: Option<String>,
}

pub struct SqlDiagnosis {
    /// What is wrong, in one line.
    pub headline: String,
    pub at: At,
    /// What the label under the span says.
    pub label: String,
    pub help: Option<String>,
}

pub fn diagnose(e: &DataFusionError, place: &SqlPlace, sql: &str) -> SqlDiagnosis {
    if let Some(headline) = refused_headline(e, sql) {
        return SqlDiagnosis {
            headline,
            at: place.at_offset(sql, first_keyword(sql).1, None),
            label: "not a query".into(),
            help: Some(format!(
                "a task's SQL is one query (SELECT or WITH ... SELECT): {ONE_QUERY}"
            )),
        };
    }
    let message = root_message(e);
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
/// `stored_in` says where the tables were looked for (the store and instance).
pub fn typed_query(
    query: &str,
    e: &DataFusionError,
    tables: &[String],
    stored_in: &str,
) -> QueryError {
    let place = SqlPlace::standalone("query", query);
    let (message, at, label, help) = match super::sql::parser_error(e) {
        Some((message, start)) => {
            let at = place.at(query, start, None);
            (message, at, "the parser stopped here".to_string(), None)
        }
        None if is_refused_statement(e) => (
            refused_headline(e, query).unwrap_or_default(),
            place.at_offset(query, first_keyword(query).1, None),
            "not a query".to_string(),
            Some(format!(
                "this reads committed tables with one query (SELECT, WITH ... SELECT or EXPLAIN): {ONE_QUERY}"
            )),
        ),
        None => {
            let d = diagnose(e, &place, query);
            match unknown_table(&d.headline) {
                Some(name) => (
                    format!("table `{name}` is not committed"),
                    d.at,
                    "not committed".into(),
                    Some(committed_help(&name, tables, stored_in)),
                ),
                None => (d.headline, d.at, d.label, d.help),
            }
        }
    };
    QueryError {
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
    Some(crate::df_message::unqualified(name).to_string())
}

pub fn committed_help(name: &str, tables: &[String], place: &str) -> String {
    did_you_mean(name, tables.iter().map(String::as_str), || {
        if tables.is_empty() {
            format!("nothing is committed in {place} yet: run the pipeline first")
        } else {
            format!("committed tables: {}", tables.join(", "))
        }
    })
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
