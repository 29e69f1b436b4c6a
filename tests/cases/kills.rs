//! SIGKILL at random moments of the commands that write: a forced rebuild, a run after
//! `weir clear`, `weir cache gc` and a REPL `promote`. After every kill each committed table
//! must still be readable, and the next run must recover and finish correctly.
//!
//! The delays are random from a fixed seed (`WEIR_KILL_SEED` changes it); `WEIR_KILL_ROUNDS`
//! sets the kills per command (default 8; the attack that found the forced-rebuild bug used
//! 30, and runs such as `WEIR_KILL_ROUNDS=100` are how to look harder).

use std::io::Write;
use std::path::Path;
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

use crate::common::{PIPELINE, Project, read_parquet};

/// The standard pipeline with a table large enough that writing it takes a while.
fn project() -> Project {
    let p = Project::standard();
    p.file(
        "pipeline.rhai",
        &format!(
            "{PIPELINE}\nlet big = stage(\"big\");\n\
             big.sql(\"numbers\", `SELECT value AS v, value * 2 AS w FROM generate_series(1, 400000)`);\n\
             big.sql(\"total\", `SELECT count(*) AS n, sum(w) AS s FROM big.numbers`);\n"
        ),
    );
    p
}

fn rounds() -> usize {
    std::env::var("WEIR_KILL_ROUNDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(8)
}

/// xorshift64*: delays that are random but the same on every run of the test.
struct Delays(u64);

impl Delays {
    fn new() -> Self {
        let seed = std::env::var("WEIR_KILL_SEED")
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(0x5eed_u64);
        Delays(seed | 1)
    }

    /// A delay in [0, `max`).
    fn next(&mut self, max: Duration) -> Duration {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        let r = self.0.wrapping_mul(0x2545_f491_4f6c_dd1d) >> 11;
        max.mul_f64(r as f64 / (1u64 << 53) as f64)
    }
}

/// Start `args`, let it run for `delay`, then SIGKILL it (if it has not finished).
fn kill_after(p: &Project, args: &[&str], delay: Duration) {
    let child = p
        .command(args)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn weir");
    kill(child, delay);
}

fn kill(mut child: Child, delay: Duration) {
    std::thread::sleep(delay);
    let _ = child.kill();
    let _ = child.wait();
}

/// How long a command takes when nothing stops it: the window the kills fall in.
fn timed(p: &Project, args: &[&str]) -> Duration {
    let t = Instant::now();
    p.weir(args).ok();
    t.elapsed()
}

/// Every table of every committed manifest has all its files, and they read as Parquet with
/// the rows the manifest records.
#[track_caller]
fn committed_tables_read(p: &Project, when: &str) {
    let dir = p.instance_dir().join("manifests");
    let Ok(entries) = std::fs::read_dir(&dir) else {
        return;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        if path.extension().is_none_or(|e| e != "json") {
            continue;
        }
        let text = std::fs::read_to_string(&path).expect("manifest");
        let manifest: serde_json::Value = serde_json::from_str(&text)
            .unwrap_or_else(|e| panic!("{when}: {} is not JSON ({e}): {text}", path.display()));
        for (table, build) in manifest["tables"].as_object().expect("tables") {
            let mut rows = 0;
            for file in build["files"].as_array().expect("files") {
                let file = p.instance_dir().join(file.as_str().expect("a path"));
                assert!(
                    file.is_file(),
                    "{when}: committed {table} names {}, which is gone",
                    file.display()
                );
                rows += read_parquet(&file).0;
            }
            assert_eq!(Some(rows as u64), build["rows"].as_u64(), "{when}: {table}");
        }
    }
}

/// After the kills, a normal run finishes and the tables hold what they should.
fn recovers(p: &Project) {
    p.run(&["--lock-timeout", "60"]).ok();
    committed_tables_read(p, "after recovery");
    // Each table's Delta log names its committed build: versions a kill cut short are
    // written by the recovering run.
    crate::common::delta::logs_match_manifests(&p.instance_dir(), "after recovery");
    assert_eq!(
        p.query("SELECT n, s FROM big.total"),
        ["400000,160000400000"]
    );
    assert_eq!(p.query("SELECT count(*) FROM prep.orders_clean"), ["5"]);
}

/// `run --force` rebuilds every key that is committed: killed anywhere, the committed builds
/// stay readable (they are never written over), and the next run recovers.
#[test]
fn force_killed_at_random_moments_keeps_committed_tables() {
    let p = project();
    p.run(&[]).ok();
    let window = timed(&p, &["run", "--force"]);
    let mut delays = Delays::new();
    for round in 0..rounds() {
        let delay = delays.next(window);
        kill_after(&p, &["run", "--force"], delay);
        committed_tables_read(&p, &format!("round {round}, killed after {delay:?}"));
    }
    recovers(&p);
}

/// `weir clear` then a run that is killed: the cleared tables are rebuilt beside their
/// committed builds, which readers keep reading until the rebuild commits.
#[test]
fn run_after_clear_killed_at_random_moments_keeps_committed_tables() {
    let p = project();
    p.run(&[]).ok();
    p.weir(&["clear", "stage:big,stage:prep", "--downstream"])
        .ok();
    let window = timed(&p, &["run"]);
    let mut delays = Delays::new();
    for round in 0..rounds() {
        p.weir(&["clear", "stage:big,stage:prep", "--downstream"])
            .ok();
        let delay = delays.next(window);
        kill_after(&p, &["run"], delay);
        committed_tables_read(&p, &format!("round {round}, killed after {delay:?}"));
    }
    recovers(&p);
}

/// `weir cache gc` killed while it deletes old builds never takes a committed one with it.
#[test]
fn gc_killed_at_random_moments_keeps_committed_tables() {
    let p = project();
    let mut delays = Delays::new();
    for round in 0..rounds() {
        // Each edit leaves the previous builds of big.numbers and its reader behind as old.
        p.edit(
            "pipeline.rhai",
            "value * 2 AS w",
            &format!("value * 2 AS w, {round} AS r{round}"),
        );
        p.run(&[]).ok();
        let window = timed(&p, &["cache", "gc", "--dry-run"]) * 2;
        kill_after(&p, &["cache", "gc"], delays.next(window));
        committed_tables_read(&p, &format!("round {round}"));
    }
    p.weir(&["cache", "gc", "--lock-timeout", "60"]).ok();
    committed_tables_read(&p, "after a full gc");
    recovers(&p);
}

/// A REPL `promote` killed at any moment leaves the stage it commits into readable: either
/// as it was, or with the promoted build.
#[test]
fn repl_promote_killed_at_random_moments_keeps_committed_tables() {
    let p = project();
    p.run(&[]).ok();
    let redefine = "prep.sql(\"orders_clean\", `SELECT o.order_id, o.customer_id, o.amount, \
                    c.segment FROM raw.orders o JOIN raw.customers c USING (customer_id) \
                    WHERE o.amount > 90`);\nrun(\"prep.orders_clean\")\n";
    let mut delays = Delays::new();
    for round in 0..rounds() {
        let mut child = p
            .command(&["repl", "pipeline.rhai", "--lock-timeout", "60"])
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn weir repl");
        let mut stdin = child.stdin.take().expect("stdin");
        stdin.write_all(redefine.as_bytes()).expect("input");
        // Give the session time to build the redefinition, then promote and kill.
        wait_for_build(&p, round);
        stdin
            .write_all(b"promote(\"prep.orders_clean\")\n")
            .expect("input");
        kill(child, delays.next(Duration::from_millis(300)));
        committed_tables_read(&p, &format!("round {round}"));
    }
    recovers(&p);
}

/// Until the session's build of the redefined prep.orders_clean is stored (at most 20 s).
fn wait_for_build(p: &Project, round: usize) {
    let dir = p.instance_dir().join("tables/prep/orders_clean");
    let count = |d: &Path| {
        let mut n = 0;
        for key in std::fs::read_dir(d).into_iter().flatten().flatten() {
            n += std::fs::read_dir(key.path()).into_iter().flatten().count();
        }
        n
    };
    let before = if round == 0 { count(&dir) } else { 0 };
    let started = Instant::now();
    while started.elapsed() < Duration::from_secs(20) {
        if round > 0 || count(&dir) > before {
            std::thread::sleep(Duration::from_millis(150));
            return;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}
