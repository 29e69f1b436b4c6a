//! Joins whose small side's keys filter the large side's scan (`exec::scan_filters`) hold what
//! bare DataFusion computes, for every kind of join and with NULL keys on both sides.

use datafusion::prelude::{ParquetReadOptions, SessionContext};

use crate::cases::tpch::checksum;
use crate::common::{Project, read_parquet};

const PIPELINE: &str = r#"
let raw = stage("raw");
// 300,000 rows over 5,000 keys, every 97th key NULL; 41 small rows over keys 7, 14, ... and a NULL.
raw.sql("big", "SELECT value AS id, CASE WHEN value % 97 = 0 THEN NULL ELSE value % 5000 END AS k, value * 3 AS v FROM generate_series(1, 300000)");
raw.sql("small", "SELECT CASE WHEN value = 0 THEN NULL ELSE value * 7 END AS k, value AS w FROM generate_series(0, 40)");
let q = stage("q");
for pair in QUERIES {
    q.sql(pair[0], pair[1], #{ default_stage: "raw" });
}
"#;

const QUERIES: [(&str, &str); 9] = [
    (
        "inner_join",
        "SELECT b.id, b.k, s.w FROM big b JOIN small s ON b.k = s.k",
    ),
    (
        "in_subquery",
        "SELECT id, k, v FROM big WHERE k IN (SELECT k FROM small WHERE w > 30)",
    ),
    (
        "not_in",
        "SELECT id, k FROM big WHERE k NOT IN (SELECT k FROM small WHERE w > 30)",
    ),
    (
        "not_in_null",
        "SELECT id, k FROM big WHERE k NOT IN (SELECT k FROM small)",
    ),
    (
        "exists",
        "SELECT id, k FROM big b WHERE EXISTS (SELECT 1 FROM small s WHERE s.k = b.k AND s.w < 5)",
    ),
    (
        "not_exists",
        "SELECT id, k FROM big b WHERE NOT EXISTS (SELECT 1 FROM small s WHERE s.k = b.k)",
    ),
    (
        "left_join",
        "SELECT b.id, s.w FROM big b LEFT JOIN small s ON b.k = s.k",
    ),
    (
        "right_join",
        "SELECT b.id, s.k, s.w FROM big b RIGHT JOIN small s ON b.k = s.k",
    ),
    (
        "full_join",
        "SELECT b.id, s.k, s.w FROM big b FULL JOIN small s ON b.k = s.k AND s.w > 20",
    ),
];

#[test]
fn joins_filtered_by_their_small_side_equal_bare_datafusion() {
    let p = Project::new();
    let queries = QUERIES
        .iter()
        .map(|(name, sql)| format!("[\"{name}\", \"{sql}\"]"))
        .collect::<Vec<_>>()
        .join(", ");
    p.file(
        "pipeline.rhai",
        &format!("const QUERIES = [{queries}];\n{PIPELINE}"),
    );
    let run = p.weir(&["run", "pipeline.rhai", "-vv"]).ok();
    // The filter is there to be measured: the small side's keys filter the big table's scan.
    assert!(run.text().contains("join keys"), "{}", run.text());
    assert_equal_bare_datafusion(&p);

    // Partitioned joins: each partition's keys, routed by hash, as one list.
    p.file("weir.toml", PARTITIONED);
    let run = p.weir(&["run", "pipeline.rhai", "-vv", "--force"]).ok();
    let text = run.text();
    assert!(text.contains("mode=Partitioned"), "{text}");
    assert!(text.contains("join keys"), "{text}");
    assert_equal_bare_datafusion(&p);
}

pub const PARTITIONED: &str = r#"[engine.datafusion]
"execution.target_partitions" = 4
"optimizer.hash_join_single_partition_threshold" = 0
"optimizer.hash_join_single_partition_threshold_rows" = 0
"#;

fn assert_equal_bare_datafusion(p: &Project) {
    let table = |stage: &str, name: &str| {
        let manifest = p.manifest(stage).expect("committed");
        let file = manifest["tables"][name]["files"][0]
            .as_str()
            .expect("a file");
        p.instance_dir().join(file)
    };
    let rt = tokio::runtime::Runtime::new().expect("tokio");
    let expected = rt.block_on(async {
        let ctx = SessionContext::new();
        for name in ["big", "small"] {
            let file = table("raw", name);
            let file = file.to_str().expect("utf-8 path");
            ctx.register_parquet(name, file, ParquetReadOptions::default())
                .await
                .expect("register");
        }
        let mut out = Vec::new();
        for (name, sql) in QUERIES {
            let batches = ctx.sql(sql).await.expect(name).collect().await.expect(name);
            let rows: usize = batches.iter().map(|b| b.num_rows()).sum();
            out.push((name, rows, checksum(&batches)));
        }
        out
    });
    for (name, rows, sum) in expected {
        let (n, _, batches) = read_parquet(&table("q", name));
        assert_eq!(n, rows, "{name}: rows");
        assert_eq!(checksum(&batches), sum, "{name}: content");
    }
    let rows = |name: &str| read_parquet(&table("q", name)).0;
    // A NULL among NOT IN's keys leaves nothing; the others are neither empty nor everything.
    assert_eq!(rows("not_in_null"), 0);
    assert!(rows("in_subquery") > 0 && rows("in_subquery") < 300_000);
    assert!(rows("not_in") > 0 && rows("not_in") < 300_000);
}
