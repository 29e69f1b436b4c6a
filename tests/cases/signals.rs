//! Ctrl-C and SIGTERM during `weir run`: the run is cancelled, not killed.

use std::io::{BufRead, BufReader, Read};
use std::process::Stdio;

use crate::common::Project;

/// SIGINT (Ctrl-C) during a run cancels the running task: the process exits 130, commits
/// nothing of the cancelled stage, keeps what was committed before, releases the lock, writes
/// a run record and prints what was cancelled; SIGTERM does the same with exit 143.
#[test]
fn a_signal_cancels_the_run_and_cleans_up() {
    for (signal, code) in [(libc::SIGINT, 130), (libc::SIGTERM, 143)] {
        let p = Project::standard();
        p.run(&[]).ok();
        let prep = p.manifest("prep");
        p.file(
            "pipeline.rhai",
            &format!(
                "{}\n{}",
                crate::common::PIPELINE,
                r#"
            let big = stage("big");
            big.sql("numbers", `SELECT value AS v, value * 2 AS w FROM generate_series(1, 30000000)`);
            big.sql("total", `SELECT count(*) AS n, sum(w) AS s FROM big.numbers`);
        "#
            ),
        );
        let runs_before = p.files_under(".weir/default/runs").len();
        let mut child = p
            .command(&["run", "pipeline.rhai", "--jobs", "1"])
            .stderr(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
        let mut stderr = BufReader::new(child.stderr.take().unwrap());
        let mut seen = String::new();
        loop {
            let mut line = String::new();
            assert!(
                stderr.read_line(&mut line).unwrap() > 0,
                "the run ended before big.numbers started:\n{seen}"
            );
            seen.push_str(&line);
            if line.contains("start   big.numbers") {
                break;
            }
        }
        let pid = i32::try_from(child.id()).unwrap();
        // SAFETY: kill(2) on the child this test started and has not reaped yet.
        assert_eq!(unsafe { libc::kill(pid, signal) }, 0);
        stderr.read_to_string(&mut seen).unwrap();
        let mut stdout = String::new();
        child
            .stdout
            .take()
            .unwrap()
            .read_to_string(&mut stdout)
            .unwrap();
        let status = child.wait().unwrap();
        assert_eq!(status.code(), Some(code), "{seen}\n{stdout}");
        assert!(seen.contains("interrupted"), "{seen}");
        assert!(
            stdout.contains("big.numbers") && stdout.contains("cancelled"),
            "the summary says what was cancelled:\n{stdout}"
        );
        assert!(
            !p.path(".weir/default/lock").exists(),
            "the lock is released"
        );
        assert!(
            p.manifest("big").is_none(),
            "nothing cancelled is committed"
        );
        assert_eq!(p.manifest("prep"), prep, "committed stages are unchanged");
        assert_eq!(
            p.files_under(".weir/default/runs").len(),
            runs_before + 2,
            "a run record and its log are written"
        );
        assert_eq!(p.last_record()["ok"], false, "a cancelled run is not ok");
        let statuses = p.statuses();
        assert_eq!(statuses["big.numbers"], "skipped", "{statuses:?}");
        assert_eq!(statuses["raw.orders"], "cached", "{statuses:?}");
    }
}
