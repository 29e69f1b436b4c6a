//! `--param`: only params the script reads are taken, each as its default's type, and a
//! task's key holds only the params its own code reads.

use crate::common::{Project, set};

const PIPELINE: &str = r#"
let s = stage("s");
fn top(t) { t.sql("SELECT * FROM {self} ORDER BY n").limit(param("top", 2)) }
fn label(t) { t.with_column("label", `'${param("label", "x")}'`) }
s.materialize("numbers", || table(#{ n: [1, 2, 3, 4] }), []);
s.materialize("top", top, [table("s.numbers")]);
s.materialize("labelled", label, [table("s.numbers")]);
"#;

/// A param changed re-runs only the tasks whose code reads it.
#[test]
fn a_changed_param_reruns_only_the_tasks_that_read_it() {
    let p = Project::new();
    p.file("pipeline.rhai", PIPELINE);
    p.run(&["-p", "top=3", "-p", "label=a"]).ok();
    assert_eq!(p.query("SELECT count(*) FROM s.top"), ["3"]);
    p.run(&["-p", "top=3", "-p", "label=b"]).ok();
    assert_eq!(p.ran(), set(&["s.labelled"]));
    p.run(&["-p", "top=1", "-p", "label=b"]).ok();
    assert_eq!(p.ran(), set(&["s.top"]));
    assert_eq!(p.query("SELECT count(*) FROM s.top"), ["1"]);
}

/// A value takes its default's type: `label=5` is the string "5", not the number.
#[test]
fn a_value_takes_the_type_of_its_default() {
    let p = Project::new();
    p.file("pipeline.rhai", PIPELINE);
    p.run(&["-p", "label=5"]).ok();
    assert_eq!(p.query("SELECT DISTINCT label FROM s.labelled"), ["5"]);
    let bad = p.run(&["-p", "top=2.5"]).fails_with(2);
    assert!(bad.stderr.contains("`top` is an int"), "{}", bad.text());
    let typo = p.run(&["-p", "lable=a"]).fails_with(2);
    assert!(
        typo.stderr.contains("did you mean `label`?"),
        "{}",
        typo.text()
    );
}
