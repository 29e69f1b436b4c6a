//! The test builder: a project in a temporary folder, driven through the real `weir` binary.

#![allow(dead_code)]

pub mod delta;
pub mod servers;
pub mod web;

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use serde_json::Value;

pub struct Project {
    pub dir: tempfile::TempDir,
}

pub struct Run {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl Run {
    pub fn text(&self) -> String {
        format!("{}\n{}", self.stdout, self.stderr)
    }

    #[track_caller]
    pub fn ok(self) -> Self {
        assert_eq!(self.code, 0, "weir failed:\n{}", self.text());
        assert_no_panic(&self);
        self
    }

    #[track_caller]
    pub fn fails_with(self, code: i32) -> Self {
        assert_eq!(self.code, code, "expected exit {code}:\n{}", self.text());
        assert_no_panic(&self);
        self
    }
}

#[track_caller]
fn assert_no_panic(run: &Run) {
    assert!(
        !run.text().contains("panicked"),
        "weir panicked:\n{}",
        run.text()
    );
}

pub fn weir_bin() -> &'static str {
    env!("CARGO_BIN_EXE_weir")
}

impl Project {
    pub fn new() -> Self {
        Self {
            dir: tempfile::tempdir().expect("temp dir"),
        }
    }

    /// A project holding a copy of one of the repository's examples.
    pub fn example(name: &str) -> Self {
        let p = Self::new();
        let src = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("examples")
            .join(name);
        copy_dir(&src, p.dir.path());
        p
    }

    pub fn path(&self, rel: &str) -> PathBuf {
        self.dir.path().join(rel)
    }

    pub fn file(&self, rel: &str, content: &str) -> &Self {
        let path = self.path(rel);
        std::fs::create_dir_all(path.parent().expect("parent")).expect("mkdir");
        std::fs::write(path, content).expect("write");
        self
    }

    pub fn read(&self, rel: &str) -> String {
        std::fs::read_to_string(self.path(rel)).expect("read")
    }

    /// Replace text in a file; the old text must be there.
    #[track_caller]
    pub fn edit(&self, rel: &str, from: &str, to: &str) {
        let text = self.read(rel);
        assert!(text.contains(from), "`{from}` not in {rel}");
        self.file(rel, &text.replacen(from, to, 1));
    }

    pub fn command(&self, args: &[&str]) -> Command {
        let mut cmd = Command::new(weir_bin());
        cmd.args(args)
            .current_dir(self.dir.path())
            .env("NO_COLOR", "1")
            .env_remove("WEIR_STORE");
        cmd.stdin(Stdio::null());
        cmd
    }

    /// `sh -c script` in the project, with the environment `command` sets.
    pub fn shell(&self, script: &str) -> Command {
        let mut cmd = Command::new("sh");
        cmd.args(["-c", script])
            .current_dir(self.dir.path())
            .env("NO_COLOR", "1")
            .env_remove("WEIR_STORE")
            .stdin(Stdio::null());
        cmd
    }

    pub fn weir(&self, args: &[&str]) -> Run {
        let out: Output = self.command(args).output().expect("run weir");
        Run {
            code: out.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        }
    }

    /// `weir` with extra environment variables (a store's endpoint and credentials).
    pub fn weir_env(&self, args: &[&str], env: &[(&str, String)]) -> Run {
        let mut cmd = self.command(args);
        for (k, v) in env {
            cmd.env(k, v);
        }
        let out: Output = cmd.output().expect("run weir");
        Run {
            code: out.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        }
    }

    /// `weir run` of `pipeline.rhai` with extra arguments.
    pub fn run(&self, extra: &[&str]) -> Run {
        let mut args = vec!["run", "pipeline.rhai"];
        args.extend_from_slice(extra);
        self.weir(&args)
    }

    pub fn instance_dir(&self) -> PathBuf {
        self.instance_dir_of("default")
    }

    pub fn instance_dir_of(&self, instance: &str) -> PathBuf {
        self.path(".weir").join(instance)
    }

    /// The newest run record.
    pub fn last_record(&self) -> Value {
        self.last_record_of("default")
    }

    /// The newest run record of an instance.
    pub fn last_record_of(&self, instance: &str) -> Value {
        let dir = self.instance_dir_of(instance).join("runs");
        let mut names: Vec<PathBuf> = std::fs::read_dir(&dir)
            .expect("runs dir")
            .map(|e| e.expect("entry").path())
            // Records only: each run's log (`.log.jsonl`) sits beside its record.
            .filter(|p| p.extension().is_some_and(|e| e == "json"))
            .collect();
        names.sort();
        let last = names.last().expect("a run record");
        serde_json::from_str(&std::fs::read_to_string(last).expect("read record")).expect("json")
    }

    /// task -> status of the newest run.
    pub fn statuses(&self) -> BTreeMap<String, String> {
        self.statuses_of("default")
    }

    /// task -> status of the newest run of an instance.
    pub fn statuses_of(&self, instance: &str) -> BTreeMap<String, String> {
        let record = self.last_record_of(instance);
        record["tasks"]
            .as_array()
            .expect("tasks")
            .iter()
            .map(|t| {
                (
                    t["task"].as_str().unwrap().to_string(),
                    t["status"].as_str().unwrap().to_string(),
                )
            })
            .collect()
    }

    /// The tasks that ran in the newest run.
    pub fn ran(&self) -> BTreeSet<String> {
        self.ran_in("default")
    }

    /// The tasks that ran in the newest run of an instance.
    pub fn ran_in(&self, instance: &str) -> BTreeSet<String> {
        self.statuses_of(instance)
            .into_iter()
            .filter(|(_, s)| s == "ran")
            .map(|(t, _)| t)
            .collect()
    }

    pub fn manifest(&self, stage: &str) -> Option<Value> {
        let path = self
            .instance_dir()
            .join("manifests")
            .join(format!("{stage}.json"));
        std::fs::read_to_string(path)
            .ok()
            .map(|t| serde_json::from_str(&t).expect("manifest json"))
    }

    /// Every file under the table data folder.
    pub fn data_files(&self) -> BTreeSet<PathBuf> {
        self.files_under(".weir/default/tables")
    }

    /// Every file under a folder of the project.
    pub fn files_under(&self, rel: &str) -> BTreeSet<PathBuf> {
        files_in(&self.path(rel))
    }

    /// Query committed tables, CSV out, header dropped.
    pub fn query(&self, sql: &str) -> Vec<String> {
        self.query_in("default", sql)
    }

    /// Query the committed tables of the store `store`, CSV out, header dropped.
    pub fn query_store(&self, store: &str, sql: &str) -> Vec<String> {
        let run = self
            .weir(&["sql", sql, "--format", "csv", "--store", store])
            .ok();
        run.stdout.lines().skip(1).map(str::to_string).collect()
    }

    /// Query committed tables with more arguments (`--as-of`), CSV out, header dropped.
    pub fn query_args(&self, more: &[&str], sql: &str) -> Vec<String> {
        let mut args = vec!["sql", sql, "--format", "csv"];
        args.extend_from_slice(more);
        let run = self.weir(&args).ok();
        run.stdout.lines().skip(1).map(str::to_string).collect()
    }

    /// Query an instance's committed tables, CSV out, header dropped.
    pub fn query_in(&self, instance: &str, sql: &str) -> Vec<String> {
        let run = self
            .weir(&["sql", sql, "--format", "csv", "--instance", instance])
            .ok();
        run.stdout.lines().skip(1).map(str::to_string).collect()
    }
}

/// Every file under `dir`, at any depth.
pub fn files_in(dir: &Path) -> BTreeSet<PathBuf> {
    let mut out = BTreeSet::new();
    walk(dir, &mut out);
    out
}

fn walk(dir: &Path, out: &mut BTreeSet<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for e in entries.flatten() {
        let p = e.path();
        if p.is_dir() {
            walk(&p, out);
        } else {
            out.insert(p);
        }
    }
}

pub fn copy_dir(src: &Path, dst: &Path) {
    for e in std::fs::read_dir(src).expect("example dir").flatten() {
        let (from, to) = (e.path(), dst.join(e.file_name()));
        if e.file_name() == ".weir" {
            continue;
        }
        if from.is_dir() {
            std::fs::create_dir_all(&to).expect("mkdir");
            copy_dir(&from, &to);
        } else {
            std::fs::copy(&from, &to).expect("copy");
        }
    }
}

/// A Parquet file of `n` rows: `id` 1..=n and a label.
pub fn write_parquet(path: &Path, n: i64) {
    use datafusion::arrow::array::{Int64Array, StringArray};
    use datafusion::arrow::datatypes::{DataType, Field, Schema};
    use datafusion::arrow::record_batch::RecordBatch;
    use datafusion::parquet::arrow::ArrowWriter;
    use std::sync::Arc;
    let schema = Arc::new(Schema::new(vec![
        Field::new("id", DataType::Int64, false),
        Field::new("label", DataType::Utf8, false),
    ]));
    let ids = Int64Array::from_iter_values(1..=n);
    let labels = StringArray::from_iter_values((1..=n).map(|i| format!("row {i}")));
    let batch =
        RecordBatch::try_new(schema.clone(), vec![Arc::new(ids), Arc::new(labels)]).expect("batch");
    std::fs::create_dir_all(path.parent().expect("parent")).expect("mkdir");
    let file = std::fs::File::create(path).expect("create");
    let mut writer = ArrowWriter::try_new(file, schema, None).expect("writer");
    writer.write(&batch).expect("write");
    writer.close().expect("close");
}

/// Read a Parquet file directly with the parquet crate: (rows, column names).
pub fn read_parquet(
    path: &Path,
) -> (
    usize,
    Vec<String>,
    Vec<datafusion::arrow::record_batch::RecordBatch>,
) {
    use datafusion::parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
    let file = std::fs::File::open(path).expect("open parquet");
    let builder = ParquetRecordBatchReaderBuilder::try_new(file).expect("parquet footer");
    let columns = builder
        .schema()
        .fields()
        .iter()
        .map(|f| f.name().clone())
        .collect();
    let batches: Vec<_> = builder
        .build()
        .expect("reader")
        .map(|b| b.expect("batch"))
        .collect();
    (batches.iter().map(|b| b.num_rows()).sum(), columns, batches)
}

/// The pipeline most tests start from: two CSV loads, two SQL tasks, a Rhai task with a helper.
pub const PIPELINE: &str = r#"
let raw = stage("raw");
raw.load("orders", "data/orders.csv");
raw.load("customers", "data/customers.csv");

let prep = stage("prep");
prep.sql("orders_clean", `
    SELECT o.order_id, o.customer_id, o.amount, c.segment
    FROM raw.orders o JOIN raw.customers c USING (customer_id)
    WHERE o.amount > 0`);
prep.sql("customer_count", `SELECT count(*) AS n FROM raw.customers`);

fn totals(t) {
    t.aggregate(["segment"], ["sum(amount) AS total", "count(*) AS orders"])
}
fn by_segment(t) {
    totals(t).sort("segment", true)
}

let marts = stage("marts");
marts.materialize("by_segment", by_segment, [table("prep.orders_clean")]);
marts.sql("big_orders", `SELECT * FROM prep.orders_clean WHERE amount >= 100`);
"#;

pub const ORDERS: &str =
    "order_id,customer_id,amount\n1,1,120\n2,2,35\n3,1,80\n4,3,0\n5,3,410\n6,2,99\n";
pub const CUSTOMERS: &str = "customer_id,segment\n1,enterprise\n2,smb\n3,smb\n";

impl Project {
    /// A project with `PIPELINE` and its data.
    pub fn standard() -> Self {
        let p = Self::new();
        p.file("pipeline.rhai", PIPELINE)
            .file("data/orders.csv", ORDERS)
            .file("data/customers.csv", CUSTOMERS);
        p
    }
}

pub fn set(items: &[&str]) -> BTreeSet<String> {
    items.iter().map(|s| s.to_string()).collect()
}
