//! What a new user runs into first: names with capitals, two flows in one folder, status as a
//! completion check, the script argument of `show` and `sql`, empty results, and errors that
//! quote what was typed.

use crate::common::{Project, set};

/// Names keep their case and SQL finds them whether or not it quotes them; `show`, `sql`,
/// `why`, `--select` and `clear` take any spelling of the case; two names that differ only in
/// case are refused where the second is declared.
#[test]
fn names_with_capitals_work_everywhere() {
    let p = Project::new();
    p.file(
        "pipeline.rhai",
        r#"
let s1 = stage("stage_1");
s1.sql("dfA", `SELECT 1 AS x`);
let raw = stage("Raw");
raw.sql("Orders", `SELECT 2 AS x`);
let s2 = stage("s2");
s2.sql("b", `SELECT x FROM stage_1.dfA UNION ALL SELECT x FROM Raw.Orders UNION ALL SELECT x FROM stage_1."dfA"`);
s2.materialize("c", |t| t.select(["x"]), [table("stage_1.dfa")]);
"#,
    );
    p.run(&[]).ok();
    assert_eq!(p.query("SELECT sum(x) FROM s2.b"), ["4"]);
    assert_eq!(p.query("SELECT x FROM stage_1.DFA"), ["1"]);
    assert_eq!(p.query("SELECT x FROM raw.orders"), ["2"]);
    let show = p.weir(&["show", "stage_1.dfa", "-f", "csv"]).ok();
    assert_eq!(show.stdout, "x\n1\n");
    assert!(
        p.path(".weir/default/tables/stage_1/dfA").is_dir(),
        "the folder keeps the case"
    );
    p.weir(&["why", "Raw.orders"]).ok();
    p.weir(&["clear", "stage_1.DFA,raw.orders"]).ok();
    p.run(&["--select", "raw.ORDERS", "--select", "STAGE_1.dfa"])
        .ok();
    assert_eq!(p.ran(), set(&["Raw.Orders", "stage_1.dfA"]));

    p.file(
        "pipeline.rhai",
        "stage(\"s\").sql(\"dfA\", `SELECT 1 AS x`);\nstage(\"s\").sql(\"dfa\", `SELECT 2 AS x`);\n",
    );
    let twice = p.run(&[]).fails_with(2);
    assert!(
        twice.stderr.contains("`s.dfa` is declared twice"),
        "{}",
        twice.stderr
    );
}

/// Two scripts in one folder share the store but never drop each other's tables; a script
/// that declares a table another committed is refused, unless told to adopt it.
#[test]
fn two_flows_in_one_folder_keep_their_tables() {
    let p = Project::new();
    p.file(
        "x1.rhai",
        "let raw = stage(\"raw\");\nraw.sql(\"a\", `SELECT 1 AS x`);\n",
    )
    .file(
        "x2.rhai",
        "let raw = stage(\"raw\");\nraw.sql(\"b\", `SELECT 2 AS x`);\n",
    )
    .file(
        "x3.rhai",
        "let raw = stage(\"raw\");\nraw.sql(\"a\", `SELECT 3 AS x`);\n",
    );
    p.weir(&["run", "x1.rhai"]).ok();
    p.weir(&["run", "x2.rhai"]).ok();
    let both = p
        .weir(&[
            "sql",
            "SELECT x FROM raw.a UNION ALL SELECT x FROM raw.b ORDER BY x",
            "x1.rhai",
            "-f",
            "csv",
        ])
        .ok();
    assert_eq!(both.stdout, "x\n1\n2\n");
    p.weir(&["run", "x1.rhai"]).ok();
    assert_eq!(
        p.query("SELECT x FROM raw.b"),
        ["2"],
        "x1's run kept x2's table"
    );

    let taken = p.weir(&["run", "x3.rhai"]).fails_with(2);
    assert!(
        taken
            .stderr
            .contains("table `raw.a` was committed by flow `x1`"),
        "{}",
        taken.stderr
    );
    p.weir(&["run", "x3.rhai", "--adopt"]).ok();
    assert_eq!(p.query("SELECT x FROM raw.a"), ["3"]);
}

/// `status` ends with counts; `--exit-code` makes it a completion check (1 when a selected
/// task is not fresh), and `--select` narrows it.
#[test]
fn status_is_a_completion_check() {
    let p = Project::standard();
    let before = p.weir(&["status", "--exit-code"]).fails_with(1);
    assert!(
        before.stdout.contains("6 tasks: 6 never built"),
        "{}",
        before.stdout
    );
    p.run(&[]).ok();
    let after = p.weir(&["status", "--exit-code"]).ok();
    assert!(
        after.stdout.ends_with("6 tasks: 6 fresh\n"),
        "{}",
        after.stdout
    );
    p.edit("pipeline.rhai", "WHERE o.amount > 0", "WHERE o.amount > 1");
    p.weir(&["status", "--exit-code"]).fails_with(1);
    let one = p
        .weir(&["status", "--exit-code", "--select", "prep.customer_count"])
        .ok();
    assert!(one.stdout.contains("1 task: 1 fresh"), "{}", one.stdout);
}

/// `show` and `sql` take the script like the other commands; an empty result still shows its
/// columns (text, CSV) or is `[]` (JSON).
#[test]
fn show_and_sql_take_the_script_and_print_empty_results() {
    let p = Project::standard();
    std::fs::create_dir_all(p.path("shop")).unwrap();
    std::fs::rename(p.path("pipeline.rhai"), p.path("shop/pipeline.rhai")).unwrap();
    std::fs::rename(p.path("data"), p.path("shop/data")).unwrap();
    p.weir(&["run", "shop/pipeline.rhai"]).ok();
    let show = p
        .weir(&[
            "show",
            "marts.big_orders",
            "shop/pipeline.rhai",
            "-f",
            "csv",
        ])
        .ok();
    assert!(
        show.stdout
            .starts_with("order_id,customer_id,amount,segment\n"),
        "{}",
        show.stdout
    );
    let empty = "SELECT * FROM marts.big_orders WHERE amount < 0";
    let table = p.weir(&["sql", empty, "shop/pipeline.rhai"]).ok();
    assert!(
        table
            .stdout
            .contains("| order_id | customer_id | amount | segment |"),
        "{}",
        table.stdout
    );
    let csv = p
        .weir(&["sql", empty, "shop/pipeline.rhai", "-f", "csv"])
        .ok();
    assert_eq!(csv.stdout, "order_id,customer_id,amount,segment\n");
    let json = p
        .weir(&["sql", empty, "shop/pipeline.rhai", "-f", "json"])
        .ok();
    assert_eq!(json.stdout, "[]\n");
    let nowhere = p.weir(&["show", "marts.big_orders"]).fails_with(2);
    assert!(
        nowhere.stderr.contains("nothing is committed in")
            && nowhere.stderr.contains("(instance `default`)"),
        "{}",
        nowhere.stderr
    );
}

/// A name that matches no task is quoted as typed, not as a `--select` the user never wrote.
#[test]
fn errors_quote_what_was_typed() {
    let p = Project::standard();
    p.run(&[]).ok();
    let clear = p.weir(&["clear", "raw.nope", "--downstream"]).fails_with(2);
    assert!(
        clear.stderr.contains("no task matches `raw.nope`"),
        "{}",
        clear.stderr
    );
    assert!(!clear.stderr.contains("--select"), "{}", clear.stderr);
}

/// `graph -o flow.svg` writes SVG (the format comes from the file's extension), and a format
/// that contradicts the extension is refused.
#[test]
fn graph_takes_its_format_from_the_file_name() {
    let p = Project::standard();
    p.weir(&["graph", "pipeline.rhai", "-o", "flow.svg"]).ok();
    assert!(
        p.read("flow.svg").starts_with("<svg"),
        "{}",
        p.read("flow.svg")
    );
    p.weir(&["graph", "pipeline.rhai", "-o", "flow.dot"]).ok();
    assert!(
        p.read("flow.dot").starts_with("digraph"),
        "{}",
        p.read("flow.dot")
    );
    let clash = p
        .weir(&["graph", "pipeline.rhai", "-f", "mermaid", "-o", "x.svg"])
        .fails_with(2);
    assert!(clash.stderr.contains("does not match"), "{}", clash.text());
    assert!(!p.path("x.svg").exists());
}

/// A project moved to another folder (store and all) finds its loads built: a local file is
/// fingerprinted by its content and its path in the project, not where the project is.
#[test]
fn a_moved_project_reruns_nothing() {
    let p = Project::standard();
    p.run(&[]).ok();
    let moved = tempfile::tempdir().unwrap();
    let to = moved.path().join("elsewhere");
    std::fs::rename(p.dir.path(), &to).unwrap();
    let out = std::process::Command::new(crate::common::weir_bin())
        .args(["run", "pipeline.rhai"])
        .current_dir(&to)
        .env("NO_COLOR", "1")
        .env_remove("WEIR_STORE")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains(" 0 ran, 6 cached"), "{stdout}");
    // Put it back for the TempDir to remove.
    std::fs::rename(&to, p.dir.path()).unwrap();
}

/// Counts read as English: one row, one task.
#[test]
fn counts_of_one_are_singular() {
    let p = Project::new();
    p.file(
        "pipeline.rhai",
        "let s = stage(\"s\");\ns.sql(\"one\", \"SELECT 1 AS x\");\n",
    );
    let run = p.run(&[]).ok();
    assert!(run.stdout.contains("1 task: 1 ran"), "{}", run.text());
    assert!(
        run.stderr.contains("done    s.one  1 row  "),
        "{}",
        run.text()
    );
    assert!(
        !run.text().contains("1 rows") && !run.text().contains("(s)"),
        "{}",
        run.text()
    );
    let status = p.weir(&["status", "pipeline.rhai"]).ok();
    assert!(
        status.stdout.contains("1 task: 1 fresh"),
        "{}",
        status.text()
    );
}

/// A file path written as a table in SQL is named as written, with what to do instead.
#[test]
fn a_path_in_sql_is_not_a_table_name() {
    let p = Project::new();
    p.file(
        "pipeline.rhai",
        "let s = stage(\"s\");\ns.sql(\"x\", `SELECT * FROM '/etc/hostname'`);\n",
    );
    let run = p.run(&[]).fails_with(2);
    assert!(
        run.stderr.contains("`/etc/hostname` is not a table name")
            && !run.stderr.contains("s./etc"),
        "{}",
        run.text()
    );
}
