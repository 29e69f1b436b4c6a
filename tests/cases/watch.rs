//! `weir watch` as a child process: the test edits files and reads the output until the
//! expected re-run shows up. Waits are bounded; no sleep decides a result.

use std::io::{BufRead, BufReader};
use std::process::{Child, Stdio};
use std::sync::mpsc::{Receiver, channel};
use std::time::{Duration, Instant};

use crate::common::{Project, weir_bin};

const WAITING: &str = "watch: waiting for changes";

struct Watch {
    child: Child,
    lines: Receiver<String>,
    seen: String,
}

impl Watch {
    fn start(p: &Project, extra: &[&str]) -> Self {
        // One pipe for both streams, so lines arrive in the order weir wrote them.
        let script = format!(
            "exec {} watch pipeline.rhai {} 2>&1",
            weir_bin(),
            extra.join(" ")
        );
        let mut child = p
            .shell(&script)
            .stdout(Stdio::piped())
            .spawn()
            .expect("spawn weir watch");
        let (tx, lines) = channel();
        let out = child.stdout.take().expect("stdout");
        std::thread::spawn(move || {
            for l in BufReader::new(out).lines().map_while(Result::ok) {
                let _ = tx.send(l);
            }
        });
        Self {
            child,
            lines,
            seen: String::new(),
        }
    }

    /// `weir watch` with both streams redirected to `log`, a file in the project, read as it
    /// grows.
    fn start_logging_to(p: &Project, log: &str) -> Self {
        let script = format!("exec {} watch pipeline.rhai > {log} 2>&1", weir_bin());
        let child = p.shell(&script).spawn().expect("spawn weir watch");
        let (tx, lines) = channel();
        let path = p.path(log);
        std::thread::spawn(move || {
            let mut read = 0;
            let mut partial = String::new();
            loop {
                let text = std::fs::read(&path).unwrap_or_default();
                if text.len() > read {
                    partial.push_str(&String::from_utf8_lossy(&text[read..]));
                    read = text.len();
                    while let Some(end) = partial.find('\n') {
                        let line: String = partial.drain(..=end).collect();
                        if tx.send(line.trim_end().to_string()).is_err() {
                            return;
                        }
                    }
                }
                std::thread::sleep(Duration::from_millis(50));
            }
        });
        Self {
            child,
            lines,
            seen: String::new(),
        }
    }

    /// Read output until a line contains `needle` (60 s at most); returns what was read
    /// since the last call.
    #[track_caller]
    fn until(&mut self, needle: &str) -> String {
        let deadline = Instant::now() + Duration::from_secs(60);
        let mut got = String::new();
        while Instant::now() < deadline {
            match self.lines.recv_timeout(Duration::from_millis(200)) {
                Ok(line) => {
                    assert!(!line.contains("panicked"), "weir panicked: {line}\n{got}");
                    got.push_str(&line);
                    got.push('\n');
                    if line.contains(needle) {
                        self.seen.push_str(&got);
                        return got;
                    }
                }
                Err(_) => {
                    if let Ok(Some(status)) = self.child.try_wait() {
                        panic!(
                            "watch exited ({status}) before `{needle}`:\n{}{got}",
                            self.seen
                        );
                    }
                }
            }
        }
        panic!("no `{needle}` within 60 s:\n{}{got}", self.seen);
    }

    /// Ctrl-C: the watcher stops cleanly with exit 0.
    fn stop(mut self) {
        unsafe { libc::kill(self.child.id() as i32, libc::SIGINT) };
        let deadline = Instant::now() + Duration::from_secs(30);
        while Instant::now() < deadline {
            if let Ok(Some(status)) = self.child.try_wait() {
                assert!(
                    status.success(),
                    "watch exited with {status}:\n{}",
                    self.seen
                );
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = self.child.kill();
        panic!("watch did not stop on Ctrl-C:\n{}", self.seen);
    }
}

impl Drop for Watch {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[test]
fn watch_reruns_on_save_shows_changes_and_survives_errors() {
    let p = Project::standard();
    let mut w = Watch::start(&p, &[]);
    let first = w.until(WAITING);
    assert!(first.contains("6 ran"), "{first}");

    p.edit(
        "pipeline.rhai",
        "WHERE o.amount > 0`",
        "WHERE o.amount > 50`",
    );
    let second = w.until(WAITING);
    assert!(second.contains("watch: changed pipeline.rhai"), "{second}");
    assert!(second.contains("3 ran, 3 cached"), "{second}");
    assert!(
        second.contains("changed prep.orders_clean: 5 -> 4 rows"),
        "{second}"
    );
    assert!(
        second.contains("| order_id |"),
        "a preview of the rows: {second}"
    );

    // A rebuild with the same rows: only that table's key changed, and no table's rows did.
    p.edit(
        "pipeline.rhai",
        "WHERE o.amount > 50`",
        "WHERE o.amount > 50 AND 1 = 1`",
    );
    let same = w.until(WAITING);
    assert!(same.contains("rebuilt, unchanged"), "{same}");
    assert!(same.contains("no table changed"), "{same}");
    assert!(!same.contains("changed prep.orders_clean"), "{same}");

    p.edit("pipeline.rhai", "let marts", "let marts = ;\nlet x");
    let broken = w.until(WAITING);
    assert!(
        broken.contains("pipeline.rhai:"),
        "the error with its place: {broken}"
    );
    assert!(!broken.contains("ran,"), "nothing runs: {broken}");

    p.edit("pipeline.rhai", "let marts = ;\nlet x", "let marts");
    let fixed = w.until(WAITING);
    assert!(
        fixed.contains("0 ran, 6 cached") || fixed.contains("no table changed"),
        "{fixed}"
    );

    p.file(
        "data/customers.csv",
        "customer_id,segment\n1,enterprise\n2,smb\n3,enterprise\n",
    );
    let data = w.until(WAITING);
    assert!(data.contains("watch: changed data/customers.csv"), "{data}");
    assert!(
        data.contains("raw.customers") && data.contains("ran"),
        "{data}"
    );
    w.stop();
    let status = p.weir(&["status"]).ok();
    assert!(!status.stdout.contains("stale"), "{}", status.text());
}

#[test]
fn a_save_during_a_run_cancels_it_and_starts_again() {
    let p = Project::new();
    p.file(
        "pipeline.rhai",
        r#"
let raw = stage("raw");
raw.sql("numbers", "SELECT value AS n FROM generate_series(1, 10)");
fn slow(t) {
    let x = 0;
    for i in 0..3000000 { x += 1; }
    t
}
stage("slow").materialize("copy", slow, [table("raw.numbers")]);
stage("fast").sql("answer", "SELECT 42 AS answer");
"#,
    );
    let mut w = Watch::start(&p, &["--jobs", "1"]);
    w.until("start   slow.copy");
    p.edit(
        "pipeline.rhai",
        "SELECT 42 AS answer",
        "SELECT 43 AS answer",
    );
    let cancelled = w.until("watch: run cancelled");
    assert!(
        cancelled.contains("changed during the run: cancelling it"),
        "{cancelled}"
    );
    let again = w.until(WAITING);
    assert!(
        again.contains("stages:"),
        "a complete run followed: {again}"
    );
    w.stop();
    assert_eq!(p.query("SELECT answer FROM fast.answer"), ["43"]);
    assert_eq!(p.query("SELECT count(*) FROM slow.copy"), ["10"]);
}

#[test]
fn a_new_file_matching_a_glob_is_a_change() {
    let p = Project::new();
    p.file("data/a.csv", "id\n1\n2\n").file(
        "pipeline.rhai",
        "stage(\"raw\").load(\"ids\", \"data/*.csv\");\n",
    );
    let mut w = Watch::start(&p, &[]);
    w.until(WAITING);
    p.file("data/b.csv", "id\n3\n");
    let out = w.until(WAITING);
    assert!(out.contains("changed raw.ids: 2 -> 3 rows"), "{out}");
    w.stop();
}

/// Only what the flow reads starts a run. With its output redirected to a file in the project,
/// the first run finishes and the watcher waits; notes, `.DS_Store`, swap files and files
/// beside the data trigger nothing; a `.sql` file, a loaded file, a new file matching a loaded
/// glob and an imported module each re-run it.
#[test]
fn only_files_the_flow_reads_trigger_a_run() {
    let p = Project::new();
    p.file("data/orders.csv", "id,amount\n1,10\n2,20\n")
        .file("more/a.csv", "id\n1\n")
        .file("sql/big.sql", "SELECT * FROM raw.orders WHERE amount > 5")
        .file("lib/util.rhai", "fn unused() { 1 }\n")
        .file(
            "pipeline.rhai",
            r#"
import "lib/util" as util;
let raw = stage("raw");
raw.load("orders", "data/orders.csv");
raw.load("more", "more/*.csv");
stage("prep").sql_file("big", "sql/big.sql");
"#,
        );
    let mut w = Watch::start_logging_to(&p, "watch.log");
    let first = w.until(WAITING);
    assert!(first.contains("3 ran"), "{first}");
    assert!(!first.contains("cancelling"), "{first}");

    for scratch in [
        "notes.txt",
        ".DS_Store",
        ".pipeline.rhai.swp",
        "pipeline.rhai~",
        "data/notes.txt",
        "more/readme.md",
        "sql/.big.sql.swp",
    ] {
        p.file(scratch, "scratch");
    }
    p.edit("sql/big.sql", "amount > 5", "amount > 15");
    let sql = w.until(WAITING);
    assert_eq!(sql.matches("watch: changed").count(), 1, "{sql}");
    assert!(sql.contains("watch: changed sql/big.sql\n"), "{sql}");
    assert!(sql.contains("changed prep.big: 2 -> 1 rows"), "{sql}");

    p.file("data/orders.csv", "id,amount\n1,10\n2,20\n3,30\n");
    let data = w.until(WAITING);
    assert!(data.contains("watch: changed data/orders.csv\n"), "{data}");
    assert!(data.contains("changed prep.big: 1 -> 2 rows"), "{data}");

    p.file("more/b.csv", "id\n2\n");
    let glob = w.until(WAITING);
    assert!(glob.contains("watch: changed more/b.csv\n"), "{glob}");
    assert!(glob.contains("changed raw.more: 1 -> 2 rows"), "{glob}");

    p.file("lib/notes.txt", "scratch");
    p.file("lib/util.rhai", "fn unused() { 2 }\n");
    let module = w.until(WAITING);
    assert_eq!(module.matches("watch: changed").count(), 1, "{module}");
    assert!(
        module.contains("watch: changed lib/util.rhai\n"),
        "{module}"
    );
    assert!(!w.seen.contains("cancelling"), "{}", w.seen);
    w.stop();
}

/// A script that does not load is watched with the code beside it and weir.toml: fixing it
/// runs again, and an unrelated file does not.
#[test]
fn a_broken_script_is_watched_until_fixed() {
    let p = Project::new();
    p.file("q.sql", "SELECT 1 AS one").file(
        "pipeline.rhai",
        "stage(\"s\").sql_file(\"t\", \"q.sql\");\nlet x = ;\n",
    );
    let mut w = Watch::start_logging_to(&p, "watch.log");
    let broken = w.until(WAITING);
    assert!(broken.contains("pipeline.rhai:2"), "{broken}");
    p.file("notes.txt", "nothing");
    p.edit("pipeline.rhai", "let x = ;", "let x = 1;");
    let fixed = w.until(WAITING);
    assert_eq!(fixed.matches("watch: changed").count(), 1, "{fixed}");
    assert!(fixed.contains("1 ran"), "{fixed}");
    w.stop();
}
