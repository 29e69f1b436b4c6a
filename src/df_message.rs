//! DataFusion's error messages, said once and in one line: the root cause without the context
//! layers that repeat it, without its category prefix, and with "did you mean" for a column;
//! and the one kind of SQL weir lets users run, queries.
//! A leaf: it imports nothing of weir, so every module may use it.

use std::ops::ControlFlow;

use datafusion::error::DataFusionError;
use datafusion::execution::context::SQLOptions;
use datafusion::prelude::{DataFrame, SessionContext};
use datafusion::sql::parser::{DFParser, Statement as DFStatement};
use datafusion::sql::sqlparser::ast::{Expr, Query, SetExpr, Visit, Visitor};

use crate::names::closest;

/// DataFusion wraps causes in context layers that each repeat the cause; show it once.
pub fn root_message(e: &DataFusionError) -> String {
    e.find_root().strip_backtrace()
}

/// What SQL in weir may be: a task is a query that produces a table and `weir sql` reads
/// committed tables, so nothing planned from user SQL may write files (COPY), define tables
/// over arbitrary locations (CREATE EXTERNAL TABLE) or change the session (SET).
pub fn query_only() -> SQLOptions {
    SQLOptions::new()
        .with_allow_ddl(false)
        .with_allow_dml(false)
        .with_allow_statements(false)
}

/// Plan user SQL as weir allows it: one query (`query_only`), nested no deeper than
/// `MAX_SQL_DEPTH`.
pub async fn plan_query(ctx: &SessionContext, sql: &str) -> datafusion::error::Result<DataFrame> {
    if let Ok(statements) = DFParser::parse_sql(sql)
        && let Some(message) = statements.iter().find_map(too_deep)
    {
        return Err(DataFusionError::Plan(message));
    }
    ctx.sql_with_options(sql, query_only()).await
}

/// Why an SQL expression (a Table method's `expr`) nests too deeply to plan, if it does.
pub fn expression_too_deep(expr: &str) -> Option<String> {
    // Nesting `MAX_SQL_DEPTH` levels takes at least that many characters: most expressions
    // need no parse to know.
    if expr.len() < MAX_SQL_DEPTH {
        return None;
    }
    let statements = DFParser::parse_sql(&format!("SELECT {expr}")).ok()?;
    statements.iter().find_map(too_deep)
}

/// How deeply an expression (`a OR b OR ...`, `1 + 2 + ...`) or a chain of set operations
/// (`... UNION ALL ...`) may nest. Planning such a query takes time and memory quadratic in its
/// depth (each level renders its whole subtree as a name) and recursion DataFusion does not
/// all protect, so deeper queries are refused with this limit rather than planned for minutes.
pub const MAX_SQL_DEPTH: usize = 2000;

/// Why `statement` nests too deeply to plan, if it does.
pub fn too_deep(statement: &DFStatement) -> Option<String> {
    let statement = match statement {
        DFStatement::Statement(s) => s,
        DFStatement::Explain(e) => return too_deep(&e.statement),
        _ => return None,
    };
    let mut depth = Depth::default();
    let _ = statement.visit(&mut depth);
    let (what, deepest) = if depth.deepest_set >= depth.deepest_expr {
        (
            "set operations (UNION, EXCEPT, INTERSECT)",
            depth.deepest_set,
        )
    } else {
        ("an expression", depth.deepest_expr)
    };
    (deepest > MAX_SQL_DEPTH).then(|| {
        format!(
            "the query nests {what} {deepest} levels deep, more than the {MAX_SQL_DEPTH} weir plans: use IN (...) for long OR chains, or split the query into tasks"
        )
    })
}

/// The deepest nesting of expressions and of set operations in a statement. sqlparser's
/// visitor guards its own recursion (recursive_protection); set operations are walked here
/// with a stack of our own.
#[derive(Default)]
struct Depth {
    expr: usize,
    deepest_expr: usize,
    deepest_set: usize,
}

impl Visitor for Depth {
    type Break = ();

    fn pre_visit_expr(&mut self, _: &Expr) -> ControlFlow<()> {
        self.expr += 1;
        self.deepest_expr = self.deepest_expr.max(self.expr);
        ControlFlow::Continue(())
    }

    fn post_visit_expr(&mut self, _: &Expr) -> ControlFlow<()> {
        self.expr -= 1;
        ControlFlow::Continue(())
    }

    fn pre_visit_query(&mut self, query: &Query) -> ControlFlow<()> {
        let mut pending = vec![(query.body.as_ref(), 0)];
        while let Some((body, depth)) = pending.pop() {
            self.deepest_set = self.deepest_set.max(depth);
            if let SetExpr::SetOperation { left, right, .. } = body {
                pending.push((left, depth + 1));
                pending.push((right, depth + 1));
            }
        }
        ControlFlow::Continue(())
    }
}

/// Said wherever such a statement is refused.
pub const ONE_QUERY: &str = "COPY, CREATE, INSERT, SET and other statements are not allowed";

/// Whether `query_only` refused the plan: DataFusion says "DDL not supported: ...", "DML not
/// supported: ..." or "Statement not supported: ...".
pub fn is_refused_statement(e: &DataFusionError) -> bool {
    let DataFusionError::Plan(message) = e.find_root() else {
        return false;
    };
    ["DDL", "DML", "Statement"]
        .iter()
        .any(|kind| message.starts_with(&format!("{kind} not supported: ")))
}

/// What a refused statement was, in one line: "COPY is not a query", or DataFusion's words
/// when the statement starts like a query (`SELECT ... INTO`, `EXPLAIN COPY ...`).
pub fn refused_headline(e: &DataFusionError, sql: &str) -> Option<String> {
    if !is_refused_statement(e) {
        return None;
    }
    let (keyword, _) = first_keyword(sql);
    Some(match keyword.as_str() {
        "SELECT" | "WITH" | "VALUES" | "EXPLAIN" | "" => {
            let message = root_message(e);
            let message = message.trim_start_matches("Error during planning: ");
            format!("{message}: only queries run")
        }
        _ => format!("{keyword} is not a query"),
    })
}

/// The statement's first keyword (`COPY`, `CREATE`, ...), past blanks and comments, and its
/// byte offset in `sql`: what a refusal names and labels.
pub fn first_keyword(sql: &str) -> (String, usize) {
    let mut at = 0;
    loop {
        let rest = &sql[at..];
        let trimmed = rest.trim_start();
        at += rest.len() - trimmed.len();
        if trimmed.starts_with("--") {
            at += trimmed.find('\n').unwrap_or(trimmed.len());
        } else if let Some(body) = trimmed.strip_prefix("/*") {
            at += body.find("*/").map_or(trimmed.len(), |end| end + 4);
        } else {
            break;
        }
    }
    let word: String = sql[at..]
        .chars()
        .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
        .collect();
    (word.to_ascii_uppercase(), at)
}

/// A query the user got wrong (it does not parse or plan), rather than one that failed.
pub fn is_plan_error(e: &DataFusionError) -> bool {
    use DataFusionError as D;
    matches!(e.find_root(), D::Plan(_) | D::SQL(..) | D::SchemaError(..))
}

/// The table a query named that its context does not have, as the query named it (without
/// the default catalog and schema DataFusion puts before it).
pub fn missing_table(e: &DataFusionError) -> Option<String> {
    let message = root_message(e);
    let rest = message.split("table '").nth(1)?;
    let (name, after) = rest.split_once('\'')?;
    after
        .starts_with(" not found")
        .then(|| unqualified(name).to_string())
}

/// A table name without the catalog (and schema) DataFusion qualifies names with by default.
pub fn unqualified(name: &str) -> &str {
    let name = name.strip_prefix("datafusion.").unwrap_or(name);
    name.strip_prefix("public.").unwrap_or(name)
}

/// What a DataFusion error says in one line, without its category prefix, and a help line
/// ("did you mean" for a misspelled column) where one helps.
pub fn explain(e: &DataFusionError) -> (String, Option<String>) {
    let message = root_message(e);
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

/// The closest existing column to one DataFusion could not find.
fn column_suggestion(e: &DataFusionError) -> Option<String> {
    use datafusion::common::SchemaError;
    let DataFusionError::SchemaError(schema_error, _) = e.find_root() else {
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
    let list = names.join(", ");
    match closest(&field.name, names.iter().copied(), 0.7) {
        Some(c) => Some(format!("did you mean `{c}`? columns: {list}")),
        None => Some(format!("columns: {list}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_first_keyword_is_found_past_blanks_and_comments() {
        assert_eq!(first_keyword("copy (select 1) to 'x'"), ("COPY".into(), 0));
        let sql = "  -- note\n /* a\n b */ Create external table";
        assert_eq!(
            first_keyword(sql),
            ("CREATE".into(), sql.find("Create").unwrap())
        );
        assert_eq!(first_keyword("-- only"), (String::new(), 7));
    }

    fn depth_problem(sql: &str) -> Option<String> {
        let statements = DFParser::parse_sql(sql).unwrap();
        statements.iter().find_map(too_deep)
    }

    #[test]
    fn queries_nested_beyond_the_limit_are_refused() {
        let chain = |n: usize, op: &str| vec!["x = 1"; n].join(op);
        let ok = format!("SELECT * FROM t WHERE {}", chain(1000, " OR "));
        assert_eq!(depth_problem(&ok), None);
        let deep = format!("SELECT * FROM t WHERE {}", chain(MAX_SQL_DEPTH + 1, " OR "));
        let message = depth_problem(&deep).unwrap();
        assert!(message.contains("nests an expression"), "{message}");
        let unions = vec!["SELECT 1"; MAX_SQL_DEPTH + 2].join(" UNION ALL ");
        let message = depth_problem(&format!("EXPLAIN {unions}")).unwrap();
        assert!(message.contains("nests set operations"), "{message}");
        let unions = vec!["SELECT 1"; 100].join(" UNION ALL ");
        assert_eq!(depth_problem(&format!("SELECT * FROM ({unions})")), None);
    }
}
