//! `table(rows)` and `table(columns)`: small tables made from Rhai values inside a task.

use crate::common::Project;

/// Rows and columns both make a committed table that SQL downstream reads; types are inferred
/// per column (ints with floats are floats, `()` is null) or given with `types`.
#[test]
fn tables_from_rhai_values_commit_with_inferred_types() {
    let p = Project::new();
    p.file(
        "pipeline.rhai",
        r#"
let prep = stage("prep");
prep.materialize("codes", || table([
    #{ code: 1, label: "a", weight: 1.5 },
    #{ code: 2, label: (), weight: 2 },
]), []);
prep.materialize("calendar", || table(
    #{ day: ["2026-01-01", "2026-01-02"], open: [true, false] },
    #{ types: #{ day: "Date32" } },
), []);
prep.sql("open_codes", `SELECT c.code, c.label, d.day FROM prep.codes c
    CROSS JOIN prep.calendar d WHERE d.open ORDER BY c.code`);
"#,
    );
    p.run(&[]).ok();
    assert_eq!(
        p.query("SELECT * FROM prep.open_codes"),
        ["1,a,2026-01-01", "2,,2026-01-01"]
    );
    let schema = p.weir(&["show", "prep.codes", "--schema"]).ok().stdout;
    for line in ["code", "Int64", "label", "Utf8", "weight", "Float64"] {
        assert!(schema.contains(line), "{line} in {schema}");
    }
    assert!(
        p.weir(&["show", "prep.calendar", "--schema"])
            .ok()
            .stdout
            .contains("Date32")
    );
    p.run(&[]).ok();
    assert!(
        p.ran().is_empty(),
        "a no-op run rebuilds nothing: {:?}",
        p.ran()
    );
}

/// Values that cannot make a column fail the task with the column and rows named; `table` at
/// the top of a script says where it belongs.
#[test]
fn bad_rhai_values_name_the_column_and_rows() {
    let p = Project::new();
    let cases = [
        (
            "|| table([#{ code: 1 }, #{ code: \"x\" }])",
            "column `code` mixes integers (row 1: 1) and strings (row 2: \"x\")",
        ),
        (
            "|| table(#{ a: [1, 2], b: [1] })",
            "column `b` has 1 values and `a` has 2",
        ),
        ("|| table([1, 2])", "row 1 is i64, not a map"),
        (
            "|| table([#{ a: 1 }], #{ types: #{ a: \"NoSuchType\" } })",
            "NoSuchType",
        ),
    ];
    for (body, message) in cases {
        p.file(
            "pipeline.rhai",
            &format!("let prep = stage(\"prep\");\nprep.materialize(\"t\", {body}, []);\n"),
        );
        let run = p.run(&[]).fails_with(1);
        assert!(
            run.stderr.contains(message),
            "{message} in:\n{}",
            run.text()
        );
    }
    p.file("pipeline.rhai", "let t = table([#{ a: 1 }]);\n");
    let run = p.run(&[]).fails_with(2);
    assert!(
        run.stderr
            .contains("table(...) builds a table inside a task function"),
        "{}",
        run.text()
    );
}
