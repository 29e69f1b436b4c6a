//! The 22 marts rebuilt, which is what a user who edits queries waits for: weir's
//! `run --select stage:marts --force` (a process of its own, its wall time) against DuckDB running
//! the same 22 statements over its own tables, as `CREATE TABLE AS` and as `COPY ... TO` Parquet
//! (`duckdb_baseline.py --rebuild`), in total and query by query.

use std::process::Command;

use serde::Deserialize;
use serde_json::json;

use crate::measure::{Sample, median};
use crate::record::RunRecord;
use crate::{Bench, Loads, Side, Timed, reset, round3};

/// What `duckdb_baseline.py --rebuild` prints: each query's seconds both ways.
#[derive(Deserialize)]
pub(crate) struct Rebuild {
    pub(crate) duckdb: String,
    pub(crate) ctas: Vec<Timed>,
    pub(crate) copy: Vec<Timed>,
}

/// weir rebuilding the 22 marts in the store the cold run built.
pub(crate) fn weir(b: &Bench) -> Result<(Sample, RunRecord), String> {
    let more = ["--select", "stage:marts", "--force"];
    b.weir_tpch_with(Loads::Copied, false, Some(22), &more)
}

pub(crate) fn duckdb(b: &Bench) -> Result<(Sample, Rebuild), String> {
    let out = b.work.join("duckdb-rebuild");
    reset(&out)?;
    let mut cmd = Command::new(&b.args.python);
    cmd.arg(&b.duckdb)
        .arg("--rebuild")
        .arg("--example")
        .arg(&b.tpch)
        .arg("--data")
        .arg(&b.data)
        .arg("--out")
        .arg(&out);
    if let Some(limit) = &b.args.memory_limit {
        cmd.arg("--memory-limit").arg(limit);
    }
    let sample = b.measure(&mut cmd)?;
    let line = sample.stdout.lines().rev().find(|l| l.starts_with('{'));
    let rebuild = line
        .and_then(|l| serde_json::from_str(l).ok())
        .ok_or_else(|| format!("no timings in what DuckDB printed:\n{}", sample.stdout))?;
    std::fs::remove_dir_all(&out).map_err(|e| e.to_string())?;
    Ok((sample, rebuild))
}

/// Totals and each query's median seconds; ratios against DuckDB's `CREATE TABLE AS`.
pub(crate) fn report(weir: &Side<RunRecord>, duck: &Side<Rebuild>) -> serde_json::Value {
    let total = |v: &[Timed]| v.iter().map(|t| t.s).sum::<f64>();
    let ctas = median(duck.details.iter().map(|r| total(&r.ctas)).collect());
    let copy = median(duck.details.iter().map(|r| total(&r.copy)).collect());
    let wall = weir.secs();
    let tasks = median(weir.details.iter().map(|r| r.stage_s("marts")).collect());
    let of = |v: &[Timed], task: &str| v.iter().find(|t| t.task == task).map(|t| t.s);
    let mut queries = serde_json::Map::new();
    for q in 1..=22 {
        let task = format!("marts.q{q:02}");
        let w = median(
            weir.details
                .iter()
                .filter_map(|r| {
                    r.ran()
                        .get(task.as_str())
                        .map(|t| t.duration_ms as f64 / 1e3)
                })
                .collect(),
        );
        let c = median(
            duck.details
                .iter()
                .filter_map(|r| of(&r.ctas, &task))
                .collect(),
        );
        let p = median(
            duck.details
                .iter()
                .filter_map(|r| of(&r.copy, &task))
                .collect(),
        );
        queries.insert(
            task,
            json!({ "weir": round3(w), "ctas": round3(c), "copy": round3(p), "vs_ctas": round3(w / c) }),
        );
    }
    json!({
        "duckdb_version": duck.details.first().map(|r| r.duckdb.clone()),
        "weir_wall_s": wall,
        "weir_tasks_s": tasks,
        "duckdb_ctas_s": ctas,
        "duckdb_copy_s": copy,
        "vs_ctas": wall / ctas,
        "vs_copy": wall / copy,
        "queries": queries,
    })
}

pub fn print(r: &serde_json::Value) {
    let f = |k: &str| r[k].as_f64().unwrap_or(f64::NAN);
    if f("weir_wall_s").is_nan() {
        return;
    }
    println!(
        "marts rebuilt (--select stage:marts --force): weir {:.2} s wall ({:.2} s in its tasks); \
         DuckDB {} CREATE TABLE AS {:.2} s, COPY TO Parquet {:.2} s; {:.2}x and {:.2}x (target <= 1.5x CREATE TABLE AS)",
        f("weir_wall_s"),
        f("weir_tasks_s"),
        r["duckdb_version"].as_str().unwrap_or("?"),
        f("duckdb_ctas_s"),
        f("duckdb_copy_s"),
        f("vs_ctas"),
        f("vs_copy"),
    );
    let Some(queries) = r["queries"].as_object() else {
        return;
    };
    println!(
        "  {:<10} {:>8} {:>8} {:>8} {:>8}",
        "query", "weir", "CTAS", "COPY", "vs CTAS"
    );
    for (task, q) in queries {
        let g = |k: &str| q[k].as_f64().unwrap_or(f64::NAN);
        println!(
            "  {task:<10} {:>8.3} {:>8.3} {:>8.3} {:>7.2}x",
            g("weir"),
            g("ctas"),
            g("copy"),
            g("vs_ctas")
        );
    }
}
