//! `weir cache list` and `weir cache gc`: old builds go, committed and current ones stay.

use crate::common::{Project, set};

/// Complete build folders under the instance's tables, as `stage/table/key/build`.
fn builds(p: &Project) -> std::collections::BTreeSet<String> {
    let tables = p.path(".weir/default/tables");
    p.files_under(".weir/default/tables")
        .into_iter()
        .filter_map(|f| {
            let parts: Vec<String> = f
                .strip_prefix(&tables)
                .ok()?
                .iter()
                .map(|c| c.to_string_lossy().to_string())
                .collect();
            // `<key>/_build.json` names the key's newest build; each build has its own.
            (parts.len() == 5 && parts[4] == "_build.json").then(|| parts[..4].join("/"))
        })
        .collect()
}

fn line_count(text: &str, state: &str) -> usize {
    text.lines()
        .filter(|l| l.split_whitespace().nth(3) == Some(state))
        .count()
}

#[test]
fn gc_deletes_old_builds_and_keeps_committed_and_current_ones() {
    let p = Project::standard();
    p.run(&[]).ok();
    // An edit leaves the old prep.orders_clean (and its downstream) behind.
    p.edit("pipeline.rhai", "WHERE o.amount > 0", "WHERE o.amount > 50");
    p.run(&[]).ok();
    // A second edit builds prep.orders_clean again, but a failing task in its stage keeps the
    // stage from committing: that build is current, not committed, and a later run reuses it.
    p.edit(
        "pipeline.rhai",
        "WHERE o.amount > 50",
        "WHERE o.amount > 90",
    );
    p.edit("pipeline.rhai", "count(*) AS n", "count(nope) AS n");
    p.run(&[]).fails_with(1);
    let before = builds(&p);

    let list = p.weir(&["cache", "list"]).ok();
    let line = |state: &str| line_count(&list.stdout, state);
    assert_eq!(line("current"), 1, "{}", list.stdout);
    // What the first run committed and the second replaced is kept for --as-of and rollback.
    assert!(line("recent") >= 3, "{}", list.stdout);
    let kept = p.weir(&["cache", "gc"]).ok();
    assert!(kept.stdout.contains("in 0 builds"), "{}", kept.stdout);
    assert_eq!(builds(&p), before, "what the last 10 runs committed stays");
    assert_eq!(
        p.query_args(
            &["--as-of", "last~2"],
            "SELECT count(*) FROM prep.orders_clean"
        ),
        ["5"]
    );

    let dry = p
        .weir(&["cache", "gc", "--dry-run", "--keep-runs", "0"])
        .ok();
    assert!(dry.stdout.contains("would free"), "{}", dry.stdout);
    assert_eq!(builds(&p), before, "a dry run deletes nothing");
    let recent = p
        .weir(&["cache", "gc", "--older-than", "1d", "--keep-runs", "0"])
        .ok();
    assert!(recent.stdout.contains("in 0 builds"), "{}", recent.stdout);
    assert_eq!(builds(&p), before, "builds younger than the age stay");

    let gc = p.weir(&["cache", "gc", "--keep-runs", "0"]).ok();
    let after = builds(&p);
    let deleted = before.len() - after.len();
    assert!(deleted >= 3, "{}", gc.stdout);
    assert_eq!(
        gc.stdout.matches("delete  ").count(),
        deleted,
        "{}",
        gc.stdout
    );
    let gone = p
        .weir(&["sql", "SELECT 1", "--as-of", "last~2"])
        .fails_with(2);
    assert!(gone.stderr.contains("no longer stored"), "{}", gone.stderr);

    // Committed tables still read; fixing the failure reuses the current build.
    assert_eq!(p.query("SELECT count(*) FROM prep.orders_clean"), ["4"]);
    p.edit("pipeline.rhai", "count(nope) AS n", "count(*) AS n");
    p.run(&[]).ok();
    assert!(
        !p.ran().contains("prep.orders_clean"),
        "the current build survived gc and was reused: {:?}",
        p.ran()
    );
    assert_eq!(p.query("SELECT count(*) FROM prep.orders_clean"), ["3"]);
    // Going back to the first code rebuilds: its build was old and is gone.
    p.edit("pipeline.rhai", "WHERE o.amount > 90", "WHERE o.amount > 0");
    p.run(&[]).ok();
    assert_eq!(
        p.ran(),
        set(&["prep.orders_clean", "marts.by_segment", "marts.big_orders"])
    );
    p.weir(&["cache", "gc", "--older-than", "soon"])
        .fails_with(2);
}

/// A file a killed process left half-written beside a manifest (object_store writes `x#N`
/// and renames it) is removed by gc, and said.
#[test]
fn gc_removes_half_written_leftovers() {
    let p = Project::standard();
    p.run(&[]).ok();
    p.file(".weir/default/manifests/prep.json#7", "{\"stage\": \"pr");
    let gc = p.weir(&["cache", "gc"]).ok();
    assert!(gc.stdout.contains("half-written"), "{}", gc.stdout);
    assert!(!p.path(".weir/default/manifests/prep.json#7").exists());
    assert_eq!(p.query("SELECT count(*) FROM prep.orders_clean"), ["5"]);
}

/// A small disk, mounted for the test (tmpfs), unmounted when dropped.
struct SmallDisk {
    dir: tempfile::TempDir,
}

impl SmallDisk {
    /// `None` where this process may not mount (not root): the test then says so and passes.
    fn mount(size: &str) -> Option<SmallDisk> {
        let dir = tempfile::tempdir().unwrap();
        let mounted = std::process::Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(dir.path())
            .status()
            .is_ok_and(|s| s.success());
        if !mounted {
            let root = std::process::Command::new("id")
                .arg("-u")
                .output()
                .is_ok_and(|o| o.stdout.starts_with(b"0"));
            assert!(!root, "root could not mount a tmpfs");
            eprintln!("skipped: mounting a small disk needs root");
            return None;
        }
        Some(SmallDisk { dir })
    }
}

impl Drop for SmallDisk {
    fn drop(&mut self) {
        let _ = std::process::Command::new("umount")
            .arg(self.dir.path())
            .status();
    }
}

/// On a full disk a run fails with exit 1 saying the disk is full, committing nothing; `cache
/// gc`, which must take the lock to free space, still runs (it gives up the store's reserve
/// for the lock), and the next run works.
#[test]
fn gc_runs_on_a_full_disk() {
    let Some(disk) = SmallDisk::mount("3m") else {
        return;
    };
    let store = disk.dir.path().join("store");
    let store = store.to_str().unwrap();
    let p = Project::standard();
    p.run(&["--store", store]).ok();
    p.run(&["--store", store, "--force"]).ok();
    let before = p.query_store(store, "SELECT count(*) FROM prep.orders_clean");
    let fill = disk.dir.path().join("fill");
    let _ = std::process::Command::new("dd")
        .args(["if=/dev/zero", "bs=4k"])
        .arg(format!("of={}", fill.display()))
        .output();
    let full = p.run(&["--store", store, "--force"]).fails_with(1);
    assert!(full.stderr.contains("is full"), "{}", full.text());
    assert_eq!(
        p.query_store(store, "SELECT count(*) FROM prep.orders_clean"),
        before
    );

    let gc = p
        .weir(&["cache", "gc", "pipeline.rhai", "--store", store])
        .ok();
    assert!(gc.stdout.contains("freed"), "{}", gc.text());
    std::fs::remove_file(&fill).unwrap();
    p.run(&["--store", store]).ok();
}
