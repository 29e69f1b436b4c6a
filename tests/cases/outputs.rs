//! Outputs of any size: a large table is several Parquet files, `partition_by` writes Hive
//! folders; weir reads both back whole, and so does an independent reader (pyarrow).

use crate::common::{Project, read_parquet};

const PIPELINE: &str = r#"
let s = stage("s");
s.sql("nums", `SELECT value AS id, value % 3 AS g, concat('v', CAST(value AS VARCHAR)) AS label FROM generate_series(1, 200000)`);
s.sql("copy", `SELECT * FROM s.nums`);
s.sql("parts", `SELECT id, label, CASE g WHEN 0 THEN 'zero' WHEN 1 THEN 'one' ELSE 'two' END AS grp FROM s.nums`,
      #{ partition_by: ["grp"] });
s.sql("count_parts", `SELECT grp, count(*) AS n FROM s.parts GROUP BY grp ORDER BY grp`);
"#;

/// With a small target file size a table is written as several files that together hold every
/// row; a partitioned table sits in `grp=value/` folders without the column in its files, and
/// weir reads both back whole (the partition column included).
#[test]
fn large_and_partitioned_outputs_read_back_whole() {
    let p = Project::new();
    p.file("pipeline.rhai", PIPELINE)
        .file("weir.toml", "[engine]\ntarget_file_size = \"256KiB\"\n");
    p.run(&[]).ok();
    let manifest = p.manifest("s").expect("committed");
    let files = manifest["tables"]["copy"]["files"].as_array().unwrap();
    assert!(files.len() >= 3, "one file only: {files:?}");
    let rows: usize = files
        .iter()
        .map(|f| read_parquet(&p.instance_dir().join(f.as_str().unwrap())).0)
        .sum();
    assert_eq!(rows, 200_000);
    assert_eq!(
        p.query("SELECT count(*), sum(id) FROM s.copy"),
        ["200000,20000100000"]
    );

    let parts = manifest["tables"]["parts"]["files"].as_array().unwrap();
    for f in parts {
        let f = f.as_str().unwrap();
        assert!(f.contains("/grp="), "{f}");
        let (_, columns, _) = read_parquet(&p.instance_dir().join(f));
        assert_eq!(
            columns,
            ["id", "label"],
            "the partition column lives in the path"
        );
    }
    assert_eq!(
        p.query("SELECT * FROM s.count_parts"),
        ["one,66667", "two,66667", "zero,66666"]
    );
    assert_eq!(
        p.query("SELECT grp, count(*) FROM s.parts WHERE grp = 'two' GROUP BY grp"),
        ["two,66667"]
    );

    // pyarrow reads the partitioned build as a Hive dataset, column included.
    let build = p.instance_dir().join(parts[0].as_str().unwrap());
    let dataset = build
        .ancestors()
        .find(|d| !d.to_string_lossy().contains("grp="))
        .expect("the build folder");
    let script = format!(
        "import pyarrow.dataset as ds\n\
         t = ds.dataset('{}', format='parquet', partitioning='hive').to_table()\n\
         print(sorted(t.column_names), t.num_rows, sorted(set(t.column('grp').to_pylist())))",
        dataset.display()
    );
    match std::process::Command::new("python3")
        .args(["-c", &script])
        .output()
    {
        Ok(out) if out.status.success() => assert_eq!(
            String::from_utf8_lossy(&out.stdout).trim(),
            "['grp', 'id', 'label'] 200000 ['one', 'two', 'zero']"
        ),
        other => assert!(
            std::env::var_os("CI").is_none(),
            "pyarrow is missing in CI (.ci/run installs it): {other:?}"
        ),
    }
}

/// A partition column the table does not have is an error that names the columns.
#[test]
fn partitioning_by_an_unknown_column_fails_clearly() {
    let p = Project::new();
    p.file(
        "pipeline.rhai",
        "let s = stage(\"s\");\ns.sql(\"t\", `SELECT 1 AS a`, #{ partition_by: \"nope\" });\n",
    );
    let run = p.run(&[]).fails_with(1);
    assert!(
        run.text()
            .contains("partition_by names `nope`, which s.t does not have (columns: a)"),
        "{}",
        run.text()
    );
}

/// The footer of a table's first file in `instance`, read with the parquet crate.
fn footer(
    p: &Project,
    instance: &str,
    table: &str,
) -> datafusion::parquet::file::metadata::ParquetMetaData {
    use datafusion::parquet::file::reader::{FileReader, SerializedFileReader};
    let dir = p.instance_dir_of(instance);
    let manifest: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(dir.join("manifests/s.json")).expect("s committed"),
    )
    .expect("a manifest");
    let file = manifest["tables"][table]["files"][0]
        .as_str()
        .expect("a file")
        .to_string();
    let reader = SerializedFileReader::new(std::fs::File::open(dir.join(file)).expect("open"))
        .expect("parquet");
    reader.metadata().clone()
}

/// The codec of a table's first column chunk.
fn codec(p: &Project, table: &str) -> String {
    let footer = footer(p, "default", table);
    format!("{:?}", footer.row_group(0).column(0).compression())
}

/// Tables are written with LZ4 unless `[engine] compression` says otherwise (per instance
/// too); a codec weir does not write is refused at its line in weir.toml.
#[test]
fn the_codec_is_lz4_unless_configured() {
    let p = Project::new();
    p.file(
        "pipeline.rhai",
        "let s = stage(\"s\");\ns.sql(\"t\", \"SELECT value AS v FROM generate_series(1, 1000)\");\n",
    );
    p.run(&[]).ok();
    assert_eq!(codec(&p, "t"), "LZ4_RAW");

    p.file("weir.toml", "[engine]\ncompression = \"snappy\"\n");
    p.run(&["--force"]).ok();
    assert_eq!(codec(&p, "t"), "SNAPPY");

    p.file("weir.toml", "[engine]\ncompression = \"zstd(3)\"\n");
    p.run(&["--force"]).ok();
    assert!(codec(&p, "t").starts_with("ZSTD"), "{}", codec(&p, "t"));

    p.file("weir.toml", "[engine]\ncompression = \"lzo\"\n");
    let run = p.run(&[]).fails_with(2);
    assert!(
        run.stderr.contains("`lzo` is not a codec weir writes"),
        "{}",
        run.text()
    );
}

/// `[engine.datafusion]` sets DataFusion's own settings for a pipeline (per instance too, one
/// setting at a time); a setting DataFusion does not have, a value it does not take, or one
/// outside planning and execution is refused at its line in weir.toml.
#[test]
fn datafusion_settings_apply_per_instance_and_are_checked() {
    let p = Project::new();
    p.file(
        "pipeline.rhai",
        "let s = stage(\"s\");\ns.sql(\"t\", \"SELECT value AS v FROM generate_series(1, 1000)\");\n",
    );
    p.file(
        "weir.toml",
        r#"
[engine.datafusion]
"execution.parquet.max_row_group_size" = 100
"datafusion.execution.parquet.compression" = "snappy"

[instances.default]

[instances.mini.engine.datafusion]
"execution.parquet.max_row_group_size" = 250
"#,
    );
    p.run(&[]).ok();
    let full = footer(&p, "default", "t");
    assert_eq!(full.num_row_groups(), 10);
    assert_eq!(
        format!("{:?}", full.row_group(0).column(0).compression()),
        "SNAPPY"
    );
    p.run(&["--instance", "mini"]).ok();
    let mini = footer(&p, "mini", "t");
    assert_eq!(mini.num_row_groups(), 4);
    assert_eq!(
        format!("{:?}", mini.row_group(0).column(0).compression()),
        "SNAPPY"
    );

    for (setting, says) in [
        ("\"execution.no_such_thing\" = 1", "no_such_thing"),
        ("\"execution.batch_size\" = \"many\"", "many"),
        (
            "\"catalog.location\" = \"/etc\"",
            "`datafusion.catalog.location` is not a DataFusion setting a pipeline can change",
        ),
        (
            "\"execution.batch_size\" = [1, 2]",
            "takes a string, a number or a boolean",
        ),
    ] {
        p.file("weir.toml", &format!("[engine.datafusion]\n{setting}\n"));
        let run = p.run(&[]).fails_with(2);
        assert!(run.stderr.contains(says), "{setting}: {}", run.text());
        assert!(
            run.stderr.contains("weir.toml:2"),
            "{setting}: {}",
            run.text()
        );
    }
}
