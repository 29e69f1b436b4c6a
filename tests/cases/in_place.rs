//! Parquet sources kept in place (`copy: false`): registered, not copied; pinned by their
//! fingerprint, so a changed source is reported stale and never read as the committed table.

use crate::common::{Project, set, write_parquet};

const PIPELINE: &str = r#"
let raw = stage("raw");
raw.load("events", "data/events.parquet", #{ copy: false });
let marts = stage("marts");
marts.sql("total", `SELECT count(*) AS n, sum(id) AS s FROM raw.events`);
"#;

/// Kept in place, the source is read where it is (the store holds no copy), downstream tasks
/// and `weir sql` read it, and a no-op run reads nothing again.
#[test]
fn a_source_kept_in_place_is_read_where_it_is() {
    let p = Project::new();
    p.file("pipeline.rhai", PIPELINE);
    write_parquet(&p.path("data/events.parquet"), 1000);
    p.run(&[]).ok();
    assert_eq!(p.query("SELECT n, s FROM marts.total"), ["1000,500500"]);
    assert_eq!(p.query("SELECT count(*) FROM raw.events"), ["1000"]);
    let copies: Vec<_> = p
        .files_under(".weir/default/tables/raw")
        .into_iter()
        .filter(|f| f.extension().is_some_and(|e| e == "parquet"))
        .collect();
    assert!(copies.is_empty(), "the source was copied: {copies:?}");
    let manifest = p.manifest("raw").expect("raw committed");
    let file = manifest["tables"]["events"]["files"][0].as_str().unwrap();
    assert!(file.ends_with("data/events.parquet"), "{file}");
    p.run(&[]).ok();
    assert!(p.ran().is_empty(), "{:?}", p.ran());
}

/// After the source changes, `status` reports the load stale, reading the committed table
/// fails with a message saying why (never the new data under the old name), and the next run
/// loads it again and re-runs what reads it.
#[test]
fn a_changed_in_place_source_is_stale_and_never_read_silently() {
    let p = Project::new();
    p.file("pipeline.rhai", PIPELINE);
    write_parquet(&p.path("data/events.parquet"), 1000);
    p.run(&[]).ok();
    std::thread::sleep(std::time::Duration::from_millis(20));
    write_parquet(&p.path("data/events.parquet"), 10);

    let status = p.weir(&["status"]).ok().stdout;
    assert!(
        status
            .lines()
            .any(|l| l.starts_with("raw.events") && l.contains("stale")),
        "{status}"
    );
    let read = p
        .weir(&["sql", "SELECT count(*) FROM raw.events"])
        .fails_with(1);
    assert!(
        read.stderr
            .contains("cannot read committed table raw.events")
            && read.stderr.contains("changed since it was committed"),
        "{}",
        read.stderr
    );
    // What was built from the old source stays readable.
    assert_eq!(p.query("SELECT n FROM marts.total"), ["1000"]);
    p.run(&[]).ok();
    assert_eq!(p.ran(), set(&["raw.events", "marts.total"]));
    assert_eq!(p.query("SELECT n, s FROM marts.total"), ["10,55"]);
}

/// `copy: false` keeps Parquet only; on a CSV file it is refused where it is declared.
#[test]
fn copy_false_is_for_parquet() {
    let p = Project::standard();
    p.edit(
        "pipeline.rhai",
        "raw.load(\"orders\", \"data/orders.csv\");",
        "raw.load(\"orders\", \"data/orders.csv\", #{ copy: false });",
    );
    let run = p.run(&[]).fails_with(2);
    assert!(
        run.stderr
            .contains("`copy: false` keeps Parquet files in place"),
        "{}",
        run.stderr
    );
}
