//! `weir-bench`: the measuring half of `scripts/bench`.
//!
//! `weir-bench baseline` runs the TPC-H pipeline's statements on bare DataFusion;
//! `weir-bench run` times that baseline, the same statements on bare DuckDB
//! (`duckdb_baseline.py`) and weir alternately (so drift of a shared machine hits all of them),
//! takes medians, checks that they computed the same, prints one table and writes
//! `target/bench/latest.json`. `weir-bench s3` compares a store on S3 with a local one;
//! `weir-bench compare` the query results of two such JSON files.

// A developer's tool that reports on the terminal, outside weir's printer.
#![allow(clippy::print_stdout, clippy::print_stderr)]
// The JSON written at the end is one large json! literal.
#![recursion_limit = "256"]

mod baseline;
mod cluster;
mod digest;
mod measure;
mod rebuild;
mod record;
mod s3;
mod watch;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

use clap::{Parser, Subcommand, ValueEnum};
use serde::Deserialize;
use serde_json::json;
// The sizes `weir run --memory-limit` takes, so the baseline gets the same number of bytes.
use weir::config::parse_size;

use digest::Digests;
use measure::{Sample, median};
use record::RunRecord;

#[derive(Parser)]
#[command(
    name = "weir-bench",
    about = "weir against bare DataFusion and DuckDB on TPC-H"
)]
struct Args {
    #[command(subcommand)]
    command: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Run the 32 statements on a bare SessionContext, writing Parquet under --out; prints each
    /// statement's time and rows as JSON.
    Baseline {
        #[arg(long)]
        example: PathBuf,
        #[arg(long)]
        data: PathBuf,
        #[arg(long)]
        out: PathBuf,
        /// The pool and settings `weir run --memory-limit SIZE` uses.
        #[arg(long, value_name = "SIZE", value_parser = parse_size)]
        memory_limit: Option<u64>,
        /// Only this query (`q06`), on the 8 files as they are, in a process of its own.
        #[arg(long, value_name = "QUERY", conflicts_with = "memory_limit")]
        only: Option<String>,
    },
    /// Measure the baselines and weir; print the table and write the JSON.
    Run(RunArgs),
    /// The TPC-H example with its store on S3 (an S3-compatible server already running) against
    /// the same on a local folder.
    S3(s3::S3Args),
    /// The TPC-H example on a Ballista cluster (already running) against weir's own engine.
    Cluster(cluster::ClusterArgs),
    /// A Ballista executor process (Ballista's executor library, the version weir links) that
    /// joins the scheduler at --scheduler: a stand-in for `ballista-executor` while that installs.
    #[cfg(feature = "ballista")]
    Executor {
        #[arg(long, default_value = "http://127.0.0.1:50050")]
        scheduler: String,
        #[arg(long, default_value_t = 2)]
        vcores: usize,
    },
    /// Whether two `weir-bench run` JSON files hold the same 22 query results (rows and
    /// checksums); exits 1 if not.
    Compare { a: PathBuf, b: PathBuf },
}

/// Parts of `run` that can be left out, to shorten long runs.
#[derive(Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Part {
    /// The bare DuckDB baselines (copying the 8 files; unless `nocopy` is skipped, also in place).
    Duckdb,
    /// weir's cold run with `--param copy=false` (and DuckDB's reading the files in place).
    Nocopy,
    /// The 1,000-task DAG (independent of the scale factor).
    Wide,
    /// `weir watch`'s save -> re-run latency (independent of the scale factor).
    Watch,
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
    /// Given to weir (`--memory-limit`), to the DataFusion baseline (the same pool and settings)
    /// and to DuckDB (`memory_limit`).
    #[arg(long, value_name = "SIZE")]
    memory_limit: Option<String>,
    /// Parts to leave out (comma-separated).
    #[arg(long, value_enum, value_delimiter = ',')]
    skip: Vec<Part>,
    /// The Python interpreter that runs the DuckDB baseline (with the `duckdb` package).
    #[arg(long, default_value = "python3")]
    python: String,
    #[arg(long, default_value = "scripts/benchmark/duckdb_baseline.py")]
    duckdb_driver: PathBuf,
    #[arg(long, default_value = "examples")]
    examples: PathBuf,
    /// Where results go; scratch space is `<out>/work`.
    #[arg(long, default_value = "target/bench")]
    out: PathBuf,
}

#[tokio::main]
async fn main() {
    let result = match Args::parse().command {
        Cmd::Baseline {
            example,
            data,
            out,
            memory_limit,
            only,
        } => match only {
            Some(name) => baseline::one(&example, &data, &out, &name).await,
            None => baseline::run(&example, &data, &out, memory_limit).await,
        }
        .map_err(|e| e.to_string())
        .and_then(|statements| {
            let text = serde_json::to_string(&json!({ "statements": statements }))
                .map_err(|e| e.to_string())?;
            println!("{text}");
            Ok(())
        }),
        Cmd::Run(args) => bench(&args),
        Cmd::S3(args) => s3::run(&args),
        Cmd::Cluster(args) => cluster::run(&args),
        #[cfg(feature = "ballista")]
        Cmd::Executor { scheduler, vcores } => cluster::executor(&scheduler, vcores).await,
        Cmd::Compare { a, b } => compare(&a, &b),
    };
    if let Err(e) = result {
        eprintln!("weir-bench: {e}");
        std::process::exit(1);
    }
}

/// What a baseline prints: each statement's seconds and rows.
#[derive(Deserialize)]
struct Timings {
    statements: Vec<Timed>,
}

#[derive(Deserialize)]
struct Timed {
    task: String,
    s: f64,
}

impl Timings {
    fn parse(sample: &Sample) -> Result<Self, String> {
        let line = sample.stdout.lines().rev().find(|l| l.starts_with('{'));
        line.and_then(|l| serde_json::from_str(l).ok())
            .ok_or_else(|| {
                format!(
                    "no timings in what the baseline printed:\n{}",
                    sample.stdout
                )
            })
    }

    fn stage_s(&self, stage: &str) -> f64 {
        self.statements
            .iter()
            .filter(|t| t.task.split('.').next() == Some(stage))
            .map(|t| t.s)
            .sum()
    }
}

/// One side's samples, with what each run printed or recorded.
struct Side<T> {
    samples: Vec<Sample>,
    details: Vec<T>,
}

// By hand: the derive would require `T: Default`, which the details need not be.
impl<T> Default for Side<T> {
    fn default() -> Self {
        Self {
            samples: Vec::new(),
            details: Vec::new(),
        }
    }
}

impl<T> Side<T> {
    fn push(&mut self, (sample, detail): (Sample, T)) {
        self.samples.push(sample);
        self.details.push(detail);
    }

    fn secs(&self) -> f64 {
        secs(&self.samples)
    }

    fn rss(&self) -> f64 {
        rss(&self.samples)
    }

    fn anon(&self) -> f64 {
        anon(&self.samples)
    }
}

#[derive(Default)]
struct Samples {
    baseline: Side<Timings>,
    duckdb: Side<Timings>,
    /// DuckDB reading the 8 files where they are, as weir with `copy: false`.
    duckdb_nocopy: Side<Timings>,
    cold: Side<RunRecord>,
    nocopy: Side<RunRecord>,
    noop: Side<RunRecord>,
    change: Side<RunRecord>,
    /// `weir run --select stage:marts --force` in a built store: the 22 queries again.
    rebuild: Side<RunRecord>,
    /// DuckDB running the 22 over its own tables, as `CREATE TABLE AS` and as `COPY ... TO`.
    duckdb_rebuild: Side<rebuild::Rebuild>,
    /// Bare DataFusion running the edited q06 alone.
    change_baseline: Side<Timings>,
    wide_cold: Vec<Sample>,
    wide_noop: Vec<Sample>,
    /// Save -> first task started in `weir watch`, seconds.
    watch: Vec<f64>,
    /// The 22 query results of each side's last run.
    digests: BTreeMap<&'static str, Digests>,
}

/// How the pipeline loads the 8 files; each way has a store of its own.
#[derive(Clone, Copy)]
enum Loads {
    Copied,
    /// `--param copy=false`
    InPlace,
}

impl Loads {
    fn store(self) -> &'static str {
        match self {
            Loads::Copied => "store",
            Loads::InPlace => "store-nocopy",
        }
    }
}

struct Bench<'a> {
    args: &'a RunArgs,
    me: PathBuf,
    work: PathBuf,
    tpch: PathBuf,
    data: PathBuf,
    wide: PathBuf,
    duckdb: PathBuf,
}

fn bench(args: &RunArgs) -> Result<(), String> {
    if let Some(limit) = &args.memory_limit {
        parse_size(limit)?;
    }
    // Absolute, so that no path depends on how weir resolves relative ones.
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
        duckdb: abs(&args.duckdb_driver)?,
        work,
        tpch,
    };
    let skip = |p: Part| args.skip.contains(&p);
    let mut s = Samples::default();
    // A side that fails (a query out of memory under --memory-limit) is reported as failed and
    // left out of later runs; the others go on.
    let mut failed = BTreeMap::<&'static str, String>::new();
    let ok = |failed: &BTreeMap<&str, String>, side: &str| !failed.contains_key(side);
    for i in 1..=args.runs {
        eprintln!("run {i} of {}", args.runs);
        if ok(&failed, "baseline") {
            if let Some(x) = keep(&mut failed, "baseline", b.baseline()) {
                s.baseline.push(x);
                s.digests
                    .insert("baseline", digest::plain_marts(&b.work.join("baseline"))?);
            }
            // What is digested goes, so that at SF 10 the sides' outputs (GBs each) do not pile
            // up.
            remove(&b.work.join("baseline"))?;
        }
        if !skip(Part::Duckdb) && ok(&failed, "duckdb") {
            if let Some(x) = keep(&mut failed, "duckdb", b.duckdb(Loads::Copied)) {
                s.duckdb.push(x);
                s.digests
                    .insert("duckdb", digest::plain_marts(&b.work.join("duckdb"))?);
            }
            remove(&b.work.join("duckdb"))?;
        }
        if ok(&failed, "weir_cold") {
            let cold = b.weir_tpch(Loads::Copied, true, Some(32));
            if let Some(x) = keep(&mut failed, "weir_cold", cold) {
                s.cold.push(x);
                s.digests
                    .insert("weir", digest::weir_marts(&b.work.join("store"))?);
                let noop = b.weir_tpch(Loads::Copied, false, Some(0));
                if let Some(x) = keep(&mut failed, "weir_noop", noop) {
                    s.noop.push(x);
                }
                if let Some(x) = keep(&mut failed, "weir_change", b.one_change()) {
                    s.change.push(x);
                }
                if let Some(x) = keep(&mut failed, "weir_rebuild", rebuild::weir(&b)) {
                    s.rebuild.push(x);
                }
            }
            if let Some(x) = keep(&mut failed, "baseline_change", b.bare_change()) {
                s.change_baseline.push(x);
            }
            if skip(Part::Watch) {
                // Only the watcher, after the loop, needs the store again.
                remove(&b.work.join("store"))?;
            }
        }
        if !skip(Part::Duckdb)
            && ok(&failed, "duckdb_rebuild")
            && let Some(x) = keep(&mut failed, "duckdb_rebuild", rebuild::duckdb(&b))
        {
            s.duckdb_rebuild.push(x);
        }
        if !skip(Part::Nocopy) && ok(&failed, "weir_nocopy") {
            // The 8 loads are only pinned, not written, but they are tasks that run all the same.
            let nocopy = b.weir_tpch(Loads::InPlace, true, Some(32));
            if let Some(x) = keep(&mut failed, "weir_nocopy", nocopy) {
                s.nocopy.push(x);
                s.digests.insert(
                    "weir_nocopy",
                    digest::weir_marts(&b.work.join("store-nocopy"))?,
                );
            }
            remove(&b.work.join("store-nocopy"))?;
        }
        if !skip(Part::Nocopy) && !skip(Part::Duckdb) && ok(&failed, "duckdb_nocopy") {
            if let Some(x) = keep(&mut failed, "duckdb_nocopy", b.duckdb(Loads::InPlace)) {
                s.duckdb_nocopy.push(x);
                s.digests.insert(
                    "duckdb_nocopy",
                    digest::plain_marts(&b.work.join("duckdb-nocopy"))?,
                );
            }
            remove(&b.work.join("duckdb-nocopy"))?;
        }
        if !skip(Part::Wide) {
            s.wide_cold.push(b.wide(true)?);
            s.wide_noop.push(b.wide(false)?);
        }
    }
    // After the loop: the watcher's run needs the store warm, and it would otherwise compete
    // with the alternating measurements.
    if !skip(Part::Watch) && !s.cold.samples.is_empty() {
        s.watch = watch::save_to_start(&args.weir, &b.tpch, &b.data, &b.work.join("store"), 5)?;
    }
    let (checks, differ) = check(&s.digests);
    let mut report = summarize(args, &s, checks);
    report["failed"] = json!(failed);
    print_table(&report);
    for (side, error) in &failed {
        println!("FAILED {side}: {}", gist(error));
    }
    write_json(&args.out, &stem(args), &report)?;
    if differ {
        return Err("the engines' results differ (see `checks` in the JSON)".into());
    }
    match failed.is_empty() {
        true => Ok(()),
        false => Err(format!(
            "{} failed (see `failed` in the JSON)",
            failed.len()
        )),
    }
}

/// The value of `result`, or `None` with its error recorded as `side`'s failure.
fn keep<T>(
    failed: &mut BTreeMap<&'static str, String>,
    side: &'static str,
    result: Result<T, String>,
) -> Option<T> {
    match result {
        Ok(x) => Some(x),
        Err(e) => {
            eprintln!("weir-bench: {side} failed: {e}");
            failed.insert(side, e);
            None
        }
    }
}

/// A failure in a line: how long it ran and its peak RSS, and the error's own line.
fn gist(error: &str) -> String {
    let head = error
        .lines()
        .next()
        .and_then(|l| l.split(" failed ").nth(1))
        .unwrap_or("");
    let lines = error.lines().map(str::trim);
    // weir's own diagnostic comes last (`x prep.t needs more memory ...`); DataFusion's
    // `Error: ...`.
    let cause = lines
        .clone()
        .rev()
        .find(|l| l.starts_with("x "))
        .or_else(|| lines.clone().find(|l| l.starts_with("Error:")))
        .or_else(|| lines.rev().find(|l| !l.is_empty()))
        .unwrap_or("");
    format!("{head} {}", cause.chars().take(240).collect::<String>())
}

impl Bench<'_> {
    fn baseline(&self) -> Result<(Sample, Timings), String> {
        let out = self.work.join("baseline");
        reset(&out)?;
        for schema in ["raw", "prep", "marts"] {
            reset(&out.join(schema))?;
        }
        let mut cmd = self.baseline_command(&out);
        if let Some(limit) = &self.args.memory_limit {
            cmd.arg("--memory-limit").arg(limit);
        }
        let sample = self.measure(&mut cmd)?;
        let timings = Timings::parse(&sample)?;
        Ok((sample, timings))
    }

    fn duckdb(&self, loads: Loads) -> Result<(Sample, Timings), String> {
        let out = self.work.join(match loads {
            Loads::Copied => "duckdb",
            Loads::InPlace => "duckdb-nocopy",
        });
        reset(&out)?;
        let mut cmd = Command::new(&self.args.python);
        cmd.arg(&self.duckdb)
            .arg("--example")
            .arg(&self.tpch)
            .arg("--data")
            .arg(&self.data)
            .arg("--out")
            .arg(&out);
        if let Some(limit) = &self.args.memory_limit {
            cmd.arg("--memory-limit").arg(limit);
        }
        if let Loads::InPlace = loads {
            cmd.arg("--in-place");
        }
        let sample = self.measure(&mut cmd)?;
        let timings = Timings::parse(&sample)?;
        Ok((sample, timings))
    }

    /// A run of the TPC-H copy (into a store emptied first when `cold`), with its record;
    /// `expected` is how many tasks must run.
    fn weir_tpch(
        &self,
        loads: Loads,
        cold: bool,
        expected: Option<usize>,
    ) -> Result<(Sample, RunRecord), String> {
        self.weir_tpch_with(loads, cold, expected, &[])
    }

    /// `weir_tpch` with more arguments to `weir run` (`--select stage:marts --force`).
    fn weir_tpch_with(
        &self,
        loads: Loads,
        cold: bool,
        expected: Option<usize>,
        more: &[&str],
    ) -> Result<(Sample, RunRecord), String> {
        let store = self.work.join(loads.store());
        if cold {
            reset(&store)?;
        }
        let mut cmd = Command::new(&self.args.weir);
        cmd.arg("run")
            .args(more)
            .arg(self.tpch.join("pipeline.rhai"))
            .arg("--param")
            .arg(format!("data={}", self.data.display()))
            .arg("--store")
            .arg(&store)
            .arg("--quiet");
        if let Loads::InPlace = loads {
            cmd.arg("--param").arg("copy=false");
        }
        if let Some(limit) = &self.args.memory_limit {
            cmd.arg("--memory-limit").arg(limit);
        }
        let sample = self.measure(&mut cmd)?;
        if let Some(n) = expected {
            check_ran(&sample, n)?;
        }
        let record = record::last(&store)?;
        Ok((sample, record))
    }

    /// Edits q06's quantity bound, runs, and puts it back: exactly one task must run.
    fn one_change(&self) -> Result<(Sample, RunRecord), String> {
        let (q06, original, edited) = q06_change(&self.tpch)?;
        std::fs::write(&q06, edited).map_err(|e| e.to_string())?;
        let sample = self.weir_tpch(Loads::Copied, false, None);
        std::fs::write(&q06, original).map_err(|e| e.to_string())?;
        sample
    }

    /// `weir-bench baseline` on this bench's example and data, writing under `out`.
    fn baseline_command(&self, out: &Path) -> Command {
        let mut cmd = Command::new(&self.me);
        cmd.arg("baseline")
            .arg("--example")
            .arg(&self.tpch)
            .arg("--data")
            .arg(&self.data)
            .arg("--out")
            .arg(out);
        cmd
    }

    /// Bare DataFusion running the edited q06 alone, in a process of its own.
    fn bare_change(&self) -> Result<(Sample, Timings), String> {
        let (q06, original, edited) = q06_change(&self.tpch)?;
        let out = self.work.join("baseline-one");
        reset(&out)?;
        reset(&out.join("marts"))?;
        std::fs::write(&q06, edited).map_err(|e| e.to_string())?;
        let sample = self.measure(self.baseline_command(&out).arg("--only").arg("q06"));
        std::fs::write(&q06, original).map_err(|e| e.to_string())?;
        let sample = sample?;
        let timings = Timings::parse(&sample)?;
        Ok((sample, timings))
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

/// weir's 22 results against each baseline's: the same rows and content as bare DataFusion
/// (the same engine) and with `copy: false`; the same rows as DuckDB, whose result types differ.
fn check(d: &BTreeMap<&str, Digests>) -> (serde_json::Value, bool) {
    let Some(weir) = d.get("weir") else {
        return (json!({}), true);
    };
    let mut checks = serde_json::Map::new();
    let mut failed = false;
    for (side, checksums) in [
        ("baseline", true),
        ("weir_nocopy", true),
        ("duckdb", false),
        ("duckdb_nocopy", false),
    ] {
        let Some(other) = d.get(side) else { continue };
        let diffs = digest::differences(weir, other, checksums);
        for line in &diffs {
            eprintln!("weir-bench: {side} differs from weir: {line}");
        }
        failed |= !diffs.is_empty();
        checks.insert(
            side.to_string(),
            json!({
                "compared": if checksums { "rows and checksums" } else { "rows" },
                "differences": diffs,
                "equal_checksums": digest::equal_checksums(weir, other),
            }),
        );
    }
    (checks.into(), failed)
}

fn secs(samples: &[Sample]) -> f64 {
    median(samples.iter().map(|s| s.wall.as_secs_f64()).collect())
}

fn rss(samples: &[Sample]) -> f64 {
    median(samples.iter().map(|s| s.rss_mb).collect())
}

fn anon(samples: &[Sample]) -> f64 {
    median(samples.iter().map(|s| s.anon_mb).collect())
}

/// Each task that ran in weir's cold runs: median seconds, rows, and the most it spilled.
fn task_table(records: &[RunRecord]) -> serde_json::Value {
    let Some(first) = records.first() else {
        return json!({});
    };
    let mut out = serde_json::Map::new();
    for (task, t) in first.ran() {
        let times: Vec<f64> = records
            .iter()
            .filter_map(|r| r.ran().get(task).map(|x| x.duration_ms as f64 / 1000.0))
            .collect();
        let spilled = records
            .iter()
            .filter_map(|r| r.ran().get(task).map(|x| x.spilled_bytes))
            .max()
            .unwrap_or(0);
        out.insert(
            task.to_string(),
            json!({
                "s": round3(median(times)),
                "rows": t.rows,
                "spilled_mb": round3(spilled as f64 / (1 << 20) as f64),
            }),
        );
    }
    out.into()
}

/// Each baseline statement's median seconds.
fn statement_table(runs: &[Timings]) -> serde_json::Value {
    let Some(first) = runs.first() else {
        return json!({});
    };
    let mut out = serde_json::Map::new();
    for st in &first.statements {
        let times = runs
            .iter()
            .filter_map(|r| r.statements.iter().find(|x| x.task == st.task))
            .map(|x| x.s)
            .collect();
        out.insert(st.task.clone(), json!(round3(median(times))));
    }
    out.into()
}

fn round3(x: f64) -> f64 {
    (x * 1000.0).round() / 1000.0
}

fn summarize(args: &RunArgs, s: &Samples, checks: serde_json::Value) -> serde_json::Value {
    let baseline = s.baseline.secs();
    let duckdb = s.duckdb.secs();
    let cold = s.cold.secs();
    let nocopy = s.nocopy.secs();
    let duckdb_nocopy = s.duckdb_nocopy.secs();
    let marts =
        |records: &[RunRecord]| median(records.iter().map(|r| r.stage_s("marts")).collect());
    let stage = |runs: &[Timings], st: &str| median(runs.iter().map(|t| t.stage_s(st)).collect());
    let change_ran: Vec<usize> = s
        .change
        .samples
        .iter()
        .map(|x| tasks_ran(&x.stdout).unwrap_or(usize::MAX))
        .collect();
    let spilled: u64 = s
        .cold
        .details
        .last()
        .map_or(0, |r| r.tasks.iter().map(|t| t.spilled_bytes).sum());
    let requests = |side: &Side<RunRecord>| side.details.last().and_then(|r| r.requests);
    let all = |v: &[Sample]| v.iter().map(|x| x.wall.as_secs_f64()).collect::<Vec<_>>();
    json!({
        "sf": args.sf.parse::<f64>().unwrap_or(f64::NAN),
        "runs": args.runs,
        "cores": std::thread::available_parallelism().map_or(0, |n| n.get()),
        "date": chrono::Utc::now().to_rfc3339(),
        "memory_limit": args.memory_limit,
        "baseline_cold_s": baseline,
        "baseline_rss_mb": s.baseline.rss(),
        "baseline_anon_mb": s.baseline.anon(),
        "baseline_marts_s": stage(&s.baseline.details, "marts"),
        "duckdb_cold_s": duckdb,
        "duckdb_rss_mb": s.duckdb.rss(),
        "duckdb_anon_mb": s.duckdb.anon(),
        "duckdb_marts_s": stage(&s.duckdb.details, "marts"),
        "duckdb_nocopy_cold_s": duckdb_nocopy,
        "duckdb_nocopy_rss_mb": s.duckdb_nocopy.rss(),
        "weir_cold_s": cold,
        "weir_rss_mb": s.cold.rss(),
        "weir_anon_mb": s.cold.anon(),
        "cold_ratio": cold / baseline,
        "cold_vs_duckdb": cold / duckdb,
        "marts_s": marts(&s.cold.details),
        "weir_spilled_mb": spilled as f64 / (1 << 20) as f64,
        "weir_nocopy_cold_s": nocopy,
        "weir_nocopy_rss_mb": s.nocopy.rss(),
        "nocopy_ratio": nocopy / baseline,
        "nocopy_vs_duckdb": nocopy / duckdb,
        "nocopy_vs_duckdb_nocopy": nocopy / duckdb_nocopy,
        "nocopy_marts_s": marts(&s.nocopy.details),
        "noop_ms": s.noop.secs() * 1000.0,
        "change_tasks_run": change_ran.iter().copied().max().unwrap_or(0),
        "change_s": s.change.secs(),
        "change_baseline_s": s.change_baseline.secs(),
        "change_vs_baseline": s.change.secs() / s.change_baseline.secs(),
        "wide_tasks": 1000,
        "wide_cold_s": secs(&s.wide_cold),
        "wide_noop_ms": secs(&s.wide_noop) * 1000.0,
        "watch_start_ms": measure::median(s.watch.clone()) * 1000.0,
        "weir_noop_rss_mb": s.noop.rss(),
        "wide_cold_rss_mb": rss(&s.wide_cold),
        "requests": {
            "cold": requests(&s.cold),
            "noop": requests(&s.noop),
            "change": requests(&s.change),
        },
        "weir_cold_tasks": task_table(&s.cold.details),
        "weir_nocopy_cold_tasks": task_table(&s.nocopy.details),
        "baseline_tasks": statement_table(&s.baseline.details),
        "duckdb_tasks": statement_table(&s.duckdb.details),
        "duckdb_nocopy_tasks": statement_table(&s.duckdb_nocopy.details),
        "rebuild": rebuild::report(&s.rebuild, &s.duckdb_rebuild),
        "checks": checks,
        "marts_digest": s.digests.get("weir"),
        "samples_s": {
            "baseline": all(&s.baseline.samples),
            "duckdb": all(&s.duckdb.samples),
            "duckdb_nocopy": all(&s.duckdb_nocopy.samples),
            "weir_cold": all(&s.cold.samples),
            "weir_nocopy_cold": all(&s.nocopy.samples),
            "noop": all(&s.noop.samples),
            "change": all(&s.change.samples),
            "change_baseline": all(&s.change_baseline.samples),
            "wide_cold": all(&s.wide_cold),
            "wide_noop": all(&s.wide_noop),
            "weir_rebuild": all(&s.rebuild.samples),
        },
    })
}

fn print_table(r: &serde_json::Value) {
    let f = |k: &str| r[k].as_f64().unwrap_or(f64::NAN);
    // A figure of a side that failed or was skipped is left blank, and so is a ratio to it.
    let text = |x: f64, t: String| if x.is_nan() { String::new() } else { t };
    let base = f("baseline_cold_s");
    let limit = r["memory_limit"]
        .as_str()
        .map_or(String::new(), |l| format!(", memory limit {l}"));
    println!(
        "weir bench: TPC-H sf {}, median of {} runs, {} cores{limit}",
        r["sf"], r["runs"], r["cores"]
    );
    println!(
        "{:<30} {:>10} {:>10} {:>9} {:>9} {:>9}  target",
        "", "wall", "peak RSS", "vs DF", "vs DuckDB", "marts"
    );
    let row = |name: &str, wall: f64, rss: f64, duck: bool, marts: &str, target: &str| {
        println!(
            "{name:<30} {:>10} {:>10} {:>9} {:>9} {:>9}  {target}",
            text(wall, format!("{wall:.2} s")),
            text(rss, format!("{rss:.0} MB")),
            text(wall / base, format!("{:.2}x", wall / base)),
            if duck {
                let duckdb = wall / f("duckdb_cold_s");
                text(duckdb, format!("{duckdb:.2}x"))
            } else {
                String::new()
            },
            text(f(marts), format!("{:.2} s", f(marts))),
        );
    };
    let nan = f64::NAN;
    row(
        "baseline (bare DataFusion)",
        base,
        f("baseline_rss_mb"),
        true,
        "baseline_marts_s",
        "",
    );
    row(
        "baseline (bare DuckDB)",
        f("duckdb_cold_s"),
        f("duckdb_rss_mb"),
        true,
        "duckdb_marts_s",
        "",
    );
    row(
        "baseline (DuckDB, in place)",
        f("duckdb_nocopy_cold_s"),
        f("duckdb_nocopy_rss_mb"),
        true,
        "",
        "",
    );
    row(
        "weir cold",
        f("weir_cold_s"),
        f("weir_rss_mb"),
        true,
        "marts_s",
        "<= 1.10x DF; RSS <= DF + 64 MB",
    );
    row(
        "weir cold, copy: false",
        f("weir_nocopy_cold_s"),
        f("weir_nocopy_rss_mb"),
        true,
        "nocopy_marts_s",
        "<= 0.80x DuckDB",
    );
    println!(
        "{:<30} {:>43}",
        "  copy: false vs DuckDB in place",
        text(
            f("nocopy_vs_duckdb_nocopy"),
            format!("{:.2}x", f("nocopy_vs_duckdb_nocopy"))
        )
    );
    println!(
        "{:<30} {:>10} {:>10}  < 50 ms",
        "weir no-op",
        format!("{:.0} ms", f("noop_ms")),
        format!("{:.0} MB", f("weir_noop_rss_mb"))
    );
    row(
        &format!("weir one change ({} ran)", r["change_tasks_run"]),
        f("change_s"),
        nan,
        false,
        "",
        "exactly 1 task; <= 1.00x the next",
    );
    row(
        "bare DataFusion, that q06 alone",
        f("change_baseline_s"),
        nan,
        false,
        "",
        "",
    );
    println!(
        "{:<30} {:>10}",
        "  one change vs q06 alone",
        text(
            f("change_vs_baseline"),
            format!("{:.2}x", f("change_vs_baseline"))
        )
    );
    row(
        "1,000 tasks cold",
        f("wide_cold_s"),
        f("wide_cold_rss_mb"),
        false,
        "",
        "",
    );
    println!(
        "{:<30} {:>10} {:>21}  < 500 ms",
        "1,000 tasks no-op",
        text(f("wide_noop_ms"), format!("{:.0} ms", f("wide_noop_ms"))),
        ""
    );
    println!(
        "{:<30} {:>10} {:>21}  < 150 ms",
        "watch: save -> re-run",
        text(
            f("watch_start_ms"),
            format!("{:.0} ms", f("watch_start_ms"))
        ),
        ""
    );
    rebuild::print(&r["rebuild"]);
    let over = f("weir_rss_mb") - f("baseline_rss_mb");
    println!(
        "RSS: weir - bare DataFusion = {}; weir spilled {:.0} MB",
        text(over, format!("{over:+.0} MB")),
        f("weir_spilled_mb")
    );
    println!(
        "peak anonymous RSS (what a memory limit bounds): weir {:.0} MB, bare DataFusion {:.0} MB, DuckDB {:.0} MB",
        f("weir_anon_mb"),
        f("baseline_anon_mb"),
        f("duckdb_anon_mb")
    );
    if let Some(checks) = r["checks"].as_object() {
        for (side, c) in checks {
            let diffs = c["differences"].as_array().map_or(0, Vec::len);
            println!(
                "check against {side} ({}): {}; {} of 22 checksums equal",
                c["compared"].as_str().unwrap_or(""),
                if diffs == 0 {
                    "equal".to_string()
                } else {
                    format!("{diffs} differ")
                },
                c["equal_checksums"]
            );
        }
    }
}

/// The name of the dated JSON: scale factor and memory limit.
fn stem(args: &RunArgs) -> String {
    match &args.memory_limit {
        Some(l) => format!("sf{}-mem{l}", args.sf),
        None => format!("sf{}", args.sf),
    }
}

fn write_json(out: &Path, stem: &str, report: &serde_json::Value) -> Result<(), String> {
    let text = serde_json::to_string_pretty(report).map_err(|e| e.to_string())? + "\n";
    let stamp = chrono::Utc::now().format("%Y%m%dT%H%M%SZ");
    // The S3 and cluster benches keep their own latest figures beside the main one's.
    let latest = match stem.split_once('-') {
        Some((kind @ ("s3" | "cluster"), _)) => format!("{kind}-latest.json"),
        _ => "latest.json".to_string(),
    };
    for name in [latest, format!("{stamp}-{stem}.json")] {
        let path = out.join(name);
        std::fs::write(&path, &text).map_err(|e| format!("{}: {e}", path.display()))?;
        println!("wrote {}", path.display());
    }
    Ok(())
}

fn compare(a: &Path, b: &Path) -> Result<(), String> {
    let load = |p: &Path| -> Result<(Digests, serde_json::Value), String> {
        let text = std::fs::read_to_string(p).map_err(|e| format!("{}: {e}", p.display()))?;
        let v: serde_json::Value =
            serde_json::from_str(&text).map_err(|e| format!("{}: {e}", p.display()))?;
        let d = serde_json::from_value(v["marts_digest"].clone())
            .map_err(|e| format!("{}: marts_digest: {e}", p.display()))?;
        Ok((d, v["memory_limit"].clone()))
    };
    let (da, la) = load(a)?;
    let (db, lb) = load(b)?;
    let diffs = digest::differences(&da, &db, true);
    println!(
        "{} (memory limit {la}) against {} (memory limit {lb}): {} queries, {} differ",
        a.display(),
        b.display(),
        da.len(),
        diffs.len()
    );
    for d in &diffs {
        println!("  {d}");
    }
    match diffs.is_empty() {
        true => Ok(()),
        false => Err("the results differ".into()),
    }
}

/// The one change every bench makes: q06's quantity bound, in the example copied to `tpch`.
/// (q06.sql, its text, the text edited).
fn q06_change(tpch: &Path) -> Result<(PathBuf, String, String), String> {
    let q06 = tpch.join("queries/q06.sql");
    let original = std::fs::read_to_string(&q06).map_err(|e| e.to_string())?;
    let edited = original.replace("l_quantity < 24", "l_quantity < 25");
    if edited == original {
        return Err("q06.sql no longer has `l_quantity < 24` to edit".into());
    }
    Ok((q06, original, edited))
}

/// What every bench's JSON starts with.
fn header(sf: &str, runs: usize) -> serde_json::Value {
    json!({
        "sf": sf.parse::<f64>().unwrap_or(f64::NAN),
        "runs": runs,
        "cores": std::thread::available_parallelism().map_or(0, |n| n.get()),
        "date": chrono::Utc::now().to_rfc3339(),
    })
}

fn abs(p: &Path) -> Result<PathBuf, String> {
    std::path::absolute(p).map_err(|e| format!("{}: {e}", p.display()))
}

fn reset(dir: &Path) -> Result<(), String> {
    if dir.exists() {
        std::fs::remove_dir_all(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    }
    std::fs::create_dir_all(dir).map_err(|e| format!("{}: {e}", dir.display()))
}

fn remove(dir: &Path) -> Result<(), String> {
    std::fs::remove_dir_all(dir).map_err(|e| format!("{}: {e}", dir.display()))
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
