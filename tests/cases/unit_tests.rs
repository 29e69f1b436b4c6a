//! `weir test`: unit tests of tasks on rows they give, compared in any order with a diff of
//! missing and unexpected rows; nothing is built in the store; unchanged passed tests are not
//! run again; JUnit XML for CI.

use crate::common::Project;

const PIPELINE: &str = r#"
let prep = stage("prep");
prep.load("orders", "data/orders.csv");

fn top(orders) {
    orders.aggregate(["customer_id"], ["sum(amount) AS total", "count(*) AS orders"])
          .sort("total", false)
          .limit(param("top", 2))
}
let marts = stage("marts");
marts.materialize("top_customers", top, [table("prep.orders")]);
marts.sql("big", `SELECT order_id FROM prep.orders WHERE amount >= 100`);

test("marts.top_customers", #{
    name: "the biggest spender first",
    given: #{ "prep.orders": [
        #{ order_id: 1, customer_id: 1, amount: 10.0 },
        #{ order_id: 2, customer_id: 2, amount: 30.0 },
        #{ order_id: 3, customer_id: 1, amount: 5.0 },
    ] },
    expect: [#{ customer_id: 2, total: 30.0, orders: 1 }],
    params: #{ top: 1 },
});
test("marts.big", #{
    name: "big orders",
    given: #{ "prep.orders": [#{ order_id: 1, customer_id: 1, amount: 100.0 }, #{ order_id: 2, customer_id: 1, amount: 99.0 }] },
    expect: [#{ order_id: 1 }],
});
"#;

fn project() -> Project {
    let p = Project::new();
    p.file("pipeline.rhai", PIPELINE)
        .file("data/orders.csv", "order_id,customer_id,amount\n1,1,10\n");
    p
}

/// Passing tests pass without building anything; a wrong result fails with the rows missing
/// and the rows not expected, and exit 1.
#[test]
fn tests_compare_results_in_any_order_and_build_nothing() {
    let p = project();
    let out = p.weir(&["test"]).ok();
    assert!(
        out.stdout.contains("pass       the biggest spender first")
            && out.stdout.contains("pass       big orders")
            && out
                .stdout
                .contains("2 tests: 2 passed, 0 failed, 0 unchanged"),
        "{}",
        out.text()
    );
    assert!(
        p.manifest("prep").is_none() && p.data_files().is_empty(),
        "nothing built"
    );

    p.edit("pipeline.rhai", "amount >= 100", "amount > 100");
    let out = p.weir(&["test"]).fails_with(1);
    assert!(
        out.stdout.contains("FAIL       big orders")
            && out.stdout.contains("missing: order_id=1")
            && out.stdout.contains("unchanged  the biggest spender first")
            && out.stderr.contains("1 of 2 tests failed"),
        "{}",
        out.text()
    );
}

/// A passed test whose task code and rows did not change is not run again, unless `--all`;
/// editing the task's function runs it again.
#[test]
fn unchanged_passed_tests_are_not_run_again() {
    let p = project();
    p.weir(&["test"]).ok();
    let again = p.weir(&["test"]).ok();
    assert!(
        again
            .stdout
            .contains("2 tests: 0 passed, 0 failed, 2 unchanged"),
        "{}",
        again.text()
    );
    let all = p.weir(&["test", "--all"]).ok();
    assert!(all.stdout.contains("2 passed"), "{}", all.text());
    p.edit(
        "pipeline.rhai",
        ".sort(\"total\", false)",
        ".sort(\"total\", true)",
    );
    let edited = p.weir(&["test"]).fails_with(1);
    assert!(
        edited
            .stdout
            .contains("FAIL       the biggest spender first")
            && edited
                .stdout
                .contains("unexpected: customer_id=1, orders=2, total=15.0")
            && edited.stdout.contains("unchanged  big orders"),
        "{}",
        edited.text()
    );
}

/// Tests in `tests/*.rhai` beside the script run too; `--select` picks tests by their task;
/// a check or a function of the rows can be the expectation; JUnit XML for CI.
#[test]
fn test_files_selection_checks_functions_and_junit() {
    let p = project();
    p.file(
        "tests/marts.rhai",
        r#"
test("marts.big", #{ name: "no small orders", given: #{ "prep.orders": [#{ order_id: 5, customer_id: 1, amount: 1.0 }] },
                     expect: |rows| rows.len() == 0 });
test("marts.big", #{ name: "unique ids", given: #{ "prep.orders": [#{ order_id: 5, customer_id: 1, amount: 500.0 }] },
                     expect: "unique(order_id)" });
test("marts.big", #{ name: "wrong on purpose", given: #{ "prep.orders": [#{ order_id: 5, customer_id: 1, amount: 500.0 }] },
                     expect: |rows| rows[0].order_id == 6 });
"#,
    );
    let out = p
        .weir(&["test", "-s", "marts.big", "-f", "junit"])
        .fails_with(1);
    let xml = &out.stdout;
    assert!(
        xml.contains(r#"<testsuite name="weir" tests="4" failures="1""#)
            && xml.contains(r#"name="no small orders""#)
            && xml.contains(r#"name="unique ids""#)
            && xml.contains(r#"<failure message="the expect function returned false">"#)
            && !xml.contains("biggest spender"),
        "{}",
        out.text()
    );
}

/// A test must give every input of its task, and only its inputs.
#[test]
fn a_test_gives_exactly_the_inputs_of_its_task() {
    let p = project();
    p.file(
        "tests/bad.rhai",
        r#"
test("marts.big", #{ name: "nothing given", expect: [] });
test("marts.big", #{ name: "a stranger", given: #{ "prep.orders": [], "raw.other": [] }, expect: [] });
"#,
    );
    let out = p.weir(&["test", "-s", "marts.big"]).fails_with(1);
    assert!(
        out.stdout.contains(
            "input prep.orders of marts.big is not given: a test gives every input its rows"
        ) && out
            .stdout
            .contains("`raw.other` is not an input of marts.big"),
        "{}",
        out.text()
    );
}

/// A malformed test fails at its line before anything runs.
#[test]
fn malformed_tests_are_refused() {
    for (line, message) in [
        (
            "test(\"marts.big\", #{ given: #{} });",
            "a test needs `expect`",
        ),
        (
            "test(\"big\", #{ expect: [] });",
            "`big` is not a table name",
        ),
        (
            "test(\"marts.big\", #{ expect: 3 });",
            "`expect` must be rows",
        ),
        (
            "test(\"marts.big\", #{ expect: \"n > 1\" });",
            "is not a check",
        ),
        (
            "test(\"marts.big\", #{ expect: [], gven: #{} });",
            "unknown key `gven`",
        ),
    ] {
        let p = project();
        p.file("tests/t.rhai", line);
        let bad = p.weir(&["test"]).fails_with(2);
        assert!(bad.stderr.contains(message), "{line}: {}", bad.text());
    }
}
