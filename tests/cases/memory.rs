//! Data larger than the memory limit: sorts, aggregates and joins spill to disk and give the
//! same results; a task that cannot fit fails by name without sinking the run; spill files
//! are gone when the run ends.

use crate::common::Project;

/// Enough rows that a sort, an aggregate and a (sort-merge) join each outgrow 64 MiB.
const PIPELINE: &str = r#"
let s = stage("s");
s.sql("nums", `SELECT value AS id, (value * 7919) % 1000003 AS k FROM generate_series(1, 1500000)`);
s.sql("sorted", `SELECT id, k FROM s.nums ORDER BY k DESC, id`);
s.sql("agg", `SELECT k, count(*) AS n, sum(id) AS total FROM s.nums GROUP BY k`);
s.sql("joined", `SELECT a.id, b.k FROM s.nums a JOIN s.sorted b ON a.id = b.id`);
s.sql("check", `SELECT (SELECT sum(id) FROM s.sorted) AS a, (SELECT sum(total) FROM s.agg) AS b,
                       (SELECT sum(k) FROM s.joined) AS c, (SELECT count(*) FROM s.joined) AS d`);
"#;

/// Run the pipeline into store `unlimited`, then into store `limited` under `limit`; both
/// succeed. The limited run is returned.
fn unlimited_then_limited(p: &Project, limit: &str) -> crate::common::Run {
    p.weir(&["run", "pipeline.rhai", "--store", "unlimited"])
        .ok();
    let args = [
        "run",
        "pipeline.rhai",
        "--store",
        "limited",
        "--memory-limit",
        limit,
    ];
    p.weir(&args).ok()
}

/// `weir log last` of the run on `store`.
fn last_log(p: &Project, store: &str) -> String {
    let args = ["log", "last", "pipeline.rhai", "--store", store];
    p.weir(&args).ok().stdout
}

/// The line of `task` in a run log.
fn log_line<'a>(log: &'a str, task: &str) -> &'a str {
    log.lines()
        .find(|l| l.trim_start().starts_with(task))
        .unwrap_or_else(|| panic!("{task} in:\n{log}"))
}

/// `s.check` of the run on `store`, as CSV.
fn check_table(p: &Project, store: &str) -> String {
    let args = [
        "sql",
        "SELECT * FROM s.check",
        "--store",
        store,
        "-f",
        "csv",
    ];
    p.weir(&args).ok().stdout
}

/// Under `--memory-limit 64MiB` the sort, the aggregate and the join spill (the run log says
/// how much, per task) and every table equals the one built without a limit; the spill
/// folder is empty afterwards.
#[test]
fn sorts_aggregates_and_joins_spill_under_a_limit_with_equal_results() {
    let p = Project::new();
    p.file("pipeline.rhai", PIPELINE)
        .file("weir.toml", "[engine]\nspill_dir = \"spill\"\n");
    std::fs::create_dir_all(p.path("spill")).unwrap();
    let limited = unlimited_then_limited(&p, "64MiB");
    let log = last_log(&p, "limited");
    for task in ["s.sorted", "s.agg", "s.joined"] {
        assert!(
            log_line(&log, task).contains("spilled"),
            "{task} did not spill:\n{log}\n{}",
            limited.text()
        );
    }
    let check = |store: &str| check_table(&p, store);
    assert_eq!(check("limited"), check("unlimited"));
    assert!(
        check("limited").contains("1125000750000"),
        "{}",
        check("limited")
    );
    let left: Vec<_> = std::fs::read_dir(p.path("spill")).unwrap().collect();
    assert!(left.is_empty(), "spill files left behind: {left:?}");
}

/// Under a limit joins are planned to spill (sort-merge), except those whose smaller side is
/// known to be small: a large table joined to a small dimension is a hash join building on
/// the dimension, so the large side is neither sorted nor spilled, and the results are equal.
#[test]
fn a_join_to_a_small_table_under_a_limit_does_not_sort_the_large_side() {
    let p = Project::new();
    p.file(
        "pipeline.rhai",
        r#"
let s = stage("s");
s.sql("facts", `SELECT value AS id, value % 1000 AS k FROM generate_series(1, 1500000)`);
s.sql("dim", `SELECT value AS k, concat('label-', CAST(value AS VARCHAR)) AS label FROM generate_series(0, 999)`);
s.sql("enriched", `SELECT f.id, d.label FROM s.facts f JOIN s.dim d ON f.k = d.k`);
s.sql("big", `SELECT a.id, b.k FROM s.facts a JOIN s.facts b ON a.id = b.id`);
s.sql("check", `SELECT (SELECT count(*) FROM s.enriched) AS n, (SELECT max(label) FROM s.enriched) AS m,
                       (SELECT sum(k) FROM s.big) AS b`);
"#,
    );
    unlimited_then_limited(&p, "48MiB");
    let log = last_log(&p, "limited");
    assert!(!log_line(&log, "s.enriched").contains("spilled"), "{log}");
    assert!(
        log_line(&log, "s.big").contains("spilled"),
        "two large sides still spill:\n{log}"
    );
    let check = |store: &str| check_table(&p, store);
    assert_eq!(check("limited"), check("unlimited"));
    assert!(
        check("limited").contains("1500000,label-999"),
        "{}",
        check("limited")
    );
}

/// A join whose build side does not fit the pool fails as a hash join (which cannot spill in
/// DataFusion 55), then runs again alone with less memory (sort-merge joins, which spill) and
/// completes with the same rows; the run says so, and the task's log records why.
#[test]
fn a_task_that_runs_out_of_memory_runs_again_with_less_and_completes() {
    let p = Project::new();
    p.file(
        "pipeline.rhai",
        r#"
let s = stage("s");
s.sql("facts", `SELECT value AS id, value % 1000 AS k FROM generate_series(1, 1500000)`);
s.sql("big", `SELECT a.id, b.k FROM s.facts a JOIN s.facts b ON a.id = b.id`);
s.sql("check", `SELECT count(*) AS n, sum(k) AS total FROM s.big`);
"#,
    );
    let run = unlimited_then_limited(&p, "32MiB");
    assert!(
        run.text()
            .contains("start   s.big (again, alone, with less memory)"),
        "{}",
        run.text()
    );
    let log = last_log(&p, "limited");
    assert!(log_line(&log, "s.big").contains("spilled"), "{log}");
    let check = |store: &str| check_table(&p, store);
    assert_eq!(check("limited"), check("unlimited"));
    assert!(
        check("limited").contains("1500000,749250000"),
        "{}",
        check("limited")
    );
}

/// 200,000 rows of 2.5 MB stored, and two tasks over them that each hold a join's eight-fold
/// fan-out in `array_agg` state, which cannot spill: under 40 MiB each fits alone, two at once
/// do not (without admission, measured: one run in six failed, three ran a task again).
const TWO_JOINS: &str = r#"
let s = stage("s");
s.sql("facts", `SELECT value AS id, value / 8 AS k, concat('name-', CAST(value AS VARCHAR)) AS name FROM generate_series(1, 200000)`);
let t = stage("t");
t.sql("a", `SELECT x.id % 10 AS g, cardinality(array_agg(y.name)) AS n FROM s.facts x JOIN s.facts y ON x.k = y.k GROUP BY g`);
t.sql("b", `SELECT x.id % 10 AS g, cardinality(array_agg(y.name || 'b')) AS n FROM s.facts x JOIN s.facts y ON x.k = y.k GROUP BY g`);
"#;

/// Two tasks whose estimated needs (by the stored bytes they read) do not fit the pool
/// together run one after the other, though `--jobs 2` would let them run at once: both
/// complete on their first attempt, with the rows of an unlimited run.
#[test]
fn two_tasks_that_fit_only_alone_run_one_after_the_other() {
    let p = Project::new();
    p.file("pipeline.rhai", TWO_JOINS);
    p.weir(&["run", "pipeline.rhai", "--store", "unlimited"])
        .ok();
    let args = [
        "run",
        "pipeline.rhai",
        "--store",
        "limited",
        "--memory-limit",
        "40MiB",
        "-j",
        "2",
    ];
    let run = p.weir(&args).ok();
    let text = run.text();
    assert!(!text.contains("again"), "{text}");
    let at = |line: &str| {
        text.find(line)
            .unwrap_or_else(|| panic!("{line} in:\n{text}"))
    };
    let (a, b) = (at("start   t.a"), at("start   t.b"));
    let (first, second) = if a < b { ("t.a", b) } else { ("t.b", a) };
    assert!(
        at(&format!("done    {first}")) < second,
        "they ran at once:\n{text}"
    );
    let query = "SELECT (SELECT sum(n) FROM t.a) AS a, (SELECT sum(n) FROM t.b) AS b";
    let sums = |store: &str| {
        p.weir(&["sql", query, "--store", store, "-f", "csv"])
            .ok()
            .stdout
    };
    assert_eq!(sums("limited"), sums("unlimited"));
    assert!(
        sums("limited").contains("1599986,1599986"),
        "{}",
        sums("limited")
    );
}

/// A sort of 800,000 joined rows under 24 MiB: once it has spilled all it holds, the pool lets
/// it take what the other spilling operators leave free for its next batch, where their equal
/// shares alone were smaller than a batch, and the strings it buffers are counted as what they
/// use, not as the join's buffers they point into (before, three runs in four failed and ran
/// again alone). Three runs from nothing all complete, spilling, on their first attempt.
#[test]
fn a_sort_under_a_tight_limit_completes_by_spilling() {
    let p = Project::new();
    p.file(
        "pipeline.rhai",
        r#"
let s = stage("s");
s.sql("facts", `SELECT value AS id, value / 4 AS k, concat('name-', CAST(value AS VARCHAR)) AS name FROM generate_series(1, 200000)`);
s.sql("sorted", `SELECT x.id, y.name FROM s.facts x JOIN s.facts y ON x.k = y.k ORDER BY y.name DESC, x.id`);
"#,
    );
    for store in ["one", "two", "three"] {
        let args = [
            "run",
            "pipeline.rhai",
            "--store",
            store,
            "--memory-limit",
            "24MiB",
        ];
        let run = p.weir(&args).ok();
        assert!(!run.text().contains("again"), "{}", run.text());
        let log = last_log(&p, store);
        assert!(log_line(&log, "s.sorted").contains("spilled"), "{log}");
    }
    let query = "SELECT count(*) AS n, max(name) AS top FROM s.sorted";
    let check = p
        .weir(&["sql", query, "--store", "two", "-f", "csv"])
        .ok()
        .stdout;
    assert_eq!(check, "n,top\n799994,name-99999\n");
}

/// A task whose operator must hold more than the limit (array_agg keeps every value) fails
/// with a diagnostic naming the task, the limit and the operator, and suggesting a limit;
/// the other stage commits, and nothing is left in the spill folder.
#[test]
fn a_task_that_cannot_fit_fails_by_name_and_the_rest_commits() {
    let p = Project::new();
    p.file(
        "pipeline.rhai",
        r#"
let small = stage("small");
small.sql("one", `SELECT 1 AS x`);
let big = stage("big");
big.sql("all", `SELECT array_agg(concat('value-', CAST(value AS VARCHAR))) AS everything FROM generate_series(1, 2000000)`);
"#,
    )
    .file("weir.toml", "[engine]\nmemory_limit = \"16MiB\"\nspill_dir = \"spill\"\n");
    std::fs::create_dir_all(p.path("spill")).unwrap();
    let run = p.run(&["--keep-going"]).fails_with(1);
    let text = run.text();
    assert!(text.contains("weir::task::memory"), "{text}");
    assert!(
        text.contains("big.all needs more memory than the limit of 16.0 MiB"),
        "{text}"
    );
    assert!(text.contains("e.g. 32.0 MiB"), "{text}");
    assert!(text.contains("the pool's largest holders: "), "{text}");
    assert!(p.manifest("small").is_some(), "the other stage committed");
    assert!(p.manifest("big").is_none());
    let left: Vec<_> = std::fs::read_dir(p.path("spill")).unwrap().collect();
    assert!(left.is_empty(), "spill files left behind: {left:?}");
}

/// Spill files of a weir that was killed (no process has its id any more) are removed by the
/// next run that spills there; those of a running one are not.
#[test]
fn a_killed_runs_spill_files_go_with_the_next_run() {
    let p = Project::standard();
    p.file("weir.toml", "[engine]\nspill_dir = \"spill\"\n");
    let dead = p.path("spill/weir-spill-999999999-0/datafusion-abc");
    std::fs::create_dir_all(&dead).unwrap();
    std::fs::write(dead.join("spill.arrow"), "rows").unwrap();
    let alive = p.path(&format!("spill/weir-spill-{}-0", std::process::id()));
    std::fs::create_dir_all(&alive).unwrap();
    p.run(&[]).ok();
    let left: Vec<_> = std::fs::read_dir(p.path("spill"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    assert_eq!(left, vec![alive], "only the living process's folder stays");
}

/// `--memory-limit` and `[engine] memory_limit` take sizes with units; a bad one is exit 2.
#[test]
fn memory_limits_are_sizes() {
    let p = Project::standard();
    let flag = p.run(&["--memory-limit", "lots"]).fails_with(2);
    assert!(flag.stderr.contains("is not a size"), "{}", flag.stderr);
    p.file("weir.toml", "[engine]\nmemory_limit = \"2 bananas\"\n");
    let config = p.run(&[]).fails_with(2);
    assert!(
        config.stderr.contains("its unit is not one of"),
        "{}",
        config.stderr
    );
    assert!(config.stderr.contains("weir.toml"), "{}", config.stderr);
    p.file("weir.toml", "[engine]\nmemory_limit = \"512MiB\"\n");
    p.run(&[]).ok();
}

/// `weir sql` and `weir show` query with the instance's engine settings: `[engine]
/// memory_limit` holds for them as for a run, and `--memory-limit` over it.
#[test]
fn reading_commands_query_under_the_memory_limit() {
    let p = Project::standard();
    p.run(&[]).ok();
    let query = "SELECT cardinality(array_agg(concat('value-', CAST(value AS VARCHAR)))) AS n FROM generate_series(1, 2000000)";
    p.weir(&["sql", query, "-f", "csv"]).ok();
    let limited = p
        .weir(&["sql", query, "--memory-limit", "16MiB"])
        .fails_with(1);
    assert!(
        limited.text().contains("pool_size: 16.0 MB"),
        "{}",
        limited.text()
    );
    p.file("weir.toml", "[engine]\nmemory_limit = \"16MiB\"\n");
    let configured = p.weir(&["sql", query]).fails_with(1);
    assert!(
        configured.text().contains("pool_size: 16.0 MB"),
        "{}",
        configured.text()
    );
    let over = ["sql", query, "--memory-limit", "1GiB", "-f", "csv"];
    assert!(p.weir(&over).ok().stdout.contains("2000000"));
}
