//! Data checks: `expect(...)`, the `expect` and `primary_key` options. A failing check fails
//! its task and keeps its stage as committed; a warning commits; checks run once per build.

use crate::common::{Project, set};

const CHECKS: &str = r#"
expect("prep.orders_clean", "not_null(order_id)");
expect("prep.orders_clean", "unique(order_id)");
expect("prep.orders_clean", "accepted_values(segment, ['enterprise', 'smb'])");
expect("prep.orders_clean", "relationships(customer_id, raw.customers.customer_id)");
expect("raw.orders", "row_count between 1 and 100");
expect("raw.orders", "sql(SELECT * FROM {self} WHERE amount = 0)", #{ severity: "warn" });
"#;

/// Passing checks and a warning: the stages commit, the run log lists every check, the warning
/// is printed and recorded, and a second run checks nothing again.
#[test]
fn passing_checks_and_warnings_commit_and_run_once() {
    let p = Project::standard();
    p.file(
        "pipeline.rhai",
        &format!("{}{CHECKS}", crate::common::PIPELINE),
    );
    let run = p.run(&[]).ok();
    assert!(
        run.stderr.contains("warn    raw.orders: check `sql(SELECT * FROM {self} WHERE amount = 0)`: 1 offending row"),
        "{}",
        run.text()
    );
    assert!(p.manifest("prep").is_some() && p.manifest("raw").is_some());
    let log = p.weir(&["log", "last"]).ok().stdout;
    for line in [
        "check `not_null(order_id)` passed",
        "check `relationships(customer_id, raw.customers.customer_id)` passed",
        "check `row_count between 1 and 100` passed",
        "warned: 1 offending row",
    ] {
        assert!(log.contains(line), "{line} in:\n{log}");
    }
    p.run(&[]).ok();
    assert!(p.ran().is_empty(), "{:?}", p.ran());
    assert!(
        !p.weir(&["log", "last"]).ok().stdout.contains("check `"),
        "nothing checked again"
    );
    let status = p.weir(&["status"]).ok().stdout;
    assert!(
        status.contains("raw.orders           fresh  (1 data check warned)"),
        "{status}"
    );
}

/// A failing check fails its task with the count and the first offending rows, labelled at the
/// check; the stage keeps what it had committed. Changing the check re-runs the check only.
#[test]
fn a_failing_check_fails_its_task_and_keeps_the_stage() {
    let p = Project::standard();
    p.file(
        "pipeline.rhai",
        &format!("{}{CHECKS}", crate::common::PIPELINE),
    );
    p.run(&[]).ok();
    let before = p.read(".weir/default/manifests/prep.json");
    p.file(
        "pipeline.rhai",
        &format!(
            "{}{CHECKS}expect(\"prep.orders_clean\", \"unique(segment)\");\n",
            crate::common::PIPELINE
        ),
    );
    let run = p.run(&[]).fails_with(1);
    let text = run.text();
    assert!(text.contains("weir::task::check"), "{text}");
    assert!(
        text.contains("check `unique(segment)` failed: 2 offending rows"),
        "{text}"
    );
    assert!(
        text.contains("| segment    | copies |"),
        "the offending rows: {text}"
    );
    assert!(
        text.contains("pipeline.rhai:"),
        "labelled in the script: {text}"
    );
    assert_eq!(
        p.read(".weir/default/manifests/prep.json"),
        before,
        "prep as committed"
    );
    assert_eq!(p.statuses()["prep.orders_clean"], "failed");

    // The check is fixed: only the check runs, on the stored build.
    p.edit("pipeline.rhai", "unique(segment)", "not_null(segment)");
    p.run(&[]).ok();
    assert_eq!(p.statuses()["prep.orders_clean"], "checked");
    assert_eq!(p.ran(), set(&[]));
}

/// `primary_key` is a not-null and a unique check, recorded with the table and shown by
/// `weir show --schema`; a duplicate key fails the task.
#[test]
fn primary_keys_are_checked_and_shown() {
    let p = Project::standard();
    p.edit(
        "pipeline.rhai",
        "prep.sql(\"customer_count\", `SELECT count(*) AS n FROM raw.customers`);",
        "prep.sql(\"customer_count\", `SELECT count(*) AS n FROM raw.customers`);\n\
         prep.sql(\"by_id\", `SELECT order_id, amount FROM raw.orders`, #{ primary_key: [\"order_id\"] });",
    );
    p.run(&[]).ok();
    let schema = p.weir(&["show", "prep.by_id", "--schema"]).ok().stdout;
    assert!(schema.contains("order_id  Int64  primary key"), "{schema}");
    assert!(
        schema.contains("check `unique(order_id)` passed"),
        "{schema}"
    );
    p.edit(
        "pipeline.rhai",
        "SELECT order_id, amount FROM raw.orders`",
        "SELECT order_id, amount FROM raw.orders UNION ALL SELECT 1, 2.0`",
    );
    let run = p.run(&[]).fails_with(1);
    assert!(
        run.text()
            .contains("check `unique(order_id)` failed: 1 offending row"),
        "{}",
        run.text()
    );
}

/// A malformed check, or a check of a table the script does not declare, is an error at its
/// line before anything runs.
#[test]
fn bad_checks_are_refused_where_declared() {
    let p = Project::standard();
    p.file(
        "pipeline.rhai",
        &format!(
            "{}expect(\"prep.orders_clean\", \"unique()\");\n",
            crate::common::PIPELINE
        ),
    );
    let run = p.run(&[]).fails_with(2);
    assert!(run.stderr.contains("is not a check"), "{}", run.stderr);
    p.file(
        "pipeline.rhai",
        &format!(
            "{}expect(\"prep.nope\", \"unique(x)\");\n",
            crate::common::PIPELINE
        ),
    );
    let run = p.run(&[]).fails_with(2);
    assert!(
        run.stderr.contains("unknown table `prep.nope`"),
        "{}",
        run.stderr
    );
    assert!(p.manifest("raw").is_none());
}
