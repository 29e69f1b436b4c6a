//! Every folder of `tests/fixtures/bad/` is a project with one bad input. Its `case.toml` gives
//! the command line and the exit code; `expected.txt` holds what weir printed, with temp paths
//! and timings normalized. `WEIR_BLESS=1 cargo test bad_inputs` rewrites the snapshots.

use std::collections::BTreeMap;
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
    let bless = std::env::var_os("WEIR_BLESS").is_some();
    let mut names: Vec<PathBuf> = std::fs::read_dir(corpus())
        .expect("tests/fixtures/bad")
        .map(|e| e.expect("entry").path())
        .filter(|p| p.is_dir())
        .collect();
    names.sort();
    assert!(names.len() >= 40, "the corpus has {} cases", names.len());
    // Four at a time: each case mostly waits on its own weir process.
    let chunk = names.len().div_ceil(4);
    let failures: Vec<String> = std::thread::scope(|scope| {
        let workers: Vec<_> = names
            .chunks(chunk)
            .map(|part| {
                scope.spawn(move || {
                    part.iter()
                        .filter_map(|d| check(d, bless).err())
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
        "{} of {} cases differ:\n\n{}",
        failures.len(),
        names.len(),
        failures.join("\n\n")
    );
}

fn check(dir: &Path, bless: bool) -> Result<(), String> {
    let name = dir.file_name().unwrap_or_default().to_string_lossy();
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
    let out = cmd.output().map_err(|e| format!("{name}: {e}"))?;
    let code = out.status.code().unwrap_or(-1);
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    let actual = normalize(
        &format!(
            "$ weir {}\nexit {code}\n--- stdout\n{stdout}--- stderr\n{stderr}",
            case.args.join(" ")
        ),
        p.dir.path(),
    );
    if actual.contains("panicked") {
        return Err(format!("{name}: weir panicked:\n{actual}"));
    }
    if code != case.code {
        return Err(format!(
            "{name}: exit {code}, expected {}:\n{actual}",
            case.code
        ));
    }
    let expected_path = dir.join("expected.txt");
    if bless {
        std::fs::write(&expected_path, &actual).map_err(|e| format!("{name}: {e}"))?;
        return Ok(());
    }
    let expected = std::fs::read_to_string(&expected_path).unwrap_or_default();
    if expected != actual {
        return Err(format!(
            "{name}: output differs (WEIR_BLESS=1 to accept)\n--- expected\n{expected}\n--- actual\n{actual}"
        ));
    }
    Ok(())
}

/// The case's files, without its `case.toml` and `expected.txt`.
fn copy_case(src: &Path, dst: &Path) {
    for e in std::fs::read_dir(src).expect("case dir").flatten() {
        let (from, to) = (e.path(), dst.join(e.file_name()));
        if from.is_dir() {
            std::fs::create_dir_all(&to).expect("mkdir");
            copy_case(&from, &to);
        } else if !matches!(e.file_name().to_str(), Some("case.toml" | "expected.txt")) {
            std::fs::copy(&from, &to).expect("copy");
        }
    }
}

/// Paths of the temporary project, durations, run ids and cache keys vary between runs.
fn normalize(text: &str, dir: &Path) -> String {
    let mut out = text.to_string();
    for d in [dir.to_path_buf(), dir.canonicalize().unwrap_or_default()] {
        let d = d.display().to_string();
        if !d.is_empty() {
            out = out.replace(&d, "[PROJECT]");
            // Object-store paths drop the leading slash.
            out = out.replace(d.trim_start_matches('/'), "[PROJECT]");
        }
    }
    let words: Vec<&str> = out
        .split_inclusive(|c: char| c.is_whitespace() || c == '(' || c == ')')
        .collect();
    let mut masked = String::with_capacity(out.len());
    for (i, word) in words.iter().enumerate() {
        let next = words
            .get(i + 1)
            .map_or("", |w| w.trim_end_matches([' ', '\n', ')']));
        masked.push_str(&mask(word, next));
    }
    masked
}

/// A duration (`12 ms`, `1.20 s`), a run id (`20250101T...`) or a hex key varies between runs.
fn mask(word: &str, next: &str) -> String {
    let body = word.trim_end_matches(|c: char| c.is_whitespace() || c == ')' || c == '(');
    let rest = &word[body.len()..];
    let number = !body.is_empty()
        && body.chars().all(|c| c.is_ascii_digit() || c == '.')
        && body.chars().any(|c| c.is_ascii_digit());
    let hex = body.len() >= 12 && body.chars().all(|c| c.is_ascii_hexdigit());
    let run_id = body.len() >= 15
        && body.as_bytes()[..8].iter().all(u8::is_ascii_digit)
        && body.as_bytes()[8] == b'T';
    if number && matches!(next, "ms" | "s") {
        format!("[N]{rest}")
    } else if hex || run_id {
        format!("[ID]{rest}")
    } else {
        word.to_string()
    }
}
