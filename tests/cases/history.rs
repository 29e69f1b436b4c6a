//! The run history as tables (`weir.runs`, `weir.tasks`, `weir.checks`, `weir.commits`) and
//! reading the tables as an earlier run left them (`--as-of`, the REPL's `as_of`).

use crate::cases::repl::repl;
use crate::common::Project;

const FEWER: (&str, &str) = ("WHERE o.amount > 0", "WHERE o.amount > 100");

/// A query's CSV rows, without the header.
fn csv(p: &Project, query: &str, more: &[&str]) -> Vec<String> {
    let mut args = vec!["sql", query, "-f", "csv"];
    args.extend_from_slice(more);
    let out = p.weir(&args).ok();
    out.stdout.lines().skip(1).map(str::to_string).collect()
}

/// Two runs, the second after `prep.orders_clean` changed: its id first, then the first run's.
fn two_runs(p: &Project) -> (String, String) {
    p.run(&[]).ok();
    p.edit("pipeline.rhai", FEWER.0, FEWER.1);
    p.run(&[]).ok();
    let ids = csv(p, "SELECT run_id FROM weir.runs ORDER BY run_id DESC", &[]);
    assert_eq!(ids.len(), 2, "{ids:?}");
    (ids[0].clone(), ids[1].clone())
}

#[test]
fn runs_tasks_checks_and_commits_are_tables() {
    let p = Project::standard();
    p.file(
        "pipeline.rhai",
        &crate::common::PIPELINE.replace(
            "WHERE o.amount > 0`);",
            "WHERE o.amount > 0`, #{ expect: [\"not_null(order_id)\"] });",
        ),
    );
    let (last, first) = two_runs(&p);
    let runs = csv(
        &p,
        "SELECT run_id, ok, tasks, ran, cached, failed, weir_version IS NOT NULL, seconds >= 0, ended_at >= started_at FROM weir.runs ORDER BY run_id",
        &[],
    );
    assert_eq!(
        runs,
        [
            format!("{first},true,6,6,0,0,true,true,true"),
            format!("{last},true,6,3,3,0,true,true,true")
        ]
    );
    let tasks = csv(
        &p,
        &format!(
            "SELECT task, status, why, rows, build FROM weir.tasks WHERE run_id = '{last}' AND stage <> 'raw' ORDER BY task"
        ),
        &[],
    );
    assert_eq!(
        tasks,
        [
            // The same two orders: rebuilt, and read downstream as unchanged (early cutoff).
            format!(
                "marts.big_orders,ran,\"input prep.orders_clean changed; rebuilt, unchanged\",2,{last}"
            ),
            format!("marts.by_segment,ran,input prep.orders_clean changed,2,{last}"),
            format!("prep.customer_count,cached,,1,{first}"),
            format!("prep.orders_clean,ran,code changed,2,{last}"),
        ]
    );
    let checks = csv(
        &p,
        "SELECT run_id, task, \"check\", severity, offending, passed FROM weir.checks WHERE task = 'prep.orders_clean' ORDER BY run_id",
        &[],
    );
    assert_eq!(
        checks,
        [
            format!("{first},prep.orders_clean,not_null(order_id),error,0,true"),
            format!("{last},prep.orders_clean,not_null(order_id),error,0,true"),
        ]
    );
    // The second run left raw as it was: no commit of raw, and only what changed in the others.
    let commits = csv(
        &p,
        "SELECT run_id, stage, tables, changed, changed_tables FROM weir.commits ORDER BY run_id, stage",
        &[],
    );
    assert_eq!(
        commits,
        [
            format!("{first},marts,2,2,\"big_orders, by_segment\""),
            format!("{first},prep,2,2,\"customer_count, orders_clean\""),
            format!("{first},raw,2,2,\"customers, orders\""),
            format!("{last},marts,2,2,\"big_orders, by_segment\""),
            format!("{last},prep,2,1,orders_clean"),
        ]
    );
    // `show` shows them as it shows tables.
    let shown = p.weir(&["show", "weir.runs", "-n", "1", "-f", "csv"]).ok();
    assert!(
        shown.stdout.starts_with("run_id,instance,started_at"),
        "{}",
        shown.stdout
    );
    // Read-only, as every table a reader sees.
    let write = p
        .weir(&["sql", "INSERT INTO weir.runs SELECT * FROM weir.runs"])
        .fails_with(2);
    assert!(!write.stderr.is_empty());
    assert_eq!(csv(&p, "SELECT count(*) FROM weir.runs", &[]), ["2"]);
}

#[test]
fn as_of_reads_the_tables_an_earlier_run_committed() {
    let p = Project::standard();
    let (last, first) = two_runs(&p);
    let count = "SELECT count(*) FROM prep.orders_clean";
    assert_eq!(csv(&p, count, &[]), ["2"]);
    assert_eq!(csv(&p, count, &["--as-of", "last~1"]), ["5"]);
    assert_eq!(csv(&p, count, &["--as-of", &first]), ["5"]);
    assert_eq!(
        csv(&p, count, &["--as-of", &first[..first.len() - 2]]),
        ["5"]
    );
    assert_eq!(csv(&p, count, &["--as-of", "last"]), ["2"]);
    assert_eq!(csv(&p, count, &["--as-of", &last]), ["2"]);
    // A time: the last run that had ended by then.
    let ended = csv(
        &p,
        &format!("SELECT ended_at FROM weir.runs WHERE run_id = '{first}'"),
        &[],
    );
    let ended = ended[0].replace(' ', "T");
    assert_eq!(csv(&p, count, &["--as-of", &ended]), ["5"]);
    let show = p
        .weir(&[
            "show",
            "prep.orders_clean",
            "--as-of",
            "last~1",
            "-f",
            "csv",
        ])
        .ok();
    assert_eq!(show.stdout.lines().count(), 6, "{}", show.stdout);

    for (spec, says) in [
        ("last~9", "this instance has 2 runs recorded"),
        (
            "2019-01-01",
            "no run of this instance had ended by 2019-01-01",
        ),
        ("yesterday", "`yesterday` is not a run of this instance"),
    ] {
        let bad = p.weir(&["sql", count, "--as-of", spec]).fails_with(2);
        assert!(bad.stderr.contains(says), "{spec}: {}", bad.stderr);
    }

    // gc keeps what recent runs committed; told to keep none, it deletes the first run's
    // builds, no longer committed, and reading as of it says so.
    p.weir(&["cache", "gc"]).ok();
    assert_eq!(csv(&p, count, &["--as-of", "last~1"]), ["5"]);
    p.weir(&["cache", "gc", "--keep-runs", "0"]).ok();
    let gone = p.weir(&["sql", count, "--as-of", "last~1"]).fails_with(2);
    assert!(
        gone.stderr.contains(&format!("as of run {first}"))
            && gone.stderr.contains("prep.orders_clean (built by run")
            && gone.stderr.contains("weir cache gc"),
        "{}",
        gone.stderr
    );
    assert_eq!(csv(&p, count, &["--as-of", "last"]), ["2"]);
}

/// A stage committed later is absent as of an earlier run; a history copy lost to a kill
/// between the commit and the copy is made again by the next run.
#[test]
fn as_of_sees_stages_as_they_stood_and_lost_copies_are_repaired() {
    let p = Project::standard();
    p.run(&[]).ok();
    let extra = format!(
        "{}\nlet late = stage(\"late\");\nlate.sql(\"n\", \"SELECT 1 AS one\");\n",
        crate::common::PIPELINE
    );
    p.file("pipeline.rhai", &extra);
    p.run(&[]).ok();
    let missing = p
        .weir(&["sql", "SELECT * FROM late.n", "--as-of", "last~1"])
        .fails_with(2);
    assert!(missing.stderr.contains("late.n"), "{}", missing.stderr);
    assert_eq!(
        csv(&p, "SELECT one FROM late.n", &["--as-of", "last"]),
        ["1"]
    );

    let last = csv(&p, "SELECT max(run_id) FROM weir.runs", &[]).remove(0);
    let copy = format!("default/history/late/{last}.json");
    let copy = p.path(".weir").join(copy);
    assert!(copy.exists(), "{}", copy.display());
    std::fs::remove_file(&copy).unwrap();
    // Readers do not need the copy of what is live...
    assert_eq!(
        csv(&p, "SELECT one FROM late.n", &["--as-of", "last"]),
        ["1"]
    );
    // ...and the next run, a no-op, makes it again.
    p.run(&[]).ok();
    assert!(copy.exists());
}

#[test]
fn a_stage_may_not_be_named_weir() {
    let p = Project::new();
    p.file(
        "pipeline.rhai",
        "let s = stage(\"weir\");\ns.sql(\"t\", \"SELECT 1 AS x\");\n",
    );
    let out = p.run(&[]).fails_with(2);
    assert!(
        out.stderr.contains("stage name `weir` is taken"),
        "{}",
        out.stderr
    );
}

#[test]
fn the_repl_reads_as_of_a_run() {
    let p = Project::standard();
    two_runs(&p);
    let input = "sql(\"SELECT count(*) AS n FROM prep.orders_clean\")\nas_of(\"last~1\")\n\
                 sql(\"SELECT count(*) AS m FROM prep.orders_clean\")\nas_of()\n\
                 sql(\"SELECT count(*) AS k FROM prep.orders_clean\")\n:quit\n";
    let out = repl(&p, input).ok();
    let text = out.text();
    assert!(
        text.contains("reading the tables as committed at the end of run"),
        "{text}"
    );
    let value = |col: &str| {
        let lines: Vec<&str> = text.lines().collect();
        let at = lines
            .iter()
            .position(|l| l.contains(&format!("| {col} ")))?;
        lines
            .get(at + 2)
            .map(|l| l.trim_matches(|c| c == '|' || c == ' ').to_string())
    };
    assert_eq!(value("n").as_deref(), Some("2"), "{text}");
    assert_eq!(value("m").as_deref(), Some("5"), "{text}");
    assert_eq!(value("k").as_deref(), Some("2"), "{text}");
}

#[test]
fn rollback_commits_an_earlier_runs_builds_again_without_computing() {
    let p = Project::standard();
    let (_, first) = two_runs(&p);
    let count = "SELECT count(*) FROM prep.orders_clean";
    let out = p.weir(&["rollback", "last~1"]).ok();
    assert!(
        out.stdout.contains(&format!("rolls back to run {first}"))
            && out
                .stdout
                .contains("prep         committed again: orders_clean")
            && out.stdout.contains("raw          unchanged")
            && out.stdout.contains("nothing was computed"),
        "{}",
        out.stdout
    );
    assert_eq!(csv(&p, count, &[]), ["5"]);
    // A run of its own in the history, its tables rolled back.
    let runs = csv(&p, "SELECT count(*), sum(ran) FROM weir.runs", &[]);
    assert_eq!(runs, ["3,9"]);
    let rolled = csv(
        &p,
        "SELECT task FROM weir.tasks WHERE status = 'rolled_back' ORDER BY task",
        &[],
    );
    assert_eq!(
        rolled,
        ["marts.big_orders", "marts.by_segment", "prep.orders_clean"]
    );
    // Other engines see it: the table's Delta log names the first run's build again.
    crate::common::delta::logs_match_manifests(&p.instance_dir(), "after the rollback");
    // Reverting the code too: the next run reuses the builds rolled back to.
    p.edit("pipeline.rhai", FEWER.1, FEWER.0);
    p.run(&[]).ok();
    assert!(p.ran().is_empty(), "{:?}", p.ran());
    // Again: nothing left to do.
    let again = p.weir(&["rollback", &first]).ok();
    assert!(
        again.stdout.contains("0 stages rolled back"),
        "{}",
        again.stdout
    );
}

#[test]
fn rollback_of_one_stage_warns_about_the_stages_that_read_it() {
    let p = Project::standard();
    two_runs(&p);
    let out = p.weir(&["rollback", "last~1", "--stage", "prep"]).ok();
    assert!(
        out.stdout
            .contains("warning: stage marts reads prep and was not rolled back"),
        "{}",
        out.stdout
    );
    assert_eq!(
        csv(&p, "SELECT count(*) FROM prep.orders_clean", &[]),
        ["5"]
    );
    assert_eq!(csv(&p, "SELECT count(*) FROM marts.big_orders", &[]), ["2"]);
    let bad = p
        .weir(&["rollback", "last~1", "--stage", "nope"])
        .fails_with(2);
    assert!(
        bad.stderr.contains("stage `nope` was never committed"),
        "{}",
        bad.stderr
    );
    // gc told to keep nothing but what is committed: the first run's marts builds go, and so
    // does rolling back to that run.
    p.weir(&["cache", "gc", "--keep-runs", "0"]).ok();
    let gone = p.weir(&["rollback", "last~2"]).fails_with(2);
    assert!(gone.stderr.contains("no longer stored"), "{}", gone.stderr);
}
