//! A cold run: every table written as Parquet that other readers open, stages committed.

use crate::common::{Project, read_parquet, set};

/// A cold run builds every task and writes Parquet files that the parquet crate reads back.
#[test]
fn cold_run_writes_parquet_that_other_readers_open() {
    let p = Project::standard();
    let run = p.run(&[]).ok();
    assert!(
        run.stdout.contains("6 tasks: 6 ran, 0 cached"),
        "{}",
        run.text()
    );
    assert!(
        run.stdout
            .contains("stages: raw committed, prep committed, marts committed"),
        "{}",
        run.text()
    );

    let manifest = p.manifest("marts").expect("marts committed");
    let build = &manifest["tables"]["by_segment"];
    let file = p.instance_dir().join(build["files"][0].as_str().unwrap());
    let path = file.to_string_lossy();
    assert!(
        path.contains(&format!(
            "tables/marts/by_segment/{}/{}/",
            build["key"].as_str().unwrap(),
            build["build"].as_str().unwrap()
        )) && path.ends_with(".parquet"),
        "{path}"
    );
    let (rows, columns, batches) = read_parquet(&file);
    assert_eq!(rows, 2);
    assert_eq!(columns, ["segment", "total", "orders"]);
    let text = datafusion::arrow::util::pretty::pretty_format_batches(&batches)
        .unwrap()
        .to_string();
    assert!(text.contains("| enterprise | 200   | 2      |"), "{text}");
    assert!(text.contains("| smb        | 544   | 3      |"), "{text}");
    assert_eq!(build["rows"], 2);

    let (rows, _, _) = read_parquet(
        &p.instance_dir().join(
            p.manifest("prep").unwrap()["tables"]["orders_clean"]["files"][0]
                .as_str()
                .unwrap(),
        ),
    );
    assert_eq!(rows, 5, "the order with amount 0 is filtered out");
}

/// Independent tasks may run concurrently and the result is the same with one job.
#[test]
fn one_job_and_many_jobs_build_the_same_tables() {
    let (a, b) = (Project::standard(), Project::standard());
    a.run(&["--jobs", "1"]).ok();
    b.run(&["--jobs", "8"]).ok();
    for table in [
        "marts.by_segment",
        "marts.big_orders",
        "prep.customer_count",
    ] {
        let q = format!("SELECT * FROM {table} ORDER BY 1");
        assert_eq!(a.query(&q), b.query(&q), "{table}");
    }
}

/// `--select` runs just the named tasks, with `+` reaching upstream or downstream.
#[test]
fn select_picks_tasks_upstream_and_downstream() {
    let p = Project::standard();
    p.run(&["--select", "+prep.orders_clean"]).ok();
    assert_eq!(
        p.ran(),
        set(&["raw.orders", "raw.customers", "prep.orders_clean"])
    );
    assert!(
        p.manifest("marts").is_none(),
        "marts was not selected and is not committed"
    );

    p.run(&["--select", "prep.orders_clean+"]).ok();
    assert_eq!(p.ran(), set(&["marts.by_segment", "marts.big_orders"]));

    p.run(&["--select", "stage:prep", "--force"]).ok();
    assert_eq!(p.ran(), set(&["prep.orders_clean", "prep.customer_count"]));

    let bad = p.run(&["--select", "prep.order_clean"]).fails_with(2);
    assert!(
        bad.stderr.contains("did you mean `prep.orders_clean`?"),
        "{}",
        bad.text()
    );
}

/// A selected task whose input was never built fails clearly instead of reading nothing.
#[test]
fn selecting_a_task_whose_input_was_never_built_fails_clearly() {
    let p = Project::standard();
    let run = p.run(&["--select", "prep.customer_count"]).fails_with(1);
    assert!(
        run.text()
            .contains("input raw.customers has never been built"),
        "{}",
        run.text()
    );
}

/// `--store` puts the store anywhere, given as a folder or a file:// URL.
#[test]
fn store_can_be_given_as_a_url() {
    let p = Project::standard();
    let elsewhere = tempfile::tempdir().unwrap();
    let url = format!("file://{}", elsewhere.path().display());
    p.run(&["--store", &url]).ok();
    assert!(
        elsewhere
            .path()
            .join("default/manifests/marts.json")
            .exists()
    );
    assert!(!p.path(".weir").exists());
    let out = p
        .weir(&[
            "sql",
            "SELECT count(*) AS n FROM prep.orders_clean",
            "--store",
            &url,
            "-f",
            "csv",
        ])
        .ok();
    assert_eq!(out.stdout.trim(), "n\n5");
}

/// A relative `--store` is relative to where weir runs, like any path argument; the default
/// store is next to the script.
#[test]
fn relative_store_is_relative_to_the_working_directory() {
    let p = Project::new();
    p.file(
        "pipes/pipeline.rhai",
        "let s = stage(\"s\");\ns.sql(\"t\", \"SELECT 1 AS x\");\n",
    );
    p.weir(&["run", "pipes/pipeline.rhai", "--store", "out"])
        .ok();
    assert!(p.path("out/default/manifests/s.json").exists());
    assert!(!p.path("pipes/out").exists());
    p.weir(&["run", "pipes/pipeline.rhai"]).ok();
    assert!(p.path("pipes/.weir/default/manifests/s.json").exists());
}

/// Params reach the script, typed, and a task reading one re-runs when it changes.
#[test]
fn params_are_typed_and_part_of_the_key() {
    let p = Project::new();
    p.file(
        "pipeline.rhai",
        r#"
        let s = stage("s");
        let n = param("n", 2);
        s.sql("fixed", `SELECT ${n + 1} AS v`);
        fn pick(t) { t.limit(param("limit", 1)) }
        s.materialize("picked", pick, ["s.fixed"]);
        s.sql("other", "SELECT 1 AS one");
    "#,
    );
    p.run(&[]).ok();
    assert_eq!(p.query("SELECT v FROM s.fixed"), ["3"]);
    p.run(&["--param", "n=10"]).ok();
    assert_eq!(
        p.query("SELECT v FROM s.fixed"),
        ["11"],
        "an int param does arithmetic"
    );
    assert_eq!(p.ran(), set(&["s.fixed", "s.picked"]));
    p.run(&["--param", "n=10", "--param", "limit=0"]).ok();
    assert_eq!(p.ran(), set(&["s.picked"]));
    assert_eq!(p.query("SELECT count(*) FROM s.picked"), ["0"]);
}

/// A task reading more than WEIR_HEAVY_INPUT_MB of stored data runs alone: nothing else starts
/// while it runs, and it waits for what is running. At 0 MB every task is heavy.
#[test]
fn heavy_tasks_run_alone() {
    let p = Project::standard();
    let run = p
        .command(&["run", "pipeline.rhai", "--jobs", "4"])
        .env("WEIR_HEAVY_INPUT_MB", "0")
        .output()
        .expect("weir runs");
    assert!(
        run.status.success(),
        "{}",
        String::from_utf8_lossy(&run.stderr)
    );
    let record = p.last_record();
    let run_id = record["run_id"].as_str().unwrap_or_default().to_string();
    let log = p.read(&format!(".weir/default/runs/{run_id}.log.jsonl"));
    let mut running = 0;
    let mut most = 0;
    for line in log.lines() {
        let event: serde_json::Value = serde_json::from_str(line).expect("json line");
        match event["event"].as_str() {
            Some("task_started") => running += 1,
            Some("task_done" | "task_failed") => running -= 1,
            _ => {}
        }
        most = most.max(running);
    }
    assert_eq!(most, 1, "tasks overlapped:\n{log}");
}
