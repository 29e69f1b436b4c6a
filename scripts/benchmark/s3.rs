//! The TPC-H example with its store on S3 against the same on a local folder: cold, no-op and
//! one change, each store in turn, with the requests each run made (from its run record). The
//! 1,000-task DAG's no-op shows how requests grow: with stages (10), not tables (1,000).
//!
//! The S3 server must be running already (scripts/bench --s3 starts s3s-fs on loopback) with
//! the `AWS_*` variables set; `--root` is the folder it keeps its buckets in, read for the run
//! records and emptied for the cold runs.

use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::json;

use crate::measure::{self, Sample, median};
use crate::record::{self, RunRecord};

#[derive(clap::Args)]
pub struct S3Args {
    /// The weir binary to measure (a release build).
    #[arg(long)]
    weir: PathBuf,
    /// Folder of the 8 TPC-H Parquet files (read from the local disk by both).
    #[arg(long)]
    data: PathBuf,
    /// The scale factor of --data (recorded).
    #[arg(long, default_value = "0.1")]
    sf: String,
    #[arg(long, default_value_t = 3)]
    runs: usize,
    /// The store on S3: `s3://bucket/prefix`.
    #[arg(long, default_value = "s3://bench/weir")]
    url: String,
    /// The S3 server's root folder (`<root>/<bucket>/<key>` is an object).
    #[arg(long)]
    root: PathBuf,
    #[arg(long, default_value = "examples")]
    examples: PathBuf,
    /// Where results go; scratch space is `<out>/work-s3`.
    #[arg(long, default_value = "target/bench")]
    out: PathBuf,
}

/// A store: what `--store` is given, and the folder its objects are in on this machine.
struct Store {
    name: &'static str,
    arg: String,
    dir: PathBuf,
}

/// One store's samples.
#[derive(Default)]
struct Runs {
    cold: Vec<(Sample, RunRecord)>,
    noop: Vec<(Sample, RunRecord)>,
    change: Vec<(Sample, RunRecord)>,
    wide_cold: Vec<(Sample, RunRecord)>,
    wide_noop: Vec<(Sample, RunRecord)>,
}

pub fn run(args: &S3Args) -> Result<(), String> {
    if std::env::var_os("AWS_ENDPOINT_URL").is_none() {
        return Err("set AWS_ENDPOINT_URL (and the other AWS_* variables) to the S3 server".into());
    }
    let (bucket, prefix) = args
        .url
        .strip_prefix("s3://")
        .and_then(|rest| rest.split_once('/'))
        .ok_or_else(|| format!("{} is not s3://bucket/prefix", args.url))?;
    let work = crate::abs(&args.out)?.join("work-s3");
    crate::reset(&work)?;
    let tpch = work.join("tpch");
    crate::copy_dir(&args.examples.join("tpch"), &tpch)?;
    let data = crate::abs(&args.data)?;
    let wide = crate::abs(&args.examples.join("wide/pipeline.rhai"))?;
    let root = crate::abs(&args.root)?.join(bucket);
    let stores = [
        Store {
            name: "local",
            arg: work.join("store").display().to_string(),
            dir: work.join("store"),
        },
        Store {
            name: "s3",
            arg: args.url.clone(),
            dir: root.join(prefix),
        },
    ];
    let wide_stores = [
        Store {
            name: "local",
            arg: work.join("wide-store").display().to_string(),
            dir: work.join("wide-store"),
        },
        Store {
            name: "s3",
            arg: format!("{}-wide", args.url),
            dir: root.join(format!("{prefix}-wide")),
        },
    ];
    let tpch_run = |store: &Store, expected: usize| -> Result<(Sample, RunRecord), String> {
        let mut cmd = Command::new(&args.weir);
        cmd.arg("run")
            .arg(tpch.join("pipeline.rhai"))
            .arg("--param")
            .arg(format!("data={}", data.display()))
            .arg("--store")
            .arg(&store.arg)
            .arg("--quiet");
        measured(&mut cmd, &work, &store.dir, expected)
    };
    let wide_run = |store: &Store, expected: usize| -> Result<(Sample, RunRecord), String> {
        let mut cmd = Command::new(&args.weir);
        cmd.arg("run")
            .arg(&wide)
            .arg("--store")
            .arg(&store.arg)
            .arg("--quiet");
        measured(&mut cmd, &work, &store.dir, expected)
    };
    let (q06, original, edited) = crate::q06_change(&tpch)?;
    let write = |text: &str| std::fs::write(&q06, text).map_err(|e| e.to_string());

    let mut runs: [Runs; 2] = Default::default();
    for i in 1..=args.runs {
        eprintln!("run {i} of {}", args.runs);
        // Each step on both stores before the next, so that drift hits both alike.
        for (s, r) in stores.iter().zip(runs.iter_mut()) {
            clear(&s.dir)?;
            r.cold.push(tpch_run(s, 32)?);
        }
        for (s, r) in stores.iter().zip(runs.iter_mut()) {
            r.noop.push(tpch_run(s, 0)?);
        }
        write(&edited)?;
        for (s, r) in stores.iter().zip(runs.iter_mut()) {
            let sample = tpch_run(s, 1);
            if sample.is_err() {
                write(&original)?;
            }
            r.change.push(sample?);
        }
        write(&original)?;
        for (s, r) in wide_stores.iter().zip(runs.iter_mut()) {
            clear(&s.dir)?;
            r.wide_cold.push(wide_run(s, 1000)?);
            r.wide_noop.push(wide_run(s, 0)?);
        }
    }
    let report = summarize(args, &stores, &runs);
    print_table(&report);
    crate::write_json(&args.out, &format!("s3-sf{}", args.sf), &report)
}

fn measured(
    cmd: &mut Command,
    work: &Path,
    store: &Path,
    expected: usize,
) -> Result<(Sample, RunRecord), String> {
    let sample = measure::run(cmd, work)?;
    crate::check_ran(&sample, expected)?;
    Ok((sample, record::last(store)?))
}

fn clear(dir: &Path) -> Result<(), String> {
    if dir.exists() {
        std::fs::remove_dir_all(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    }
    Ok(())
}

fn summarize(args: &S3Args, stores: &[Store; 2], runs: &[Runs; 2]) -> serde_json::Value {
    let figure = |samples: &[(Sample, RunRecord)]| {
        let wall = median(samples.iter().map(|(s, _)| s.wall.as_secs_f64()).collect());
        // Requests are the same from run to run but for the lock's refreshes in long runs: the
        // median of each kind.
        let kind = |f: fn(&record::Requests) -> u64| {
            median(
                samples
                    .iter()
                    .filter_map(|(_, r)| r.requests.as_ref().map(f))
                    .map(|n| n as f64)
                    .collect(),
            )
        };
        json!({
            "wall_s": wall,
            "rss_mb": median(samples.iter().map(|(s, _)| s.rss_mb).collect()),
            "requests": {
                "get": kind(|r| r.get),
                "head": kind(|r| r.head),
                "put": kind(|r| r.put),
                "list": kind(|r| r.list),
                "delete": kind(|r| r.delete),
                "total": kind(|r| r.total()),
            },
            "samples_s": samples.iter().map(|(s, _)| s.wall.as_secs_f64()).collect::<Vec<_>>(),
        })
    };
    let mut out = serde_json::Map::new();
    for (s, r) in stores.iter().zip(runs) {
        out.insert(
            s.name.to_string(),
            json!({
                "store": s.arg,
                "cold": figure(&r.cold),
                "noop": figure(&r.noop),
                "change": figure(&r.change),
                "wide_cold": figure(&r.wide_cold),
                "wide_noop": figure(&r.wide_noop),
            }),
        );
    }
    let mut report = crate::header(&args.sf, args.runs);
    report["stores"] = json!(out);
    report
}

fn print_table(r: &serde_json::Value) {
    println!(
        "weir bench: store on S3 against a local folder, TPC-H sf {}, median of {} runs",
        r["sf"], r["runs"]
    );
    println!(
        "{:<28} {:>10} {:>10} {:>8}  {:<28} target",
        "", "local", "S3", "S3/local", "S3 requests"
    );
    let local = &r["stores"]["local"];
    let s3 = &r["stores"]["s3"];
    for (name, key, target) in [
        ("TPC-H cold (32 tasks)", "cold", ""),
        ("TPC-H no-op", "noop", "S3 < 200 ms"),
        ("TPC-H one change (q06)", "change", ""),
        ("1,000 tasks cold", "wide_cold", ""),
        ("1,000 tasks no-op", "wide_noop", "requests ~ stages"),
    ] {
        let wall = |v: &serde_json::Value| v[key]["wall_s"].as_f64().unwrap_or(f64::NAN);
        let q = &s3[key]["requests"];
        let n = |k: &str| q[k].as_f64().unwrap_or(f64::NAN);
        let time = |s: f64| match s < 1.0 {
            true => format!("{:.0} ms", s * 1000.0),
            false => format!("{s:.2} s"),
        };
        println!(
            "{name:<28} {:>10} {:>10} {:>7.2}x  {:<28} {target}",
            time(wall(local)),
            time(wall(s3)),
            wall(s3) / wall(local),
            format!(
                "{:.0} (get {:.0} head {:.0} put {:.0} list {:.0} del {:.0})",
                n("total"),
                n("get"),
                n("head"),
                n("put"),
                n("list"),
                n("delete")
            ),
        );
    }
}
