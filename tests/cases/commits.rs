//! Stage commits: a failure leaves committed stages as they were; the next run resumes.

use std::io::{BufRead, BufReader};
use std::process::Stdio;

use crate::common::{Project, set};

/// A failing task keeps its stage's committed manifest unchanged, other stages commit, and the
/// next run reuses what finished instead of recomputing it.
#[test]
fn failing_task_keeps_committed_stages_and_next_run_resumes() {
    let p = Project::standard();
    p.run(&[]).ok();
    let prep_before = p.read(".weir/default/manifests/prep.json");

    // orders_clean changes and succeeds; customer_count now fails at run time.
    p.edit(
        "pipeline.rhai",
        "WHERE o.amount > 0`",
        "WHERE o.amount > 50`",
    );
    p.edit(
        "pipeline.rhai",
        "SELECT count(*) AS n FROM raw.customers",
        "SELECT CAST(segment AS INT) AS n FROM raw.customers",
    );
    let run = p.run(&["--jobs", "1"]).fails_with(1);
    assert!(
        run.stdout.contains("Cannot cast string 'enterprise'"),
        "{}",
        run.text()
    );
    assert!(
        run.stdout
            .contains("stages: raw unchanged, prep NOT committed, marts NOT committed"),
        "{}",
        run.text()
    );
    let s = p.statuses();
    assert_eq!(
        (
            s["prep.customer_count"].as_str(),
            s["marts.by_segment"].as_str()
        ),
        ("failed", "skipped")
    );
    assert_eq!(
        p.read(".weir/default/manifests/prep.json"),
        prep_before,
        "prep is exactly as committed before"
    );
    assert_eq!(
        p.query("SELECT count(*) FROM prep.orders_clean"),
        ["5"],
        "readers see the old stage"
    );
    assert_eq!(p.statuses()["prep.orders_clean"], "ran");

    p.edit(
        "pipeline.rhai",
        "SELECT CAST(segment AS INT) AS n",
        "SELECT count(*) AS n",
    );
    p.run(&[]).ok();
    assert_eq!(
        p.ran(),
        set(&["marts.by_segment", "marts.big_orders"]),
        "orders_clean is resumed, not recomputed"
    );
    assert_eq!(p.statuses()["prep.orders_clean"], "cached");
    assert_eq!(p.query("SELECT count(*) FROM prep.orders_clean"), ["4"]);
}

/// With --keep-going, tasks that do not depend on the failure still run; a stage commits only
/// on builds that are committed, so marts (reading prep.orders_clean) waits for prep.
#[test]
fn keep_going_runs_independent_tasks() {
    let p = Project::standard();
    p.edit(
        "pipeline.rhai",
        "SELECT count(*) AS n FROM raw.customers",
        "SELECT CAST(segment AS INT) AS n FROM raw.customers",
    );
    let run = p.run(&["--keep-going", "--jobs", "1"]).fails_with(1);
    let s = p.statuses();
    assert_eq!(s["prep.customer_count"], "failed");
    assert_eq!(s["marts.by_segment"], "ran");
    assert!(
        run.stdout.contains(
            "stages: raw committed, prep NOT committed, marts NOT committed (reads uncommitted prep.orders_clean)"
        ),
        "{}",
        run.text()
    );
    assert!(
        p.manifest("raw").is_some()
            && p.manifest("marts").is_none()
            && p.manifest("prep").is_none()
    );
    // Fixed, the next run commits both, reusing what finished.
    p.edit(
        "pipeline.rhai",
        "SELECT CAST(segment AS INT) AS n FROM raw.customers",
        "SELECT count(*) AS n FROM raw.customers",
    );
    p.run(&[]).ok();
    assert_eq!(p.ran(), crate::common::set(&["prep.customer_count"]));
    assert!(p.manifest("marts").is_some() && p.manifest("prep").is_some());
}

/// A run killed with SIGKILL mid-task leaves no half-written table visible; the next run
/// recovers the lock and commits correct data.
#[test]
fn run_killed_midway_is_followed_by_a_correct_run() {
    let p = Project::standard();
    p.file(
        "pipeline.rhai",
        &format!(
            "{}\n{}",
            crate::common::PIPELINE,
            r#"
        let big = stage("big");
        big.sql("numbers", `SELECT value AS v, value * 2 AS w FROM generate_series(1, 3000000)`);
        big.sql("total", `SELECT count(*) AS n, sum(w) AS s FROM big.numbers`);
    "#
        ),
    );
    let mut child = p
        .command(&["run", "pipeline.rhai", "--jobs", "1"])
        .stderr(Stdio::piped())
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    let stderr = BufReader::new(child.stderr.take().unwrap());
    for line in stderr.lines() {
        if line.unwrap().contains("start   big.numbers") {
            break;
        }
    }
    child.kill().unwrap();
    child.wait().unwrap();
    assert!(
        p.manifest("big").is_none(),
        "nothing of the killed stage is committed"
    );

    let run = p.run(&[]).ok();
    assert!(
        !run.text().contains("waiting for the instance lock"),
        "the dead run's lock is recovered at once"
    );
    assert_eq!(
        p.query("SELECT n, s FROM big.total"),
        ["3000000,9000003000000"]
    );
    assert_eq!(p.query("SELECT count(*) FROM big.numbers"), ["3000000"]);
}
