//! Every example in `examples/` runs as shipped.

use crate::common::Project;

/// The quickstart runs cold, then as a no-op, and its marts hold the expected answers.
#[test]
fn quickstart_runs() {
    let p = Project::example("quickstart");
    let run = p.run(&[]).ok();
    assert!(run.stdout.contains("0 failed"), "{}", run.text());
    assert_eq!(
        p.query("SELECT name, total FROM marts.top_customers ORDER BY total DESC"),
        [
            "Grace Hopper,634.99",
            "Edsger Dijkstra,410.0",
            "Frances Allen,305.4"
        ]
    );
    assert_eq!(p.query("SELECT count(*) FROM marts.small_orders"), ["8"]);
    assert_eq!(p.query("SELECT count(*) FROM marts.large_orders"), ["6"]);
    let again = p.run(&[]).ok();
    assert!(again.stdout.contains("0 ran"), "{}", again.text());
}

/// `weir init` makes a project that runs as is, and never writes over an existing one.
#[test]
fn init_makes_a_project_that_runs_and_refuses_to_overwrite() {
    let p = Project::new();
    p.weir(&["init", "shop"]).ok();
    let run = p.weir(&["run", "shop/pipeline.rhai"]).ok();
    assert!(run.stdout.contains("6 tasks: 6 ran"), "{}", run.text());
    assert!(
        p.read("shop/weir.toml").contains("name = \"shop\""),
        "the project is named after its folder"
    );
    assert_eq!(p.read("shop/.gitignore"), ".weir/\n");

    p.file("shop/pipeline.rhai", "// mine\n");
    let again = p.weir(&["init", "shop"]).fails_with(2);
    assert!(
        again.stderr.contains("already has pipeline.rhai"),
        "{}",
        again.stderr
    );
    assert_eq!(
        p.read("shop/pipeline.rhai"),
        "// mine\n",
        "nothing is overwritten"
    );
}

/// The events example: its generator makes a month of days, a run computes them all, one more
/// day computes that day alone in each incremental table, and its totals agree with the files.
#[test]
fn events_runs_one_day_at_a_time() {
    let p = Project::example("events");
    // Data a developer generated in the example's folder is not the test's.
    let _ = std::fs::remove_dir_all(p.path("data"));
    let generate = |args: &[&str]| {
        let out = std::process::Command::new("bash")
            .arg(p.path("generate.sh"))
            .args(args)
            .output()
            .expect("run generate.sh");
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    };
    generate(&["--days", "30", "--rows", "200", "--users", "50"]);
    let cold = p.run(&[]).ok();
    assert!(
        cold.stdout.contains("30 of 30 partitions ran"),
        "{}",
        cold.text()
    );
    generate(&["--append", "--rows", "200"]);
    let next = p.run(&[]).ok();
    assert_eq!(
        next.stdout.matches("1 of 31 partitions ran").count(),
        3,
        "the load and both incremental marts: {}",
        next.text()
    );
    assert_eq!(
        p.query("SELECT sum(events), count(DISTINCT day) FROM marts.daily_revenue"),
        ["6200,31"]
    );
    assert_eq!(
        p.query("SELECT sum(events) FROM marts.by_country"),
        ["6200"]
    );
    // Every table is open to Delta readers, the timestamps included.
    for table in [
        "raw/events",
        "raw/users",
        "marts/daily_revenue",
        "marts/user_days",
    ] {
        let log = p
            .instance_dir()
            .join("tables")
            .join(table)
            .join("_delta_log");
        assert!(log.is_dir(), "{table} has a Delta log");
    }
}
