//! Every committed table is also a Delta Lake table: read by delta-rs and Polars (and DuckDB
//! where its extension installs) with weir's own values, version by version, partitioned, on
//! S3, after a schema change, with checkpoints, and repaired after a commit cut short.

use crate::common::Project;
use crate::common::delta::{
    Expected, live_files, logs_match_manifests, read, storage_options, table_dir, versions,
};
use crate::common::servers::S3;

const TABLES: [&str; 6] = [
    "raw.orders",
    "raw.customers",
    "prep.orders_clean",
    "prep.customer_count",
    "marts.by_segment",
    "marts.big_orders",
];

/// The standard project run, then run again after `prep.orders_clean` keeps fewer orders.
fn two_runs() -> Project {
    let p = Project::standard();
    p.run(&[]).ok();
    p.edit(
        "pipeline.rhai",
        "WHERE o.amount > 0",
        "WHERE o.amount > 100",
    );
    p.run(&[]).ok();
    p
}

#[test]
fn every_table_reads_as_delta_with_weirs_values_and_each_version_as_committed() {
    let p = two_runs();
    logs_match_manifests(&p.instance_dir(), "after two runs");
    let dir = |t: &str| {
        let (stage, name) = t.split_once('.').unwrap();
        table_dir(&p.instance_dir(), stage, name)
    };
    // A version for each commit that changed the table, none for one that did not.
    assert_eq!(versions(&dir("prep.orders_clean")), [0, 1]);
    assert_eq!(versions(&dir("raw.orders")), [0]);
    let log = std::fs::read_to_string(
        dir("prep.orders_clean").join("_delta_log/00000000000000000001.json"),
    )
    .unwrap();
    assert!(
        log.contains("\"remove\"") && log.contains("\"numRecords\\\":2"),
        "{log}"
    );

    let mut tables: Vec<Expected> = TABLES
        .iter()
        .map(|t| Expected::committed(&p, t, None, &[]))
        .collect();
    // Version 0 holds what weir itself reads as of the first run.
    tables.push(Expected::committed(
        &p,
        "prep.orders_clean",
        Some(0),
        &["--as-of", "last~1"],
    ));
    assert_eq!(tables.last().unwrap().rows.as_array().unwrap().len(), 5);
    if let Some(out) = read(p.dir.path(), &tables) {
        assert_eq!(out.matches(": ok ").count(), 2 * tables.len(), "{out}");
    }
}

#[test]
fn partition_columns_carry_over_and_a_schema_change_starts_the_history_again() {
    let p = Project::new();
    let pipeline = r#"
let s = stage("s");
s.sql("parts", `SELECT value AS id, CASE value % 3 WHEN 0 THEN 'zero' WHEN 1 THEN 'one' ELSE 'two' END AS grp, concat('v', CAST(value AS VARCHAR)) AS label FROM generate_series(1, 300)`,
      #{ partition_by: ["grp"] });
"#;
    p.file("pipeline.rhai", pipeline);
    p.run(&[]).ok();
    let dir = table_dir(&p.instance_dir(), "s", "parts");
    let first = std::fs::read_to_string(dir.join("_delta_log/00000000000000000000.json")).unwrap();
    assert!(first.contains("\"partitionColumns\":[\"grp\"]"), "{first}");
    assert!(
        first.contains("\"partitionValues\":{\"grp\":\"zero\"}"),
        "{first}"
    );
    assert_eq!(live_files(&dir).len(), 3);
    // Each partition's one file, described from its record: its rows, and its size on disk.
    assert_eq!(
        first.matches(r#"\"numRecords\":100}"#).count(),
        3,
        "{first}"
    );
    for file in crate::common::files_in(&dir) {
        let Some(name) = file.to_str().filter(|f| f.ends_with(".parquet")) else {
            continue;
        };
        let size = std::fs::metadata(&file).unwrap().len();
        let relative = name.rsplit_once("/s/parts/").unwrap().1;
        assert!(
            first.contains(&format!(r#""path":"{relative}""#))
                && first.contains(&format!(r#""size":{size},"#)),
            "{relative} {size}: {first}"
        );
    }
    if let Some(out) = read(
        p.dir.path(),
        &[Expected::committed(&p, "s.parts", None, &[])],
    ) {
        assert!(out.contains("s.parts deltalake: ok 300 rows"), "{out}");
    }

    // A new column: the Delta Kernel cannot replace a schema, so the table's log restarts.
    p.edit(
        "pipeline.rhai",
        "AS label FROM",
        "AS label, value * 2 AS twice FROM",
    );
    p.run(&[]).ok();
    assert_eq!(versions(&dir), [0]);
    let schema = std::fs::read_to_string(dir.join("_delta_log/00000000000000000000.json")).unwrap();
    assert!(schema.contains("twice"), "{schema}");
    logs_match_manifests(&p.instance_dir(), "after the schema change");
    if let Some(out) = read(
        p.dir.path(),
        &[Expected::committed(&p, "s.parts", None, &[])],
    ) {
        assert!(out.contains("s.parts polars: ok 300 rows"), "{out}");
    }
}

#[test]
fn a_checkpoint_every_ten_versions() {
    let p = Project::new();
    p.file(
        "pipeline.rhai",
        "let n = param(\"n\", 0);\nlet s = stage(\"s\");\ns.sql(\"t\", `SELECT ${n} AS n, 'x' AS tag`);\n",
    );
    for n in 0..=10 {
        p.run(&["--param", &format!("n={n}")]).ok();
    }
    let dir = table_dir(&p.instance_dir(), "s", "t");
    assert_eq!(versions(&dir).len(), 11);
    assert!(
        dir.join("_delta_log/00000000000000000010.checkpoint.parquet")
            .is_file(),
        "{:?}",
        std::fs::read_dir(dir.join("_delta_log"))
            .unwrap()
            .flatten()
            .map(|e| e.file_name())
            .collect::<Vec<_>>()
    );
    assert!(dir.join("_delta_log/_last_checkpoint").is_file());
    let latest = Expected::committed(&p, "s.t", None, &[]);
    assert_eq!(latest.rows, serde_json::json!([{ "n": 10, "tag": "x" }]));
    let mut tables = vec![
        latest,
        Expected::committed(&p, "s.t", Some(3), &["--as-of", "last~7"]),
    ];
    tables[1].rows = serde_json::json!([{ "n": 3, "tag": "x" }]);
    read(p.dir.path(), &tables);
}

/// A process killed after a stage's manifest switched but before its tables' Delta versions
/// were written: the stage's history copy is missing too, and the next run, a no-op, writes
/// both.
#[test]
fn a_commit_cut_short_before_its_delta_versions_is_finished_by_the_next_run() {
    let p = two_runs();
    let dir = table_dir(&p.instance_dir(), "prep", "orders_clean");
    let version = dir.join("_delta_log/00000000000000000001.json");
    let run_id = p.manifest("prep").unwrap()["run_id"]
        .as_str()
        .unwrap()
        .to_string();
    let copy = p.instance_dir().join(format!("history/prep/{run_id}.json"));
    assert!(version.is_file() && copy.is_file());
    std::fs::remove_file(&version).unwrap();
    std::fs::remove_file(&copy).unwrap();

    let noop = p.run(&[]).ok();
    assert!(noop.stdout.contains("0 ran"), "{}", noop.text());
    assert!(version.is_file() && copy.is_file());
    logs_match_manifests(&p.instance_dir(), "after the repair");
}

#[test]
fn delta_false_writes_no_delta_log() {
    let p = Project::standard();
    p.file("weir.toml", "[store]\ndelta = false\n");
    p.run(&[]).ok();
    let logs: Vec<_> = p
        .data_files()
        .into_iter()
        .filter(|f| f.to_string_lossy().contains("_delta_log"))
        .collect();
    assert!(logs.is_empty(), "{logs:?}");
    assert_eq!(p.query("SELECT count(*) FROM prep.orders_clean"), ["5"]);
}

#[test]
fn delta_tables_on_s3_read_by_other_engines() {
    let s3 = S3::start();
    s3.bucket("lake");
    let env = s3.env();
    let p = Project::standard();
    let store = "s3://lake/weir";
    p.weir_env(&["run", "pipeline.rhai", "--store", store], &env)
        .ok();
    let keys = s3.keys("lake");
    assert!(
        keys.iter()
            .any(|k| k
                == "weir/default/tables/prep/orders_clean/_delta_log/00000000000000000000.json"),
        "{keys:?}"
    );
    let options = storage_options(&env);
    let tables: Vec<Expected> = ["prep.orders_clean", "marts.by_segment"]
        .iter()
        .map(|t| {
            let query = format!("SELECT * FROM {t}");
            let out = p
                .weir_env(&["sql", &query, "-f", "json", "--store", store], &env)
                .ok();
            let (stage, name) = t.split_once('.').unwrap();
            Expected {
                table: t.to_string(),
                location: format!("{store}/default/tables/{stage}/{name}"),
                version: None,
                rows: serde_json::from_str(&out.stdout).unwrap(),
                storage_options: Some(options.clone()),
            }
        })
        .collect();
    if let Some(out) = read(p.dir.path(), &tables) {
        assert_eq!(out.matches(": ok ").count(), 4, "{out}");
    }
}

/// Timestamps in milli-, micro- and nanoseconds, zoned or not, have a Delta log (a zoned one is
/// an instant, in UTC); a table with a timestamp in whole seconds (what DataFusion infers from
/// CSV), which its Parquet files hold as plain integers, has none, and the log says why.
#[test]
fn timestamps_read_as_delta_where_delta_can_describe_them() {
    let p = Project::new();
    p.file(
        "data/events.csv",
        "id,ts\n1,2026-01-01 12:51:04\n2,2026-01-02 08:00:00\n",
    );
    p.file(
        "pipeline.rhai",
        r#"
stage("raw").load("events", "data/events.csv");
stage("prep").sql("times", `
    SELECT id,
           CAST(ts AS TIMESTAMP(3)) AS ms,
           CAST(ts AS TIMESTAMP(6)) AS us,
           CAST(ts AS TIMESTAMP(9)) AS ns,
           arrow_cast(ts, 'Timestamp(Microsecond, Some("+02:00"))') AS zoned
    FROM raw.events`);
"#,
    );
    let run = p.run(&["-v"]).ok();
    assert_eq!(
        p.query("SELECT arrow_typeof(ts) FROM raw.events LIMIT 1"),
        ["Timestamp(s)"]
    );
    assert!(versions(&table_dir(&p.instance_dir(), "raw", "events")).is_empty());
    assert!(
        run.text()
            .contains("column ts is a timestamp in whole seconds"),
        "{}",
        run.text()
    );
    assert_eq!(
        versions(&table_dir(&p.instance_dir(), "prep", "times")),
        [0]
    );
    if let Some(out) = read(
        p.dir.path(),
        &[Expected::committed(&p, "prep.times", None, &[])],
    ) {
        assert!(out.contains("prep.times deltalake: ok 2 rows"), "{out}");
        assert!(out.contains("prep.times polars: ok 2 rows"), "{out}");
    }
}
