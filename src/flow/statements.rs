//! Multi-statement SQL tasks (`#{ statements: true }`): views, then the query that is the task's
//! table. The text is split where sqlparser's tokenizer sees a `;` (one inside a string or a
//! comment does not split); every statement before the last is `CREATE [TEMP] VIEW name AS
//! query`, the last is a query. Views are local to the task: a later statement reads a view,
//! not a table of the flow, so its name is not a dependency. Running them is `exec::statements`.

use std::ops::Range;

use datafusion::sql::parser::{DFParser, Statement as DFStatement};
use datafusion::sql::sqlparser::ast::{CreateView, Statement};
use datafusion::sql::sqlparser::dialect::GenericDialect;
use datafusion::sql::sqlparser::tokenizer::{Token, Tokenizer};

use super::sql::{ParsedSql, Refusal, SqlProblem, is_query, tables_of};
use crate::df_message::first_keyword;
use crate::names::TableName;
use crate::source::{line_column, offset_of};

/// One statement of the task's SQL.
#[derive(Debug, Clone)]
pub struct Part {
    /// Its bytes in the task's SQL, without the `;`.
    pub range: Range<usize>,
    /// The view it defines, as SQL names it (unquoted names folded to lower case); `None` for
    /// the final query.
    pub view: Option<String>,
}

/// What every refusal says.
pub const HELP: &str = "with `statements: true` a task's SQL is views, CREATE [TEMP] VIEW name AS \
     query, then one query (SELECT, WITH or VALUES) that is its table; INSERT, COPY, DROP, SET and \
     other statements are not allowed";

/// The statements of a task, the tables they read (views excluded) and the normalized code.
pub fn parse(sql: &str, default_stage: &str) -> Result<(ParsedSql, Vec<Part>), SqlProblem> {
    // The whole text first: a parse error is placed in it as the parser says.
    DFParser::parse_sql(sql).map_err(|e| SqlProblem::parse(e.to_string()))?;
    let ranges = split(sql)?;
    let Some(last) = ranges.len().checked_sub(1) else {
        return Err(SqlProblem::Parse("empty SQL".into(), (0, 0)));
    };
    let mut parts: Vec<Part> = Vec::with_capacity(ranges.len());
    let mut tables: Vec<TableName> = Vec::new();
    let mut normalized = Vec::with_capacity(ranges.len());
    for (i, range) in ranges.into_iter().enumerate() {
        let (query, view) = classify(sql, &range, parse_one(sql, &range)?, i == last)?;
        // What earlier views are called here: they are not tables.
        let views: Vec<TableName> = parts
            .iter()
            .filter_map(|p| p.view.as_ref())
            .map(|v| TableName::new(default_stage, v).folded())
            .collect();
        let reads = tables_of(&query, default_stage).map_err(|e| shift(sql, &range, e))?;
        tables.extend(reads.into_iter().filter(|t| !views.contains(&t.folded())));
        if let Some(name) = &view {
            let problem = if views.contains(&TableName::new(default_stage, name).folded()) {
                Some(format!("view `{name}` is defined twice"))
            } else if tables
                .iter()
                .any(|t| t.folded() == TableName::new(default_stage, name).folded())
            {
                // Registering it would clash with the table, read under the same name.
                Some(format!(
                    "view `{name}` has the name of a table the statements read"
                ))
            } else {
                None
            };
            if let Some(message) = problem {
                return Err(refuse(sql, &range, message));
            }
        }
        normalized.push(match &view {
            Some(v) => format!("VIEW {v} AS {query}"),
            None => query.to_string(),
        });
        parts.push(Part { range, view });
    }
    tables.sort();
    tables.dedup();
    let normalized = normalized.join(";\n");
    Ok((ParsedSql { normalized, tables }, parts))
}

/// The byte ranges of the statements: between `;` tokens, blanks and comments trimmed, empty
/// statements left out.
fn split(sql: &str) -> Result<Vec<Range<usize>>, SqlProblem> {
    let tokens = Tokenizer::new(&GenericDialect {}, sql)
        .tokenize_with_location()
        .map_err(|e| SqlProblem::parse(e.to_string()))?;
    let mut ranges = Vec::new();
    let mut start = 0;
    let mut seen = false;
    for t in &tokens {
        match &t.token {
            Token::SemiColon => {
                let at = offset_of(
                    sql,
                    t.span.start.line as usize,
                    t.span.start.column as usize,
                );
                if seen {
                    ranges.push(start..at);
                }
                (start, seen) = (at + 1, false);
            }
            Token::Whitespace(_) => {}
            _ => seen = true,
        }
    }
    if seen {
        ranges.push(start..sql.len());
    }
    // Start at the first keyword and end at the last visible character.
    Ok(ranges
        .into_iter()
        .map(|r| {
            let text = &sql[r.clone()];
            let from = r.start + first_keyword(text).1;
            from..(r.start + text.trim_end().len()).max(from)
        })
        .collect())
}

/// One statement, parsed on its own; a parse error is placed in the whole text.
fn parse_one(sql: &str, range: &Range<usize>) -> Result<DFStatement, SqlProblem> {
    let text = &sql[range.clone()];
    let mut statements = DFParser::parse_sql(text)
        .map_err(|e| shift(sql, range, SqlProblem::parse(e.to_string())))?;
    match (statements.pop_front(), statements.is_empty()) {
        (Some(s), true) => Ok(s),
        _ => Err(SqlProblem::Parse(
            "not one statement between semicolons".into(),
            line_column(sql, range.start),
        )),
    }
}

/// A statement's query, and the view it defines; refused unless it is a view before the last
/// statement or a query as the last.
fn classify(
    sql: &str,
    range: &Range<usize>,
    statement: DFStatement,
    last: bool,
) -> Result<(DFStatement, Option<String>), SqlProblem> {
    if is_query(&statement) {
        if !last {
            return Err(SqlProblem::Refused(Refusal {
                message: "only the last statement is a query: it is the task's table".into(),
                label: "a query before the last statement",
                help: "make this one a view (CREATE VIEW name AS ...) for the last to read",
                at: keyword(sql, range),
            }));
        }
        return Ok((statement, None));
    }
    let DFStatement::Statement(boxed) = statement else {
        return Err(refuse(sql, range, not_allowed(sql, range, None)));
    };
    let view = match *boxed {
        Statement::CreateView(view) => view,
        other => return Err(refuse(sql, range, not_allowed(sql, range, Some(&other)))),
    };
    if last {
        return Err(SqlProblem::Refused(Refusal {
            message: "the statements end with a view: the last statement is the task's table"
                .into(),
            label: "no query after this view",
            help: "end with a query (SELECT, WITH or VALUES) that reads the views",
            at: keyword(sql, range),
        }));
    }
    let name = view_name(&view).map_err(|m| refuse(sql, range, m))?;
    let query = DFStatement::Statement(Box::new(Statement::Query(view.query)));
    if !is_query(&query) {
        return Err(refuse(
            sql,
            range,
            format!("view `{name}` is not defined by a query"),
        ));
    }
    Ok((query, Some(name)))
}

/// A view's name as SQL resolves it; refused when the view is more than a named query.
fn view_name(view: &CreateView) -> Result<String, String> {
    if view.materialized {
        return Err(
            "a materialized view is not allowed: a task's views are computed as part of its query"
                .into(),
        );
    }
    if !view.columns.is_empty() {
        return Err("a view's columns are named inside its query (SELECT x AS a)".into());
    }
    if view.to.is_some() || view.params.is_some() {
        return Err("a view is `CREATE [TEMP] VIEW name AS query`, without other clauses".into());
    }
    match view.name.0.as_slice() {
        [part] => match part.as_ident() {
            Some(ident) if ident.quote_style.is_some() => Ok(ident.value.clone()),
            Some(ident) => Ok(ident.value.to_ascii_lowercase()),
            None => Err(format!("`{}` is not a view name", view.name)),
        },
        _ => Err(format!(
            "view `{}` is named without a stage: it is local to the task, not a table of the flow",
            view.name
        )),
    }
}

/// Why a statement is refused: "INSERT is not allowed in a task's statements".
fn not_allowed(sql: &str, range: &Range<usize>, statement: Option<&Statement>) -> String {
    if let Some(Statement::CreateTable(_)) = statement {
        return "CREATE TABLE is not allowed in a task's statements: use CREATE VIEW name AS query"
            .into();
    }
    match first_keyword(&sql[range.clone()]).0 {
        word if word.is_empty() => "this statement is not allowed in a task's statements".into(),
        word => format!("{word} is not allowed in a task's statements"),
    }
}

fn refuse(sql: &str, range: &Range<usize>, message: String) -> SqlProblem {
    SqlProblem::Refused(Refusal {
        message,
        label: "not allowed here",
        help: HELP,
        at: keyword(sql, range),
    })
}

/// The statement's first word: where a refusal points.
fn keyword(sql: &str, range: &Range<usize>) -> Range<usize> {
    let text = &sql[range.clone()];
    let len = text
        .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
        .unwrap_or(text.len());
    range.start..range.start + len.max(1).min(text.len())
}

/// A problem found in one statement, placed in the whole text.
fn shift(sql: &str, range: &Range<usize>, problem: SqlProblem) -> SqlProblem {
    let text = &sql[range.clone()];
    let place = |(line, column): (usize, usize)| {
        if line == 0 {
            return line_column(sql, range.start);
        }
        line_column(sql, range.start + offset_of(text, line, column))
    };
    match problem {
        SqlProblem::Parse(m, at) => SqlProblem::Parse(m, place(at)),
        SqlProblem::NotAQuery(m, at) => SqlProblem::NotAQuery(m, place(at)),
        SqlProblem::Several(n, at) => SqlProblem::Several(n, place(at)),
        other => other,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parts(sql: &str) -> Vec<(String, Option<String>)> {
        let (_, parts) = parse(sql, "s").ok().unwrap();
        parts
            .into_iter()
            .map(|p| (sql[p.range].to_string(), p.view))
            .collect()
    }

    fn refused(sql: &str) -> (String, String) {
        match parse(sql, "s") {
            Err(SqlProblem::Refused(r)) => (r.message, sql[r.at].to_string()),
            Err(_) => panic!("another problem: {sql}"),
            Ok(_) => panic!("accepted: {sql}"),
        }
    }

    #[test]
    fn statements_split_at_semicolons_outside_strings_and_comments() {
        let sql = "-- a; b\nCREATE TEMP VIEW A AS SELECT ';' AS x;;\n\n /* ; */ SELECT x FROM a;\n";
        assert_eq!(
            parts(sql),
            [
                (
                    "CREATE TEMP VIEW A AS SELECT ';' AS x".into(),
                    Some("a".into())
                ),
                ("SELECT x FROM a".into(), None),
            ]
        );
    }

    #[test]
    fn views_are_not_tables_but_what_they_read_is() {
        let sql = "CREATE VIEW v AS SELECT * FROM raw.t JOIN w USING (id);\n\
                   CREATE VIEW \"W2\" AS SELECT * FROM v;\n\
                   SELECT * FROM \"W2\" JOIN s.v USING (id) JOIN other USING (id)";
        let (parsed, _) = parse(sql, "s").ok().unwrap();
        let names: Vec<String> = parsed.tables.iter().map(|t| t.to_string()).collect();
        assert_eq!(names, ["raw.t", "s.other", "s.w"]);
    }

    #[test]
    fn the_normalized_code_ignores_layout_but_not_statements() {
        let a = parse("CREATE VIEW v AS SELECT 1 AS x; SELECT x FROM v", "s")
            .ok()
            .unwrap();
        let b = parse(
            "create view v as\n select 1 as x ;\n-- end\nselect x from v;",
            "s",
        )
        .ok()
        .unwrap();
        assert_eq!(a.0.normalized, b.0.normalized);
        let c = parse("CREATE VIEW v AS SELECT 2 AS x; SELECT x FROM v", "s")
            .ok()
            .unwrap();
        assert_ne!(a.0.normalized, c.0.normalized);
    }

    #[test]
    fn statements_that_are_not_views_or_the_final_query_are_refused_at_their_keyword() {
        for (sql, word) in [
            ("INSERT INTO s.t VALUES (1); SELECT 1", "INSERT"),
            (
                "CREATE VIEW v AS SELECT 1; COPY (SELECT 1) TO 'x.csv'",
                "COPY",
            ),
            ("DROP TABLE s.t; SELECT 1", "DROP"),
            ("SET datafusion.execution.batch_size = 1; SELECT 1", "SET"),
            (
                "CREATE EXTERNAL TABLE t STORED AS CSV LOCATION '/tmp'; SELECT 1",
                "CREATE",
            ),
            ("CREATE TEMP TABLE t AS SELECT 1; SELECT 1", "CREATE"),
            ("CREATE VIEW v AS SELECT 1", "CREATE"),
            ("SELECT 1; CREATE VIEW v AS SELECT 1", "SELECT"),
            ("CREATE VIEW s.v AS SELECT 1; SELECT 1", "CREATE"),
            (
                "CREATE VIEW v AS SELECT 1; CREATE VIEW V AS SELECT 2; SELECT 1",
                "CREATE",
            ),
            ("CREATE VIEW v AS SELECT 1 INTO x; SELECT 1", "CREATE"),
            ("CREATE VIEW v AS SELECT * FROM v; SELECT 1", "CREATE"),
            (
                "CREATE VIEW w AS SELECT 1; CREATE VIEW v AS SELECT * FROM s.v; SELECT 1",
                "CREATE",
            ),
        ] {
            assert_eq!(refused(sql).1, word, "{sql}");
        }
        let (message, _) = refused("SELECT * FROM s.v; CREATE VIEW v AS SELECT 1; SELECT 1");
        assert!(message.contains("only the last"), "{message}");
        let (message, at) = refused("SELECT 1;\n  INSERT INTO t VALUES (1); SELECT 1");
        assert_eq!(at, "SELECT", "{message}");
    }

    #[test]
    fn a_parse_error_in_a_later_statement_is_placed_in_the_whole_text() {
        let Err(SqlProblem::Parse(_, at)) = parse("SELECT 1;\nSELECT a FRM t", "s") else {
            panic!("parses");
        };
        assert_eq!(at.0, 2);
    }
}
