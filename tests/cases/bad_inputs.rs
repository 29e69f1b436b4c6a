//! Every folder of `tests/fixtures/bad/` is a project with one bad input. Its `case.toml` gives
//! the command line and the exit code; `<case>.snap` beside it is the insta snapshot of what weir
//! printed (exit code, stdout, stderr), with temp paths, timings, run ids and keys masked by insta
//! filters. A changed output leaves `<case>.snap.new` to accept with `cargo insta review`
//! (`cargo insta test --review --test main -- bad_inputs` runs and reviews), or
//! `INSTA_UPDATE=always cargo test --test main bad_inputs` writes every `.snap` at once.

use std::collections::BTreeMap;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::{Path, PathBuf};

use serde::Deserialize;

use crate::common::Project;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Case {
    /// Arguments after `weir`.
    args: Vec<String>,
    /// Expected exit code: 1 task or data failure, 2 usage or script error.
    code: i32,
    /// Extra environment for the command.
    #[serde(default)]
    env: BTreeMap<String, String>,
    /// Commands run before, each expected to succeed (to commit something first).
    #[serde(default)]
    before: Vec<Vec<String>>,
}

fn corpus() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/bad")
}

/// Every bad input exits with its code, never panics, and prints the snapshotted diagnostic.
#[test]
fn bad_inputs_are_snapshotted() {
    let mut names: Vec<PathBuf> = std::fs::read_dir(corpus())
        .expect("tests/fixtures/bad")
        .map(|e| e.expect("entry").path())
        .filter(|p| p.is_dir())
        .collect();
    names.sort();
    assert!(names.len() >= 40, "the corpus has {} cases", names.len());
    // Four at a time: each case mostly waits on its own weir process. insta's settings are
    // per thread, so each case binds its own.
    let chunk = names.len().div_ceil(4);
    let failures: Vec<String> = std::thread::scope(|scope| {
        let workers: Vec<_> = names
            .chunks(chunk)
            .map(|part| {
                scope.spawn(move || {
                    part.iter()
                        .filter_map(|d| check(d).err())
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        workers
            .into_iter()
            .flat_map(|w| w.join().unwrap_or_default())
            .collect()
    });
    assert!(
        failures.is_empty(),
        "{} of {} cases failed (insta printed each snapshot diff above; accept changed output \
         with `cargo insta review` or INSTA_UPDATE=always):\n\n{}",
        failures.len(),
        names.len(),
        failures.join("\n\n")
    );
}

fn check(dir: &Path) -> Result<(), String> {
    let name = dir
        .file_name()
        .unwrap_or_default()
        .to_string_lossy()
        .into_owned();
    let text =
        std::fs::read_to_string(dir.join("case.toml")).map_err(|e| format!("{name}: {e}"))?;
    let case: Case = toml::from_str(&text).map_err(|e| format!("{name}: case.toml: {e}"))?;
    let p = Project::new();
    copy_case(dir, p.dir.path());
    for before in &case.before {
        let args: Vec<&str> = before.iter().map(String::as_str).collect();
        let run = p.weir(&args);
        if run.code != 0 {
            return Err(format!(
                "{name}: `{}` failed:\n{}",
                before.join(" "),
                run.text()
            ));
        }
    }
    let mut cmd = p.command(&case.args.iter().map(String::as_str).collect::<Vec<_>>());
    cmd.envs(&case.env);
    // A differing snapshot panics; catch it so that every case is run and reported.
    let matched = settings(dir, p.dir.path()).bind(|| {
        catch_unwind(AssertUnwindSafe(|| {
            insta_cmd::assert_cmd_snapshot!(name.as_str(), cmd);
        }))
    });
    let snap = dir.join(format!("{name}.snap"));
    if !snap.exists() {
        return Err(format!("{name}: no {name}.snap yet"));
    }
    if matched.is_err() {
        return Err(format!("{name}: the output differs from {name}.snap"));
    }
    // The snapshot matched this run's output, or was just written with it (INSTA_UPDATE=always):
    // it must show the exit code of case.toml, and no panic. (Under INSTA_FORCE_PASS, which
    // `cargo insta test` sets, a differing output passes and this checks the accepted snapshot.)
    let body = snapshot_body(&snap).map_err(|e| format!("{name}: {e}"))?;
    if body.contains("panicked") {
        return Err(format!("{name}: weir panicked:\n{body}"));
    }
    let code = body
        .lines()
        .find_map(|l| l.strip_prefix("exit_code: "))
        .and_then(|c| c.parse::<i32>().ok());
    if code != Some(case.code) {
        let code = code.map_or("no exit code".to_string(), |c| format!("exit {c}"));
        return Err(format!(
            "{name}: {code}, expected exit {} (case.toml):\n{body}",
            case.code
        ));
    }
    Ok(())
}

/// The insta settings of one case: its snapshot beside its inputs, and filters for what varies
/// between runs and machines.
fn settings(dir: &Path, project: &Path) -> insta::Settings {
    let mut s = insta::Settings::clone_current();
    s.set_snapshot_path(dir);
    s.set_prepend_module_to_snapshot(false);
    // The temporary project as given and canonical; object-store paths drop the leading slash.
    for d in [
        project.to_path_buf(),
        project.canonicalize().unwrap_or_default(),
    ] {
        let d = d.display().to_string();
        let d = d.trim_start_matches('/');
        if !d.is_empty() {
            s.add_filter(&format!("/?{}", escape(d)), "[PROJECT]");
        }
    }
    // Words are what lies between whitespace and parentheses. A duration is a number word
    // followed by the word `ms` or `s` (`12 ms`, `1.20 s`); a run id (`20261122T104231793Z-7553b3`)
    // or a key of 12 or more hex digits is one word. A match takes the separator on each side,
    // so a word right after a match is not seen: each filter runs twice.
    let duration = r"(^|[\s()])[0-9.]*[0-9][0-9.]*([\s()])(m?s)([ \n)]|$)";
    let id = r"(^|[\s()])(?:[0-9a-fA-F]{12,}|[0-9]{8}T[^\s()]{6,})([\s()]|$)";
    for _ in 0..2 {
        s.add_filter(duration, "${1}[N]${2}${3}${4}");
    }
    for _ in 0..2 {
        s.add_filter(id, "${1}[ID]${2}");
    }
    s
}

/// `text` as a regex that matches it literally.
fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        if r"\.+*?()|[]{}^$#&-~".contains(c) {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

/// The text of a snapshot file, without its header.
fn snapshot_body(path: &Path) -> Result<String, String> {
    let snapshot = insta::Snapshot::from_file(path).map_err(|e| format!("{e}"))?;
    match snapshot.contents() {
        insta::internals::SnapshotContents::Text(text) => Ok(text.to_string()),
        _ => Err(format!("{} is not a text snapshot", path.display())),
    }
}

/// The case's files, without its `case.toml` and snapshots (`.snap`, pending `.snap.new`).
fn copy_case(src: &Path, dst: &Path) {
    for e in std::fs::read_dir(src).expect("case dir").flatten() {
        let (from, to) = (e.path(), dst.join(e.file_name()));
        let file = e.file_name().to_string_lossy().into_owned();
        if from.is_dir() {
            std::fs::create_dir_all(&to).expect("mkdir");
            copy_dir(&from, &to);
        } else if file != "case.toml" && !file.ends_with(".snap") && !file.ends_with(".snap.new") {
            std::fs::copy(&from, &to).expect("copy");
        }
    }
}

fn copy_dir(src: &Path, dst: &Path) {
    for e in std::fs::read_dir(src).expect("dir").flatten() {
        let (from, to) = (e.path(), dst.join(e.file_name()));
        if from.is_dir() {
            std::fs::create_dir_all(&to).expect("mkdir");
            copy_dir(&from, &to);
        } else {
            std::fs::copy(&from, &to).expect("copy");
        }
    }
}
