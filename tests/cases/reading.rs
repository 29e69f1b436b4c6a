//! Reading committed tables: show and sql, in three formats.

use crate::common::Project;

/// `show` prints a committed table as text, CSV or JSON, and suggests a name when misspelled.
#[test]
fn show_and_sql_print_committed_tables() {
    let p = Project::standard();
    p.run(&[]).ok();
    let table = p.weir(&["show", "marts.by_segment", "--limit", "1"]).ok();
    assert!(
        table.stdout.contains("| segment    | total | orders |"),
        "{}",
        table.stdout
    );
    assert_eq!(
        table.stdout.matches("enterprise").count() + table.stdout.matches("smb").count(),
        1
    );
    let json = p
        .weir(&[
            "sql",
            "SELECT segment, total FROM marts.by_segment ORDER BY segment",
            "-f",
            "json",
        ])
        .ok();
    assert_eq!(
        json.stdout.trim(),
        "[{\"segment\":\"enterprise\",\"total\":200},{\"segment\":\"smb\",\"total\":544}]"
    );
    let miss = p.weir(&["show", "marts.by_segmnt"]).fails_with(2);
    assert!(
        miss.stderr.contains("did you mean `marts.by_segment`?"),
        "{}",
        miss.stderr
    );
    let bad = p
        .weir(&["sql", "SELECT nope FROM marts.by_segment"])
        .fails_with(2);
    assert!(bad.stderr.contains("No field named nope"), "{}", bad.stderr);
}

/// Parquet and NDJSON sources load too, globs included, and CSV options apply.
#[test]
fn parquet_json_glob_and_csv_options_load() {
    let p = Project::new();
    p.file(
        "data/a.ndjson",
        "{\"id\": 1, \"name\": \"x\"}\n{\"id\": 2, \"name\": \"y\"}\n",
    );
    p.file("data/parts/p1.csv", "id;code\n1;007\n");
    p.file("data/parts/p2.csv", "id;code\n2;010\n");
    p.file("make.rhai", "let s = stage(\"s\");\ns.sql(\"t\", \"SELECT * FROM (VALUES (1, 'a'), (2, 'b'), (3, 'c')) AS v(id, tag)\");\n");
    p.weir(&["run", "make.rhai", "--store", "made"]).ok();
    let manifest: serde_json::Value =
        serde_json::from_str(&p.read("made/default/manifests/s.json")).unwrap();
    let made = p
        .path("made/default")
        .join(manifest["tables"]["t"]["files"][0].as_str().unwrap());
    std::fs::copy(made, p.path("data/t.parquet")).unwrap();

    p.file(
        "pipeline.rhai",
        r#"
        let raw = stage("raw");
        raw.load("j", "data/a.ndjson");
        raw.load("c", "data/parts/*.csv", #{ delimiter: ";", schema: #{ code: "Utf8" } });
        raw.load("p", "data/t.parquet");
    "#,
    );
    p.run(&[]).ok();
    assert_eq!(p.query("SELECT name FROM raw.j ORDER BY id"), ["x", "y"]);
    assert_eq!(
        p.query("SELECT code FROM raw.c ORDER BY id"),
        ["007", "010"],
        "schema override keeps leading zeros"
    );
    assert_eq!(
        p.query("SELECT tag FROM raw.p ORDER BY id"),
        ["a", "b", "c"]
    );

    p.file("data/parts/p3.csv", "id;code\n3;011\n");
    p.run(&[]).ok();
    assert_eq!(
        p.ran(),
        crate::common::set(&["raw.c"]),
        "a new file matching the glob is a change"
    );
    assert_eq!(p.query("SELECT count(*) FROM raw.c"), ["3"]);
}

/// A committed table whose files went missing fails only the queries that read it, naming
/// it; `status` reports it damaged, and the next run rebuilds it and nothing else.
#[test]
fn a_damaged_table_breaks_only_its_own_reads_and_is_rebuilt() {
    let p = Project::standard();
    p.run(&[]).ok();
    let manifest = p.manifest("marts").expect("marts committed");
    let file = manifest["tables"]["big_orders"]["files"][0]
        .as_str()
        .unwrap();
    std::fs::remove_file(p.instance_dir().join(file)).unwrap();

    let other = p.weir(&[
        "sql",
        "SELECT count(*) AS n FROM prep.orders_clean",
        "-f",
        "csv",
    ]);
    assert_eq!(other.ok().stdout, "n\n5\n");
    let broken = p
        .weir(&["sql", "SELECT * FROM marts.big_orders"])
        .fails_with(1);
    assert!(
        broken
            .stderr
            .contains("cannot read committed table marts.big_orders"),
        "{}",
        broken.stderr
    );
    let status = p.weir(&["status"]).ok().stdout;
    assert!(
        status
            .lines()
            .any(|l| l.starts_with("marts.big_orders") && l.contains("damaged")),
        "{status}"
    );
    p.run(&[]).ok();
    assert_eq!(p.ran(), crate::common::set(&["marts.big_orders"]));
    assert_eq!(p.query("SELECT count(*) FROM marts.big_orders"), ["2"]);

    // A file cut short (a disk that lost its tail) counts as damaged too.
    let manifest = p.manifest("prep").expect("prep committed");
    let file = manifest["tables"]["customer_count"]["files"][0]
        .as_str()
        .unwrap();
    let file = p.instance_dir().join(file);
    let len = std::fs::metadata(&file).unwrap().len();
    std::fs::File::options()
        .write(true)
        .open(&file)
        .unwrap()
        .set_len(len / 2)
        .unwrap();
    p.run(&[]).ok();
    assert_eq!(p.ran(), crate::common::set(&["prep.customer_count"]));
}
