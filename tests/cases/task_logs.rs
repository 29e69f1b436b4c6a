//! `log::info`, `log::warn`, `log::trace`, `print` and `debug` in task code: into the run's
//! record and event log under the task's name, on the console by level, and kept when the task
//! fails.

use crate::common::Project;

const PIPELINE: &str = r#"
let prep = stage("prep");
fn build(t) {
    let n = t.count();
    log::info("counted", #{ rows: n, tags: ["a"] });
    log::trace("detail");
    print("printed");
    if n > param("max", 100) { log::warn("too many rows", #{ rows: n }); throw "too many"; }
    t
}
prep.sql("src", "SELECT * FROM generate_series(1, 5) AS t(x)");
prep.materialize("out", build, [table("prep.src")]);
"#;

#[test]
fn task_code_logs_into_the_run_record() {
    let p = Project::new();
    p.file("pipeline.rhai", PIPELINE);
    let run = p.run(&[]).ok();
    assert!(
        run.stderr.contains("  print   prep.out: printed"),
        "{}",
        run.text()
    );
    assert!(
        !run.stderr.contains("counted"),
        "info needs -v: {}",
        run.text()
    );

    let record = p.last_record();
    let out = record["tasks"]
        .as_array()
        .and_then(|t| t.iter().find(|t| t["task"] == "prep.out"))
        .expect("prep.out recorded");
    let logs = out["logs"].as_array().expect("logs");
    assert_eq!(logs[0]["level"], "info");
    assert_eq!(logs[0]["message"], "counted");
    assert_eq!(logs[0]["fields"]["rows"], 5);
    assert_eq!(logs[0]["fields"]["tags"][0], "a");
    assert_eq!(logs[1]["level"], "debug");

    let shown = p
        .weir(&["log", "last", "--task", "PREP.out", "--events"])
        .ok()
        .stdout;
    assert!(
        shown.contains("info  counted  rows=5  tags=[\"a\"]"),
        "{shown}"
    );
    assert!(shown.contains("\"event\":\"log\""), "{shown}");
    assert!(
        !shown.contains("prep.src"),
        "only the task asked for: {shown}"
    );
    let wrong = p.weir(&["log", "last", "--task", "prep.ot"]).fails_with(2);
    assert!(
        wrong.stderr.contains("did you mean `prep.out`?"),
        "{}",
        wrong.text()
    );

    let verbose = p.run(&["--force", "-vv"]).ok();
    for line in ["info    prep.out: counted", "debug   prep.out: detail"] {
        assert!(verbose.stderr.contains(line), "{line}: {}", verbose.text());
    }
}

/// What a failing task logged before it failed is kept: it is what explains the failure.
#[test]
fn a_failed_task_keeps_its_log() {
    let p = Project::new();
    p.file("pipeline.rhai", PIPELINE);
    let run = p.run(&["--param", "max=2"]).fails_with(1);
    assert!(
        run.stderr
            .contains("warn    prep.out: too many rows  rows=5"),
        "{}",
        run.text()
    );
    let shown = p.weir(&["log", "last", "--task", "prep.out"]).ok().stdout;
    assert!(shown.contains("warn  too many rows  rows=5"), "{shown}");
    assert!(shown.contains("too many"), "{shown}");
}

/// A UDF's log lines belong to the task whose query called it.
#[test]
fn a_udf_logs_into_the_task_that_calls_it() {
    let p = Project::new();
    p.file(
        "pipeline.rhai",
        r#"
udf("loud", |s| { log::info("called", #{ s: s }); s.to_upper() });
let prep = stage("prep");
prep.sql("src", "SELECT CAST(x AS VARCHAR) AS s FROM generate_series(1, 2) AS t(x)");
prep.sql("out", "SELECT loud(s) AS s FROM prep.src");
"#,
    );
    p.run(&[]).ok();
    let shown = p.weir(&["log", "last", "--task", "prep.out"]).ok().stdout;
    assert!(shown.contains("info  called  s=1"), "{shown}");
    assert!(shown.contains("info  called  s=2"), "{shown}");
}
