//! `--engine ballista://...`: SQL tasks and loads on a Ballista cluster. The tests use
//! Ballista's standalone cluster (a scheduler and an executor in weir's process, talking gRPC
//! and Arrow Flight over loopback), so they build with the `ballista` feature only; a weir built
//! without it refuses the engine with how to build it.

#[cfg(not(feature = "ballista"))]
#[test]
fn a_weir_without_ballista_says_how_to_build_one() {
    let p = crate::common::Project::example("quickstart");
    let run = p
        .run(&["--engine", "ballista://127.0.0.1:50050"])
        .fails_with(2);
    assert!(run.stderr.contains("--features ballista"), "{}", run.text());
    assert!(p.manifest("raw").is_none(), "nothing ran");
    p.file(
        "weir.toml",
        "[engine]\nurl = \"ballista://scheduler:50050\"\n",
    );
    let run = p.run(&[]).fails_with(2);
    assert!(run.stderr.contains("--features ballista"), "{}", run.text());
}

#[cfg(feature = "ballista")]
mod on_ballista {
    use std::collections::{BTreeMap, BTreeSet};
    use std::time::{Duration, Instant};

    use crate::common::{Project, files_in};

    const CLUSTER: &str = "ballista://standalone";

    /// Every committed table of `tables`, as sorted CSV lines, decimals to 9 places: a sum of
    /// floats depends on the order rows arrive in, which differs between engines.
    fn contents(p: &Project, tables: &[&str]) -> BTreeMap<String, Vec<String>> {
        let field = |f: &str| match f.contains('.') {
            true => f
                .parse::<f64>()
                .map_or(f.to_string(), |x| format!("{x:.9}")),
            false => f.to_string(),
        };
        tables
            .iter()
            .map(|t| {
                let mut rows: Vec<String> = p
                    .query(&format!("SELECT * FROM {t}"))
                    .iter()
                    .map(|r| r.split(',').map(field).collect::<Vec<_>>().join(","))
                    .collect();
                rows.sort();
                (t.to_string(), rows)
            })
            .collect()
    }

    const QUICKSTART: [&str; 7] = [
        "raw.orders",
        "raw.customers",
        "prep.orders_clean",
        "marts.top_customers",
        "marts.revenue_by_segment",
        "marts.small_orders",
        "marts.large_orders",
    ];

    /// task -> the engine its run record says it ran on ("" for weir's own process).
    fn engines(p: &Project) -> BTreeMap<String, String> {
        engines_of(p, "default")
    }

    #[test]
    fn the_quickstart_on_a_cluster_equals_the_local_run() {
        let local = Project::example("quickstart");
        local.run(&[]).ok();
        let cluster = Project::example("quickstart");
        let run = cluster.run(&["--engine", CLUSTER, "-v"]).ok();
        assert!(run.stdout.contains("6 ran"), "{}", run.text());
        assert!(
            run.stderr.contains("engine ballista://standalone"),
            "{}",
            run.text()
        );
        assert_eq!(
            contents(&cluster, &QUICKSTART),
            contents(&local, &QUICKSTART)
        );

        // SQL tasks and loads ran on the cluster; what calls Rhai ran here, and says why.
        let engines = engines(&cluster);
        for task in ["raw.orders", "raw.customers", "prep.orders_clean"] {
            assert_eq!(engines[task], CLUSTER, "{task}: {engines:?}");
        }
        for task in ["marts.revenue_by_segment", "marts.top_customers"] {
            assert_eq!(engines[task], "", "{task}: {engines:?}");
        }
        assert!(
            run.stderr
                .contains("marts.revenue_by_segment: ran locally: it calls the UDF `band`"),
            "{}",
            run.text()
        );
    }

    #[test]
    fn the_in_process_cluster_leaves_no_shuffle_files_behind() {
        let p = Project::example("quickstart");
        let tmp = tempfile::tempdir().unwrap();
        let tmpdir = [("TMPDIR", tmp.path().display().to_string())];
        // What a killed weir left: no process has this id.
        let orphan = tmp.path().join("weir-shuffle-999999999-0");
        std::fs::create_dir_all(orphan.join("job/1")).unwrap();
        std::fs::write(orphan.join("job/1/data.arrow"), "shuffle").unwrap();

        let run = p.weir_env(&["run", "pipeline.rhai", "--engine", CLUSTER], &tmpdir);
        assert_eq!(run.code, 0, "{}", run.text());
        assert!(run.stdout.contains("6 ran"), "{}", run.text());
        assert_eq!(files_in(tmp.path()), BTreeSet::new());
        assert!(!orphan.exists(), "a dead process's folder is removed");

        // With a spill folder, the shuffles go there, and from there too when the run ends.
        p.file("weir.toml", "[engine]\nspill_dir = \"spill\"\n");
        let run = p.weir_env(
            &["run", "pipeline.rhai", "--engine", CLUSTER, "--force"],
            &tmpdir,
        );
        assert_eq!(run.code, 0, "{}", run.text());
        assert!(run.stdout.contains("6 ran"), "{}", run.text());
        assert_eq!(files_in(tmp.path()), BTreeSet::new());
        assert_eq!(p.files_under("spill"), BTreeSet::new());
        let folders = std::fs::read_dir(p.path("spill")).unwrap().count();
        assert_eq!(folders, 1, "the executor's work folder, emptied");
    }

    #[test]
    fn builds_move_between_the_local_engine_and_the_cluster() {
        let p = Project::example("quickstart");
        p.run(&[]).ok();
        let before = contents(&p, &QUICKSTART);
        // A no-op on the cluster needs no cluster: nothing is started.
        let run = p.run(&["--engine", CLUSTER]).ok();
        assert!(run.stdout.contains("0 ran"), "{}", run.text());
        assert!(!run.stderr.contains("engine ballista"), "{}", run.text());

        // A change runs on the cluster what it must, and only that.
        p.edit(
            "pipeline.rhai",
            "WHERE o.amount > 0",
            "WHERE o.amount > 0 AND o.amount < 1e9",
        );
        p.run(&["--engine", CLUSTER]).ok();
        let ran = p.ran();
        assert!(ran.contains("prep.orders_clean"), "{ran:?}");
        assert!(!ran.contains("raw.orders"), "{ran:?}");
        assert_eq!(engines(&p)["prep.orders_clean"], CLUSTER);
        // ... and back here, what the cluster built is reused.
        let run = p.run(&["--engine", "local"]).ok();
        assert!(run.stdout.contains("0 ran"), "{}", run.text());
        assert_eq!(contents(&p, &QUICKSTART), before, "no order is that large");
    }

    #[test]
    fn a_task_failing_on_the_cluster_keeps_committed_stages_and_resumes() {
        let p = Project::new();
        p.file("data/t.csv", "id,name\n1,7\n2,x\n3,9\n");
        let script = r#"
            stage("raw").load("t", "data/t.csv");
            stage("prep").sql("n", "SELECT id, CAST(name AS INT) AS n FROM raw.t");
            stage("prep").sql("ids", "SELECT id FROM raw.t");
        "#;
        p.file("pipeline.rhai", script);
        let run = p.run(&["--engine", CLUSTER]).fails_with(1);
        assert!(run.stderr.contains("prep.n"), "{}", run.text());
        assert!(
            run.stderr.contains("'x'"),
            "the cast's message: {}",
            run.text()
        );
        assert_eq!(
            p.query("SELECT count(*) FROM raw.t"),
            ["3"],
            "raw committed"
        );
        assert!(p.manifest("prep").is_none(), "prep not committed");

        p.edit(
            "pipeline.rhai",
            "CAST(name AS INT)",
            "TRY_CAST(name AS INT)",
        );
        p.run(&["--engine", CLUSTER]).ok();
        let ran = p.ran();
        assert!(!ran.contains("raw.t"), "raw.t is reused: {ran:?}");
        assert!(ran.contains("prep.n"), "{ran:?}");
        assert_eq!(
            p.query("SELECT id, n FROM prep.n ORDER BY id"),
            ["1,7", "2,", "3,9"]
        );
    }

    #[test]
    fn partitioned_outputs_and_several_statements_run_on_the_cluster() {
        let p = Project::new();
        p.file("data/t.csv", "id,day\n1,mon\n2,tue\n3,mon\n");
        let script = r#"
            stage("raw").load("t", "data/t.csv");
            stage("prep").sql("by_day", "SELECT id, day FROM raw.t", #{ partition_by: ["day"] });
            stage("prep").sql("mondays", `
                CREATE VIEW m AS SELECT * FROM raw.t WHERE day = 'mon';
                SELECT count(*) AS n FROM m`, #{ statements: true });
        "#;
        p.file("pipeline.rhai", script);
        p.run(&["--engine", CLUSTER]).ok();
        assert_eq!(engines(&p)["prep.by_day"], CLUSTER);
        let folders: Vec<String> = p
            .files_under(".weir/default/tables/prep/by_day")
            .iter()
            .filter_map(|f| f.parent()?.file_name()?.to_str().map(String::from))
            .collect();
        assert!(folders.contains(&"day=mon".to_string()), "{folders:?}");
        assert_eq!(
            p.query("SELECT day, count(*) FROM prep.by_day GROUP BY day ORDER BY day"),
            ["mon,2", "tue,1"]
        );
        assert_eq!(p.query("SELECT n FROM prep.mondays"), ["2"]);
    }

    /// The in-process cluster reads a partitioned table whose kept partitions stay in an
    /// earlier build's folder: every day, as the local engine reads it.
    #[test]
    fn kept_partitions_are_read_whole_on_the_cluster() {
        let p = Project::new();
        let day = |d: u32| {
            p.file(
                &format!("data/events/day=2026-01-0{d}/part.csv"),
                "n\n1\n2\n",
            )
        };
        for d in 1..=3 {
            day(d);
        }
        let script = r#"
            stage("raw").load("events", "data/events/day=*/*.csv", #{ partition_by: ["day"] });
            stage("marts").sql("daily", "SELECT day, sum(n) AS n FROM raw.events GROUP BY day",
                               #{ partition_by: ["day"], incremental: true });
            stage("marts").sql("total", "SELECT count(*) AS days, sum(n) AS n FROM marts.daily");
        "#;
        p.file("pipeline.rhai", script);
        p.run(&[]).ok();
        day(4);
        let run = p.run(&["--engine", CLUSTER]).ok();
        assert!(
            run.stdout.contains("1 of 4 partitions ran"),
            "{}",
            run.text()
        );
        assert_eq!(engines(&p)["marts.total"], CLUSTER);
        assert_eq!(p.query("SELECT days, n FROM marts.total"), ["4,12"]);
    }

    #[test]
    fn what_the_cluster_cannot_run_runs_here_and_says_why() {
        let p = Project::new();
        let script = r#"
            let s = stage("s");
            s.sql("series", "SELECT value FROM generate_series(1, 5)");
            s.sql("countdown", `WITH RECURSIVE r(n) AS (SELECT 3 UNION ALL SELECT n - 1 FROM r WHERE n > 1)
                                SELECT n FROM r`);
            s.sql("total", "SELECT sum(value) AS total FROM s.series");
        "#;
        p.file("pipeline.rhai", script);
        let run = p.run(&["--engine", CLUSTER, "-v"]).ok();
        let engines = engines(&p);
        assert_eq!(engines["s.series"], "", "{engines:?}");
        assert_eq!(engines["s.countdown"], "", "{engines:?}");
        assert_eq!(engines["s.total"], CLUSTER, "{engines:?}");
        assert!(
            run.stderr
                .contains("s.series: ran locally: the cluster cannot take its plan"),
            "{}",
            run.text()
        );
        assert!(
            run.stderr.contains(
                "s.countdown: ran locally: the cluster cannot run its plan (RecursiveQueryExec)"
            ),
            "{}",
            run.text()
        );
        assert!(
            !run.stderr.contains("Plan: "),
            "no plan dump: {}",
            run.text()
        );
        assert_eq!(p.query("SELECT total FROM s.total"), ["15"]);
        assert_eq!(
            p.query("SELECT n FROM s.countdown ORDER BY n"),
            ["1", "2", "3"]
        );
    }

    #[test]
    fn an_unreachable_scheduler_fails_at_once_and_runs_nothing() {
        let p = Project::example("quickstart");
        // A port nothing listens on: bound, then let go.
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("a free port")
            .port();
        let started = Instant::now();
        let url = format!("ballista://127.0.0.1:{port}");
        let run = p.run(&["--engine", &url]).fails_with(2);
        assert!(started.elapsed() < Duration::from_secs(30));
        assert!(
            run.stderr.contains(&format!(
                "cannot reach the Ballista scheduler at 127.0.0.1:{port}"
            )),
            "{}",
            run.text()
        );
        assert!(p.manifest("raw").is_none(), "nothing ran");
    }

    #[test]
    fn an_instance_chooses_its_engine_in_weir_toml() {
        let p = Project::example("quickstart");
        p.file(
            "weir.toml",
            "[instances.mini]\n\n[instances.full.engine]\nurl = \"ballista://standalone\"\n",
        );
        p.run(&["--instance", "full"]).ok();
        assert_eq!(engines_of(&p, "full")["prep.orders_clean"], CLUSTER);
        p.run(&["--instance", "mini"]).ok();
        assert_eq!(engines_of(&p, "mini")["prep.orders_clean"], "");
    }

    fn engines_of(p: &Project, instance: &str) -> BTreeMap<String, String> {
        p.last_record_of(instance)["tasks"]
            .as_array()
            .expect("tasks")
            .iter()
            .map(|t| {
                let task = t["task"].as_str().expect("task").to_string();
                (task, t["engine"].as_str().unwrap_or("").to_string())
            })
            .collect()
    }

    #[test]
    fn tpch_on_a_cluster_equals_bare_datafusion() {
        let p = Project::example("tpch");
        crate::cases::tpch::generate(&p.path("data"));
        let run = p.run(&["--param", "data=data", "--engine", CLUSTER]).ok();
        assert!(run.stdout.contains("32 tasks: 32 ran"), "{}", run.text());
        crate::cases::tpch::assert_marts_equal_bare_datafusion(&p);
        assert!(
            engines(&p).values().all(|e| e == CLUSTER),
            "every TPC-H task is SQL or a load"
        );
    }
}
