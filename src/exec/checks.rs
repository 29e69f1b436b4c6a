//! Data checks: after a task writes its tables (or when only its checks are new), each check
//! runs as a query for the rows that break it. A check that passes, or only warns, is recorded
//! in the build under its key and never runs again on that build; one that fails (severity
//! error) fails the task, with the count and the first offending rows, labelled at the check.

use std::sync::Arc;

use datafusion::common::TableReference;
use datafusion::prelude::SessionContext;

use super::{Shared, TaskError};
use crate::engine::register_build;
use crate::flow::At;
use crate::names::TableName;
use crate::report::Rows;
use crate::script::checks::{CheckDecl, CheckKind, Severity};
use crate::store::{CheckOutcome, TableBuild};

/// Rows of a failing check shown in its diagnostic.
const SAMPLE_ROWS: usize = 5;

/// Run the task's checks that `builds` have not passed yet; record the ones that pass or only
/// warn in the builds (and their records in the store). `others` are the tables checks read
/// besides the task's own.
pub async fn verify(
    shared: &Arc<Shared>,
    index: usize,
    builds: &mut [TableBuild],
    others: &[(TableName, TableBuild)],
) -> Result<Vec<CheckOutcome>, TaskError> {
    let task = &shared.flow.tasks[index];
    let keys = &shared.steps[index].checks;
    let mut results = Vec::new();
    let mut failed = None;
    for (check, key) in task.checks.iter().zip(keys) {
        let Some(build) = builds.iter_mut().find(|b| b.table == check.table.table) else {
            continue;
        };
        if build.checks.contains_key(key) {
            continue;
        }
        let (offending, sample) = offending(shared, check, build, others).await?;
        let outcome = CheckOutcome {
            check: check.text.clone(),
            severity: check.severity.name().to_string(),
            offending,
        };
        results.push(outcome.clone());
        match (offending, check.severity) {
            (0, _) | (_, Severity::Warn) => {
                build.checks.insert(key.clone(), outcome);
            }
            (n, Severity::Error) => {
                failed.get_or_insert_with(|| failure(shared, check, n, &sample));
            }
        }
    }
    if !results.is_empty() {
        record(shared, builds).await?;
    }
    match failed {
        Some(e) => Err(e),
        None => Ok(results),
    }
}

/// How many rows break `check`, and the first of them.
async fn offending(
    shared: &Shared,
    check: &CheckDecl,
    build: &TableBuild,
    others: &[(TableName, TableBuild)],
) -> Result<(u64, Rows), TaskError> {
    let stages = [check.table.stage.as_str()]
        .into_iter()
        .chain(others.iter().map(|(t, _)| t.stage.as_str()));
    let ctx = shared.engine.context(None, stages, None);
    super::udf::register(&ctx, &shared.code.udfs);
    let failed = |e| TaskError::engine(format!("checking `{}` on {}", check.text, check.table), e);
    let own = TableReference::partial(check.table.stage.as_str(), check.table.table.as_str());
    register_build(&ctx, &shared.store, own, build)
        .await
        .map_err(failed)?;
    for (name, other) in others {
        let name_ref = TableReference::partial(name.stage.as_str(), name.table.as_str());
        register_build(&ctx, &shared.store, name_ref, other)
            .await
            .map_err(failed)?;
    }
    let columns: Vec<String> = build.schema.iter().map(|c| c.name.clone()).collect();
    let sql = query(check, &columns);
    let count = format!("SELECT count(*) AS n FROM ({sql}) AS offending");
    let n = scalar(&ctx, &count).await.map_err(failed)?;
    let sample = rows(
        &ctx,
        &format!("SELECT * FROM ({sql}) AS offending LIMIT {SAMPLE_ROWS}"),
    )
    .await
    .map_err(failed)?;
    Ok((n, sample))
}

/// The query for the rows that break a check of a table with `columns`.
pub(crate) fn query(check: &CheckDecl, columns: &[String]) -> String {
    let table = format!("\"{}\".\"{}\"", check.table.stage, check.table.table);
    // A column is quoted as declared when the table has it so, else left to SQL's folding.
    let col = |c: &str| match columns.iter().any(|s| s == c) {
        true => format!("\"{c}\""),
        false => c.to_string(),
    };
    match &check.kind {
        CheckKind::NotNull(c) => format!("SELECT * FROM {table} WHERE {} IS NULL", col(c)),
        CheckKind::Unique(cols) => {
            let cols: Vec<String> = cols.iter().map(|c| col(c)).collect();
            let cols = cols.join(", ");
            format!(
                "SELECT {cols}, count(*) AS copies FROM {table} GROUP BY {cols} HAVING count(*) > 1"
            )
        }
        CheckKind::AcceptedValues(c, values) => format!(
            "SELECT * FROM {table} WHERE {c} IS NOT NULL AND {c} NOT IN ({})",
            values.join(", "),
            c = col(c)
        ),
        CheckKind::Relationship {
            column,
            other,
            other_column,
        } => format!(
            "SELECT * FROM {table} WHERE {c} IS NOT NULL AND {c} NOT IN \
             (SELECT {other_column} FROM \"{}\".\"{}\" WHERE {other_column} IS NOT NULL)",
            other.stage,
            other.table,
            c = col(column),
        ),
        CheckKind::RowCount(predicate) => format!(
            "SELECT row_count FROM (SELECT count(*) AS row_count FROM {table}) AS counted \
             WHERE NOT (row_count {predicate})"
        ),
        CheckKind::Sql(sql) => sql.replace("{self}", &table),
    }
}

async fn scalar(ctx: &SessionContext, sql: &str) -> datafusion::error::Result<u64> {
    use datafusion::arrow::array::{Array, Int64Array};
    let rows = rows(ctx, sql).await?;
    let n = rows
        .batches
        .first()
        .and_then(|b| {
            b.column(0)
                .as_any()
                .downcast_ref::<Int64Array>()
                .map(|a| a.value(0))
        })
        .unwrap_or(0);
    Ok(n.max(0) as u64)
}

async fn rows(ctx: &SessionContext, sql: &str) -> datafusion::error::Result<Rows> {
    let df = crate::df_message::plan_query(ctx, sql).await?;
    let schema = Arc::new(df.schema().as_arrow().clone());
    let batches = df.collect().await?;
    Ok(Rows { schema, batches })
}

/// A failed check, labelled where it was declared, with the offending rows.
fn failure(shared: &Shared, check: &CheckDecl, offending: u64, sample: &Rows) -> TaskError {
    let source = shared.code.source_of(check.origin);
    let at = At::new(source, check.origin);
    let rows = crate::report::format_rows(sample);
    TaskError::Check {
        task: check.table.to_string(),
        check: check.text.clone(),
        offending,
        location: at.location,
        src: at.src,
        span: at.span,
        rows,
    }
}

/// The builds with their new check results, written back to their records: the key's
/// record (what a later run reuses) and the build's own.
async fn record(shared: &Shared, builds: &[TableBuild]) -> Result<(), TaskError> {
    let layout = &shared.store.layout;
    for b in builds {
        let failed =
            |e| TaskError::store(format!("recording checks of {}.{}", b.stage, b.table), e);
        let key = b.key.as_str();
        let own = layout.build_record(&b.stage, &b.table, key, &b.build);
        shared.store.put_json(&own, b).await.map_err(failed)?;
        let newest = layout.key_record(&b.stage, &b.table, key);
        shared.store.put_json(&newest, b).await.map_err(failed)?;
    }
    Ok(())
}
