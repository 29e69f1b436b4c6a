//! `weir clear`: marked tasks are rebuilt by the next run; nothing committed goes away before.

use crate::common::{Project, set};

#[test]
fn clear_rebuilds_the_task_only_and_keeps_it_readable() {
    let p = Project::standard();
    p.run(&[]).ok();
    let manifest = p.read(".weir/default/manifests/prep.json");
    let out = p.weir(&["clear", "prep.orders_clean"]).ok();
    assert!(
        out.stdout.contains("cleared prep.orders_clean"),
        "{}",
        out.text()
    );
    assert_eq!(
        p.read(".weir/default/manifests/prep.json"),
        manifest,
        "nothing committed changes"
    );
    assert_eq!(p.query("SELECT count(*) FROM prep.orders_clean"), ["5"]);
    let status = p.weir(&["status"]).ok();
    assert!(
        status
            .stdout
            .lines()
            .any(|l| l.starts_with("prep.orders_clean") && l.contains("cleared")),
        "{}",
        status.text()
    );

    p.run(&[]).ok();
    assert_eq!(
        p.ran(),
        set(&["prep.orders_clean"]),
        "same output key: downstream stays cached"
    );
    p.run(&[]).ok();
    assert!(
        p.ran().is_empty(),
        "the mark is gone once the rebuild committed"
    );
}

#[test]
fn clear_downstream_rebuilds_dependents() {
    let p = Project::standard();
    p.run(&[]).ok();
    p.weir(&["clear", "prep.orders_clean", "--downstream"]).ok();
    let status = p.weir(&["status"]).ok();
    let cleared = status
        .stdout
        .lines()
        .filter(|l| l.contains("cleared") && !l.contains(" tasks: "))
        .count();
    assert_eq!(cleared, 3, "{}", status.text());
    p.run(&[]).ok();
    assert_eq!(
        p.ran(),
        set(&["prep.orders_clean", "marts.by_segment", "marts.big_orders"])
    );
}

#[test]
fn a_cleared_task_stays_cleared_until_its_stage_commits() {
    let p = Project::standard();
    p.run(&[]).ok();
    p.weir(&["clear", "prep.customer_count"]).ok();
    // Another task of the stage fails: the stage does not commit, the mark stays.
    p.file("data/orders.csv", "order_id,customer_id,amount\n1,1,abc\n");
    p.edit(
        "pipeline.rhai",
        "WHERE o.amount > 0",
        "WHERE CAST(o.amount AS INT) > 0",
    );
    p.run(&[]).fails_with(1);
    let status = p.weir(&["status"]).ok();
    assert!(
        status
            .stdout
            .lines()
            .any(|l| l.starts_with("prep.customer_count") && l.contains("cleared")),
        "{}",
        status.text()
    );
    let unknown = p.weir(&["clear", "prep.nope"]).fails_with(2);
    assert!(unknown.stderr.contains("prep.nope"), "{}", unknown.stderr);
}
