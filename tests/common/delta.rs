//! Reading the Delta logs weir writes: by replaying their JSON commits here, and with
//! independent readers (delta-rs and Polars, `tests/fixtures/delta_read.py`).

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use serde_json::{Value, json};

use super::Project;

/// The versions a table's `_delta_log/` holds commits for, in order.
pub fn versions(table_dir: &Path) -> Vec<u64> {
    let mut out: Vec<u64> = std::fs::read_dir(table_dir.join("_delta_log"))
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| {
            let name = e.file_name().to_string_lossy().into_owned();
            name.strip_suffix(".json")?.parse().ok()
        })
        .collect();
    out.sort_unstable();
    out
}

/// The data files of a Delta table's latest version, by replaying every commit's add and
/// remove actions (paths relative to the table's folder).
pub fn live_files(table_dir: &Path) -> BTreeSet<String> {
    let mut files = BTreeSet::new();
    for v in versions(table_dir) {
        let path = table_dir.join(format!("_delta_log/{v:020}.json"));
        let text = std::fs::read_to_string(&path).expect("a Delta commit");
        for line in text.lines().filter(|l| !l.trim().is_empty()) {
            let action: Value = serde_json::from_str(line)
                .unwrap_or_else(|e| panic!("{}: not JSON ({e}): {line}", path.display()));
            if let Some(add) = action["add"]["path"].as_str() {
                files.insert(add.to_string());
            }
            if let Some(remove) = action["remove"]["path"].as_str() {
                files.remove(remove);
            }
        }
    }
    files
}

/// Every committed table's Delta log names exactly the files of its committed build.
#[track_caller]
pub fn logs_match_manifests(instance_dir: &Path, when: &str) {
    let Ok(entries) = std::fs::read_dir(instance_dir.join("manifests")) else {
        return;
    };
    for entry in entries.flatten() {
        let text = std::fs::read_to_string(entry.path()).expect("manifest");
        let Ok(manifest) = serde_json::from_str::<Value>(&text) else {
            continue; // a half-written file of a killed process; the caller checks those
        };
        let stage = manifest["stage"].as_str().expect("stage");
        for (table, build) in manifest["tables"].as_object().expect("tables") {
            if !build["source"].is_null() {
                continue; // read in place: no files in the store
            }
            let prefix = format!("tables/{stage}/{table}/");
            let want: BTreeSet<String> = build["files"]
                .as_array()
                .expect("files")
                .iter()
                .map(|f| {
                    f.as_str()
                        .expect("path")
                        .trim_start_matches(&prefix)
                        .to_string()
                })
                .collect();
            let dir = instance_dir.join("tables").join(stage).join(table);
            assert_eq!(
                live_files(&dir),
                want,
                "{when}: {stage}.{table}'s Delta log"
            );
        }
    }
}

/// One table for `read`: where it is, which version, and the rows it must hold.
pub struct Expected {
    pub table: String,
    pub location: String,
    pub version: Option<u64>,
    pub rows: Value,
    pub storage_options: Option<Value>,
}

impl Expected {
    /// The latest version of a committed table of `p`'s default instance, with the rows weir
    /// returns for it (`weir sql ... -f json`, with `more` arguments such as `--as-of`).
    pub fn committed(p: &Project, table: &str, version: Option<u64>, more: &[&str]) -> Self {
        let (stage, name) = table.split_once('.').expect("stage.table");
        let query = format!("SELECT * FROM {table}");
        let mut args = vec!["sql", query.as_str(), "-f", "json"];
        args.extend_from_slice(more);
        let out = p.weir(&args).ok();
        Expected {
            table: table.to_string(),
            location: table_dir(&p.instance_dir(), stage, name)
                .display()
                .to_string(),
            version,
            rows: serde_json::from_str(&out.stdout).expect("weir's JSON rows"),
            storage_options: None,
        }
    }
}

/// A store server's environment as the readers' `storage_options`.
pub fn storage_options(env: &[(&str, String)]) -> Value {
    env.iter()
        .map(|(k, v)| (k.to_string(), Value::String(v.clone())))
        .collect::<serde_json::Map<_, _>>()
        .into()
}

pub fn table_dir(instance_dir: &Path, stage: &str, table: &str) -> PathBuf {
    instance_dir.join("tables").join(stage).join(table)
}

/// Read each table with delta-rs and Polars (and DuckDB where it can) and compare with weir's
/// rows; returns what the readers printed, or `None` outside CI when they are not installed.
#[track_caller]
pub fn read(scratch: &Path, tables: &[Expected]) -> Option<String> {
    read_with(scratch, tables, &[])
}

/// `read`, the readers given `env` (an emulator's address, say).
#[track_caller]
pub fn read_with(scratch: &Path, tables: &[Expected], env: &[(&str, String)]) -> Option<String> {
    let spec: Vec<Value> = tables
        .iter()
        .map(|t| {
            let mut v = json!({
                "table": t.table, "location": t.location, "version": t.version, "expected": t.rows,
            });
            if let Some(o) = &t.storage_options {
                v["storage_options"] = o.clone();
            }
            v
        })
        .collect();
    let file = scratch.join("delta-spec.json");
    std::fs::write(&file, serde_json::to_string(&spec).expect("json")).expect("write spec");
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/delta_read.py");
    let have = std::process::Command::new("python3")
        .args(["-c", "import deltalake, polars"])
        .output()
        .is_ok_and(|o| o.status.success());
    if !have {
        assert!(
            std::env::var_os("CI").is_none(),
            "deltalake and polars are missing in CI (.ci/run installs them)"
        );
        eprintln!("skipped: the deltalake and polars Python packages are not installed");
        return None;
    }
    let out = std::process::Command::new("python3")
        .arg(&script)
        .arg(&file)
        .envs(env.iter().map(|(k, v)| (*k, v)))
        .output()
        .expect("python3");
    let text =
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "the Delta readers disagree with weir:\n{text}"
    );
    Some(text)
}
