//! `weir-bench`: the measuring half of `scripts/bench`.
//!
//! `weir-bench baseline` runs the TPC-H pipeline's statements on bare DataFusion;
//! `weir-bench run` times that baseline and weir alternately (so drift of a shared machine hits
//! both), takes medians, prints one table and writes `target/bench/latest.json`.

// A developer's tool that reports on the terminal, outside weir's printer.
#![allow(clippy::print_stdout, clippy::print_stderr)]

mod baseline;
mod measure;
mod watch;

use std::path::{Path, PathBuf};
use std::process::Command;

use clap::{Parser, Subcommand};
use serde_json::json;

use measure::{Sample, median};

#[derive(Parser)]
#[command(name = "weir-bench", about = "weir against bare DataFusion on TPC-H")]
struct Args {
    #[command(subcommand)]
    command: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Run the 32 statements on a bare SessionContext, writing Parquet under --out.
    Baseline {
        #[arg(long)]
        example: PathBuf,
        #[arg(long)]
        data: PathBuf,
        #[arg(long)]
        out: PathBuf,
    },
    /// Measure baseline and weir; print the table and write the JSON.
    Run(RunArgs),
}

#[derive(clap::Args)]
struct RunArgs {
    /// The TPC-H scale factor the data was generated at (recorded, and names the JSON).
    #[arg(long, default_value = "1")]
    sf: String,
    /// Folder of the 8 TPC-H Parquet files.
    #[arg(long)]
    data: PathBuf,
    /// The weir binary to measure (a release build).
    #[arg(long)]
    weir: PathBuf,
    /// Runs per figure; the median is reported.
    #[arg(long, default_value_t = 3)]
    runs: usize,
    #[arg(long, default_value = "examples")]
    examples: PathBuf,
    /// Where results go; scratch space is `<out>/work`.
    #[arg(long, default_value = "target/bench")]
    out: PathBuf,
}

#[tokio::main]
async fn main() {
    let result = match Args::parse().command {
        Cmd::Baseline { example, data, out } => baseline::run(&example, &data, &out)
            .await
            .map_err(|e| e.to_string()),
        Cmd::Run(args) => bench(&args),
    };
    if let Err(e) = result {
        eprintln!("weir-bench: {e}");
        std::process::exit(1);
    }
}

/// One iteration's samples.
#[derive(Default)]
struct Samples {
    baseline: Vec<Sample>,
    cold: Vec<Sample>,
    noop: Vec<Sample>,
    change: Vec<Sample>,
    wide_cold: Vec<Sample>,
    wide_noop: Vec<Sample>,
    /// Save -> first task started in `weir watch`, seconds.
    watch: Vec<f64>,
}

struct Bench<'a> {
    args: &'a RunArgs,
    me: PathBuf,
    work: PathBuf,
    tpch: PathBuf,
    data: PathBuf,
    wide: PathBuf,
}

fn bench(args: &RunArgs) -> Result<(), String> {
    // Absolute, so that no path depends on how weir resolves relative ones.
    let abs = |p: &Path| std::path::absolute(p).map_err(|e| format!("{}: {e}", p.display()));
    let work = abs(&args.out)?.join("work");
    reset(&work)?;
    let tpch = work.join("tpch");
    // The pipeline is copied so that the one-change figure can edit a query without touching
    // the repository.
    copy_dir(&args.examples.join("tpch"), &tpch)?;
    let b = Bench {
        args,
        me: std::env::current_exe().map_err(|e| e.to_string())?,
        data: abs(&args.data)?,
        wide: abs(&args.examples.join("wide/pipeline.rhai"))?,
        work,
        tpch,
    };
    let mut s = Samples::default();
    for i in 1..=args.runs {
        eprintln!("run {i} of {}", args.runs);
        s.baseline.push(b.baseline()?);
        s.cold.push(b.weir_tpch(true)?);
        s.noop.push(b.weir_tpch(false)?);
        s.change.push(b.one_change()?);
        s.wide_cold.push(b.wide(true)?);
        s.wide_noop.push(b.wide(false)?);
    }
    // After the loop: the watcher's run needs the store warm, and it would otherwise compete
    // with the alternating measurements.
    s.watch = watch::save_to_start(&args.weir, &b.tpch, &b.data, &b.work.join("store"), 5)?;
    let report = summarize(args, &s);
    print_table(&report);
    write_json(&args.out, &args.sf, &report)
}

impl Bench<'_> {
    fn baseline(&self) -> Result<Sample, String> {
        let out = self.work.join("baseline");
        reset(&out)?;
        for schema in ["raw", "prep", "marts"] {
            reset(&out.join(schema))?;
        }
        let mut cmd = Command::new(&self.me);
        cmd.arg("baseline")
            .arg("--example")
            .arg(&self.tpch)
            .arg("--data")
            .arg(&self.data)
            .arg("--out")
            .arg(&out);
        self.measure(&mut cmd)
    }

    fn weir_tpch(&self, cold: bool) -> Result<Sample, String> {
        let store = self.work.join("store");
        if cold {
            reset(&store)?;
        }
        let mut cmd = Command::new(&self.args.weir);
        cmd.arg("run")
            .arg(self.tpch.join("pipeline.rhai"))
            .arg("--param")
            .arg(format!("data={}", self.data.display()))
            .arg("--store")
            .arg(&store)
            .arg("--quiet");
        let sample = self.measure(&mut cmd)?;
        let expected = if cold { 32 } else { 0 };
        check_ran(&sample, expected)?;
        Ok(sample)
    }

    /// Edits q06's quantity bound, runs, and puts it back: exactly one task must run.
    fn one_change(&self) -> Result<Sample, String> {
        let q06 = self.tpch.join("queries/q06.sql");
        let original = std::fs::read_to_string(&q06).map_err(|e| e.to_string())?;
        let edited = original.replace("l_quantity < 24", "l_quantity < 25");
        if edited == original {
            return Err("q06.sql no longer has `l_quantity < 24` to edit".into());
        }
        std::fs::write(&q06, edited).map_err(|e| e.to_string())?;
        let sample = self.weir_tpch_any();
        std::fs::write(&q06, original).map_err(|e| e.to_string())?;
        sample
    }

    fn weir_tpch_any(&self) -> Result<Sample, String> {
        let mut cmd = Command::new(&self.args.weir);
        cmd.arg("run")
            .arg(self.tpch.join("pipeline.rhai"))
            .arg("--param")
            .arg(format!("data={}", self.data.display()))
            .arg("--store")
            .arg(self.work.join("store"))
            .arg("--quiet");
        self.measure(&mut cmd)
    }

    fn wide(&self, cold: bool) -> Result<Sample, String> {
        let store = self.work.join("wide-store");
        if cold {
            reset(&store)?;
        }
        let mut cmd = Command::new(&self.args.weir);
        cmd.arg("run")
            .arg(&self.wide)
            .arg("--store")
            .arg(&store)
            .arg("--quiet");
        let sample = self.measure(&mut cmd)?;
        check_ran(&sample, if cold { 1000 } else { 0 })?;
        Ok(sample)
    }

    fn measure(&self, cmd: &mut Command) -> Result<Sample, String> {
        measure::run(cmd, &self.work)
    }
}

/// The number of tasks weir's summary says ran (`32 tasks: 1 ran, 31 cached, ...`).
fn tasks_ran(stdout: &str) -> Option<usize> {
    let line = stdout.lines().find(|l| l.contains(" tasks: "))?;
    let after = line.split(" tasks: ").nth(1)?;
    after.split(" ran").next()?.trim().parse().ok()
}

fn check_ran(sample: &Sample, expected: usize) -> Result<(), String> {
    match tasks_ran(&sample.stdout) {
        Some(n) if n == expected => Ok(()),
        other => Err(format!(
            "expected {expected} tasks to run, weir said {other:?}:\n{}",
            sample.stdout
        )),
    }
}

fn secs(samples: &[Sample]) -> f64 {
    median(samples.iter().map(|s| s.wall.as_secs_f64()).collect())
}

fn rss(samples: &[Sample]) -> f64 {
    median(samples.iter().map(|s| s.rss_mb).collect())
}

fn summarize(args: &RunArgs, s: &Samples) -> serde_json::Value {
    let baseline = secs(&s.baseline);
    let cold = secs(&s.cold);
    let change_ran: Vec<usize> = s
        .change
        .iter()
        .map(|x| tasks_ran(&x.stdout).unwrap_or(usize::MAX))
        .collect();
    let all = |v: &[Sample]| v.iter().map(|x| x.wall.as_secs_f64()).collect::<Vec<_>>();
    json!({
        "sf": args.sf.parse::<f64>().unwrap_or(f64::NAN),
        "runs": args.runs,
        "cores": std::thread::available_parallelism().map_or(0, |n| n.get()),
        "date": chrono::Utc::now().to_rfc3339(),
        "baseline_cold_s": baseline,
        "weir_cold_s": cold,
        "cold_ratio": cold / baseline,
        "noop_ms": secs(&s.noop) * 1000.0,
        "change_tasks_run": change_ran.iter().copied().max().unwrap_or(0),
        "change_s": secs(&s.change),
        "wide_tasks": 1000,
        "wide_cold_s": secs(&s.wide_cold),
        "wide_noop_ms": secs(&s.wide_noop) * 1000.0,
        "watch_start_ms": measure::median(s.watch.clone()) * 1000.0,
        "baseline_rss_mb": rss(&s.baseline),
        "weir_rss_mb": rss(&s.cold),
        "weir_noop_rss_mb": rss(&s.noop),
        "wide_cold_rss_mb": rss(&s.wide_cold),
        "samples_s": {
            "baseline": all(&s.baseline),
            "weir_cold": all(&s.cold),
            "noop": all(&s.noop),
            "change": all(&s.change),
            "wide_cold": all(&s.wide_cold),
            "wide_noop": all(&s.wide_noop),
        },
    })
}

fn print_table(r: &serde_json::Value) {
    let f = |k: &str| r[k].as_f64().unwrap_or(f64::NAN);
    let base = f("baseline_cold_s");
    println!(
        "weir bench: TPC-H sf {}, median of {} runs, {} cores",
        r["sf"], r["runs"], r["cores"]
    );
    println!(
        "{:<26} {:>10} {:>10} {:>9}  target",
        "", "wall", "peak RSS", "vs base"
    );
    let row = |name: &str, wall: String, rss: String, ratio: String, target: &str| {
        println!("{name:<26} {wall:>10} {rss:>10} {ratio:>9}  {target}");
    };
    let mb = |x: f64| format!("{x:.0} MB");
    row(
        "baseline (bare DataFusion)",
        format!("{base:.2} s"),
        mb(f("baseline_rss_mb")),
        "1.00x".into(),
        "",
    );
    row(
        "weir cold",
        format!("{:.2} s", f("weir_cold_s")),
        mb(f("weir_rss_mb")),
        format!("{:.2}x", f("cold_ratio")),
        "<= 1.10x; RSS <= base + 64 MB",
    );
    row(
        "weir no-op",
        format!("{:.0} ms", f("noop_ms")),
        mb(f("weir_noop_rss_mb")),
        String::new(),
        "< 50 ms",
    );
    row(
        &format!("weir one change ({} ran)", r["change_tasks_run"]),
        format!("{:.2} s", f("change_s")),
        String::new(),
        format!("{:.2}x", f("change_s") / base),
        "exactly 1 task",
    );
    row(
        "1,000 tasks cold",
        format!("{:.2} s", f("wide_cold_s")),
        mb(f("wide_cold_rss_mb")),
        String::new(),
        "",
    );
    row(
        "1,000 tasks no-op",
        format!("{:.0} ms", f("wide_noop_ms")),
        String::new(),
        String::new(),
        "< 500 ms",
    );
    row(
        "watch: save -> re-run",
        format!("{:.0} ms", f("watch_start_ms")),
        String::new(),
        String::new(),
        "< 150 ms",
    );
    println!(
        "RSS: weir - baseline = {:+.0} MB",
        f("weir_rss_mb") - f("baseline_rss_mb")
    );
}

fn write_json(out: &Path, sf: &str, report: &serde_json::Value) -> Result<(), String> {
    let text = serde_json::to_string_pretty(report).map_err(|e| e.to_string())? + "\n";
    let stamp = chrono::Utc::now().format("%Y%m%dT%H%M%SZ");
    for name in ["latest.json".to_string(), format!("{stamp}-sf{sf}.json")] {
        let path = out.join(name);
        std::fs::write(&path, &text).map_err(|e| format!("{}: {e}", path.display()))?;
        println!("wrote {}", path.display());
    }
    Ok(())
}

fn reset(dir: &Path) -> Result<(), String> {
    if dir.exists() {
        std::fs::remove_dir_all(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    }
    std::fs::create_dir_all(dir).map_err(|e| format!("{}: {e}", dir.display()))
}

fn copy_dir(from: &Path, to: &Path) -> Result<(), String> {
    std::fs::create_dir_all(to).map_err(|e| e.to_string())?;
    for entry in std::fs::read_dir(from).map_err(|e| format!("{}: {e}", from.display()))? {
        let entry = entry.map_err(|e| e.to_string())?;
        let target = to.join(entry.file_name());
        if entry.file_name() == ".weir" {
            continue; // a store left by running the example by hand
        }
        if entry.path().is_dir() {
            copy_dir(&entry.path(), &target)?;
        } else {
            std::fs::copy(entry.path(), &target).map_err(|e| e.to_string())?;
        }
    }
    Ok(())
}
