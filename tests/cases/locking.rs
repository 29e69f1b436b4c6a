//! One writer per instance.

use std::process::Stdio;

use crate::common::Project;

/// Two runs started together on one store both finish; the second waits for the first.
#[test]
fn two_concurrent_runs_on_one_store_both_succeed() {
    let p = Project::standard();
    let spawn = || {
        p.command(&["run", "pipeline.rhai"])
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap()
    };
    let (a, b) = (spawn(), spawn());
    let (a, b) = (a.wait_with_output().unwrap(), b.wait_with_output().unwrap());
    assert!(a.status.success() && b.status.success(), "{a:?}\n{b:?}");
    let outputs = format!(
        "{}{}",
        String::from_utf8_lossy(&a.stdout),
        String::from_utf8_lossy(&b.stdout)
    );
    assert_eq!(
        outputs.matches("6 ran").count(),
        1,
        "exactly one run built the tables:\n{outputs}"
    );
    assert_eq!(
        outputs.matches("6 cached").count(),
        1,
        "the other found them built:\n{outputs}"
    );
    assert!(
        !p.path(".weir/default/lock").exists(),
        "the lock is released"
    );
}

/// A lock held by a live process makes a run wait, then fail clearly after --lock-timeout;
/// a lock left by a dead process is recovered.
#[test]
fn held_lock_times_out_and_dead_lock_is_recovered() {
    let p = Project::standard();
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis();
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .unwrap_or_default()
        .trim()
        .to_string();
    let lock = |pid: u32| {
        format!(r#"{{"pid":{pid},"host":"{host}","run_id":"other","heartbeat_ms":{now}}}"#)
    };
    p.file(".weir/default/lock", &lock(std::process::id()));
    let run = p.run(&["--lock-timeout", "1"]).fails_with(1);
    assert!(
        run.stderr
            .contains("waiting for the instance lock held by run other"),
        "{}",
        run.text()
    );
    assert!(
        run.stderr
            .contains("is locked by another run (run other by pid"),
        "{}",
        run.text()
    );
    assert!(p.manifest("raw").is_none());

    let mut dead = std::process::Command::new("true").spawn().unwrap();
    let dead_pid = dead.id();
    dead.wait().unwrap();
    p.file(".weir/default/lock", &lock(dead_pid));
    p.run(&["--lock-timeout", "1"]).ok();
    assert!(p.manifest("marts").is_some());
}

/// A run that fails after taking the lock (here: `assert-no-fresh-input` finds a changed
/// file before anything is built) gives the lock back, so the next command does not wait.
#[test]
fn a_run_failing_under_the_lock_releases_it() {
    let p = Project::standard();
    p.run(&[]).ok();
    let orders = p.read("data/orders.csv");
    p.file("data/orders.csv", &format!("{orders}99,1,5\n"));
    let failed = p
        .run(&["--cache-mode", "assert-no-fresh-input"])
        .fails_with(1);
    assert!(
        failed.stderr.contains("sources changed"),
        "{}",
        failed.text()
    );
    assert!(
        !p.path(".weir/default/lock").exists(),
        "the lock is released after an early error"
    );
    let next = p.run(&["--lock-timeout", "0"]).ok();
    assert!(
        !next.stderr.contains("waiting for the instance lock"),
        "{}",
        next.text()
    );
}

/// Ten runs that find the same stale lock: exactly one takes it over and builds, the others
/// wait for it and find everything built (two holders at once would both build).
#[test]
fn a_stale_lock_is_taken_over_by_exactly_one_of_many_runs() {
    let p = Project::standard();
    let mut dead = std::process::Command::new("true").spawn().unwrap();
    let dead_pid = dead.id();
    dead.wait().unwrap();
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .unwrap_or_default()
        .trim()
        .to_string();
    p.file(
        ".weir/default/lock",
        &format!(r#"{{"pid":{dead_pid},"host":"{host}","run_id":"dead","heartbeat_ms":0}}"#),
    );
    let runs: Vec<_> = (0..10)
        .map(|_| {
            p.command(&["run", "pipeline.rhai", "--lock-timeout", "120"])
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    let outputs: Vec<String> = runs
        .into_iter()
        .map(|r| {
            let out = r.wait_with_output().unwrap();
            assert!(out.status.success(), "{out:?}");
            String::from_utf8_lossy(&out.stdout).into_owned()
        })
        .collect();
    let built = outputs.iter().filter(|o| o.contains("6 ran")).count();
    assert_eq!(
        built,
        1,
        "one run built, the rest reused:\n{}",
        outputs.join("\n")
    );
    assert_eq!(outputs.iter().filter(|o| o.contains("6 cached")).count(), 9);
    assert!(!p.path(".weir/default/lock").exists());
}

/// A run whose lock was taken over while it ran (it stalled) leaves the new holder's lock
/// alone when it ends: release deletes only a lock that is still its own.
#[test]
fn a_run_releases_only_its_own_lock() {
    let p = Project::standard();
    p.file(
        "pipeline.rhai",
        &format!(
            "{}\nlet big = stage(\"big\");\nbig.sql(\"numbers\", `SELECT sum(value) AS s FROM generate_series(1, 20000000)`);\n",
            crate::common::PIPELINE
        ),
    );
    let child = p
        .command(&["run", "pipeline.rhai", "--jobs", "1"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let lock = p.path(".weir/default/lock");
    let started = std::time::Instant::now();
    while !lock.exists() && started.elapsed() < std::time::Duration::from_secs(20) {
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis();
    let other = format!(
        r#"{{"pid":{},"host":"elsewhere","run_id":"other","heartbeat_ms":{now}}}"#,
        std::process::id()
    );
    std::fs::write(&lock, &other).unwrap();
    let _ = child.wait_with_output().unwrap();
    assert_eq!(
        std::fs::read_to_string(&lock).unwrap_or_default(),
        other,
        "the other holder's lock is still there"
    );
}
