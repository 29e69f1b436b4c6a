//! `weir check`: every task planned, every error reported at once, exit 2, nothing run or
//! written.

use crate::common::Project;

const MISTAKES: &str = r#"
marts.sql("typo", "SELECT segmnt FROM prep.orders_clean");
marts.sql("after_typo", "SELECT * FROM marts.typo");
marts.sql("ranked", "SELECT name, total * 2 AS doubled FROM marts.top_customers");
marts.sql("fine", "SELECT sum(amount) AS total FROM prep.orders_clean");
expect("marts.fine", "not_null(nope)");
"#;

#[test]
fn check_reports_every_error_and_writes_nothing() {
    let p = Project::example("quickstart");
    let clean = p.weir(&["check"]).ok();
    assert!(
        clean.stdout.contains("prep.orders_clean         planned"),
        "{}",
        clean.text()
    );
    assert!(
        clean
            .stdout
            .contains("marts.top_customers       not checked"),
        "{}",
        clean.text()
    );
    assert!(!p.path(".weir").exists(), "check writes nothing");

    p.file(
        "pipeline.rhai",
        &format!("{}{MISTAKES}", p.read("pipeline.rhai")),
    );
    let run = p.weir(&["check"]).fails_with(2);
    for expected in [
        "marts.typo                error",
        "did you mean `segment`?",
        "marts.after_typo          not checked  (reads marts.typo, which could not be checked)",
        "check `not_null(nope)` cannot be planned",
        "2 of 10 tasks do not check",
    ] {
        assert!(run.text().contains(expected), "{expected}:\n{}", run.text());
    }
    assert!(!p.path(".weir").exists(), "check writes nothing");
}

/// After a run, a task function's committed columns stand in for it, so what reads it is
/// planned too; checking changes nothing in the store.
#[test]
fn committed_tables_stand_in_for_task_functions() {
    let p = Project::example("quickstart");
    p.run(&[]).ok();
    p.file(
        "pipeline.rhai",
        &format!(
            "{}{}",
            p.read("pipeline.rhai"),
            "marts.sql(\"ranked\", \"SELECT name, totl FROM marts.top_customers\");\n"
        ),
    );
    let before = p.files_under(".weir");
    let run = p.weir(&["check"]).fails_with(2);
    assert!(
        run.text().contains("marts.top_customers       committed"),
        "{}",
        run.text()
    );
    assert!(
        run.text().contains("did you mean `total`?"),
        "{}",
        run.text()
    );
    assert_eq!(p.files_under(".weir"), before, "the store is untouched");
    p.edit("pipeline.rhai", "totl", "total");
    p.weir(&["check"]).ok();
}

/// What fails before planning (a syntax error, an unknown table) fails `check` the same way.
#[test]
fn script_and_flow_errors_fail_check() {
    let p = Project::example("quickstart");
    p.file(
        "pipeline.rhai",
        "let s = stage(\"s\")\ns.sql(\"a\", \"SELECT 1\"",
    );
    p.weir(&["check"]).fails_with(2);
    p.file(
        "pipeline.rhai",
        "let s = stage(\"s\");\ns.sql(\"a\", \"SELECT * FROM s.nope\");",
    );
    let run = p.weir(&["check"]).fails_with(2);
    assert!(run.stderr.contains("s.nope"), "{}", run.text());
}

/// A task of several statements is planned with its views, as a run would.
#[test]
fn multi_statement_tasks_are_checked_with_their_views() {
    let p = Project::example("quickstart");
    let task = |order: &str| {
        format!(
            "{}\nprep.sql(\"segments\", `CREATE VIEW paid AS SELECT customer_id, amount FROM raw.orders;\n\
             SELECT customer_id, sum(amount) AS total FROM paid GROUP BY customer_id ORDER BY {order}`,\n\
             #{{ statements: true }});\n",
            p.read("pipeline.rhai")
        )
    };
    let original = p.read("pipeline.rhai");
    p.file("pipeline.rhai", &task("total"));
    p.weir(&["check"]).ok();
    p.file("pipeline.rhai", &original);
    p.file("pipeline.rhai", &task("totl"));
    let run = p.weir(&["check"]).fails_with(2);
    assert!(
        run.text().contains("did you mean `total`?"),
        "{}",
        run.text()
    );
}
