//! Rhai UDFs callable from SQL: `udf(name, closure, opts)`. Null in, null out; declared or
//! inferred types; editing one re-runs exactly its callers; a failing one names the values.

use crate::common::{Project, set};

const MEMBERS: &str = "id,name,n\n1,Ann,3\n2,,4\n3,Bob,\n";

const FLOW: &str = r#"
let raw = stage("raw");
raw.load("members", "data/members.csv");

fn bang(s) { s + "!" }
udf("shout", |s| bang(s.to_upper()));
udf("twice", |n| n * 2, #{ args: ["int64"], returns: "Int64" });
udf("tag", |s, n| `${s}:${n}`, #{ returns: "utf8", call_on_null: true });

let prep = stage("prep");
prep.sql("loud", `SELECT id, shout(name) AS loud, twice(n) AS n2, tag(name, n) AS t
                  FROM raw.members`);
prep.sql("doubled", `SELECT id, twice(n) AS n2 FROM raw.members`);
prep.sql("plain", `SELECT id, upper(name) AS up FROM raw.members`);
prep.materialize("picked", |t| t.select("id, shout(name) AS s").filter("id < 3"),
    [table("raw.members")]);
"#;

fn project() -> Project {
    let p = Project::new();
    p.file("pipeline.rhai", FLOW)
        .file("data/members.csv", MEMBERS);
    p
}

/// A UDF works in SQL tasks and in a task function's Table SQL, and `weir check` plans them;
/// a null argument gives null without a call, unless the UDF is called on nulls.
#[test]
fn udfs_run_in_sql_tasks_and_table_methods_null_in_null_out() {
    let p = project();
    let check = p.weir(&["check"]).ok();
    assert!(check.stdout.contains("prep.loud"), "{}", check.text());
    p.run(&[]).ok();
    assert_eq!(
        p.query("SELECT * FROM prep.loud ORDER BY id"),
        ["1,ANN!,6,Ann:3", "2,,8,:4", "3,BOB!,,Bob:"]
    );
    assert_eq!(
        p.query("SELECT * FROM prep.picked ORDER BY id"),
        ["1,ANN!", "2,"]
    );
}

/// Declared types cast the arguments and the result; undeclared, a UDF returns the type of its
/// first argument, and a value of another type fails with a help naming `returns`.
#[test]
fn declared_types_cast_and_undeclared_ones_follow_the_first_argument() {
    let p = project();
    p.file(
        "pipeline.rhai",
        r#"
let raw = stage("raw");
raw.load("members", "data/members.csv");
udf("half", |n| n / 2.0, #{ args: ["Float64"], returns: "Float32" });
udf("plus", |a, b| a + b);
udf("longer", |s, k| s.len() > k, #{ returns: "boolean" });
stage("prep").sql("typed", `SELECT half(id) AS h, plus(id, 10) AS p, longer(name, 2) AS l,
    arrow_typeof(half(id)) AS th, arrow_typeof(plus(id, 10)) AS tp
    FROM raw.members WHERE id = 1`);
"#,
    );
    p.run(&[]).ok();
    assert_eq!(
        p.query("SELECT * FROM prep.typed"),
        ["0.5,11,true,Float32,Int64"]
    );

    p.file(
        "pipeline.rhai",
        r#"
let raw = stage("raw");
raw.load("members", "data/members.csv");
udf("size", |s| s.len());
stage("prep").sql("sizes", `SELECT size(name) AS n FROM raw.members`);
"#,
    );
    let text = p.run(&[]).fails_with(1).text();
    assert!(
        text.contains("size(\"Ann\") failed: it returned 3 (i64), not a string (Utf8) value"),
        "{text}"
    );
    assert!(text.contains("#{ returns: \"Int64\" }"), "{text}");
}

/// Editing a UDF, or a script function it calls, re-runs exactly the tasks whose SQL calls it
/// (a task function's Table SQL included) and says why; a run with nothing edited, or only a
/// comment, runs nothing.
#[test]
fn editing_a_udf_reruns_exactly_its_callers() {
    let p = project();
    p.run(&[]).ok();
    p.run(&[]).ok();
    assert!(p.ran().is_empty(), "{:?}", p.ran());

    p.edit("pipeline.rhai", "|n| n * 2", "|n| n * 2 /* doubled */");
    p.run(&[]).ok();
    assert!(
        p.ran().is_empty(),
        "a comment changes nothing: {:?}",
        p.ran()
    );

    p.edit("pipeline.rhai", "|n| n * 2 /* doubled */", "|n| n + n + 1");
    let run = p.run(&[]).ok();
    assert_eq!(p.ran(), set(&["prep.loud", "prep.doubled"]));
    assert!(run.stderr.contains("(udf twice changed)"), "{}", run.text());

    p.edit("pipeline.rhai", "s + \"!\"", "s + \"!!\"");
    p.run(&[]).ok();
    assert_eq!(p.ran(), set(&["prep.loud", "prep.picked"]));
    assert_eq!(p.query("SELECT s FROM prep.picked WHERE id = 1"), ["ANN!!"]);
}

/// An error inside a UDF fails the task (exit 1) with the call's values, labelled where the
/// closure failed in the script.
#[test]
fn an_error_inside_a_udf_names_the_values_and_points_into_the_script() {
    let p = project();
    p.edit(
        "pipeline.rhai",
        "|n| n * 2,",
        "|n| if n > 3 { throw `too big: ${n}` } else { n * 2 },",
    );
    let run = p.run(&[]).fails_with(1);
    let text = run.text();
    assert!(text.contains("weir::task::function"), "{text}");
    assert!(
        text.contains("pipeline.rhai:7:29: prep.doubled: twice(4) failed: too big: 4")
            || text.contains("pipeline.rhai:7:29: prep.loud: twice(4) failed: too big: 4"),
        "{text}"
    );
    assert!(text.contains("failed here"), "{text}");
}

/// Declarations that cannot work are refused when the script is evaluated (exit 2), at their
/// line.
#[test]
fn bad_declarations_are_refused_at_load() {
    for (decl, message) in [
        (
            r#"udf("f", |s| s, #{ args: ["Date32"] });"#,
            "`Date32` is not a type a UDF takes or returns",
        ),
        (r#"udf("f", 42);"#, "a UDF is a closure such as"),
        (
            r#"udf("f", |s| s); udf("f", |s| s);"#,
            "UDF `f` is already declared (line 2)",
        ),
        (
            r#"udf("upper", |s| s);"#,
            "`upper` is a built-in SQL function",
        ),
        (r#"udf("Shout", |s| s);"#, "must be a lower-case identifier"),
        (
            r#"udf("f", |a, b| a, #{ args: ["Utf8"] });"#,
            "`args` declares 1 argument, but the function takes 2",
        ),
        (
            r#"udf("f", |s| s, #{ nulls: true });"#,
            "unknown option `nulls`",
        ),
    ] {
        let p = Project::new();
        p.file(
            "pipeline.rhai",
            &format!("stage(\"s\").sql(\"t\", `SELECT 1 AS x`);\n{decl}\n"),
        );
        let text = p.run(&[]).fails_with(2).text();
        assert!(text.contains(message), "{decl}: {text}");
        assert!(text.contains("pipeline.rhai:2:"), "{decl}: {text}");
    }
}

/// `weir sql` and the REPL call the script's UDFs over committed tables; SQL that calls none
/// does not need the script to evaluate.
#[test]
fn weir_sql_and_the_repl_call_the_scripts_udfs() {
    let p = project();
    p.run(&[]).ok();
    assert_eq!(
        p.query("SELECT shout(name) FROM raw.members WHERE id = 1"),
        ["ANN!"]
    );
    let out = crate::cases::repl::repl(
        &p,
        "sql(\"SELECT twice(n) AS n2 FROM raw.members WHERE id = 2\")\n:quit\n",
    )
    .ok();
    assert!(out.stdout.contains("| 8  |"), "{}", out.text());

    p.file("pipeline.rhai", "this does not evaluate");
    assert_eq!(p.query("SELECT count(*) FROM raw.members"), ["3"]);
}

/// A UDF reading Rhai's clock makes its callers volatile (they run every time, as callers of
/// `now()` do); a param a UDF reads is part of its callers' keys.
#[test]
fn a_udf_reading_the_clock_or_a_param_keys_its_callers_by_them() {
    let p = Project::new();
    p.file(
        "pipeline.rhai",
        r#"
udf("stamp", |s| `${s} at ${timestamp()}`);
udf("greet", |s| `${param("greeting", "hi")} ${s}`);
let s = stage("s");
s.sql("stamped", `SELECT stamp('x') AS x`);
s.sql("greeted", `SELECT greet('Ann') AS g`);
s.sql("plain", `SELECT 1 AS y`);
"#,
    );
    p.run(&[]).ok();
    p.run(&[]).ok();
    assert_eq!(p.ran(), set(&["s.stamped"]));
    p.run(&["--param", "greeting=hello"]).ok();
    assert_eq!(p.ran(), set(&["s.stamped", "s.greeted"]));
    assert_eq!(p.query("SELECT g FROM s.greeted"), ["hello Ann"]);
}
