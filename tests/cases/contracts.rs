//! Contracts on outputs: `columns` with `contract: true`, or `contract("stage.t", ...)`. A
//! table that breaks its contract fails its task before it is written; `weir check` holds
//! planned schemas to their contracts and plans downstream tasks against a contract before
//! the table is built; descriptions are recorded and shown by `show --schema`.

use crate::common::Project;

const ORDERS: &str = r#"
let raw = stage("raw");
raw.sql("orders", `SELECT CAST(column1 AS BIGINT) AS order_id, CAST(column2 AS DECIMAL(12, 2)) AS amount,
                          column3 AS segment
                   FROM (VALUES (1, 10.5, 'smb'), (2, 20.25, 'enterprise'))`,
    #{ columns: #{
           order_id: #{ type: "Int64", not_null: true, description: "the order's number" },
           amount: "Decimal128(12, 2)",
           segment: #{ type: "Utf8", description: "smb or enterprise" },
       },
       contract: true });
"#;

fn project(script: &str) -> Project {
    let p = Project::new();
    p.file("pipeline.rhai", script);
    p
}

/// A table that keeps its contract is built; its descriptions are recorded with it and shown.
#[test]
fn a_table_that_keeps_its_contract_is_built_and_described() {
    let p = project(ORDERS);
    p.run(&[]).ok();
    let schema = p.weir(&["show", "raw.orders", "--schema"]).ok();
    let lines: Vec<String> = schema
        .stdout
        .lines()
        .map(|l| l.split_whitespace().collect::<Vec<_>>().join(" "))
        .collect();
    assert!(
        lines.contains(&"order_id Int64 not null -- the order's number".to_string())
            && lines.contains(&"segment Utf8 not null -- smb or enterprise".to_string())
            && lines.contains(&"amount Decimal128(12, 2) not null".to_string()),
        "{}",
        schema.text()
    );
}

/// Missing, extra and mistyped columns fail the task before anything is written, labelled at
/// the declaration; the stage keeps what it had committed.
#[test]
fn a_table_that_breaks_its_contract_fails_its_task() {
    let p = project(ORDERS);
    p.run(&[]).ok();
    let committed = p.manifest("raw").unwrap();
    p.edit(
        "pipeline.rhai",
        "CAST(column1 AS BIGINT) AS order_id",
        "CAST(column1 AS INT) AS order_id, 'x' AS note",
    );
    p.edit("pipeline.rhai", "column3 AS segment", "column3 AS kind");
    let run = p.run(&[]).fails_with(1);
    let text = run.text();
    assert!(
        text.contains(
            "raw.orders breaks its contract: missing segment; extra note, kind; order_id is Int32, not Int64"
        ) && text.contains("pipeline.rhai:3:5")
            && text.contains("weir::task::contract"),
        "{text}"
    );
    assert_eq!(
        p.manifest("raw").unwrap(),
        committed,
        "nothing new committed"
    );
    assert!(p.data_files().iter().all(|f| {
        !f.to_string_lossy()
            .contains(p.last_record()["run_id"].as_str().unwrap())
    }));
}

/// `weir check` finds a broken contract without running anything, and plans a task that
/// reads a task function's table against that function's contract before it was ever built.
#[test]
fn check_holds_planned_schemas_to_contracts_and_plans_downstream_from_them() {
    let p = project(
        r#"
let raw = stage("raw");
raw.materialize("events", || table([#{ id: 1, kind: "click" }]), []);
contract("raw.events", #{ id: "Int64", kind: "Utf8" });
let marts = stage("marts");
marts.sql("by_kind", `SELECT kind, count(*) AS n FROM raw.events GROUP BY kind`);
marts.sql("ids", `SELECT id FROM raw.events`, #{ columns: #{ id: "Int32" }, contract: true });
"#,
    );
    let check = p.weir(&["check"]).fails_with(2);
    let text = check.text();
    assert!(
        text.contains("raw.events") && text.contains("a task function: its contract's columns"),
        "{text}"
    );
    assert!(
        text.lines()
            .any(|l| l.starts_with("marts.by_kind") && l.contains("planned")),
        "by_kind is planned against the contract: {text}"
    );
    assert!(
        text.contains("marts.ids breaks its contract: id is Int64, not Int32"),
        "{text}"
    );
    p.edit("pipeline.rhai", "id: \"Int32\"", "id: \"Int64\"");
    p.weir(&["check"]).ok();
    p.run(&[]).ok();
    assert_eq!(p.query("SELECT n FROM marts.by_kind"), ["1"]);
}

/// A column the contract says is never null is checked like `not_null`.
#[test]
fn a_not_null_column_of_a_contract_is_checked() {
    let p = project(&ORDERS.replace("(VALUES (1, 10.5, 'smb')", "(VALUES (NULL, 10.5, 'smb')"));
    let run = p.run(&[]).fails_with(1);
    assert!(
        run.text()
            .contains("check `not_null(order_id)` failed: 1 offending row"),
        "{}",
        run.text()
    );
}

/// A changed contract is part of the key (the new contract is checked against a new build);
/// a changed description is not.
#[test]
fn a_changed_contract_rebuilds_a_changed_description_does_not() {
    let p = project(ORDERS);
    p.run(&[]).ok();
    p.edit(
        "pipeline.rhai",
        "smb or enterprise",
        "the customer's segment",
    );
    let run = p.run(&[]).ok();
    assert!(run.stdout.contains("0 ran, 1 cached"), "{}", run.text());
    p.edit(
        "pipeline.rhai",
        "amount: \"Decimal128(12, 2)\"",
        "amount: \"Decimal128(12, 2)\", extra: \"Int64\"",
    );
    let run = p.run(&[]).fails_with(1);
    assert!(run.text().contains("missing extra"), "{}", run.text());
}

/// Malformed contracts fail at their line before anything runs.
#[test]
fn malformed_contracts_are_refused() {
    let cases = [
        (
            "s.sql(\"t\", `SELECT 1 AS x`, #{ columns: #{ x: \"Integer\" }, contract: true });",
            "`Integer` for column `x` is not an Arrow type",
        ),
        (
            "s.sql(\"t\", `SELECT 1 AS x`, #{ contract: true });",
            "`contract: true` needs `columns`",
        ),
        (
            "s.sql(\"t\", `SELECT 1 AS x`, #{ columns: [\"x\"] });",
            "`columns` must be a map of column name to type",
        ),
        (
            "s.sql(\"t\", `SELECT 1 AS x`, #{ columns: #{ x: #{ kind: \"Int64\" } } });",
            "unknown key `kind` for column `x`",
        ),
        (
            "s.materialize(\"t\", || #{ a: table([#{ x: 1 }]), b: table([#{ x: 1 }]) }, [], #{ outputs: [\"a\", \"b\"], columns: #{ x: \"Int64\" } });",
            "`columns` describes one table",
        ),
        (
            "s.sql(\"t\", `SELECT 1 AS x`, #{ columns: #{ x: \"Int64\" }, contract: true });\ncontract(\"s.t\", #{ x: \"Int64\" });",
            "s.t has two contracts",
        ),
        (
            "s.sql(\"t\", `SELECT 1 AS x`);\ncontract(\"s.u\", #{ x: \"Int64\" });",
            "unknown table `s.u`",
        ),
    ];
    for (line, message) in cases {
        let p = project(&format!("let s = stage(\"s\");\n{line}\n"));
        let bad = p.run(&[]).fails_with(2);
        assert!(
            bad.stderr.contains(message) && bad.stderr.contains("pipeline.rhai:"),
            "{line}: {}",
            bad.text()
        );
    }
}
