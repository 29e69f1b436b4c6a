//! The TPC-H example on a Ballista cluster against the same on weir's own engine: cold, no-op
//! and one change, each engine in turn, median of `--runs`. Executors write the Parquet files
//! themselves (streaming the rows back for weir to write was measured several times slower, and
//! dropped: docs/src/benchmarks.md). Every engine's 22 results must equal the local engine's.
//!
//! The cluster must be running already (`scripts/ballista-cluster start`); the weir binary
//! must be built with `--features ballista`.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::Command;

use serde_json::json;

use crate::measure::{self, Sample, median};
use crate::record::{self, RunRecord};

#[derive(clap::Args)]
pub struct ClusterArgs {
    /// The weir binary to measure (a release build with `--features ballista`).
    #[arg(long)]
    weir: PathBuf,
    /// The cluster: `ballista://HOST:PORT`.
    #[arg(long)]
    engine: String,
    /// Folder of the 8 TPC-H Parquet files (executors read them at the same path).
    #[arg(long)]
    data: PathBuf,
    /// The scale factor of --data (recorded).
    #[arg(long, default_value = "1")]
    sf: String,
    #[arg(long, default_value_t = 3)]
    runs: usize,
    #[arg(long, default_value = "examples")]
    examples: PathBuf,
    /// Where results go; scratch space is `<out>/work-cluster`.
    #[arg(long, default_value = "target/bench")]
    out: PathBuf,
}

/// One way to run: its name and `--engine`.
struct Side {
    name: &'static str,
    engine: String,
}

#[derive(Default)]
struct Runs {
    cold: Vec<(Sample, RunRecord)>,
    noop: Vec<(Sample, RunRecord)>,
    change: Vec<(Sample, RunRecord)>,
}

pub fn run(args: &ClusterArgs) -> Result<(), String> {
    let work = crate::abs(&args.out)?.join("work-cluster");
    crate::reset(&work)?;
    let tpch = work.join("tpch");
    crate::copy_dir(&args.examples.join("tpch"), &tpch)?;
    let data = crate::abs(&args.data)?;
    let sides = [
        Side {
            name: "local",
            engine: "local".into(),
        },
        Side {
            name: "cluster",
            engine: args.engine.clone(),
        },
    ];
    let store = |side: &Side| work.join(format!("store-{}", side.name));
    let tpch_run = |side: &Side, expected: usize| -> Result<(Sample, RunRecord), String> {
        let mut cmd = Command::new(&args.weir);
        cmd.arg("run")
            .arg(tpch.join("pipeline.rhai"))
            .arg("--param")
            .arg(format!("data={}", data.display()))
            .arg("--store")
            .arg(store(side))
            .arg("--engine")
            .arg(&side.engine)
            .arg("--quiet");
        let sample = measure::run(&mut cmd, &work)?;
        crate::check_ran(&sample, expected)?;
        Ok((sample, record::last(&store(side))?))
    };
    let (q06, original, edited) = crate::q06_change(&tpch)?;
    let write = |text: &str| std::fs::write(&q06, text).map_err(|e| e.to_string());

    let mut runs: Vec<Runs> = sides.iter().map(|_| Runs::default()).collect();
    for i in 1..=args.runs {
        eprintln!("run {i} of {}", args.runs);
        // Each step on every side before the next, so that drift hits all alike.
        for (s, r) in sides.iter().zip(runs.iter_mut()) {
            crate::reset(&store(s))?;
            r.cold.push(tpch_run(s, 32)?);
        }
        for (s, r) in sides.iter().zip(runs.iter_mut()) {
            r.noop.push(tpch_run(s, 0)?);
        }
        write(&edited)?;
        for (s, r) in sides.iter().zip(runs.iter_mut()) {
            let sample = tpch_run(s, 1);
            if sample.is_err() {
                write(&original)?;
            }
            r.change.push(sample?);
        }
        write(&original)?;
    }
    let local = crate::digest::weir_marts(&store(&sides[0]))?;
    let mut differ = Vec::new();
    for side in &sides[1..] {
        for line in
            crate::digest::differences(&local, &crate::digest::weir_marts(&store(side))?, true)
        {
            differ.push(format!("{}: {line}", side.name));
        }
    }
    let mut report = summarize(args, &sides, &runs);
    report["differences"] = json!(differ);
    print_table(&report);
    crate::write_json(&args.out, &format!("cluster-sf{}", args.sf), &report)?;
    match differ.is_empty() {
        true => Ok(()),
        false => Err(format!(
            "results differ from the local engine's: {differ:?}"
        )),
    }
}

fn summarize(args: &ClusterArgs, sides: &[Side], runs: &[Runs]) -> serde_json::Value {
    let figure = |samples: &[(Sample, RunRecord)]| {
        json!({
            "wall_s": median(samples.iter().map(|(s, _)| s.wall.as_secs_f64()).collect()),
            "rss_mb": median(samples.iter().map(|(s, _)| s.rss_mb).collect()),
            "samples_s": samples.iter().map(|(s, _)| s.wall.as_secs_f64()).collect::<Vec<_>>(),
        })
    };
    let mut out = serde_json::Map::new();
    for (s, r) in sides.iter().zip(runs) {
        out.insert(
            s.name.to_string(),
            json!({
                "engine": s.engine,
                "cold": figure(&r.cold),
                "noop": figure(&r.noop),
                "change": figure(&r.change),
                "task_ms": task_ms(&r.cold),
            }),
        );
    }
    let mut report = crate::header(&args.sf, args.runs);
    report["sides"] = json!(out);
    report
}

/// Each task's median time in the cold runs, milliseconds.
fn task_ms(cold: &[(Sample, RunRecord)]) -> BTreeMap<String, f64> {
    let mut times: BTreeMap<String, Vec<f64>> = BTreeMap::new();
    for (_, record) in cold {
        for (task, t) in record.ran() {
            times
                .entry(task.to_string())
                .or_default()
                .push(t.duration_ms as f64);
        }
    }
    times.into_iter().map(|(t, xs)| (t, median(xs))).collect()
}

fn print_table(r: &serde_json::Value) {
    println!(
        "weir bench: the TPC-H example on {} against weir's own engine, sf {}, median of {} runs",
        r["sides"]["cluster"]["engine"], r["sf"], r["runs"]
    );
    println!(
        "{:<26} {:>10} {:>10} {:>8}",
        "", "local", "cluster", "/local"
    );
    let side = |name: &str| &r["sides"][name];
    let time = |s: f64| match s {
        s if s.is_nan() => "-".to_string(),
        s if s < 1.0 => format!("{:.0} ms", s * 1000.0),
        s => format!("{s:.2} s"),
    };
    for (name, key) in [
        ("TPC-H cold (32 tasks)", "cold"),
        ("TPC-H no-op", "noop"),
        ("TPC-H one change (q06)", "change"),
    ] {
        let wall = |v: &serde_json::Value| v[key]["wall_s"].as_f64().unwrap_or(f64::NAN);
        let (l, c) = (wall(side("local")), wall(side("cluster")));
        println!("{name:<26} {:>10} {:>10} {:>7.2}x", time(l), time(c), c / l);
    }
    // What the cluster adds to a task: the median over the 32 tasks of (cluster - local).
    let overhead = |name: &str| {
        let local = side("local")["task_ms"]
            .as_object()
            .cloned()
            .unwrap_or_default();
        let other = side(name)["task_ms"]
            .as_object()
            .cloned()
            .unwrap_or_default();
        let deltas = local
            .iter()
            .filter_map(|(t, l)| Some(other.get(t)?.as_f64()? - l.as_f64()?))
            .collect();
        median(deltas)
    };
    println!(
        "per task, cluster - local (median of 32): {:.0} ms",
        overhead("cluster")
    );
    if let Some(d) = r["differences"].as_array().filter(|d| !d.is_empty()) {
        println!("RESULTS DIFFER: {d:?}");
    }
}

/// Join the scheduler at `scheduler` as an executor and serve until killed.
#[cfg(feature = "ballista")]
pub async fn executor(scheduler: &str, vcores: usize) -> Result<(), String> {
    use ballista_core::serde::BallistaCodec;
    use ballista_core::serde::protobuf::scheduler_grpc_client::SchedulerGrpcClient;
    let client = SchedulerGrpcClient::connect(scheduler.to_string())
        .await
        .map_err(|e| format!("{scheduler}: {e}"))?;
    ballista_executor::new_standalone_executor(client, vcores, BallistaCodec::default())
        .await
        .map_err(|e| e.to_string())?;
    eprintln!("executor joined {scheduler}");
    std::future::pending::<()>().await;
    Ok(())
}
