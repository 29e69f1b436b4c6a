//! The TPC-H example at scale factor 0.01: weir's 22 query tables hold what bare DataFusion
//! computes from the same data and the same SQL.

use std::path::Path;
use std::sync::Arc;

use datafusion::arrow::array::{Array, ArrayRef, AsArray};
use datafusion::arrow::compute::cast;
use datafusion::arrow::datatypes::{DataType, Float64Type, SchemaRef};
use datafusion::arrow::error::ArrowError;
use datafusion::arrow::record_batch::RecordBatch;
use datafusion::parquet::arrow::ArrowWriter;
use datafusion::prelude::{ParquetReadOptions, SessionContext};
use tpchgen::generators::{
    CustomerGenerator, LineItemGenerator, NationGenerator, OrderGenerator, PartGenerator,
    PartSuppGenerator, RegionGenerator, SupplierGenerator,
};
use tpchgen_arrow::{
    CustomerArrow, LineItemArrow, NationArrow, OrderArrow, PartArrow, PartSuppArrow, RegionArrow,
    SupplierArrow,
};

use crate::common::delta::{self, Expected};
use crate::common::{Project, read_parquet};

const SF: f64 = 0.01;
const TABLES: [&str; 8] = [
    "lineitem", "orders", "customer", "part", "partsupp", "supplier", "nation", "region",
];

#[test]
fn tpch_queries_equal_bare_datafusion() {
    let p = Project::example("tpch");
    generate(&p.path("data"));
    // Every query plans before anything runs: `weir check` reads only the sources' schemas.
    let checked = p.weir(&["check", "--param", "data=data"]).ok();
    assert!(
        checked.stdout.contains("32 tasks: 32 planned"),
        "{}",
        checked.text()
    );
    let run = p.run(&["--param", "data=data"]).ok();
    assert!(run.stdout.contains("32 tasks: 32 ran"), "{}", run.text());
    assert_marts_equal_bare_datafusion(&p);
    // Every table of the example, decimals and dates included, reads as a Delta table with
    // weir's values.
    let tables: Vec<Expected> = TABLES
        .iter()
        .map(|t| format!("raw.{t}"))
        .chain([
            "prep.lineitem_enriched".into(),
            "prep.partsupp_value".into(),
        ])
        .chain((1..=22).map(|q| format!("marts.q{q:02}")))
        .map(|t| Expected::committed(&p, &t, None, &[]))
        .collect();
    if let Some(out) = delta::read(p.dir.path(), &tables) {
        assert_eq!(out.matches(" deltalake: ok ").count(), 32, "{out}");
        // q18's `sum(l_quantity)` needs column mapping, which Polars does not read.
        assert_eq!(out.matches(" polars: ok ").count(), 31, "{out}");
    }
}

/// With every join partitioned (no join small enough to be copied to each partition), as at
/// larger scale: weir's join rules (`exec::scan_filters`, `exec::build_side`) and its decimal
/// arithmetic (`exec::decimal`) change these plans and not what they compute.
#[test]
fn tpch_queries_with_partitioned_joins_equal_bare_datafusion() {
    let p = Project::example("tpch");
    generate(&p.path("data"));
    p.file("weir.toml", crate::cases::joins::PARTITIONED);
    let run = p.run(&["--param", "data=data", "-vv"]).ok();
    let text = run.text();
    assert!(text.contains("32 tasks: 32 ran"), "{text}");
    // q21's anti join builds on the line items its semi join kept, not on all line items
    // shipped late (which DataFusion alone picks: 3.8 M rows against 47 K at SF 1).
    let q21 = plan_of(&text, "marts.q21");
    assert!(
        q21.contains("mode=Partitioned, join_type=LeftAnti"),
        "{q21}"
    );
    // q01's decimal arithmetic in 64-bit integers (`exec::decimal`), its results equal below.
    let q01 = plan_of(&text, "marts.q01");
    assert!(
        q01.contains("decimal_mul(l_extendedprice@0, decimal_sub(1, l_discount@1))"),
        "{q01}"
    );
    assert_marts_equal_bare_datafusion(&p);
}

/// The plan `weir run -vv` printed for `task`.
fn plan_of<'a>(text: &'a str, task: &str) -> &'a str {
    text.split(&format!("plan    {task}"))
        .nth(1)
        .and_then(|rest| rest.split("\n  done").next())
        .unwrap_or_else(|| panic!("{task}'s plan in {text}"))
}

/// Each of the 22 committed marts holds what bare DataFusion computes from the same files.
pub fn assert_marts_equal_bare_datafusion(p: &Project) {
    let expected = bare_datafusion(p);
    let marts = p.manifest("marts").expect("marts committed");
    for (query, (rows, columns, sum)) in expected {
        let file = marts["tables"][&query]["files"][0]
            .as_str()
            .unwrap_or_else(|| panic!("{query} in the marts manifest"));
        let (n, names, batches) = read_parquet(&p.instance_dir().join(file));
        assert_eq!(names, columns, "{query}: columns");
        assert_eq!(n, rows, "{query}: rows");
        assert_eq!(checksum(&batches), sum, "{query}: content");
    }
    let enriched =
        p.manifest("prep").expect("prep committed")["tables"]["lineitem_enriched"]["rows"].as_u64();
    let lineitems =
        p.manifest("raw").expect("raw committed")["tables"]["lineitem"]["rows"].as_u64();
    assert_eq!(
        enriched, lineitems,
        "every line item has its order and customer"
    );
}

/// What is compared of a table: rows, column names, checksum.
type Digest = (usize, Vec<String>, u64);

/// Each query's digest, from the 22 queries run over the generated files.
fn bare_datafusion(p: &Project) -> Vec<(String, Digest)> {
    let rt = tokio::runtime::Runtime::new().expect("tokio");
    rt.block_on(async {
        let ctx = SessionContext::new();
        for t in TABLES {
            let file = p.path(&format!("data/{t}.parquet"));
            ctx.register_parquet(
                t,
                file.to_str().expect("utf-8 path"),
                ParquetReadOptions::default(),
            )
            .await
            .expect("register");
        }
        let mut out = Vec::new();
        for q in 1..=22 {
            let name = format!("q{q:02}");
            let sql = p.read(&format!("queries/{name}.sql"));
            let df = ctx
                .sql(&sql)
                .await
                .unwrap_or_else(|e| panic!("{name}: {e}"));
            let columns = df
                .schema()
                .fields()
                .iter()
                .map(|f| f.name().clone())
                .collect();
            let batches = df.collect().await.unwrap_or_else(|e| panic!("{name}: {e}"));
            let rows = batches.iter().map(RecordBatch::num_rows).sum();
            out.push((name, (rows, columns, checksum(&batches))));
        }
        out
    })
}

/// An order-independent digest of the rows: the wrapping sum of a hash of each row's text.
/// Floats are compared to 9 significant digits, since parallel sums may differ in the last bits.
pub fn checksum(batches: &[RecordBatch]) -> u64 {
    let mut sum = 0u64;
    for batch in batches {
        let columns: Vec<ArrayRef> = batch.columns().iter().map(|c| as_text(c)).collect();
        for row in 0..batch.num_rows() {
            let mut h = blake3::Hasher::new();
            for c in &columns {
                let text = c.as_string::<i32>();
                h.update(if text.is_null(row) {
                    b"\0null"
                } else {
                    text.value(row).as_bytes()
                });
                h.update(b"\x1f");
            }
            let bytes = h.finalize();
            let first: [u8; 8] = bytes.as_bytes()[..8].try_into().expect("8 bytes");
            sum = sum.wrapping_add(u64::from_le_bytes(first));
        }
    }
    sum
}

fn as_text(c: &ArrayRef) -> ArrayRef {
    match c.data_type() {
        DataType::Float64 => Arc::new(
            c.as_primitive::<Float64Type>()
                .iter()
                .map(|v| v.map(|v| format!("{v:.8e}")))
                .collect::<datafusion::arrow::array::StringArray>(),
        ),
        _ => cast(c, &DataType::Utf8).expect("cast to text"),
    }
}

/// The 8 TPC-H tables at SF 0.01 as Parquet, the way tpchgen-cli writes them.
pub fn generate(dir: &Path) {
    std::fs::create_dir_all(dir).expect("mkdir");
    write(
        dir,
        "lineitem",
        LineItemArrow::schema_ref(),
        LineItemArrow::new(LineItemGenerator::new(SF, 1, 1)),
    );
    write(
        dir,
        "orders",
        OrderArrow::schema_ref(),
        OrderArrow::new(OrderGenerator::new(SF, 1, 1)),
    );
    write(
        dir,
        "customer",
        CustomerArrow::schema_ref(),
        CustomerArrow::new(CustomerGenerator::new(SF, 1, 1)),
    );
    write(
        dir,
        "part",
        PartArrow::schema_ref(),
        PartArrow::new(PartGenerator::new(SF, 1, 1)),
    );
    write(
        dir,
        "partsupp",
        PartSuppArrow::schema_ref(),
        PartSuppArrow::new(PartSuppGenerator::new(SF, 1, 1)),
    );
    write(
        dir,
        "supplier",
        SupplierArrow::schema_ref(),
        SupplierArrow::new(SupplierGenerator::new(SF, 1, 1)),
    );
    write(
        dir,
        "nation",
        NationArrow::schema_ref(),
        NationArrow::new(NationGenerator::new(SF, 1, 1)),
    );
    write(
        dir,
        "region",
        RegionArrow::schema_ref(),
        RegionArrow::new(RegionGenerator::new(SF, 1, 1)),
    );
}

fn write(
    dir: &Path,
    name: &str,
    schema: SchemaRef,
    batches: impl Iterator<Item = Result<RecordBatch, ArrowError>>,
) {
    let file = std::fs::File::create(dir.join(format!("{name}.parquet"))).expect("create");
    let mut w = ArrowWriter::try_new(file, schema, None).expect("writer");
    for b in batches {
        w.write(&b.expect("generate")).expect("write batch");
    }
    w.close().expect("close");
}

/// The TPC-H example with its sources in an S3 bucket and its store on S3 builds the same 22
/// tables as a local run, and a second run is a no-op.
#[test]
fn tpch_on_s3_equals_the_local_run() {
    let s3 = crate::common::servers::S3::start();
    s3.bucket("lake").bucket("tpch");
    let p = Project::example("tpch");
    generate(&p.path("data"));
    for t in TABLES {
        let bytes = std::fs::read(p.path(&format!("data/{t}.parquet"))).expect("data");
        s3.put("tpch", &format!("sf001/{t}.parquet"), &bytes);
    }
    p.run(&["--param", "data=data"]).ok();
    let env = s3.env();
    let args = [
        "run",
        "pipeline.rhai",
        "--param",
        "data=s3://tpch/sf001",
        "--store",
        "s3://lake/weir",
    ];
    let cold = p.weir_env(&args, &env).ok();
    assert!(cold.stdout.contains("32 tasks: 32 ran"), "{}", cold.text());
    let instance = s3.root.path().join("lake/weir/default");
    let local = p.manifest("marts").expect("marts committed locally");
    let remote: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(instance.join("manifests/marts.json")).expect("marts on S3"),
    )
    .expect("json");
    for i in 1..=22 {
        let q = format!("q{i:02}");
        let read = |root: &Path, manifest: &serde_json::Value| {
            let file = manifest["tables"][&q]["files"][0].as_str().expect("a file");
            let (rows, columns, batches) = read_parquet(&root.join(file));
            (rows, columns, checksum(&batches))
        };
        assert_eq!(
            read(&instance, &remote),
            read(&p.instance_dir(), &local),
            "{q}"
        );
    }
    let noop = p.weir_env(&args, &env).ok();
    assert!(noop.stdout.contains("0 ran, 32 cached"), "{}", noop.text());
}
