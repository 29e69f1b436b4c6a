//! `retries` and `retry_delay`: a task that failed for a reason outside it runs again, with a
//! growing wait; its attempts are in the summary and the run record. Its own faults are not
//! tried again.

use crate::common::Project;
use crate::common::servers::Http;

const ORDERS: &str = "order_id,amount\n1,10\n2,20\n3,30\n";

/// A project whose one load reads `orders.csv` from `http`, with `options`.
fn remote(http: &Http, options: &str) -> Project {
    let p = Project::new();
    let url = http.url("orders.csv");
    p.file(
        "pipeline.rhai",
        &format!(
            "let raw = stage(\"raw\");\nraw.load(\"orders\", \"{url}\"{options});\n\
             let marts = stage(\"marts\");\n\
             marts.sql(\"total\", `SELECT sum(amount) AS total FROM raw.orders`);\n"
        ),
    );
    p
}

fn www() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("orders.csv"), ORDERS).unwrap();
    dir
}

/// A source down long enough to fail two attempts: the third succeeds, the summary says
/// `(3rd attempt)`, the log has a line per failed attempt, and the record keeps their errors.
#[test]
fn a_load_whose_source_is_down_for_a_while_succeeds_on_a_later_attempt() {
    let dir = www();
    // weir's own HTTP client tries a request 4 times before it gives up: two attempts' worth.
    let http = Http::flaky(dir.path(), 8);
    let p = remote(&http, ", #{ retries: 3, retry_delay: \"50ms\" }");
    let run = p.run(&[]).ok();
    assert!(
        run.stdout.contains("(3rd attempt)") && run.stdout.contains("2 tasks: 2 ran"),
        "{}",
        run.text()
    );
    assert_eq!(p.query("SELECT total FROM marts.total"), ["60"]);
    let record = p.last_record();
    let orders = &record["tasks"][0];
    assert_eq!(orders["task"], "raw.orders");
    assert_eq!(orders["status"], "ran");
    let failed = orders["failed_attempts"]
        .as_array()
        .expect("failed_attempts");
    assert_eq!(failed.len(), 2, "{orders}");
    assert!(failed[0].as_str().unwrap().contains("503"), "{orders}");
    let log = p.weir(&["log", "last"]).ok();
    assert!(
        log.stdout.contains("attempt 1 of 4 failed")
            && log.stdout.contains("trying again in 50 ms")
            && log.stdout.contains("attempt 2 of 4 failed")
            && log.stdout.contains("trying again in 100 ms")
            && log.stdout.contains("(3rd attempt)"),
        "{}",
        log.text()
    );
    assert!(
        record["tasks"][1].get("failed_attempts").is_none(),
        "a task that did not retry has none: {record}"
    );
}

/// Without `retries`, or when they are used up, the task fails with its last error.
#[test]
fn a_task_fails_when_its_retries_are_used_up() {
    let dir = www();
    let http = Http::flaky(dir.path(), 8);
    let p = remote(&http, ", #{ retries: 1, retry_delay: \"10ms\" }");
    let run = p.run(&[]).fails_with(1);
    assert!(
        run.stdout.contains("raw.orders")
            && run.stdout.contains("failed")
            && run.stdout.contains("(2nd attempt)"),
        "{}",
        run.text()
    );
    let record = p.last_record();
    assert_eq!(
        record["tasks"][0]["failed_attempts"]
            .as_array()
            .unwrap()
            .len(),
        1
    );

    let http = Http::flaky(dir.path(), 4);
    let p = remote(&http, "");
    let run = p.run(&[]).fails_with(1);
    assert!(!run.text().contains("attempt"), "{}", run.text());
}

/// A fault of the task itself, its SQL or a data check, fails the same way every time: it is
/// not tried again, whatever `retries` says.
#[test]
fn a_task_own_fault_is_not_retried() {
    let p = Project::new();
    p.file(
        "pipeline.rhai",
        "let s = stage(\"s\");\n\
         s.sql(\"bad\", `SELECT CAST('x' AS INT) AS n`, #{ retries: 3, retry_delay: \"10ms\" });\n\
         s.sql(\"checked\", `SELECT 1 AS n`, #{ retries: 3, expect: [\"accepted_values(n, [2])\"] });\n",
    );
    let run = p.run(&["--keep-going"]).fails_with(1);
    assert!(!run.text().contains("attempt"), "{}", run.text());
    let record = p.last_record();
    for t in record["tasks"].as_array().unwrap() {
        assert_eq!(t["status"], "failed", "{t}");
        assert!(t.get("failed_attempts").is_none(), "{t}");
    }
}

/// Malformed retry options fail at their line.
#[test]
fn malformed_retry_options_are_refused() {
    for (options, message) in [
        (
            "retries: -1",
            "`retries` must be a whole number from 0 to 10",
        ),
        (
            "retries: 11",
            "`retries` must be a whole number from 0 to 10",
        ),
        (
            "retries: \"3\"",
            "`retries` must be a whole number from 0 to 10",
        ),
        (
            "retries: 2, retry_delay: \"soon\"",
            "`retry_delay` must be a duration",
        ),
        (
            "retries: 2, retry_delay: \"0s\"",
            "`retry_delay` must be a duration",
        ),
        (
            "retries: 2, retry_delay: \"2h\"",
            "`retry_delay` must be a duration",
        ),
        ("retry_delay: \"5s\"", "`retry_delay` goes with `retries`"),
    ] {
        let p = Project::new();
        p.file(
            "pipeline.rhai",
            &format!("let s = stage(\"s\");\ns.sql(\"t\", `SELECT 1 AS x`, #{{ {options} }});\n"),
        );
        let bad = p.run(&[]).fails_with(2);
        assert!(
            bad.stderr.contains(message) && bad.stderr.contains("pipeline.rhai:2"),
            "{options}: {}",
            bad.text()
        );
    }
}
