//! The SQL box: a query over the committed tables with `weir sql`'s rules (read-only, only
//! this instance's tables, nothing on disk), its rows as JSON up to a limit, or all of them
//! (up to `CSV_ROWS`) as CSV.

use std::sync::Arc;
use std::time::Instant;

use axum::Json;
use axum::extract::{Query, State};
use axum::http::{StatusCode, header};
use axum::response::IntoResponse;
use datafusion::arrow::util::display::{ArrayFormatter, FormatOptions};
use serde::Deserialize;
use serde_json::{Value, json};

use super::App;
use super::reply::{ApiError, Reply, json, off_thread};
use crate::report::Rows;
use crate::session::{Loaded, Reader};

/// Rows the page shows at most, whatever it asks for.
const MAX_ROWS: usize = 10_000;
const DEFAULT_ROWS: usize = 1_000;
/// Rows a CSV download holds at most.
const CSV_ROWS: usize = 1_000_000;

#[derive(Deserialize)]
pub(super) struct Ask {
    query: String,
    limit: Option<usize>,
    instance: Option<String>,
}

#[derive(Deserialize)]
pub(super) struct InstanceParam {
    instance: Option<String>,
}

pub(super) async fn query(
    State(app): State<Arc<App>>,
    Query(q): Query<InstanceParam>,
    Json(ask): Json<Ask>,
) -> Reply {
    off_thread(move || query_view(app, q, ask)).await
}

async fn query_view(app: Arc<App>, q: InstanceParam, ask: Ask) -> Reply {
    let started = Instant::now();
    let loaded = app.load(ask.instance.as_deref().or(q.instance.as_deref()))?;
    let limit = ask.limit.unwrap_or(DEFAULT_ROWS).clamp(1, MAX_ROWS);
    let rows = run(&loaded, &ask.query, limit + 1).await?;
    let mut out = rows_json(&rows, limit);
    out["elapsed_ms"] = json!(started.elapsed().as_millis() as u64);
    Ok(json(out))
}

#[derive(Deserialize)]
pub(super) struct CsvAsk {
    query: String,
    instance: Option<String>,
}

pub(super) async fn csv(State(app): State<Arc<App>>, Query(q): Query<CsvAsk>) -> Reply {
    off_thread(move || csv_view(app, q)).await
}

async fn csv_view(app: Arc<App>, q: CsvAsk) -> Reply {
    let loaded = app.load(q.instance.as_deref())?;
    let rows = run(&loaded, &q.query, CSV_ROWS).await?;
    let mut out = Vec::new();
    {
        let mut writer = datafusion::arrow::csv::Writer::new(&mut out);
        for batch in &rows.batches {
            writer
                .write(batch)
                .map_err(|e| ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, e.to_string(), ""))?;
        }
    }
    let text = crate::config::secrets::redact(&String::from_utf8_lossy(&out)).into_owned();
    Ok((
        [
            (header::CONTENT_TYPE, "text/csv; charset=utf-8"),
            (
                header::CONTENT_DISPOSITION,
                "attachment; filename=\"query.csv\"",
            ),
        ],
        text,
    )
        .into_response())
}

/// At most `limit` rows of `query` over the committed tables.
async fn run(loaded: &Loaded, query: &str, limit: usize) -> crate::Result<Rows> {
    let engine = loaded.engine(None)?;
    let reader = Reader::open(&loaded.store, &engine).await?;
    if reader.calls_unknown_function(query).await {
        reader.add_udfs(&loaded.script)?;
    }
    let failed = |cause| crate::Error::Query {
        message: "query failed".into(),
        cause,
    };
    let df = reader
        .plan(query)
        .await?
        .limit(0, Some(limit))
        .map_err(failed)?;
    let schema = Arc::new(df.schema().as_arrow().clone());
    let batches = df.collect().await.map_err(failed)?;
    Ok(Rows { schema, batches })
}

/// Up to `limit` rows as strings (nulls as null), with the columns, their types and whether
/// more rows were there.
pub(super) fn rows_json(rows: &Rows, limit: usize) -> Value {
    let options = FormatOptions::default();
    let mut out: Vec<Value> = Vec::new();
    let mut total = 0;
    for batch in &rows.batches {
        total += batch.num_rows();
        let formatters: Vec<_> = batch
            .columns()
            .iter()
            .map(|c| ArrayFormatter::try_new(c.as_ref(), &options))
            .collect();
        for row in 0..batch.num_rows() {
            if out.len() == limit {
                break;
            }
            let values = batch
                .columns()
                .iter()
                .zip(&formatters)
                .map(|(column, f)| match (column.is_null(row), f) {
                    (true, _) => Value::Null,
                    (false, Ok(f)) => Value::String(f.value(row).to_string()),
                    (false, Err(_)) => Value::String("?".into()),
                })
                .collect();
            out.push(Value::Array(values));
        }
    }
    let fields = rows.schema.fields();
    json!({
        "columns": fields.iter().map(|f| f.name().clone()).collect::<Vec<_>>(),
        "types": fields.iter().map(|f| f.data_type().to_string()).collect::<Vec<_>>(),
        "rows": out,
        "truncated": total > limit,
    })
}
