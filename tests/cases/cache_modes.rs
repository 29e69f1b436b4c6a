//! Cache validation modes and `cache` tokens: how changed outside inputs (files, tokens) count.

use crate::common::{CUSTOMERS, ORDERS, Project, set};

const SCRIPT: &str = r#"
let raw = stage("raw");
raw.load("orders", "data/orders.csv");
raw.sql("prices", "SELECT 1 AS price", #{ cache: || param("prices_version", "v1") });
let prep = stage("prep");
prep.sql("totals", "SELECT sum(amount) AS total FROM raw.orders");
prep.sql("constant", "SELECT 42 AS answer");
"#;

const CONFIG: &str = r#"
[instances.dev]
[instances.ci]
cache_mode = "assert-no-fresh-input"
[instances.frozen]
cache_mode = "ignore-fresh-input"
"#;

fn project() -> Project {
    let p = Project::new();
    p.file("pipeline.rhai", SCRIPT)
        .file("weir.toml", CONFIG)
        .file("data/orders.csv", ORDERS)
        .file("data/customers.csv", CUSTOMERS);
    p
}

fn change_orders(p: &Project) {
    p.file("data/orders.csv", &format!("{ORDERS}7,1,1000\n"));
}

#[test]
fn normal_reruns_what_a_changed_file_or_token_feeds() {
    let p = project();
    p.run(&["--instance", "dev"]).ok();
    change_orders(&p);
    p.run(&["--instance", "dev"]).ok();
    assert_eq!(p.ran_in("dev"), set(&["raw.orders", "prep.totals"]));
    p.run(&["--instance", "dev", "--param", "prices_version=v2"])
        .ok();
    assert_eq!(p.ran_in("dev"), set(&["raw.prices"]));
    let status = p
        .weir(&["status", "pipeline.rhai", "--instance", "dev"])
        .ok();
    assert!(
        status.stdout.contains("cache token changed"),
        "without the param the token is v1 again: {}",
        status.text()
    );
}

#[test]
fn ignore_fresh_input_keeps_the_committed_builds() {
    let p = project();
    p.run(&["--instance", "frozen"]).ok();
    change_orders(&p);
    let run = p
        .run(&["--instance", "frozen", "--param", "prices_version=v9"])
        .ok();
    assert!(p.ran_in("frozen").is_empty(), "{}", run.text());
    assert_eq!(
        p.query_in("frozen", "SELECT total FROM prep.totals"),
        ["744"]
    );
    // The command line overrides the instance's mode.
    p.run(&["--instance", "frozen", "--cache-mode", "normal"])
        .ok();
    assert_eq!(p.ran_in("frozen"), set(&["raw.orders", "prep.totals"]));
    assert_eq!(
        p.query_in("frozen", "SELECT total FROM prep.totals"),
        ["1744"]
    );
}

#[test]
fn force_fresh_input_reruns_tasks_with_outside_inputs() {
    let p = project();
    p.run(&["--instance", "dev"]).ok();
    p.run(&["--instance", "dev", "--cache-mode", "force-fresh-input"])
        .ok();
    assert_eq!(
        p.ran_in("dev"),
        set(&["raw.orders", "raw.prices"]),
        "what they read did not change, so their keys and their downstream stay"
    );
}

#[test]
fn force_cache_invalid_reruns_everything() {
    let p = project();
    p.run(&["--instance", "dev"]).ok();
    p.run(&["--instance", "dev", "--cache-mode", "force-cache-invalid"])
        .ok();
    assert_eq!(
        p.ran_in("dev"),
        set(&["raw.orders", "raw.prices", "prep.totals", "prep.constant"])
    );
}

#[test]
fn assert_no_fresh_input_fails_on_a_changed_source_and_builds_nothing() {
    let p = project();
    p.run(&["--instance", "ci", "--cache-mode", "normal"]).ok();
    p.run(&["--instance", "ci"]).ok();
    assert!(p.ran_in("ci").is_empty(), "nothing changed: it passes");

    change_orders(&p);
    let before = p.files_under(".weir/ci/tables");
    let manifests = p.read(".weir/ci/manifests/raw.json");
    let run = p
        .run(&["--instance", "ci", "--param", "prices_version=v2"])
        .fails_with(1);
    assert!(
        run.stderr
            .contains("raw.orders (data/orders.csv): external file changed"),
        "{}",
        run.stderr
    );
    assert!(
        run.stderr.contains("raw.prices: cache token changed"),
        "{}",
        run.stderr
    );
    assert!(
        !run.stderr.contains("prep."),
        "only sources are named: {}",
        run.stderr
    );
    assert_eq!(
        p.files_under(".weir/ci/tables"),
        before,
        "nothing was built"
    );
    assert_eq!(p.read(".weir/ci/manifests/raw.json"), manifests);
    assert_eq!(p.query_in("ci", "SELECT total FROM prep.totals"), ["744"]);
}
