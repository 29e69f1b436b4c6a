//! Running a multi-statement SQL task (`flow::statements`): each view's query is planned with the
//! options every user query gets (`query_only`) and registered in the task's own context under
//! the view's name, for later statements to read; the last statement is the task's table.
//! DataFusion never executes the CREATE VIEW itself, so no statement can reach its DDL.

use datafusion::common::TableReference;
use datafusion::error::{DataFusionError, Result};
use datafusion::prelude::{DataFrame, SessionContext};
use datafusion::sql::parser::Statement as DFStatement;
use datafusion::sql::sqlparser::ast::Statement;

use super::TaskError;
use crate::df_message::{query_only, too_deep};
use crate::flow::Task;
use crate::flow::statements::Part;

/// The task's table: its views registered in `ctx`, its last statement planned.
pub async fn plan(ctx: &SessionContext, task: &Task, sql: &str) -> Result<DataFrame, TaskError> {
    let mut table = None;
    for part in &task.statements {
        let text = sql.get(part.range.clone()).unwrap_or_default();
        let df = plan_part(ctx, text)
            .await
            .map_err(|e| failure(task, sql, part, &e))?;
        match &part.view {
            Some(name) => {
                ctx.register_table(TableReference::bare(name.as_str()), df.into_view())
                    .map_err(|e| TaskError::engine(format!("cannot define view `{name}`"), e))?;
            }
            None => table = Some(df),
        }
    }
    table.ok_or_else(|| TaskError::invalid("the task's statements end without a query"))
}

/// One statement's query, planned as user SQL is: refused if it nests too deeply or is not a
/// query once planned. Spans in its errors are in `text`.
async fn plan_part(ctx: &SessionContext, text: &str) -> Result<DataFrame> {
    let state = ctx.state();
    let dialect = state.config().options().sql_parser.dialect;
    let statement = state.sql_to_statement(text, &dialect)?;
    if let Some(message) = too_deep(&statement) {
        return Err(DataFusionError::Plan(message));
    }
    // A view is its query; anything else was refused when the script was loaded, and is
    // refused again below if it is not a query.
    let query = match statement {
        DFStatement::Statement(s) => match *s {
            Statement::CreateView(view) => Statement::Query(view.query),
            other => other,
        },
        other => return Err(DataFusionError::Plan(format!("not a query: {other}"))),
    };
    let plan = state
        .statement_to_plan(DFStatement::Statement(Box::new(query)))
        .await?;
    query_only().verify_plan(&plan)?;
    ctx.execute_logical_plan(plan).await
}

/// A statement that does not plan, labelled in the script (or `.sql` file) where DataFusion
/// says within that statement.
fn failure(task: &Task, sql: &str, part: &Part, e: &DataFusionError) -> TaskError {
    let Some(place) = &task.sql else {
        return TaskError::invalid(crate::df_message::root_message(e));
    };
    let text = sql.get(part.range.clone()).unwrap_or_default();
    let d = crate::flow::sql_error::diagnose(e, &place.part(part.range.clone()), text);
    TaskError::sql(task.id.to_string(), d.headline, d.at, &d.label, d.help)
}
