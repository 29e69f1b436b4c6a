//! The committed store is one consistent snapshot across stages: a stage commits only if every
//! build it read is committed, and no path commits a build that failed an error-severity check.

use crate::cases::repl::repl;
use crate::common::servers::S3;
use crate::common::{Project, Run};

const PIPELINE: &str = r#"
let raw = stage("raw");
raw.load("sales", "data/sales.csv");
raw.load("other", "data/other.csv");
let side = stage("side");
side.load("rates", "data/rates.csv");
let a = stage("a");
a.sql("fast", "SELECT count(*) AS n FROM raw.sales");
a.sql("rated", "SELECT count(*) AS n FROM side.rates");
let b = stage("b");
b.sql("on_rates", "SELECT max(rate) AS best FROM side.rates");
"#;

fn project() -> Project {
    let p = Project::new();
    p.file("pipeline.rhai", PIPELINE)
        .file("data/sales.csv", "id,amount\n1,10\n2,20\n")
        .file("data/other.csv", "id,x\n1,a\n")
        .file("data/rates.csv", "day,rate\n1,1.5\n");
    p
}

/// One of two loads of `raw` breaks while `raw.sales` gains a row: with --keep-going the
/// downstream task still runs, but its stage does not commit on top of the uncommitted load.
fn break_raw_and_grow_sales(p: &Project, env: &[(&str, String)], store: &[&str]) -> Run {
    p.file("data/sales.csv", "id,amount\n1,10\n2,20\n3,30\n");
    p.file("data/other.csv", "id,x\n1,a,b,c\n");
    p.file("data/rates.csv", "day,rate\n1,1.5\n2,1.7\n");
    let mut args = vec!["run", "pipeline.rhai", "--keep-going"];
    args.extend_from_slice(store);
    p.weir_env(&args, env).fails_with(1)
}

fn count(p: &Project, env: &[(&str, String)], store: &[&str], sql: &str) -> String {
    let mut args = vec!["sql", sql, "-f", "csv"];
    args.extend_from_slice(store);
    let out = p.weir_env(&args, env).ok().stdout;
    out.lines().nth(1).unwrap_or_default().to_string()
}

fn a_stage_never_commits_on_an_uncommitted_one(env: &[(&str, String)], store: &[&str]) {
    let p = project();
    let mut args = vec!["run", "pipeline.rhai"];
    args.extend_from_slice(store);
    p.weir_env(&args, env).ok();

    let run = break_raw_and_grow_sales(&p, env, store);
    let out = &run.stdout;
    assert!(
        out.contains("raw NOT committed, side committed, a NOT committed (reads uncommitted raw.sales), b committed"),
        "{}",
        run.text()
    );
    assert!(
        out.lines()
            .any(|l| l.trim_start().starts_with("a.fast") && l.contains("ran")),
        "the task ran; only its stage waits:\n{out}"
    );
    // Readers see one snapshot: a.fast counts the committed raw.sales, not the new one.
    let sales = count(&p, env, store, "SELECT count(*) FROM raw.sales");
    let fast = count(&p, env, store, "SELECT n FROM a.fast");
    assert_eq!((sales.as_str(), fast.as_str()), ("2", "2"));
    // The independent branch committed: b read only a committed build.
    assert_eq!(count(&p, env, store, "SELECT best FROM b.on_rates"), "1.7");
    // ... while a.rated, in the stage that did not commit, still counts the old rates.
    assert_eq!(count(&p, env, store, "SELECT n FROM a.rated"), "1");

    // Fixed, the next run commits raw and a, reusing a.fast's build by key.
    p.file("data/other.csv", "id,x\n1,a\n");
    let mut args = vec!["run", "pipeline.rhai"];
    args.extend_from_slice(store);
    let fixed = p.weir_env(&args, env).ok();
    assert!(
        fixed
            .stdout
            .contains("raw committed, side unchanged, a committed, b unchanged"),
        "{}",
        fixed.text()
    );
    assert!(
        fixed
            .stdout
            .lines()
            .any(|l| l.trim_start().starts_with("a.fast") && l.contains("cached")),
        "{}",
        fixed.text()
    );
    assert_eq!(count(&p, env, store, "SELECT n FROM a.fast"), "3");
    assert_eq!(count(&p, env, store, "SELECT n FROM a.rated"), "2");
}

/// On a local store, a stage that read a build its stage did not commit keeps its manifest,
/// says why, and commits with the next run that commits what it read.
#[test]
fn a_stage_never_commits_on_an_uncommitted_stage() {
    a_stage_never_commits_on_an_uncommitted_one(&[], &[]);
}

/// The same on an S3 store.
#[test]
fn a_stage_never_commits_on_an_uncommitted_stage_on_s3() {
    let s3 = S3::start();
    s3.bucket("lake");
    a_stage_never_commits_on_an_uncommitted_one(&s3.env(), &["--store", "s3://lake/weir"]);
}

/// The run record and `weir log` say why a stage was not committed.
#[test]
fn the_run_record_says_why_a_stage_was_not_committed() {
    let p = project();
    p.run(&[]).ok();
    break_raw_and_grow_sales(&p, &[], &[]);
    let record = p.last_record();
    let a = record["stages"]
        .as_array()
        .and_then(|s| s.iter().find(|s| s["stage"] == "a"))
        .cloned()
        .expect("stage a in the record");
    assert_eq!(a["committed"], false);
    assert_eq!(a["reason"], "reads uncommitted raw.sales");
    let log = p.weir(&["log", "last", "pipeline.rhai"]).ok();
    assert!(
        log.stdout
            .contains("a NOT committed (reads uncommitted raw.sales)"),
        "{}",
        log.text()
    );
}

/// Stages that read each other's tables (x.one -> y.mid -> x.two) commit together.
#[test]
fn stages_that_read_each_other_commit_together() {
    let p = Project::new();
    p.file(
        "pipeline.rhai",
        r#"
let x = stage("x");
let y = stage("y");
x.sql("one", "SELECT 1 AS v");
y.sql("mid", "SELECT v + 1 AS v FROM x.one");
x.sql("two", "SELECT v + 1 AS v FROM y.mid");
"#,
    );
    let run = p.run(&[]).ok();
    assert!(
        run.stdout.contains("stages: x committed, y committed"),
        "{}",
        run.text()
    );
    assert_eq!(p.query("SELECT v FROM x.two"), ["3"]);
}

const CHECKED: &str = r#"
let raw = stage("raw");
raw.load("orders", "data/orders.csv");
let prep = stage("prep");
prep.sql("orders_clean", "SELECT * FROM raw.orders", #{ primary_key: ["order_id"] });
expect("prep.orders_clean", "accepted_values(segment, ['smb', 'enterprise'])");
"#;

const BREAK_CHECKS: &str = r#"prep.sql("orders_clean", "SELECT * FROM raw.orders UNION ALL SELECT order_id, 'hobby' AS segment FROM raw.orders WHERE order_id = 1", #{ primary_key: ["order_id"] });
"#;

fn checked_project() -> Project {
    let p = Project::new();
    p.file("pipeline.rhai", CHECKED)
        .file("data/orders.csv", "order_id,segment\n1,smb\n2,enterprise\n");
    p.run(&[]).ok();
    p
}

/// A REPL build that fails its data checks is not promoted: the committed table keeps its
/// rows, and the diagnostic says how to force it.
#[test]
fn promote_refuses_a_build_that_failed_its_checks() {
    let p = checked_project();
    let input = format!(
        "{BREAK_CHECKS}run(\"prep.orders_clean\")\npromote(\"prep.orders_clean\")\n:quit!\n"
    );
    let out = repl(&p, &input);
    let text = out.text();
    assert!(text.contains("is not promoted"), "{text}");
    assert!(text.contains("force: true"), "{text}");
    assert!(!text.contains("promoted prep.orders_clean"), "{text}");
    assert_eq!(p.query("SELECT count(*) FROM prep.orders_clean"), ["2"]);
    assert_eq!(
        p.statuses().get("prep.orders_clean").map(String::as_str),
        Some("failed")
    );
}

/// `promote(t, #{ force: true })` commits it anyway, with a warning, and the run history
/// records the promote with the check it was forced past.
#[test]
fn a_forced_promote_is_recorded_in_the_run_history() {
    let p = checked_project();
    let input = format!(
        "{BREAK_CHECKS}run(\"prep.orders_clean\")\npromote(\"prep.orders_clean\", #{{ force: 1 }})\npromote(\"prep.orders_clean\", #{{ force: true }})\n:quit!\n"
    );
    let out = repl(&p, &input);
    let text = out.text();
    assert!(text.contains("`force` is a bool"), "{text}");
    assert!(
        text.contains("warning: prep.orders_clean committed although"),
        "{text}"
    );
    assert!(text.contains("promoted prep.orders_clean"), "{text}");
    assert_eq!(p.query("SELECT count(*) FROM prep.orders_clean"), ["3"]);
    let record = p.last_record();
    let task = &record["tasks"][0];
    assert_eq!(task["status"], "promoted");
    assert!(
        task["reason"]
            .to_string()
            .contains("forced past a failed data check"),
        "{record}"
    );
    assert_eq!(record["ok"], false);
    let runs = p.weir(&["runs", "pipeline.rhai"]).ok();
    assert!(
        runs.stdout
            .lines()
            .nth(1)
            .is_some_and(|l| l.contains("failed")),
        "{}",
        runs.text()
    );
}

/// A build that passed its checks is promoted as before, and the promote leaves a run record.
#[test]
fn a_promote_that_passes_its_checks_leaves_a_run_record() {
    let p = checked_project();
    let redefine = r#"prep.sql("orders_clean", "SELECT * FROM raw.orders WHERE order_id = 1", #{ primary_key: ["order_id"] });
"#;
    let input =
        format!("{redefine}run(\"prep.orders_clean\")\npromote(\"prep.orders_clean\")\n:quit!\n");
    let out = repl(&p, &input);
    assert!(
        out.text().contains("promoted prep.orders_clean"),
        "{}",
        out.text()
    );
    assert_eq!(p.query("SELECT count(*) FROM prep.orders_clean"), ["1"]);
    let record = p.last_record();
    assert_eq!(record["tasks"][0]["status"], "promoted");
    assert_eq!(record["ok"], true);
}

/// A task redefined in the REPL keeps the checks the script declares of its table with
/// `expect(...)`: a redefinition that breaks one is not promoted, though it declares no check.
#[test]
fn a_redefined_task_keeps_the_scripts_expect_checks() {
    let p = checked_project();
    let redefine = r#"prep.sql("orders_clean", "SELECT order_id, 'hobby' AS segment FROM raw.orders");
"#;
    let input =
        format!("{redefine}run(\"prep.orders_clean\")\npromote(\"prep.orders_clean\")\n:quit!\n");
    let text = repl(&p, &input).text();
    assert!(text.contains("accepted_values(segment"), "{text}");
    assert!(text.contains("is not promoted"), "{text}");
    assert_eq!(
        p.query("SELECT count(*) FROM prep.orders_clean WHERE segment = 'hobby'"),
        ["0"]
    );
}

/// The promote rule holds on an S3 store too: a build failing its checks is refused, and the
/// committed table stays as it was.
#[test]
fn promote_refuses_a_build_that_failed_its_checks_on_s3() {
    use std::io::Write;
    let s3 = S3::start();
    s3.bucket("lake");
    let store = ["--store", "s3://lake/weir"];
    let p = Project::new();
    p.file("pipeline.rhai", CHECKED)
        .file("data/orders.csv", "order_id,segment\n1,smb\n2,enterprise\n");
    let mut args = vec!["run", "pipeline.rhai"];
    args.extend(store);
    p.weir_env(&args, &s3.env()).ok();
    let mut cmd = p.command(&["repl", "pipeline.rhai", "--store", "s3://lake/weir"]);
    for (k, v) in s3.env() {
        cmd.env(k, v);
    }
    let mut child = cmd
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let input = format!(
        "{BREAK_CHECKS}run(\"prep.orders_clean\")\npromote(\"prep.orders_clean\")\n:quit!\n"
    );
    child
        .stdin
        .take()
        .unwrap()
        .write_all(input.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    let text = format!(
        "{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(text.contains("is not promoted"), "{text}");
    let mut args = vec!["sql", "SELECT count(*) FROM prep.orders_clean", "-f", "csv"];
    args.extend(store);
    let count = p.weir_env(&args, &s3.env()).ok().stdout;
    assert_eq!(count.lines().nth(1), Some("2"), "{count}");
}
