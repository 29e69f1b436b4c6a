//! Tags and selection with dbt's set semantics: spaces add up, commas intersect, `--exclude`
//! takes away, on run, status, clear, graph and watch alike.

use crate::common::{CUSTOMERS, ORDERS, Project, set};

/// The standard flow with tags: a stage's tags go to each of its tasks.
const TAGGED: &str = r#"
let raw = stage("raw", #{ tags: ["nightly"] });
raw.load("orders", "data/orders.csv");
raw.load("customers", "data/customers.csv", #{ tags: ["pii"] });

let prep = stage("prep");
prep.sql("orders_clean", `
    SELECT o.order_id, o.customer_id, o.amount, c.segment
    FROM raw.orders o JOIN raw.customers c USING (customer_id)
    WHERE o.amount > 0`, #{ tags: ["nightly", "pii"] });
prep.sql("customer_count", `SELECT count(*) AS n FROM raw.customers`, #{ tags: "hourly" });

let marts = stage("marts");
marts.sql("by_segment", `SELECT segment, sum(amount) AS total FROM prep.orders_clean GROUP BY segment`,
    #{ tags: ["nightly"] });
marts.sql("big_orders", `SELECT * FROM prep.orders_clean WHERE amount >= 100`);
"#;

fn tagged() -> Project {
    let p = Project::new();
    p.file("pipeline.rhai", TAGGED)
        .file("data/orders.csv", ORDERS)
        .file("data/customers.csv", CUSTOMERS);
    p
}

/// `tag:NAME` selects the tasks with that tag, their stage's included; commas intersect,
/// spaces and repeated flags add up, and `--exclude` takes away.
#[test]
fn tags_select_with_union_intersection_and_exclusion() {
    let p = tagged();
    p.run(&["--select", "tag:nightly"]).ok();
    assert_eq!(
        p.ran(),
        set(&[
            "raw.orders",
            "raw.customers",
            "prep.orders_clean",
            "marts.by_segment"
        ])
    );

    p.run(&["--select", "tag:pii,stage:prep", "--force"]).ok();
    assert_eq!(p.ran(), set(&["prep.orders_clean"]), "commas intersect");

    p.run(&["--select", "tag:hourly marts.big_orders", "--force"])
        .ok();
    assert_eq!(
        p.ran(),
        set(&["prep.customer_count", "marts.big_orders"]),
        "spaces add up"
    );

    p.run(&[
        "-s",
        "tag:nightly",
        "-s",
        "tag:hourly",
        "--exclude",
        "tag:pii",
        "--force",
    ])
    .ok();
    assert_eq!(
        p.ran(),
        set(&["raw.orders", "prep.customer_count", "marts.by_segment"]),
        "repeated flags add up, --exclude takes away"
    );

    p.run(&["--exclude", "stage:raw +marts.big_orders", "--force"])
        .ok();
    assert_eq!(
        p.ran(),
        set(&["prep.customer_count", "marts.by_segment"]),
        "--exclude alone starts from every task; graph operators work in it"
    );
}

/// An unknown tag is refused with the tags that exist, like an unknown task.
#[test]
fn an_unknown_tag_is_refused_with_the_known_ones() {
    let p = tagged();
    let bad = p.run(&["--select", "tag:nigthly"]).fails_with(2);
    assert!(
        bad.stderr.contains("no task matches `tag:nigthly`")
            && bad.stderr.contains("did you mean `tag:nightly`?"),
        "{}",
        bad.text()
    );
    let p = Project::standard();
    let bad = p.run(&["--select", "tag:nightly"]).fails_with(2);
    assert!(
        bad.stderr.contains("no task of this flow has a tag"),
        "{}",
        bad.text()
    );
}

/// Tags are not part of the key: tagging a built task leaves it fresh.
#[test]
fn tagging_a_task_does_not_make_it_stale() {
    let p = Project::standard();
    p.run(&[]).ok();
    p.edit(
        "pipeline.rhai",
        r#"prep.sql("customer_count", `SELECT count(*) AS n FROM raw.customers`);"#,
        r#"prep.sql("customer_count", `SELECT count(*) AS n FROM raw.customers`, #{ tags: ["hourly"] });"#,
    );
    let again = p.run(&[]).ok();
    assert!(again.stdout.contains("0 ran, 6 cached"), "{}", again.text());
}

/// status, clear and graph take the same selection.
#[test]
fn status_clear_and_graph_take_tags_and_exclusion() {
    let p = tagged();
    p.run(&[]).ok();
    let status = p
        .weir(&[
            "status",
            "--select",
            "tag:nightly",
            "--exclude",
            "stage:raw",
        ])
        .ok();
    for shown in ["prep.orders_clean", "marts.by_segment"] {
        assert!(status.stdout.contains(shown), "{}", status.text());
    }
    for hidden in ["raw.orders", "marts.big_orders", "prep.customer_count"] {
        assert!(!status.stdout.contains(hidden), "{}", status.text());
    }

    let graph = p
        .weir(&["graph", "-f", "dot", "--select", "stage:marts"])
        .ok();
    assert!(
        graph.stdout.contains("by_segment") && !graph.stdout.contains("orders_clean"),
        "{}",
        graph.text()
    );

    p.weir(&[
        "clear",
        "tag:pii",
        "--downstream",
        "--exclude",
        "tag:nightly",
    ])
    .ok();
    p.run(&[]).ok();
    assert_eq!(
        p.ran(),
        set(&["prep.customer_count", "marts.big_orders"]),
        "cleared: raw.customers and prep.orders_clean's downstream, less the nightly tasks"
    );
}

/// Malformed tags fail at their line with what a tag may be.
#[test]
fn malformed_tags_are_refused_at_their_declaration() {
    for (tags, why) in [
        ("[\"a b\"]", "a space"),
        ("[\"\"]", "empty"),
        ("[1]", "a number"),
        ("#{}", "a map"),
        ("[\"x,y\"]", "a comma"),
    ] {
        let p = Project::new();
        p.file(
            "pipeline.rhai",
            &format!(
                "let s = stage(\"s\");\ns.sql(\"t\", `SELECT 1 AS x`, #{{ tags: {tags} }});\n"
            ),
        );
        let bad = p.run(&[]).fails_with(2);
        assert!(
            bad.stderr
                .contains("`tags` must be a tag or an array of them")
                && bad.stderr.contains("pipeline.rhai:2"),
            "{why}: {}",
            bad.text()
        );
    }
    let p = Project::new();
    p.file(
        "pipeline.rhai",
        "let s = stage(\"s\", #{ colour: \"red\" });\ns.sql(\"t\", `SELECT 1 AS x`);\n",
    );
    let bad = p.run(&[]).fails_with(2);
    assert!(
        bad.stderr.contains("unknown option `colour`"),
        "{}",
        bad.text()
    );
}

/// The line of `task` in a status-shaped listing, its spaces squeezed.
fn line_of(out: &str, task: &str) -> String {
    out.lines()
        .find(|l| l.split_whitespace().next() == Some(task))
        .map(|l| l.split_whitespace().collect::<Vec<_>>().join(" "))
        .unwrap_or_else(|| panic!("no line for {task} in\n{out}"))
}

/// `run --dry-run` says what a run with the same options would do, and does nothing: no
/// build, no manifest, no run record.
#[test]
fn a_dry_run_says_what_would_run_and_writes_nothing() {
    let p = Project::standard();
    let dry = p.run(&["--dry-run"]).ok();
    assert!(
        dry.stdout
            .contains("dry run: nothing is run, written or committed")
            && dry.stdout.contains("6 tasks: 6 would run"),
        "{}",
        dry.text()
    );
    assert_eq!(
        line_of(&dry.stdout, "raw.orders"),
        "raw.orders would run (never built)"
    );
    assert!(
        !p.path(".weir/default/manifests").exists(),
        "nothing committed"
    );
    assert!(p.data_files().is_empty(), "nothing written");

    p.run(&[]).ok();
    let runs = p.files_under(".weir/default/runs").len();
    p.edit(
        "pipeline.rhai",
        "SELECT count(*) AS n",
        "SELECT count(*) + 0 AS n",
    );
    let dry = p.run(&["--dry-run"]).ok();
    assert_eq!(
        line_of(&dry.stdout, "prep.customer_count"),
        "prep.customer_count would run (code changed)"
    );
    assert_eq!(
        line_of(&dry.stdout, "marts.by_segment"),
        "marts.by_segment would reuse"
    );
    assert!(
        dry.stdout.contains("6 tasks: 5 would reuse, 1 would run"),
        "{}",
        dry.text()
    );

    let dry = p
        .run(&["--dry-run", "--force", "--select", "stage:marts"])
        .ok();
    assert_eq!(
        line_of(&dry.stdout, "marts.big_orders"),
        "marts.big_orders would run (forced)"
    );
    assert_eq!(
        line_of(&dry.stdout, "raw.orders"),
        "raw.orders not selected"
    );
    assert_eq!(
        p.files_under(".weir/default/runs").len(),
        runs,
        "no run record"
    );
    let status = p.weir(&["status"]).ok();
    assert!(
        status.stdout.contains("code changed"),
        "the dry run built nothing: {}",
        status.text()
    );
}
