//! Cache keys: nothing changed runs nothing; a change re-runs exactly the task and its downstream.

use crate::common::{Project, set};

/// A second run with nothing changed runs no task, says so, and writes no table data.
#[test]
fn noop_run_runs_nothing_and_writes_no_files() {
    let p = Project::standard();
    p.run(&[]).ok();
    let files = p.data_files();
    let manifest = p.read(".weir/default/manifests/prep.json");
    let run = p.run(&[]).ok();
    assert!(
        run.stdout.contains("6 tasks: 0 ran, 6 cached"),
        "{}",
        run.text()
    );
    assert!(
        run.stdout
            .contains("stages: raw unchanged, prep unchanged, marts unchanged"),
        "{}",
        run.text()
    );
    assert_eq!(p.data_files(), files);
    assert_eq!(
        p.read(".weir/default/manifests/prep.json"),
        manifest,
        "an unchanged stage is not rewritten"
    );
}

/// Changing one SQL task re-runs it and its downstream only; layout and comments do not count.
#[test]
fn one_sql_change_reruns_it_and_its_downstream_only() {
    let p = Project::standard();
    p.run(&[]).ok();
    p.edit(
        "pipeline.rhai",
        "WHERE o.amount > 0`",
        "WHERE o.amount > 50`",
    );
    p.run(&[]).ok();
    assert_eq!(
        p.ran(),
        set(&["prep.orders_clean", "marts.by_segment", "marts.big_orders"])
    );
    assert_eq!(p.query("SELECT count(*) FROM prep.orders_clean"), ["4"]);

    p.edit(
        "pipeline.rhai",
        "SELECT count(*) AS n FROM raw.customers",
        "select   count(*) as n -- comment\n   from raw.customers",
    );
    p.run(&[]).ok();
    assert!(
        p.ran().is_empty(),
        "whitespace, case of keywords and comments are not changes: {:?}",
        p.ran()
    );
}

/// Touching a loaded file re-runs its load and what depends on it.
#[test]
fn external_file_change_reruns_its_load_and_dependents() {
    let p = Project::standard();
    p.run(&[]).ok();
    p.file(
        "data/customers.csv",
        "customer_id,segment\n1,enterprise\n2,enterprise\n3,smb\n",
    );
    p.run(&[]).ok();
    assert_eq!(
        p.ran(),
        set(&[
            "raw.customers",
            "prep.orders_clean",
            "prep.customer_count",
            "marts.by_segment",
            "marts.big_orders"
        ])
    );
    assert_eq!(
        p.query("SELECT segment, orders FROM marts.by_segment"),
        ["enterprise,4", "smb,1"]
    );
    let status = p.weir(&["status", "pipeline.rhai"]).ok();
    assert!(
        status.stdout.lines().all(|l| l.contains("fresh")),
        "{}",
        status.stdout
    );
}

/// Editing a helper function re-runs the Rhai tasks that call it, transitively, and no others.
#[test]
fn rhai_helper_change_reruns_its_callers() {
    let p = Project::standard();
    p.run(&[]).ok();
    p.edit(
        "pipeline.rhai",
        "\"count(*) AS orders\"",
        "\"count(*) AS orders\", \"max(amount) AS biggest\"",
    );
    p.run(&[]).ok();
    assert_eq!(p.ran(), set(&["marts.by_segment"]));
    assert_eq!(
        p.query("SELECT biggest FROM marts.by_segment ORDER BY segment"),
        ["120", "410"]
    );
    p.edit(
        "pipeline.rhai",
        "fn totals(t) {",
        "// totals per segment\nfn totals(t) {  ",
    );
    p.run(&[]).ok();
    assert!(
        p.ran().is_empty(),
        "a comment is not a change: {:?}",
        p.ran()
    );
}

/// Going back to earlier code revives the earlier build without running anything.
#[test]
fn reverting_code_revives_the_earlier_build() {
    let p = Project::standard();
    p.run(&[]).ok();
    p.edit("pipeline.rhai", "amount >= 100", "amount >= 400");
    p.run(&[]).ok();
    assert_eq!(p.query("SELECT count(*) FROM marts.big_orders"), ["1"]);
    p.edit("pipeline.rhai", "amount >= 400", "amount >= 100");
    p.run(&[]).ok();
    assert!(p.ran().is_empty(), "{:?}", p.ran());
    assert_eq!(p.query("SELECT count(*) FROM marts.big_orders"), ["2"]);
}

/// `--force` rebuilds everything; `status` names why each task is stale.
#[test]
fn force_rebuilds_and_status_explains() {
    let p = Project::standard();
    let before = p.weir(&["status", "pipeline.rhai"]).ok();
    assert!(
        before.stdout.lines().all(|l| l.contains("never built")),
        "{}",
        before.stdout
    );
    p.run(&[]).ok();
    p.run(&["--force"]).ok();
    assert_eq!(p.ran().len(), 6);

    p.edit("pipeline.rhai", "amount >= 100", "amount >= 101");
    p.file(
        "data/orders.csv",
        &format!("{}7,1,5\n", crate::common::ORDERS),
    );
    let status = p.weir(&["status", "pipeline.rhai"]).ok();
    let line = |t: &str| {
        status
            .stdout
            .lines()
            .find(|l| l.starts_with(t))
            .unwrap_or_default()
            .to_string()
    };
    assert!(
        line("raw.orders").contains("stale  (external file changed)"),
        "{}",
        status.stdout
    );
    assert!(line("raw.customers").contains("fresh"), "{}", status.stdout);
    assert!(
        line("prep.orders_clean").contains("stale  (input raw.orders changed)"),
        "{}",
        status.stdout
    );
    assert!(
        line("marts.big_orders").contains("code changed, input prep.orders_clean changed"),
        "{}",
        status.stdout
    );
}

/// SQL kept in its own file is that task's code: editing the file re-runs the task and its
/// downstream, and nothing else.
#[test]
fn sql_file_edit_reruns_its_task() {
    let p = Project::new();
    p.file("data/a.csv", "id,v\n1,x\n2,y\n3,z\n")
        .file("queries/big.sql", "SELECT * FROM raw.a WHERE id > 1\n")
        .file(
            "pipeline.rhai",
            r#"let raw = stage("raw");
raw.load("a", "data/a.csv");
let prep = stage("prep");
prep.sql_file("big", "queries/big.sql");
prep.sql("n", "SELECT count(*) AS n FROM prep.big");
prep.sql("other", "SELECT id FROM raw.a");
"#,
        );
    p.run(&[]).ok();
    assert_eq!(p.query("SELECT n FROM prep.n"), ["2"]);

    p.file("queries/big.sql", "SELECT * FROM raw.a WHERE id > 2\n");
    p.run(&[]).ok();
    assert_eq!(p.ran(), set(&["prep.big", "prep.n"]));
    assert_eq!(p.query("SELECT n FROM prep.n"), ["1"]);
}

/// A task calling an impure function (now(), random(), Rhai's timestamp()) re-runs every time,
/// with its readers, and says why; a `cache` option, or ignore-fresh-input, makes it keep.
#[test]
fn volatile_tasks_rerun_every_time_unless_told_when() {
    let p = Project::new();
    p.file(
        "pipeline.rhai",
        r#"
        let s = stage("s");
        s.sql("stamp", "SELECT now() AS at, 1 AS x");
        s.sql("reads_stamp", "SELECT x FROM s.stamp");
        s.sql("pure", "SELECT 2 AS y");
        s.sql("dated", "SELECT current_date AS d", #{ cache: || "2026-11-24" });
        fn pick(t) { t.filter("random() < 2.0") }
        s.materialize("sampled", pick, [table("s.pure")]);
        fn clock(t) { let started = timestamp(); t }
        s.materialize("clocked", clock, [table("s.pure")]);
    "#,
    );
    p.run(&[]).ok();
    p.run(&[]).ok();
    assert_eq!(
        p.ran(),
        set(&["s.stamp", "s.reads_stamp", "s.sampled", "s.clocked"]),
        "impure tasks and their readers re-run; pure ones and those with a cache option do not"
    );
    let status = p.weir(&["status"]).ok();
    for (task, call) in [
        ("s.stamp", "now()"),
        ("s.sampled", "random()"),
        ("s.clocked", "timestamp()"),
    ] {
        let line = status
            .stdout
            .lines()
            .find(|l| l.starts_with(task))
            .unwrap_or_default();
        assert!(
            line.contains(&format!("volatile: calls {call}")),
            "{task}: {}",
            status.stdout
        );
    }
    let why = p.weir(&["why", "s.stamp"]).ok();
    assert!(why.stdout.contains("* volatile"), "{}", why.stdout);
    // Never fresh, so not counted by --exit-code, which would otherwise fail forever.
    let check = p.weir(&["status", "--exit-code"]).ok();
    assert!(
        check.stdout.contains("s.reads_stamp") && check.stdout.contains("reads volatile s.stamp"),
        "{}",
        check.stdout
    );
    p.edit("pipeline.rhai", "SELECT 2 AS y", "SELECT 3 AS y");
    p.weir(&["status", "--exit-code"]).fails_with(1);
    p.run(&[]).ok();

    p.run(&["--cache-mode", "ignore-fresh-input"]).ok();
    assert!(
        p.ran().is_empty(),
        "the committed builds stand: {:?}",
        p.ran()
    );
}

/// The keys of fixed tasks are pinned: SQL normalization, option encoding and hashing never
/// change by accident (a compiler or crate upgrade would otherwise rebuild every user's store);
/// a deliberate change bumps the key format and these values together.
#[test]
fn keys_of_fixed_tasks_are_pinned() {
    let p = Project::new();
    p.file(
        "pipeline.rhai",
        "let s = stage(\"s\");\ns.sql(\"one\", \"SELECT 1 AS x\");\n\
         s.sql(\"two\", `select x + 1 AS y\n  FROM s.one -- a comment`, #{ version: \"3\" });\n",
    );
    let status = p.weir(&["status", "-v"]).ok().stdout;
    let keys: Vec<&str> = status
        .lines()
        .filter_map(|l| l.trim().strip_prefix("key "))
        .collect();
    assert_eq!(
        keys,
        [
            "4b0f67a396ea6f49ee2aa63a7978c6b7",
            "7f5463502f18b1e2da8663d31df59129"
        ],
        "{status}"
    );
    // Whitespace and comments are not code.
    p.file(
        "pipeline.rhai",
        "let s = stage(\"s\");\ns.sql(\"one\", \"select   1 as x -- same\");\n\
         s.sql(\"two\", `SELECT x + 1 AS y FROM s.one`, #{ version: \"3\" });\n",
    );
    let again = p.weir(&["status", "-v"]).ok().stdout;
    assert!(
        again.contains("key 4b0f67a396ea6f49ee2aa63a7978c6b7"),
        "{again}"
    );
    assert!(
        again.contains("key 7f5463502f18b1e2da8663d31df59129"),
        "{again}"
    );
}

/// Early cutoff at the source: a file touched, or rewritten with the same bytes, is read once,
/// found unchanged and re-runs nothing; a change of content at the same size re-runs its load
/// and what reads it.
#[test]
fn touched_sources_that_did_not_change_rerun_nothing() {
    let p = Project::standard();
    p.run(&[]).ok();
    let later = std::time::SystemTime::now() + std::time::Duration::from_secs(120);
    for file in ["data/orders.csv", "data/customers.csv"] {
        std::fs::File::options()
            .write(true)
            .open(p.path(file))
            .and_then(|f| f.set_modified(later))
            .expect("touch");
    }
    p.run(&[]).ok();
    assert!(p.ran().is_empty(), "touched, unchanged: {:?}", p.ran());
    let customers = p.read("data/customers.csv");
    p.file("data/customers.csv", &customers);
    p.run(&[]).ok();
    assert!(p.ran().is_empty(), "rewritten, unchanged: {:?}", p.ran());
    assert!(p.instance_dir().join("source_hashes.json").exists());

    let orders = p.read("data/orders.csv");
    let same_size = orders.replacen(",120\n", ",121\n", 1);
    assert_ne!(orders, same_size, "the fixture has the value changed here");
    p.file("data/orders.csv", &same_size);
    p.run(&[]).ok();
    assert!(p.ran().contains("raw.orders"), "{:?}", p.ran());
    assert!(!p.ran().contains("raw.customers"), "{:?}", p.ran());
}

/// Early cutoff downstream: a task rebuilt with the same rows ("rebuilt, unchanged") lets what
/// reads it keep its build; their new keys are built (a no-op run after runs nothing) and
/// stand alone (`cache gc` keeps them readable). A change of rows re-runs what reads it.
#[test]
fn a_rebuild_with_the_same_rows_reruns_nothing_downstream() {
    let p = Project::standard();
    p.run(&[]).ok();
    p.edit(
        "pipeline.rhai",
        "WHERE o.amount > 0`",
        "WHERE o.amount > 0 AND 1 = 1`",
    );
    let run = p.run(&[]).ok();
    assert_eq!(p.ran(), set(&["prep.orders_clean"]));
    assert!(run.stdout.contains("rebuilt, unchanged"), "{}", run.text());
    assert!(
        run.stdout.contains("inputs rebuilt unchanged"),
        "{}",
        run.text()
    );
    // The live lines say so too: the kept task is cached, never started.
    assert!(
        run.stderr
            .contains("cached  marts.by_segment  (inputs rebuilt unchanged)")
            && !run.stderr.contains("start   marts.by_segment"),
        "{}",
        run.text()
    );
    p.run(&[]).ok();
    assert!(p.ran().is_empty(), "{:?}", p.ran());
    p.weir(&["cache", "gc", "--keep-runs", "0"]).ok();
    assert_eq!(
        p.query("SELECT segment, total FROM marts.by_segment ORDER BY segment"),
        ["enterprise,200", "smb,544"]
    );
    assert_eq!(p.weir(&["status", "--exit-code"]).code, 0);

    p.edit("pipeline.rhai", "AND 1 = 1", "AND o.amount < 400");
    p.run(&[]).ok();
    assert_eq!(
        p.ran(),
        set(&["prep.orders_clean", "marts.by_segment", "marts.big_orders"])
    );
}
