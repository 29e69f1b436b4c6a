//! Filling small instances from a big one: head, fraction and key-consistent samples, cached
//! on the source's committed keys. The multi_instance example is the project's own test.

use crate::common::{Project, set};

fn count(p: &Project, instance: &str, table: &str) -> u64 {
    p.query_in(instance, &format!("SELECT count(*) FROM {table}"))[0]
        .parse()
        .expect("a count")
}

/// mini and midi run every line of the pipeline on samples whose joins stay populated.
#[test]
fn multi_instance_example_runs_mini_and_midi() {
    let p = Project::example("multi_instance");
    p.run(&["--instance", "full"]).ok();
    for (instance, fraction) in [("mini", 0.02), ("midi", 0.2)] {
        p.run(&["--instance", instance]).ok();
        let customers = count(&p, instance, "raw.customers") as f64;
        assert!(
            (customers / 20_000.0 - fraction).abs() < fraction * 0.25,
            "{instance}: {customers} customers for a fraction of {fraction}"
        );
        for orphans in [
            "SELECT count(*) FROM raw.orders o LEFT ANTI JOIN raw.customers c USING (customer_id)",
            "SELECT count(*) FROM raw.line_items l LEFT ANTI JOIN raw.orders o USING (order_id)",
            "SELECT count(*) FROM raw.orders o LEFT ANTI JOIN raw.line_items l USING (order_id)",
        ] {
            assert_eq!(
                p.query_in(instance, orphans),
                ["0"],
                "{instance}: {orphans}"
            );
        }
        // Every sampled customer keeps all of its orders, every order all of its line items.
        assert_eq!(
            p.query_in(
                instance,
                "SELECT count(*) FROM raw.orders WHERE customer_id IN (SELECT customer_id FROM raw.customers)"
            )[0],
            p.query_in("full", &format!(
                "SELECT count(*) FROM raw.orders WHERE customer_id IN ({})",
                p.query_in(instance, "SELECT string_agg(CAST(customer_id AS VARCHAR), ',') FROM raw.customers")[0].trim_matches('"')
            ))[0]
        );
    }
    let top = |i| count(&p, i, "marts.top_customers");
    assert_eq!((top("full"), top("midi"), top("mini")), (10, 10, 3));

    // Nothing changed in full: re-running mini runs nothing.
    p.run(&["--instance", "mini"]).ok();
    assert!(p.ran_in("mini").is_empty(), "{:?}", p.ran_in("mini"));
    // full's customers change: mini's samples of them, and what follows, re-run.
    p.edit("weir.toml", "customers = 20000", "customers = 20001");
    p.run(&["--instance", "full"]).ok();
    p.run(&["--instance", "mini"]).ok();
    let ran = p.ran_in("mini");
    assert!(
        ran.contains("raw.customers") && ran.contains("prep.order_totals"),
        "{ran:?}"
    );
}

const SCRIPT: &str = r#"
import "weir/sample" as sample;
let raw = stage("raw");
if instance == "full" {
    raw.sql("events", "SELECT value AS id, value % 10 AS kind FROM generate_series(1, 10000)");
} else {
    raw.sample("events", sample::head("full", "raw.events", 25));
    raw.sample("tenth", sample::fraction("full", "raw.events", 0.1, param("seed", 1)));
    raw.sample("tenth_again", sample::fraction("full", "raw.events", 0.1, param("seed", 1)));
    raw.sample("by_kind", sample::by_key("full", "raw.events", "kind", 0.3, 5));
}
"#;

#[test]
fn head_and_fraction_are_reproducible() {
    let p = Project::new();
    p.file("weir.toml", "[instances.full]\n[instances.mini]\n")
        .file("pipeline.rhai", SCRIPT);
    let before = p.run(&["--instance", "mini"]).fails_with(1);
    assert!(
        before
            .stdout
            .contains("instance `full` has no committed raw.events"),
        "{}",
        before.text()
    );
    p.run(&["--instance", "full"]).ok();
    p.run(&["--instance", "mini"]).ok();
    assert_eq!(
        p.query_in("mini", "SELECT min(id), max(id), count(*) FROM raw.events"),
        ["1,25,25"]
    );
    let tenth = count(&p, "mini", "raw.tenth");
    assert!((800..1200).contains(&tenth), "{tenth} of 10000 at 10%");
    assert_eq!(
        p.query_in(
            "mini",
            "SELECT count(*) FROM raw.tenth t JOIN raw.tenth_again a USING (id)"
        ),
        [tenth.to_string()],
        "the same seed keeps the same rows"
    );
    let kinds = p.query_in(
        "mini",
        "SELECT DISTINCT kind FROM raw.by_kind ORDER BY kind",
    );
    assert!(
        !kinds.is_empty() && kinds.len() < 10,
        "whole keys are kept: {kinds:?}"
    );
    assert_eq!(
        count(&p, "mini", "raw.by_kind"),
        1000 * kinds.len() as u64,
        "every row of a kept key"
    );

    p.run(&["--instance", "mini", "--param", "seed=2"]).ok();
    assert_eq!(p.ran_in("mini"), set(&["raw.tenth", "raw.tenth_again"]));
}

#[test]
fn a_sample_of_the_running_instance_is_refused() {
    let p = Project::new();
    p.file("weir.toml", "[instances.full]\n[instances.mini]\n")
        .file(
            "pipeline.rhai",
            SCRIPT.replace("instance == \"full\"", "false").as_str(),
        );
    let run = p.run(&["--instance", "full"]).fails_with(2);
    assert!(
        run.stderr
            .contains("samples from instance `full`, the instance being run"),
        "{}",
        run.stderr
    );
}
