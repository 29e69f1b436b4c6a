//! What user SQL and script paths may reach: SQL is one query, which writes nothing and reads
//! only declared and committed tables; `sql_file` and `import` stay inside the project, real
//! paths (through symlinks) included.

use crate::common::Project;

/// A file outside the project, in a folder of its own that the test keeps alive.
struct Outside {
    dir: tempfile::TempDir,
}

impl Outside {
    fn new() -> Self {
        Self {
            dir: tempfile::tempdir().expect("temp dir"),
        }
    }

    fn path(&self, name: &str) -> String {
        self.dir.path().join(name).display().to_string()
    }
}

/// Statements that would write or define something, each with the file it would write.
fn statements(outside: &Outside) -> Vec<(String, Option<String>)> {
    let target = outside.path("copied.csv");
    vec![
        (
            format!("COPY (SELECT 1 AS a) TO '{target}' STORED AS CSV"),
            Some(target),
        ),
        (
            format!(
                "CREATE EXTERNAL TABLE x (a INT) STORED AS CSV LOCATION '{}'",
                outside.path("ext.csv")
            ),
            None,
        ),
        ("INSERT INTO s.a VALUES (2)".to_string(), None),
        ("SET datafusion.execution.batch_size = 1".to_string(), None),
    ]
}

/// COPY, CREATE EXTERNAL TABLE, INSERT and SET in a SQL task are refused before the run
/// (exit 2, labelled at the statement's keyword), and nothing is written outside the project.
#[test]
fn sql_tasks_that_are_not_queries_are_refused_before_running() {
    let outside = Outside::new();
    for (statement, target) in statements(&outside) {
        let p = Project::new();
        p.file(
            "pipeline.rhai",
            &format!(
                "let s = stage(\"s\");\ns.sql(\"a\", \"SELECT 1 AS a\");\ns.sql(\"b\", \"{statement}\");\n"
            ),
        );
        let run = p.run(&[]).fails_with(2);
        let keyword = statement.split(' ').next().unwrap();
        assert!(
            run.stderr.contains(&format!(
                "pipeline.rhai:3:13: SQL of s.b is a {keyword} statement, not a query"
            )),
            "{statement}:\n{}",
            run.stderr
        );
        assert!(run.stderr.contains("not a query"), "{}", run.stderr);
        assert!(
            run.stderr.contains("statements are not allowed"),
            "{}",
            run.stderr
        );
        if let Some(target) = target {
            assert!(!std::path::Path::new(&target).exists(), "{target} written");
        }
        assert!(!p.path(".weir").exists(), "nothing ran");
    }
}

/// `weir sql` runs one query: COPY, CREATE EXTERNAL TABLE, INSERT and SET are refused with
/// exit 2, labelled at the statement, and write nothing; EXPLAIN still works.
#[test]
fn weir_sql_runs_queries_only() {
    let outside = Outside::new();
    let p = Project::new();
    p.file(
        "pipeline.rhai",
        "let s = stage(\"s\");\ns.sql(\"a\", \"SELECT 1 AS a\");\n",
    );
    p.run(&[]).ok();
    for (statement, target) in statements(&outside) {
        let run = p.weir(&["sql", &statement]).fails_with(2);
        let keyword = statement.split(' ').next().unwrap();
        assert!(
            run.stderr
                .contains(&format!("query failed: {keyword} is not a query")),
            "{statement}:\n{}",
            run.stderr
        );
        assert!(run.stderr.contains("not a query"), "{}", run.stderr);
        assert!(
            run.stderr.contains("statements are not allowed"),
            "{}",
            run.stderr
        );
        if let Some(target) = target {
            assert!(!std::path::Path::new(&target).exists(), "{target} written");
        }
    }
    // A statement hidden behind EXPLAIN is refused too; EXPLAIN of a query is not.
    let copy = format!("EXPLAIN COPY (SELECT 1) TO '{}'", outside.path("e.csv"));
    let run = p.weir(&["sql", &copy]).fails_with(2);
    assert!(run.stderr.contains("only queries run"), "{}", run.stderr);
    p.weir(&["sql", "EXPLAIN SELECT a FROM s.a"]).ok();
    assert_eq!(p.query("SELECT a FROM s.a"), ["1"]);
}

/// A Table method's SQL is a query too: COPY through `t.sql` fails the task with the reason
/// at the call, and writes nothing.
#[test]
fn table_sql_in_a_task_function_cannot_copy() {
    let outside = Outside::new();
    let target = outside.path("from_rhai.csv");
    let p = Project::new();
    p.file(
        "pipeline.rhai",
        &format!(
            r#"let s = stage("s");
s.sql("a", "SELECT 1 AS a");
fn leak(t) {{
    t.sql("COPY (SELECT * FROM {{self}}) TO '{target}' STORED AS CSV")
}}
s.materialize("b", leak, [table("s.a")]);
"#
        ),
    );
    let run = p.run(&[]).fails_with(1);
    assert!(run.stderr.contains("COPY is not a query"), "{}", run.stderr);
    assert!(run.stderr.contains("pipeline.rhai:4:7"), "{}", run.stderr);
    assert!(!std::path::Path::new(&target).exists(), "{target} written");
}

/// A file outside the project cannot be read from SQL: weir registers no URL tables, so a
/// quoted path is not a table name in a task (exit 2), in `weir sql` (exit 2) and in a
/// Table method (the task fails).
#[test]
fn sql_cannot_read_files_outside_the_project() {
    let outside = Outside::new();
    let secret = outside.path("secret.csv");
    std::fs::write(&secret, "password\nhunter2\n").unwrap();
    let p = Project::new();
    p.file(
        "pipeline.rhai",
        &format!("let s = stage(\"s\");\ns.sql(\"a\", \"SELECT * FROM '{secret}'\");\n"),
    );
    let run = p.run(&[]).fails_with(2);
    assert!(run.stderr.contains("is not a table name"), "{}", run.stderr);
    assert!(!run.text().contains("hunter2"));

    p.file(
        "pipeline.rhai",
        "let s = stage(\"s\");\ns.sql(\"a\", \"SELECT 1 AS a\");\n",
    );
    p.run(&[]).ok();
    for query in [
        format!("SELECT * FROM '{secret}'"),
        format!("SELECT * FROM s.a, '{secret}'"),
    ] {
        let run = p.weir(&["sql", &query]).fails_with(2);
        assert!(run.stderr.contains("is not committed"), "{}", run.stderr);
        assert!(!run.text().contains("hunter2"));
    }

    p.file(
        "pipeline.rhai",
        &format!(
            r#"let s = stage("s");
s.sql("a", "SELECT 1 AS a");
fn peek(t) {{ t.sql("SELECT * FROM {{self}}, '{secret}'") }}
s.materialize("b", peek, [table("s.a")]);
"#
        ),
    );
    let run = p.run(&[]).fails_with(1);
    assert!(run.stderr.contains("not found"), "{}", run.stderr);
    assert!(!run.text().contains("hunter2"));
}

/// `sql_file` follows symbolic links to decide where a file is: a link to a file inside the
/// project runs, a link (or a linked folder) leading outside is refused with exit 2 at the call.
#[test]
fn sql_file_through_a_symlink_must_stay_inside_the_project() {
    let outside = Outside::new();
    std::fs::write(outside.path("q.sql"), "SELECT 42 AS answer").unwrap();
    let p = Project::new();
    p.file("sql/real.sql", "SELECT 7 AS n");
    std::os::unix::fs::symlink(p.path("sql/real.sql"), p.path("inside.sql")).unwrap();
    p.file(
        "pipeline.rhai",
        "let s = stage(\"s\");\ns.sql_file(\"a\", \"inside.sql\");\n",
    );
    p.run(&[]).ok();
    assert_eq!(p.query("SELECT n FROM s.a"), ["7"]);

    std::os::unix::fs::symlink(outside.path("q.sql"), p.path("leak.sql")).unwrap();
    std::os::unix::fs::symlink(outside.dir.path(), p.path("linked")).unwrap();
    for path in ["leak.sql", "linked/q.sql"] {
        p.file(
            "pipeline.rhai",
            &format!("let s = stage(\"s\");\ns.sql_file(\"a\", \"{path}\");\n"),
        );
        let run = p.run(&[]).fails_with(2);
        assert!(
            run.stderr.contains(&format!(
                "pipeline.rhai:2:3: `{path}` is outside the project"
            )),
            "{}",
            run.stderr
        );
        assert!(
            run.stderr.contains("through a symbolic link"),
            "{}",
            run.stderr
        );
        assert_eq!(p.query("SELECT n FROM s.a"), ["7"], "nothing new ran");
    }
}

/// `import` follows symbolic links the same way: a module linked from inside the project
/// loads, one linked from outside is refused with exit 2 at the import.
#[test]
fn import_through_a_symlink_must_stay_inside_the_project() {
    let outside = Outside::new();
    let module = "fn answer() { 42 }\n";
    std::fs::write(outside.path("helpers.rhai"), module).unwrap();
    let p = Project::new();
    p.file("lib/real.rhai", module);
    std::os::unix::fs::symlink(p.path("lib/real.rhai"), p.path("helpers.rhai")).unwrap();
    let script = "import \"helpers\" as h;\nlet s = stage(\"s\");\ns.sql(\"a\", `SELECT ${h::answer()} AS n`);\n";
    p.file("pipeline.rhai", script);
    p.run(&[]).ok();
    assert_eq!(p.query("SELECT n FROM s.a"), ["42"]);

    std::fs::remove_file(p.path("helpers.rhai")).unwrap();
    std::os::unix::fs::symlink(outside.path("helpers.rhai"), p.path("helpers.rhai")).unwrap();
    let run = p.run(&[]).fails_with(2);
    assert!(
        run.stderr
            .contains("pipeline.rhai:1:8: module `helpers` is outside the project"),
        "{}",
        run.stderr
    );
    assert!(
        run.stderr.contains("through a symbolic link"),
        "{}",
        run.stderr
    );
}
