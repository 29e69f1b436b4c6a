//! Limits on what a pipeline may ask for: name lengths, query depth, and the time and memory
//! evaluating a script may take. Each ends in a diagnostic and an exit code, never an abort.

use std::time::{Duration, Instant};

use crate::common::Project;

/// A stage, table, intermediate or instance name longer than 63 characters is refused where it
/// is declared (exit 2 in the script and on the command line, a task failure for an
/// intermediate), with the limit and the name's length.
#[test]
fn long_names_are_refused_with_the_limit() {
    let long = "n".repeat(64);
    let p = Project::new();
    p.file(
        "pipeline.rhai",
        &format!("let s = stage(\"{long}\");\ns.sql(\"a\", \"SELECT 1 AS a\");\n"),
    );
    let run = p.run(&[]).fails_with(2);
    assert!(
        run.stderr.contains("pipeline.rhai:1:9: stage name `nnnnnnnnnnnnnnnnnnnnnnnn...` is 64 characters long; names are at most 63 characters"),
        "{}",
        run.stderr
    );

    let ok = "m".repeat(63);
    p.file(
        "pipeline.rhai",
        &format!("let s = stage(\"{ok}\");\ns.sql(\"{ok}\", \"SELECT 1 AS a\");\n"),
    );
    p.run(&[]).ok();

    let run = p.run(&["--instance", &long]).fails_with(2);
    assert!(
        run.stderr
            .contains("instance name `nnnnnnnnnnnnnnnnnnnnnnnn...` is 64 characters long"),
        "{}",
        run.stderr
    );

    p.file(
        "pipeline.rhai",
        &format!(
            "let s = stage(\"s\");\ns.sql(\"a\", \"SELECT 1 AS a\");\nfn f(t) {{ t.materialize(\"{long}\") }}\ns.materialize(\"b\", f, [table(\"s.a\")]);\n"
        ),
    );
    let run = p.run(&[]).fails_with(1);
    assert!(
        run.stderr
            .contains("table name `nnnnnnnnnnnnnnnnnnnnnnnn...` is 64 characters long"),
        "{}",
        run.stderr
    );
}

/// The exit of a command that must end by itself, with a code: a process killed by a signal
/// (a stack overflow aborts) has none.
#[track_caller]
fn ends_with_a_code(run: &crate::common::Run, what: &str) {
    assert!(
        [0, 1, 2].contains(&run.code),
        "{what}: exit {} (-1: killed by a signal):\n{}",
        run.code,
        run.stderr.chars().take(2000).collect::<String>()
    );
    assert!(
        !run.stderr.contains("stack overflow"),
        "{what}: {}",
        run.stderr
    );
    assert!(!run.stderr.contains("panicked"), "{what}: {}", run.stderr);
}

fn chain(terms: usize, term: impl Fn(usize) -> String, op: &str) -> String {
    (0..terms).map(term).collect::<Vec<_>>().join(op)
}

/// Deeply nested SQL runs or fails with a message, never aborting the process: a 1,000-term
/// OR chain in a task and in `t.filter` runs; 4,000 terms and 5,000 UNION ALLs in `weir sql`,
/// and 3,000 terms in a task, are beyond the depth weir plans and refused with exit 2.
#[test]
fn deeply_nested_sql_never_aborts() {
    let ors = chain(1000, |i| format!("value = {i}"), " OR ");
    let p = Project::new();
    p.file(
        "pipeline.rhai",
        &format!(
            r#"let s = stage("s");
s.sql("numbers", "SELECT value FROM generate_series(1, 2000)");
s.sql("picked", "SELECT count(*) AS n FROM s.numbers WHERE {ors}");
fn pick(t) {{ t.filter("{ors}") }}
s.materialize("filtered", pick, [table("s.numbers")]);
"#
        ),
    );
    let run = p.run(&[]);
    ends_with_a_code(&run, "1,000 ORs in a task and in t.filter");
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert_eq!(p.query("SELECT n FROM s.picked"), ["999"]);
    assert_eq!(p.query("SELECT count(*) FROM s.filtered"), ["999"]);

    let plus = format!("SELECT {} AS total", chain(4000, |i| i.to_string(), " + "));
    let run = p.weir(&["sql", &plus, "--format", "csv"]);
    ends_with_a_code(&run, "4,000 terms in weir sql");
    assert_eq!(run.code, 2, "{}", run.stderr);
    assert!(
        run.stderr
            .contains("the query nests an expression 4000 levels deep, more than the 2000"),
        "{}",
        run.stderr
    );

    // Short terms: a command-line argument holds at most 128 KiB.
    let unions = chain(5000, |_| "SELECT 1".to_string(), " UNION ALL ");
    let run = p.weir(&["sql", &format!("SELECT count(*) FROM ({unions})")]);
    ends_with_a_code(&run, "5,000 UNION ALLs in weir sql");
    assert_eq!(run.code, 2, "{}", run.stderr);
    assert!(
        run.stderr.contains("nests set operations"),
        "{}",
        run.stderr
    );

    let deep = chain(3000, |i| format!("value = {i}"), " OR ");
    p.file(
        "pipeline.rhai",
        &format!("let s = stage(\"s\");\ns.sql(\"deep\", \"SELECT * FROM generate_series(1, 9) WHERE {deep}\");\n"),
    );
    let run = p.run(&[]);
    ends_with_a_code(&run, "3,000 ORs in a task");
    assert_eq!(run.code, 2, "{}", run.stderr);
    assert!(run.stderr.contains("pipeline.rhai:2:"), "{}", run.stderr);
}

/// A script whose evaluation runs past `WEIR_SCRIPT_TIMEOUT` (here 2 s, well within the
/// operation limit) is stopped with exit 2 and a message that says why; a bad value is a usage
/// error.
#[test]
fn script_evaluation_has_a_time_limit() {
    let p = Project::new();
    p.file(
        "pipeline.rhai",
        "let s = stage(\"s\");\nlet i = 0;\nloop { i += 1; }\n",
    );
    let started = Instant::now();
    let out = p
        .command(&["run", "pipeline.rhai"])
        .env("WEIR_SCRIPT_TIMEOUT", "2")
        .output()
        .unwrap();
    let took = started.elapsed();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("the script took longer than 2 s to evaluate"),
        "{stderr}"
    );
    assert!(stderr.contains("heavy work belongs in tasks"), "{stderr}");
    assert!(stderr.contains("pipeline.rhai:3:"), "{stderr}");
    assert!(took < Duration::from_secs(20), "stopped after {took:?}");

    let out = p
        .command(&["status", "pipeline.rhai"])
        .env("WEIR_SCRIPT_TIMEOUT", "soon")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("WEIR_SCRIPT_TIMEOUT=`soon` is not a number of seconds"),
        "{stderr}"
    );
}

/// The time limit is for evaluating the script only: a task function's eager work may take
/// longer.
#[test]
fn task_functions_run_without_the_script_time_limit() {
    let p = Project::new();
    p.file(
        "pipeline.rhai",
        r#"let s = stage("s");
s.sql("a", "SELECT 1 AS a");
fn slow(t) {
    let x = 0;
    for i in 0..2000000 { x += i; }
    t.with_column("x", `${x}`)
}
s.materialize("b", slow, [table("s.a")]);
"#,
    );
    let out = p
        .command(&["run", "pipeline.rhai"])
        .env("WEIR_SCRIPT_TIMEOUT", "0.2")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    assert_eq!(p.query("SELECT x FROM s.b"), ["1999999000000"]);
}

/// A map grown with `m[k] = v` (which Rhai itself does not check) is stopped at the map-size
/// limit, 1,000,000 entries nested ones included, with exit 2 at the line that grows it.
/// (Each row added here holds 1,000 entries, so the limit is reached in a second; the unit
/// tests of src/script/limits.rs grow maps one key at a time.)
#[test]
fn maps_grown_by_index_assignment_are_limited() {
    let p = Project::new();
    p.file(
        "pipeline.rhai",
        "let s = stage(\"s\");\nlet row = #{};\nfor j in 0..1000 { row[`c${j}`] = j; }\nlet m = #{};\nfor i in 0..5000 { m[`r${i}`] = row; }\n",
    );
    let out = p
        .command(&["run", "pipeline.rhai"])
        .env("WEIR_SCRIPT_TIMEOUT", "0")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("more than the 1000000 a script's maps may hold"),
        "{stderr}"
    );
    assert!(stderr.contains("pipeline.rhai:5:"), "{stderr}");
}

/// A task function's array grows in linear time (100,000 maps pushed and made a table), and a
/// task function or UDF that never returns is stopped at WEIR_TASK_TIMEOUT, by name.
#[test]
fn task_code_grows_arrays_linearly_and_has_a_time_limit() {
    let p = Project::new();
    p.file(
        "pipeline.rhai",
        r#"let s = stage("s");
fn rows() {
    let out = [];
    for i in 0..100000 { out.push(#{ id: i, name: `n${i}` }); }
    table(out)
}
s.materialize("many", rows, []);
"#,
    );
    // Growing it took minutes while Rhai measured the array on every push.
    p.run(&[]).ok();
    assert_eq!(p.query("SELECT count(*) FROM s.many"), ["100000"]);

    p.file(
        "pipeline.rhai",
        r#"let s = stage("s");
fn spin(t) { loop { } }
s.sql("one", "SELECT 1 AS x");
s.materialize("stuck", spin, [table("s.one")]);
udf("forever", |x| { loop { } });
s.sql("udf_stuck", "SELECT forever(x) AS y FROM s.one");
"#,
    );
    let out = p
        .command(&["run", "pipeline.rhai", "--keep-going"])
        .env("WEIR_TASK_TIMEOUT", "1")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{stdout}");
    for task in ["s.stuck", "s.udf_stuck"] {
        let failed = stdout
            .lines()
            .skip_while(|l| !l.trim_start().starts_with(task))
            .nth(1)
            .unwrap_or_default();
        assert!(
            failed.contains("the task's code ran longer than 1 s"),
            "{task}:\n{stdout}"
        );
    }
}

/// `with_column` and `sort` take expressions as deep as the rest (2,000 levels) and refuse a
/// deeper one at once, as `filter` and SQL do, instead of planning it for minutes.
#[test]
fn table_method_expressions_have_the_depth_limit() {
    let p = Project::new();
    let deep = chain(3000, |i| format!("x + {i}"), " + ");
    p.file(
        "pipeline.rhai",
        &format!(
            r#"let s = stage("s");
s.sql("one", "SELECT 1 AS x");
fn wide(t) {{ t.with_column("y", "{deep}") }}
fn ordered(t) {{ t.sort("{deep}") }}
s.materialize("wide", wide, [table("s.one")]);
s.materialize("ordered", ordered, [table("s.one")]);
"#
        ),
    );
    let run = p.run(&["--keep-going"]);
    ends_with_a_code(&run, "3,000 terms in with_column and sort");
    assert_eq!(run.code, 1, "{}", run.stderr);
    for (task, line) in [
        ("s.wide", "pipeline.rhai:3:"),
        ("s.ordered", "pipeline.rhai:4:"),
    ] {
        assert!(
            run.stdout
                .lines()
                .any(|l| l.contains(line) && l.contains("levels deep")),
            "{task}:\n{}",
            run.stdout
        );
    }
}
