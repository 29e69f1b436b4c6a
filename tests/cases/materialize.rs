//! `t.materialize("name")` inside a task function: an intermediate written at once, that the
//! task builds on.

use std::io::Write;
use std::process::Stdio;

use crate::common::Project;

const SCRIPT: &str = r#"
let raw = stage("raw");
raw.sql("numbers", "SELECT value AS n FROM generate_series(1, 100)");
fn evens_summed(t) {
    let evens = t.filter("n % 2 = 0").materialize("evens");
    evens.aggregate([], ["count(*) AS evens", "sum(n) AS total"])
}
stage("prep").materialize("summary", evens_summed, [table("raw.numbers")]);
"#;

#[test]
fn an_intermediate_is_written_once_and_built_on() {
    let p = Project::new();
    p.file("pipeline.rhai", SCRIPT);
    p.run(&[]).ok();
    assert_eq!(
        p.query("SELECT evens, total FROM prep.summary"),
        ["50,2550"]
    );
    let written: Vec<_> = p
        .files_under(".weir/default/tables/prep/evens")
        .into_iter()
        .filter(|f| f.extension().is_some_and(|e| e == "parquet"))
        .collect();
    assert_eq!(written.len(), 1, "{written:?}");
    let (rows, columns, _) = crate::common::read_parquet(&written[0]);
    assert_eq!((rows, columns), (50, vec!["n".to_string()]));
    p.run(&[]).ok();
    assert!(
        p.ran().is_empty(),
        "a cached task does not write its intermediates again"
    );
}

#[test]
fn materializing_twice_fails_in_a_run_and_is_allowed_in_the_repl() {
    let p = Project::new();
    let twice = SCRIPT.replace(
        "evens.aggregate",
        "let again = evens.materialize(\"evens\");\n    again.aggregate",
    );
    p.file("pipeline.rhai", &twice);
    let run = p.run(&[]).fails_with(1);
    assert!(
        run.text()
            .contains("`evens` was already materialized by this task"),
        "{}",
        run.text()
    );
    assert!(!p.path(".weir/default/manifests/prep.json").exists());

    let mut child = p
        .command(&["repl", "pipeline.rhai"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn repl");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(b"run()\nshow(\"prep.summary\")\n:quit\n")
        .expect("input");
    let out = child.wait_with_output().expect("repl");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("| 50    | 2550  |"), "{text}");
}
