//! SQL tasks: parse once, normalize for the cache key (whitespace and comments vanish through
//! the parser's rendering), and find the tables a query reads with DataFusion's resolver.

use datafusion::common::TableReference;
use datafusion::sql::parser::{DFParser, Statement as DFStatement};
use datafusion::sql::resolve::resolve_table_references;

use crate::names::TableName;

pub struct ParsedSql {
    /// The statement as the parser renders it: the normalized code.
    pub normalized: String,
    pub tables: Vec<TableName>,
}

pub enum SqlProblem {
    /// The parser's message and the (line, column) in the SQL it stopped at (0, 0: unknown).
    Parse(String, (usize, usize)),
    /// A statement that is not a query (COPY, CREATE, SET, ...): its first keyword and the
    /// (line, column) of that keyword.
    NotAQuery(String, (usize, usize)),
    /// A problem with the query as a whole, said at its declaration.
    Invalid(String),
    /// More than one statement without `#{ statements: true }`: how many, and the (line,
    /// column) where the second starts.
    Several(usize, (usize, usize)),
    /// A statement of a multi-statement task that is not allowed there (`statements.rs`).
    Refused(Refusal),
}

/// A statement refused where it is: what is wrong, the label and help, and its bytes.
#[derive(Debug)]
pub struct Refusal {
    pub message: String,
    pub label: &'static str,
    pub help: &'static str,
    pub at: std::ops::Range<usize>,
}

impl SqlProblem {
    pub(super) fn parse(message: String) -> Self {
        let (message, at) = split_location(&strip(message));
        SqlProblem::Parse(message, at)
    }
}

/// A parser error's message and the (line, column) it stopped at; `None` for other errors.
pub fn parser_error(e: &datafusion::error::DataFusionError) -> Option<(String, (usize, usize))> {
    use datafusion::error::DataFusionError as D;
    let D::SQL(..) = e.find_root() else {
        return None;
    };
    Some(split_location(&strip(e.find_root().strip_backtrace())))
}

/// Parse one query; bare table names resolve to `default_stage`.
pub fn parse(sql: &str, default_stage: &str) -> Result<ParsedSql, SqlProblem> {
    let mut statements = DFParser::parse_sql(sql).map_err(|e| SqlProblem::parse(e.to_string()))?;
    if statements.len() > 1 {
        return Err(SqlProblem::Several(statements.len(), second_statement(sql)));
    }
    let statement = statements
        .pop_front()
        .ok_or_else(|| SqlProblem::Parse("empty SQL".into(), (0, 0)))?;
    if !is_query(&statement) {
        // Refused here, before the run, as well as by the engine's options when it plans.
        let (keyword, at) = crate::df_message::first_keyword(sql);
        let statement = match keyword.as_str() {
            "SELECT" => "SELECT ... INTO".to_string(),
            "WITH" => "WITH ... INSERT/UPDATE/DELETE".to_string(),
            _ => keyword,
        };
        return Err(SqlProblem::NotAQuery(
            statement,
            crate::source::line_column(sql, at),
        ));
    }
    Ok(ParsedSql {
        tables: tables_of(&statement, default_stage)?,
        normalized: statement.to_string(),
    })
}

/// The tables a query reads, sorted; bare names resolve to `default_stage`. Refuses a query
/// nested too deeply to walk, first.
pub(super) fn tables_of(
    statement: &DFStatement,
    default_stage: &str,
) -> Result<Vec<TableName>, SqlProblem> {
    // Before anything below walks the statement: printing and resolving recurse per level.
    if let Some(message) = crate::df_message::too_deep(statement) {
        return Err(SqlProblem::Invalid(message));
    }
    let (refs, _ctes) =
        resolve_table_references(statement, true).map_err(|e| SqlProblem::parse(e.to_string()))?;
    let table_functions: Vec<String> = datafusion::functions_table::all_default_table_functions()
        .iter()
        .map(|f| f.name().to_string())
        .collect();
    let mut tables = Vec::with_capacity(refs.len());
    for r in refs {
        // The resolver lists table functions (`generate_series(1, 10)`) among relations.
        if matches!(&r, TableReference::Bare { table } if table_functions.iter().any(|f| f == table.as_ref()))
        {
            continue;
        }
        if let Some(name) = [r.schema(), Some(r.table())]
            .into_iter()
            .flatten()
            .find(|n| !crate::names::is_identifier(n))
        {
            return Err(SqlProblem::Invalid(format!(
                "`{name}` is not a table name: SQL reads the flow's tables as stage.table (letters, digits, _); a file is read by a load, e.g. raw.load(\"t\", \"data/t.csv\")"
            )));
        }
        tables.push(match r {
            TableReference::Bare { table } => TableName::new(default_stage, table.as_ref()),
            TableReference::Partial { schema, table } => {
                TableName::new(schema.as_ref(), table.as_ref())
            }
            TableReference::Full { .. } => {
                return Err(SqlProblem::Invalid(format!(
                    "`{r}`: name tables as stage.table, without a catalog"
                )));
            }
        });
    }
    tables.sort();
    tables.dedup();
    Ok(tables)
}

/// A SELECT, WITH ... SELECT or VALUES: the statements that produce a table and do nothing
/// else (`SELECT ... INTO` creates one, `WITH ... INSERT` writes one).
pub(super) fn is_query(statement: &DFStatement) -> bool {
    use datafusion::sql::sqlparser::ast::{SetExpr, Statement as S};
    let DFStatement::Statement(s) = statement else {
        return false;
    };
    let S::Query(query) = &**s else {
        return false;
    };
    match &*query.body {
        SetExpr::Select(select) => select.into.is_none(),
        SetExpr::Insert(_) | SetExpr::Update(_) | SetExpr::Delete(_) | SetExpr::Merge(_) => false,
        _ => true,
    }
}

/// sqlparser ends its messages with " at Line: L, Column: C": take the place out of the text.
pub fn split_location(message: &str) -> (String, (usize, usize)) {
    let Some(i) = message.rfind(" at Line: ") else {
        return (message.to_string(), (0, 0));
    };
    let place = &message[i + " at Line: ".len()..];
    let mut numbers = place
        .split(|c: char| !c.is_ascii_digit())
        .filter(|n| !n.is_empty())
        .map(|n| n.parse::<usize>().unwrap_or(0));
    match (numbers.next(), numbers.next()) {
        (Some(line), Some(column)) => (message[..i].to_string(), (line, column)),
        _ => (message.to_string(), (0, 0)),
    }
}

/// Where a second statement starts: after the first `;` followed by more than blanks.
fn second_statement(sql: &str) -> (usize, usize) {
    let Some(semi) = sql.find(';') else {
        return (0, 0);
    };
    let rest = &sql[semi + 1..];
    let start = semi + 1 + (rest.len() - rest.trim_start().len());
    crate::source::line_column(sql, start)
}

fn strip(msg: String) -> String {
    msg.trim_start_matches("SQL error: ")
        .trim_start_matches("ParserError(\"")
        .trim_start_matches("TokenizerError(\"")
        .trim_end_matches("\")")
        .to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn whitespace_and_comments_do_not_change_the_normalized_sql() {
        let a = parse("SELECT a FROM raw.t WHERE a > 1", "prep")
            .ok()
            .unwrap();
        let b = parse("-- note\nSELECT  a\n  FROM raw.t /* x */ WHERE a>1", "prep")
            .ok()
            .unwrap();
        assert_eq!(a.normalized, b.normalized);
        assert_ne!(
            a.normalized,
            parse("SELECT a FROM raw.t WHERE a > 2", "prep")
                .ok()
                .unwrap()
                .normalized
        );
    }

    #[test]
    fn parse_errors_carry_their_place_in_the_sql() {
        let Err(SqlProblem::Parse(message, at)) = parse("SELECT a\nFROM t WHER x > 1", "s") else {
            panic!("parses");
        };
        assert_eq!(at, (2, 13));
        assert!(!message.contains("Line:"), "{message}");
        let Err(SqlProblem::Several(2, at)) = parse("SELECT 1;  SELECT 2", "s") else {
            panic!("parses");
        };
        assert_eq!(at, (1, 12));
    }

    #[test]
    fn statements_that_are_not_queries_are_refused_at_their_keyword() {
        for (sql, keyword, at) in [
            ("COPY (SELECT 1) TO '/tmp/x.csv'", "COPY", (1, 1)),
            (
                "\n  CREATE EXTERNAL TABLE t STORED AS CSV LOCATION '/tmp'",
                "CREATE",
                (2, 3),
            ),
            ("INSERT INTO raw.t VALUES (1)", "INSERT", (1, 1)),
            (
                "-- x\nSET datafusion.execution.batch_size = 1",
                "SET",
                (2, 1),
            ),
            ("EXPLAIN SELECT 1", "EXPLAIN", (1, 1)),
            ("SELECT 1 AS a INTO s.t", "SELECT ... INTO", (1, 1)),
        ] {
            let Err(SqlProblem::NotAQuery(k, place)) = parse(sql, "s") else {
                panic!("accepted: {sql}");
            };
            assert_eq!((k.as_str(), place), (keyword, at), "{sql}");
        }
        for sql in [
            "SELECT 1",
            "WITH a AS (SELECT 1) SELECT * FROM a",
            "VALUES (1), (2)",
        ] {
            assert!(parse(sql, "s").is_ok(), "{sql}");
        }
    }

    #[test]
    fn references_resolve_through_joins_subqueries_and_ctes() {
        let p = parse(
            "WITH c AS (SELECT * FROM raw.customers) SELECT * FROM raw.orders o JOIN c USING (id) \
             WHERE o.id IN (SELECT id FROM other)",
            "prep",
        )
        .ok()
        .unwrap();
        let names: Vec<String> = p.tables.iter().map(|t| t.to_string()).collect();
        assert_eq!(names, ["prep.other", "raw.customers", "raw.orders"]);
    }
}
