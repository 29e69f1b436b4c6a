//! Multi-statement SQL tasks (`#{ statements: true }`): views local to the task, then the query
//! that is its table; dependencies and the key come from every statement.

use crate::common::{CUSTOMERS, ORDERS, Project, set};

/// Loads, a task with two views and a final query, and a task downstream of it.
const PIPELINE: &str = r#"
let raw = stage("raw");
raw.load("orders", "data/orders.csv");
raw.load("customers", "data/customers.csv");
raw.load("unused", "data/unused.csv");

let prep = stage("prep");
prep.sql("segments", `
    CREATE TEMP VIEW paid AS
        SELECT customer_id, amount FROM raw.orders WHERE amount > 0;
    CREATE VIEW totals AS
        SELECT c.segment, sum(p.amount) AS total, count(*) AS orders
        FROM paid p JOIN raw.customers c USING (customer_id)
        GROUP BY c.segment;
    SELECT segment, total, orders, 'a;b' AS note FROM totals ORDER BY segment;
`, #{ statements: true });

let marts = stage("marts");
marts.sql("top", `SELECT segment FROM prep.segments ORDER BY total DESC LIMIT 1`);
"#;

fn project() -> Project {
    let p = Project::new();
    p.file("pipeline.rhai", PIPELINE)
        .file("data/orders.csv", ORDERS)
        .file("data/customers.csv", CUSTOMERS)
        .file("data/unused.csv", CUSTOMERS);
    p
}

/// Two views and a final query give the final query's rows, committed like any table; a `;`
/// inside a string literal does not end a statement.
#[test]
fn views_then_a_query_make_the_table() {
    let p = project();
    p.run(&[]).ok();
    assert_eq!(
        p.query("SELECT * FROM prep.segments"),
        ["enterprise,200,2,a;b", "smb,544,3,a;b"]
    );
    assert_eq!(p.query("SELECT * FROM marts.top"), ["smb"]);
}

/// The tables every statement reads are the task's inputs, its views are not: a change upstream
/// re-runs it, a table it does not read does not, and a run with nothing changed runs nothing.
#[test]
fn every_statement_gives_dependencies() {
    let p = project();
    p.run(&[]).ok();
    p.run(&[]).ok();
    assert!(p.ran().is_empty(), "{:?}", p.ran());
    // Read by the second view only.
    p.file(
        "data/customers.csv",
        "customer_id,segment\n1,enterprise\n2,smb\n3,mid\n",
    );
    p.run(&[]).ok();
    assert_eq!(
        p.ran(),
        set(&["raw.customers", "prep.segments", "marts.top"])
    );
    p.file("data/unused.csv", "customer_id,segment\n9,none\n");
    p.run(&[]).ok();
    assert_eq!(p.ran(), set(&["raw.unused"]));
}

/// Editing one statement re-runs the task; layout and comments do not.
#[test]
fn editing_a_statement_reruns_the_task() {
    let p = project();
    p.run(&[]).ok();
    p.edit("pipeline.rhai", "WHERE amount > 0;", "WHERE amount > 50;");
    p.run(&[]).ok();
    assert_eq!(p.ran(), set(&["prep.segments", "marts.top"]));
    assert_eq!(
        p.query("SELECT segment, orders FROM prep.segments"),
        ["enterprise,2", "smb,2"]
    );
    p.edit(
        "pipeline.rhai",
        "CREATE VIEW totals AS",
        "-- per segment; of paid orders\n    create view totals as",
    );
    p.run(&[]).ok();
    assert!(p.ran().is_empty(), "{:?}", p.ran());
}

/// A task whose SQL is several statements, each one of them.
fn with_statements(sql: &str) -> Project {
    let p = Project::new();
    p.file(
        "pipeline.rhai",
        &format!(
            "let raw = stage(\"raw\");\nraw.load(\"orders\", \"data/orders.csv\");\n\
             let s = stage(\"s\");\ns.sql(\"t\", `{sql}`, #{{ statements: true }});\n"
        ),
    )
    .file("data/orders.csv", ORDERS);
    p
}

/// Statements that write, change settings or drop, and statements without a final query, are
/// refused when the script is loaded, labelled at the statement; nothing runs.
#[test]
fn forbidden_statements_are_refused_at_load() {
    // The SQL starts at line 4, column 13 of the script; its second line is line 5.
    for (sql, refused, at) in [
        (
            "CREATE VIEW v AS SELECT 1 AS x;\nINSERT INTO raw.orders SELECT * FROM v;\nSELECT 1",
            "INSERT is not allowed",
            "5:1",
        ),
        (
            "COPY (SELECT * FROM raw.orders) TO 'out.csv' STORED AS CSV;\nSELECT 1",
            "COPY is not allowed",
            "4:13",
        ),
        (
            "DROP TABLE raw.orders;\nSELECT 1",
            "DROP is not allowed",
            "4:13",
        ),
        (
            "CREATE VIEW v AS SELECT 1 AS x;\n  SET datafusion.execution.batch_size = 1;\nSELECT 1",
            "SET is not allowed",
            "5:3",
        ),
        (
            "CREATE EXTERNAL TABLE x STORED AS CSV LOCATION 'data/orders.csv';\nSELECT * FROM x",
            "CREATE is not allowed",
            "4:13",
        ),
        (
            "CREATE TEMP TABLE x AS SELECT 1 AS a;\nSELECT * FROM x",
            "CREATE TABLE is not allowed",
            "4:13",
        ),
        (
            "CREATE VIEW v AS SELECT 1 AS x;\nCREATE VIEW w AS SELECT * FROM v",
            "the statements end with a view",
            "5:1",
        ),
        (
            "SELECT 1 AS x;\nCREATE VIEW w AS SELECT 2 AS x;\nSELECT * FROM w",
            "only the last statement is a query",
            "4:13",
        ),
    ] {
        let p = with_statements(sql);
        let run = p.run(&[]).fails_with(2);
        assert!(
            run.stderr.contains("weir::flow::statement") && run.stderr.contains(refused),
            "{sql}:\n{}",
            run.stderr
        );
        assert!(
            run.stderr.contains(&format!("pipeline.rhai:{at}:")),
            "{sql}: labelled at {at}:\n{}",
            run.stderr
        );
        assert!(!p.path(".weir/default/manifests").exists(), "nothing ran");
        assert!(!p.path("out.csv").exists());
    }
}

/// Without the option, two statements stay an error that says how to allow them.
#[test]
fn two_statements_without_the_option_hint_at_it() {
    let p = Project::new();
    p.file(
        "pipeline.rhai",
        "let s = stage(\"s\");\ns.sql(\"t\", \"CREATE VIEW v AS SELECT 1 AS x; SELECT x FROM v\");\n",
    );
    let run = p.run(&[]).fails_with(2);
    assert!(
        run.stderr.contains("found 2 statements") && run.stderr.contains("#{ statements: true }"),
        "{}",
        run.stderr
    );
}

/// A column that does not exist in a later statement fails the task, labelled where it is in
/// the script, not at the start of the SQL.
#[test]
fn an_error_in_a_later_statement_is_labelled_there() {
    let p = with_statements(
        "CREATE VIEW v AS SELECT order_id, amount FROM raw.orders;\n  SELECT order_id, amont FROM v",
    );
    let run = p.run(&[]).fails_with(1);
    assert!(
        run.stderr.contains("pipeline.rhai:5:20") && run.stderr.contains("amont"),
        "{}",
        run.stderr
    );
    assert!(
        run.stderr.contains("did you mean `amount`"),
        "{}",
        run.stderr
    );
}

/// `sql_file` takes the option too, and its errors, found at load or when a statement is
/// planned, point into the `.sql` file.
#[test]
fn sql_files_hold_statements() {
    let p = Project::new();
    p.file(
        "pipeline.rhai",
        "let raw = stage(\"raw\");\nraw.load(\"orders\", \"data/orders.csv\");\n\
         stage(\"s\").sql_file(\"big\", \"q.sql\", #{ statements: true });\n",
    )
    .file("data/orders.csv", ORDERS)
    .file(
        "q.sql",
        "-- big orders; counted\nCREATE VIEW big AS SELECT * FROM raw.orders WHERE amount >= 100;\n\
         SELECT count(*) AS n FROM big;\n",
    );
    p.run(&[]).ok();
    assert_eq!(p.query("SELECT n FROM s.big"), ["2"]);
    p.edit("q.sql", "SELECT count(*) AS n", "SELECT count(amont) AS n");
    let run = p.run(&[]).fails_with(1);
    assert!(run.stderr.contains("q.sql:3:14"), "{}", run.stderr);
    p.edit(
        "q.sql",
        "SELECT count(amont) AS n FROM big",
        "DELETE FROM big",
    );
    let run = p.run(&[]).fails_with(2);
    assert!(
        run.stderr.contains("q.sql:3:1") && run.stderr.contains("DELETE is not allowed"),
        "{}",
        run.stderr
    );
}
