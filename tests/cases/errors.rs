//! Bad scripts get a clear message with the script's line and exit code 2; bad data exit 1.

use crate::common::Project;

fn script(text: &str) -> Project {
    let p = Project::new();
    p.file("pipeline.rhai", text)
        .file("data/a.csv", "id,v\n1,x\n");
    p
}

/// A cycle is reported as its path of tasks, at the line declaring one of them.
#[test]
fn cycle_is_reported_with_its_path_and_line() {
    let p = script(
        "let s = stage(\"s\");\ns.sql(\"a\", \"SELECT * FROM s.c\");\ns.sql(\"b\", \"SELECT * FROM s.a\");\ns.sql(\"c\", \"SELECT * FROM s.b\");\n",
    );
    let run = p.run(&[]).fails_with(2);
    assert!(
        run.stderr.contains("cycle: s.a -> s.b -> s.c -> s.a")
            || run.stderr.contains("cycle: s.b -> s.c -> s.a -> s.b")
            || run.stderr.contains("cycle: s.c -> s.a -> s.b -> s.c"),
        "{}",
        run.stderr
    );
    assert!(
        run.stderr.contains("pipeline.rhai:2:")
            || run.stderr.contains("pipeline.rhai:3:")
            || run.stderr.contains("pipeline.rhai:4:"),
        "{}",
        run.stderr
    );
    assert!(
        !p.path(".weir").exists(),
        "nothing is written for an invalid flow"
    );
}

/// An unknown table names the reading task, where the SQL names it, and the closest existing name.
#[test]
fn unknown_table_suggests_the_closest_name() {
    let p = script(
        "let raw = stage(\"raw\");\nraw.load(\"orders\", \"data/a.csv\");\nlet prep = stage(\"prep\");\nprep.sql(\"x\", \"SELECT * FROM raw.order\");\n",
    );
    let run = p.run(&[]).fails_with(2);
    assert!(
        run.stderr
            .contains("pipeline.rhai:4:30: unknown table `raw.order` read by prep.x"),
        "{}",
        run.stderr
    );
    assert!(
        run.stderr.contains("did you mean `raw.orders`?"),
        "{}",
        run.stderr
    );
}

/// Several flow problems are reported together.
#[test]
fn several_problems_are_reported_at_once() {
    let p = script(
        "let s = stage(\"s\");\ns.sql(\"a\", \"SELECT * FROM s.nope\");\ns.sql(\"a\", \"SELECT 1\");\ns.sql(\"b\", \"SELEC 1\");\n",
    );
    let run = p.run(&[]).fails_with(2);
    for expected in [
        "unknown table `s.nope`",
        "`s.a` is declared twice",
        "SQL of s.b does not parse",
    ] {
        assert!(
            run.stderr.contains(expected),
            "missing `{expected}` in:\n{}",
            run.stderr
        );
    }
}

/// Syntax and runtime errors in the script point at file:line:column.
#[test]
fn script_errors_point_at_the_line() {
    let p = script("let s = stage(\"s\");\ns.sql(\"a\", \"SELECT 1\"\n");
    let run = p.run(&[]).fails_with(2);
    assert!(
        run.stderr.contains("syntax error at") && run.stderr.contains("pipeline.rhai:"),
        "{}",
        run.stderr
    );

    let p =
        script("let s = stage(\"s\");\n\ns.load(\"a\", \"data/a.csv\", #{ delimeter: \";\" });\n");
    let run = p.run(&[]).fails_with(2);
    assert!(
        run.stderr.contains("pipeline.rhai:3:3")
            && run.stderr.contains("unknown option `delimeter`"),
        "{}",
        run.stderr
    );

    let p = script("let s = stage(\"bad name\");\n");
    let run = p.run(&[]).fails_with(2);
    assert!(
        run.stderr
            .contains("stage name `bad name` must be an identifier"),
        "{}",
        run.stderr
    );
}

/// Load options that cannot apply are refused where they are written, before anything runs.
#[test]
fn load_options_are_checked_at_their_line() {
    let cases = [
        (
            "s.load(\"a\", \"data/a.csv\", #{ schema: #{ id: \"integer-ish\" } });",
            "`integer-ish` for column `id` is not an Arrow type",
        ),
        (
            "s.load(\"a\", \"data/a.parquet\", #{ delimiter: \";\" });",
            "apply to CSV files only",
        ),
        (
            "s.load(\"a\", \"data/a.txt\");",
            "cannot tell the format of `data/a.txt`",
        ),
        (
            "s.sql_file(\"a\", \"../secret.sql\");",
            "`../secret.sql` is outside the project",
        ),
        (
            "s.sql_file(\"a\", \"missing.sql\");",
            "cannot read SQL file",
        ),
    ];
    for (line, message) in cases {
        let p = script(&format!("let s = stage(\"s\");\n{line}\n"));
        let run = p.run(&[]).fails_with(2);
        assert!(
            run.stderr.contains("pipeline.rhai:2:") && run.stderr.contains(message),
            "{line}: {}",
            run.stderr
        );
        assert!(
            !p.path(".weir").exists(),
            "nothing is written for a bad script"
        );
    }
}

/// An error inside a task function fails that task (exit 1) with the function's line.
#[test]
fn task_function_errors_fail_the_task_with_the_line() {
    let p = script(
        "let s = stage(\"s\");\ns.load(\"a\", \"data/a.csv\");\nfn f(t) {\n    t.filter(\"nope > 1\")\n}\ns.materialize(\"b\", f, [\"s.a\"]);\nfn g(t) { 42 }\ns.materialize(\"c\", g, [\"s.a\"]);\n",
    );
    let run = p.run(&["--keep-going"]).fails_with(1);
    assert!(run.stdout.contains("pipeline.rhai:4:7"), "{}", run.text());
    assert!(run.stdout.contains("nope"), "{}", run.text());
    assert!(
        run.stdout
            .contains("must return a Table (or a map of Tables), not i64"),
        "{}",
        run.text()
    );
}

/// A missing input file stops the run before any task, labelled at its load, and `status`
/// says why the load is stale; a missing script is a usage error.
#[test]
fn missing_files_are_clear() {
    let p = script("let s = stage(\"s\");\ns.load(\"a\", \"data/missing.csv\");\n");
    let run = p.run(&[]).fails_with(2);
    assert!(
        run.stderr
            .contains("s.a loads `data/missing.csv`, and no file matches"),
        "{}",
        run.text()
    );
    assert!(!p.path(".weir/default/runs").exists(), "no run started");
    let status = p.weir(&["status", "pipeline.rhai"]).ok();
    assert!(
        status.stdout.contains("source missing: no file matches"),
        "{}",
        status.text()
    );
    let run = p.weir(&["run", "nope.rhai"]).fails_with(2);
    assert!(
        run.stderr.contains("cannot read script nope.rhai"),
        "{}",
        run.stderr
    );
    let run = p
        .weir(&["run", "pipeline.rhai", "--param", "oops"])
        .fails_with(2);
    assert!(
        run.stderr.contains("not of the form name=value"),
        "{}",
        run.stderr
    );
}

/// Imports stay inside the project.
#[test]
fn imports_cannot_leave_the_project() {
    let p = script("import \"../outside\" as o;\n");
    let run = p.run(&[]).fails_with(2);
    assert!(run.stderr.contains("outside the project"), "{}", run.stderr);
    let p = script("import \"lib/loaders\" as l;\nl::raw();\n");
    p.file(
        "lib/loaders.rhai",
        "fn raw() { let s = stage(\"raw\"); s.load(\"a\", \"data/a.csv\"); }\n",
    );
    p.run(&[]).ok();
    assert_eq!(p.query("SELECT v FROM raw.a"), ["x"]);
}

/// Parquet files of one glob must agree on columns and types: DataFusion would fill a column
/// some files lack with nulls, or fail without naming a file.
#[test]
fn parquet_globs_with_different_schemas_name_both_files() {
    let p = Project::new();
    p.file(
        "make.rhai",
        r#"
        let s = stage("s");
        s.sql("a", "SELECT * FROM (VALUES (1, 'x'), (2, 'y')) AS v(id, tag)");
        s.sql("renamed", "SELECT * FROM (VALUES (3, 'z')) AS v(id, label)");
        s.sql("retyped", "SELECT * FROM (VALUES ('4', 'w')) AS v(id, tag)");
    "#,
    );
    p.weir(&["run", "make.rhai", "--store", "made"]).ok();
    let manifest: serde_json::Value =
        serde_json::from_str(&p.read("made/default/manifests/s.json")).unwrap();
    let made = |table: &str, to: &str| {
        let file = manifest["tables"][table]["files"][0]
            .as_str()
            .unwrap()
            .to_string();
        std::fs::create_dir_all(p.path(to).parent().unwrap()).unwrap();
        std::fs::copy(p.path("made/default").join(file), p.path(to)).unwrap();
    };
    made("a", "data/same/1.parquet");
    made("a", "data/same/2.parquet");
    made("a", "data/renamed/1.parquet");
    made("renamed", "data/renamed/2.parquet");
    made("a", "data/retyped/1.parquet");
    made("retyped", "data/retyped/2.parquet");
    p.file(
        "pipeline.rhai",
        r#"
        let raw = stage("raw");
        raw.load("same", "data/same/*.parquet");
        raw.load("renamed", "data/renamed/*.parquet");
        raw.load("retyped", "data/retyped/*.parquet");
    "#,
    );
    let run = p.run(&["--keep-going"]).fails_with(1);
    let text = run.text();
    assert!(
        text.contains("data/renamed/1.parquet has column `tag`, data/renamed/2.parquet does not"),
        "{text}"
    );
    assert!(
        text.contains(
            "data/retyped/1.parquet has `id` as Int64, data/retyped/2.parquet has `id` as Utf8"
        ),
        "{text}"
    );
    assert!(text.contains("weir::task::schema_mismatch"), "{text}");
    assert_eq!(p.statuses()["raw.same"], "ran", "{text}");
}

/// weir is built for x86-64-v3 (`.cargo/config.toml`): on a CPU without AVX2 it says so and
/// how to build for any CPU, and exits 2, instead of dying of an illegal instruction. The binary runs under qemu emulating a 2008 CPU (Nehalem).
#[cfg(all(target_arch = "x86_64", target_feature = "avx2"))]
#[test]
fn a_cpu_without_avx2_is_told_how_to_build_for_it() {
    let out = std::process::Command::new("qemu-x86_64")
        .args(["-cpu", "Nehalem", env!("CARGO_BIN_EXE_weir"), "--version"])
        .output();
    match out {
        Ok(out) => {
            let stderr = String::from_utf8_lossy(&out.stderr);
            assert_eq!(out.status.code(), Some(2), "{stderr}");
            assert!(
                stderr.contains("built for x86-64-v3 CPUs")
                    && stderr.contains("RUSTFLAGS= cargo build --release"),
                "{stderr}"
            );
            assert!(out.stdout.is_empty(), "it did not go on to run");
        }
        Err(e) => assert!(
            std::env::var_os("CI").is_none(),
            "qemu-user is missing in CI (.ci/run installs it): {e}"
        ),
    }
}

/// A Parquet file of 0 bytes (a writer that died) is refused by name, alone or in a glob,
/// copied or kept in place; it is never loaded as an empty table or skipped.
#[test]
fn an_empty_parquet_file_is_refused_by_name() {
    let p = Project::new();
    crate::common::write_parquet(&p.path("data/a.parquet"), 5);
    p.file("data/b.parquet", "");
    for script in [
        "let s = stage(\"s\");\ns.load(\"t\", \"data/b.parquet\");\n",
        "let s = stage(\"s\");\ns.load(\"t\", \"data/*.parquet\");\n",
        "let s = stage(\"s\");\ns.load(\"t\", \"data/*.parquet\", #{ copy: false });\n",
    ] {
        p.file("pipeline.rhai", script);
        let run = p.run(&[]).fails_with(1);
        assert!(
            run.stdout.contains("data/b.parquet is empty (0 bytes)"),
            "{script}\n{}",
            run.text()
        );
    }
    assert!(p.manifest("s").is_none(), "nothing was committed");
}
