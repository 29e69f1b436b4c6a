//! Partitions and incremental runs: a load of Hive folders reads only the folders that changed,
//! an incremental task computes only the partitions whose inputs changed, and what they build
//! equals what computing everything gives.

use serde_json::Value;

use crate::common::servers::S3;
use crate::common::{Project, set};

/// Events in one folder per day, users in one file; `daily` is incremental, `daily_whole` the
/// same query computed whole, to compare with.
const PIPELINE: &str = r#"
let raw = stage("raw");
raw.load("events", "data/events/day=*/*.csv", #{ partition_by: ["day"] });
raw.load("users", "data/users.csv");

let marts = stage("marts");
let daily = `SELECT e.day, u.country, count(*) AS events, sum(e.amount) AS amount
             FROM raw.events e JOIN raw.users u USING (user_id)
             GROUP BY e.day, u.country`;
marts.sql("daily", daily, #{ partition_by: ["day"], incremental: true });
marts.sql("daily_whole", daily);
fn per_user(events) { events.aggregate(["day", "user_id"], ["count(*) AS events"]) }
marts.materialize("per_user", per_user, [table("raw.events")],
                  #{ partition_by: ["day"], incremental: true });
"#;

fn events(p: &Project, day: u32, rows: &[(u32, f64)]) {
    let mut text = String::from("user_id,amount\n");
    for (user, amount) in rows {
        text.push_str(&format!("{user},{amount:.1}\n"));
    }
    p.file(&format!("data/events/day=2026-01-{day:02}/part.csv"), &text);
}

/// A project with days 1 to `days`, three events a day.
fn project(days: u32) -> Project {
    let p = Project::new();
    p.file("pipeline.rhai", PIPELINE);
    p.file("data/users.csv", "user_id,country\n1,fr\n2,de\n3,fr\n");
    for day in 1..=days {
        events(&p, day, &[(1, 10.5), (2, 3.0), (3, f64::from(day))]);
    }
    p
}

/// The partitions each task computed in the newest run (absent: it computed none, or is not
/// partitioned), and of how many.
fn computed(p: &Project) -> Vec<(String, Vec<String>, u64)> {
    let record = p.last_record();
    let mut out = Vec::new();
    for t in record["tasks"].as_array().expect("tasks") {
        let Some(total) = t["partitions_total"].as_u64() else {
            continue;
        };
        let ran: Vec<String> = t["partitions"]
            .as_array()
            .map(|a| a.iter().map(|v| v.as_str().unwrap().to_string()).collect())
            .unwrap_or_default();
        out.push((t["task"].as_str().unwrap().to_string(), ran, total));
    }
    out
}

/// What the incremental table holds equals the same query computed whole, both ways.
#[track_caller]
fn daily_matches_whole(p: &Project) {
    let missing = "SELECT day, country, events, amount FROM marts.daily_whole
                   EXCEPT SELECT day, country, events, amount FROM marts.daily";
    let extra = "SELECT day, country, events, amount FROM marts.daily
                 EXCEPT SELECT day, country, events, amount FROM marts.daily_whole";
    assert_eq!(p.query(missing), Vec::<String>::new(), "rows missing");
    assert_eq!(p.query(extra), Vec::<String>::new(), "rows too many");
}

fn partitions_of(p: &Project, stage: &str, table: &str) -> Vec<Value> {
    let manifest = p.manifest(stage).expect("manifest");
    manifest["tables"][table]["partitions"]
        .as_array()
        .cloned()
        .unwrap_or_default()
}

/// A new day's folder is read alone, and each incremental task computes that day only; a
/// changed day recomputes that day; a deleted day is dropped from every table built from it.
#[test]
fn a_new_day_computes_one_partition_per_task() {
    let p = project(5);
    let cold = p.run(&[]).ok();
    assert!(
        cold.stdout.contains("5 of 5 partitions ran"),
        "{}",
        cold.text()
    );
    daily_matches_whole(&p);
    assert_eq!(partitions_of(&p, "marts", "daily").len(), 5);

    events(&p, 6, &[(2, 100.0)]);
    let status = p.weir(&["status", "pipeline.rhai"]).ok().stdout;
    assert!(
        status.contains("6 partitions: 5 fresh, 1 stale (1 new)"),
        "{status}"
    );
    p.run(&["--select", "raw.events"]).ok();
    let status = p.weir(&["status", "pipeline.rhai"]).ok().stdout;
    let daily = status
        .lines()
        .find(|l| l.starts_with("marts.daily "))
        .unwrap_or_default();
    assert!(
        daily.contains("stale") && daily.contains("6 partitions: 5 fresh, 1 stale (1 new)"),
        "{status}"
    );
    let run = p.run(&[]).ok();
    let new_day = vec!["day=2026-01-06".to_string()];
    assert_eq!(
        computed(&p),
        vec![
            ("marts.daily".into(), new_day.clone(), 6),
            ("marts.per_user".into(), new_day.clone(), 6),
        ]
    );
    assert!(
        run.stdout.contains("1 of 6 partitions ran"),
        "{}",
        run.text()
    );
    daily_matches_whole(&p);
    assert_eq!(
        p.query("SELECT amount FROM marts.daily WHERE day = '2026-01-06'"),
        ["100.0"]
    );

    events(&p, 2, &[(1, 7.0)]);
    p.run(&[]).ok();
    let changed = vec!["day=2026-01-02".to_string()];
    assert_eq!(computed(&p)[1], ("marts.daily".into(), changed, 6));
    daily_matches_whole(&p);

    std::fs::remove_dir_all(p.path("data/events/day=2026-01-03")).expect("remove a day");
    p.run(&[]).ok();
    assert_eq!(computed(&p)[1], ("marts.daily".into(), vec![], 5));
    daily_matches_whole(&p);
    assert_eq!(
        p.query("SELECT count(*) FROM marts.per_user WHERE day = '2026-01-03'"),
        ["0"]
    );

    let noop = p.run(&[]).ok();
    assert!(noop.stdout.contains("0 ran"), "{}", noop.text());
}

/// A kept partition stays in the folder of the build that computed it: a new day writes one
/// day's files, the table's Delta log gets one added file, `cache gc` keeps the builds that
/// hold kept partitions, and every reader still sees every day.
#[test]
fn kept_partitions_stay_where_they_were_written() {
    use crate::common::delta::{Expected, live_files, logs_match_manifests, read, table_dir};
    let p = project(3);
    p.run(&[]).ok();
    let dir = table_dir(&p.instance_dir(), "marts", "daily");
    let before = live_files(&dir);
    for day in [4, 5] {
        events(&p, day, &[(1, 1.0)]);
        p.run(&[]).ok();
        daily_matches_whole(&p);
    }
    let parquet = |day: &str| {
        crate::common::files_in(&dir)
            .into_iter()
            .filter(|f| f.to_string_lossy().contains(&format!("/day={day}/")))
            .count()
    };
    assert_eq!(parquet("2026-01-01"), 1, "day 1 is stored once");
    // The log's files: the first three days as the first run added them, one added a run.
    let after = live_files(&dir);
    assert_eq!(after.len(), 5, "{after:?}");
    assert!(before.is_subset(&after), "{before:?} {after:?}");
    logs_match_manifests(&p.instance_dir(), "after two new days");
    let last = crate::common::delta::versions(&dir)
        .last()
        .copied()
        .unwrap_or_default();
    let commit = std::fs::read_to_string(dir.join(format!("_delta_log/{last:020}.json"))).unwrap();
    assert_eq!(
        (
            commit.matches("\"add\"").count(),
            commit.matches("\"remove\"").count()
        ),
        (1, 0),
        "{commit}"
    );

    // Only the committed builds are kept, and those whose partitions they name.
    p.weir(&["cache", "gc", "pipeline.rhai", "--keep-runs", "0"])
        .ok();
    let list = p.weir(&["cache", "list", "pipeline.rhai"]).ok().stdout;
    let daily: Vec<&str> = list
        .lines()
        .filter(|l| l.starts_with("marts.daily "))
        .collect();
    assert_eq!(
        daily.len(),
        3,
        "the two earlier builds hold kept days: {list}"
    );
    let whole = list.lines().filter(|l| l.starts_with("marts.daily_whole "));
    assert_eq!(whole.count(), 1, "gc deleted what nothing names: {list}");
    daily_matches_whole(&p);
    assert_eq!(
        p.query("SELECT count(DISTINCT day) FROM marts.per_user"),
        ["5"]
    );
    let status = p.weir(&["status", "pipeline.rhai"]).ok().stdout;
    assert!(
        !status.contains("damaged") && !status.contains("stale"),
        "{status}"
    );
    if let Some(out) = read(
        p.dir.path(),
        &[Expected::committed(&p, "marts.daily", None, &[])],
    ) {
        assert!(out.contains("marts.daily deltalake: ok 8 rows"), "{out}");
    }
    // A run after gc computes nothing: everything it keeps is still there.
    let noop = p.run(&[]).ok();
    assert!(noop.stdout.contains("0 ran"), "{}", noop.text());
}

/// A change to a table every partition reads whole (a dimension) recomputes every partition.
#[test]
fn a_changed_dimension_recomputes_every_partition() {
    let p = project(4);
    p.run(&[]).ok();
    p.file("data/users.csv", "user_id,country\n1,fr\n2,it\n3,fr\n");
    p.run(&[]).ok();
    let all: Vec<String> = (1..=4).map(|d| format!("day=2026-01-{d:02}")).collect();
    assert!(
        computed(&p).contains(&("marts.daily".into(), all, 4)),
        "{:?}",
        computed(&p)
    );
    daily_matches_whole(&p);
    assert_eq!(
        p.query("SELECT count(*) FROM marts.daily WHERE country = 'it'"),
        ["4"]
    );
}

/// A partitioned table computed whole (one file loaded with `partition_by`) still records its
/// partitions' content: a rewrite that adds a day lets an incremental task read that day alone.
#[test]
fn a_whole_table_rewritten_with_one_more_day_recomputes_one_partition() {
    let p = Project::new();
    p.file(
        "pipeline.rhai",
        r#"
let raw = stage("raw");
raw.load("events", "data/events.csv", #{ partition_by: ["day"] });
let marts = stage("marts");
marts.sql("daily", `SELECT day, count(*) AS n, sum(amount) AS amount FROM raw.events GROUP BY day`,
          #{ partition_by: ["day"], incremental: true });
"#,
    );
    let rows = |days: u32| {
        let mut text = String::from("day,amount\n");
        for d in 1..=days {
            text.push_str(&format!("2026-02-{d:02},{d}\n2026-02-{d:02},1\n"));
        }
        text
    };
    p.file("data/events.csv", &rows(3));
    p.run(&[]).ok();
    p.file("data/events.csv", &rows(4));
    p.run(&[]).ok();
    assert_eq!(
        computed(&p),
        vec![("marts.daily".into(), vec!["day=2026-02-04".into()], 4)]
    );
    assert_eq!(
        p.query("SELECT day, n, amount FROM marts.daily ORDER BY day"),
        [
            "2026-02-01,2,2",
            "2026-02-02,2,3",
            "2026-02-03,2,4",
            "2026-02-04,2,5"
        ]
    );
}

/// Rows that leave the partition they were computed for fail the task by name, and the stage
/// committed before stays as it was.
#[test]
fn rows_outside_their_partition_fail_the_task() {
    let p = project(2);
    p.run(&[]).ok();
    let before = p.query("SELECT day, country, events FROM marts.daily ORDER BY day, country");
    p.edit(
        "pipeline.rhai",
        "SELECT e.day, u.country",
        "SELECT '2020-01-01' AS day, u.country",
    );
    p.edit(
        "pipeline.rhai",
        "GROUP BY e.day, u.country",
        "GROUP BY u.country",
    );
    let run = p.run(&[]).fails_with(1);
    assert!(
        run.text().contains("gave 2 rows with day=2020-01-01")
            && run
                .text()
                .contains("an incremental task's rows must stay in the partition"),
        "{}",
        run.text()
    );
    assert_eq!(
        p.query("SELECT day, country, events FROM marts.daily ORDER BY day, country"),
        before
    );
}

/// Declarations that cannot be incremental are refused with what to write instead.
#[test]
fn incremental_needs_partitions_in_and_out() {
    let p = project(1);
    p.file(
        "bad.rhai",
        r#"let raw = stage("raw");
raw.load("users", "data/users.csv");
raw.sql("x", "SELECT * FROM raw.users", #{ incremental: true });"#,
    );
    let run = p.weir(&["run", "bad.rhai"]).fails_with(2);
    assert!(
        run.text()
            .contains("`incremental: true` needs `partition_by`"),
        "{}",
        run.text()
    );
    p.file(
        "bad.rhai",
        r#"let raw = stage("raw");
raw.load("users", "data/users.csv");
raw.sql("x", "SELECT * FROM raw.users", #{ partition_by: ["country"], incremental: true });"#,
    );
    let run = p.weir(&["check", "bad.rhai"]).fails_with(2);
    assert!(
        run.text().contains(
            "raw.x: it is incremental by country, but none of its inputs (raw.users) is partitioned by country"
        ),
        "{}",
        run.text()
    );
    p.file(
        "bad.rhai",
        r#"let raw = stage("raw");
raw.sql("x", "SELECT CAST(NULL AS VARCHAR) AS day, 1 AS n", #{ partition_by: ["day"] });
raw.sql("y", "SELECT 1.5 AS f, 1 AS n", #{ partition_by: ["f"] });"#,
    );
    let run = p.weir(&["run", "bad.rhai", "--keep-going"]).fails_with(1);
    assert!(
        run.text()
            .contains("partition column `day` is null in 1 rows"),
        "{}",
        run.text()
    );
    assert!(
        run.text()
            .contains("partition_by names `f`, a Float64 column"),
        "{}",
        run.text()
    );
}

/// On an S3 store the same runs compute the same partitions and the same values.
#[test]
fn incremental_runs_on_s3_compute_what_they_compute_locally() {
    let s3 = S3::start();
    s3.bucket("lake");
    let env = s3.env();
    let store = "s3://lake/weir";
    let p = project(3);
    p.weir_env(&["run", "pipeline.rhai", "--store", store], &env)
        .ok();
    events(&p, 4, &[(1, 1.0)]);
    let run = p
        .weir_env(&["run", "pipeline.rhai", "--store", store], &env)
        .ok();
    assert!(
        run.stdout.contains("1 of 4 partitions ran"),
        "{}",
        run.text()
    );
    let keys = s3.keys("lake");
    let kept = keys
        .iter()
        .filter(|k| k.contains("/marts/daily/") && k.contains("day=2026-01-01/"))
        .count();
    // Kept where the first run wrote it: no server-side copy per kept partition.
    assert_eq!(kept, 1, "day 1 is stored once: {keys:?}");
    p.run(&[]).ok();
    let query = "SELECT day, country, events, amount FROM marts.daily ORDER BY day, country";
    let remote = p
        .weir_env(&["sql", query, "-f", "csv", "--store", store], &env)
        .ok()
        .stdout;
    let local = p.weir(&["sql", query, "-f", "csv"]).ok().stdout;
    assert_eq!(remote, local);
    assert_eq!(
        p.ran(),
        set(&[
            "raw.events",
            "raw.users",
            "marts.daily",
            "marts.daily_whole",
            "marts.per_user"
        ])
    );
}

/// `--force --partition` recomputes a range of days (a backfill) and keeps the rest; without
/// `--force`, a range computes the stale days in it, leaves the others as they were, and the
/// tables stay stale until a run computes the rest.
#[test]
fn partition_ranges_backfill_and_leave_the_rest_stale() {
    let p = project(4);
    p.run(&[]).ok();
    p.run(&["--force", "--partition", "day=2026-01-02..2026-01-03"])
        .ok();
    let range = vec!["day=2026-01-02".to_string(), "day=2026-01-03".to_string()];
    assert_eq!(
        computed(&p),
        vec![
            ("raw.events".into(), range.clone(), 4),
            ("marts.daily".into(), range.clone(), 4),
            ("marts.per_user".into(), range, 4),
        ]
    );
    daily_matches_whole(&p);

    events(&p, 5, &[(1, 5.0)]);
    events(&p, 6, &[(1, 6.0)]);
    let run = p.run(&["--partition", "day=2026-01-05"]).ok();
    assert!(
        run.stdout
            .contains("1 of 6 partitions ran, 1 stale left as they were (--partition)"),
        "{}",
        run.text()
    );
    assert_eq!(
        p.query("SELECT day FROM marts.daily WHERE day > '2026-01-04' GROUP BY day"),
        ["2026-01-05"]
    );
    let status = p.weir(&["status", "pipeline.rhai"]).ok().stdout;
    let daily = status
        .lines()
        .find(|l| l.starts_with("marts.daily "))
        .unwrap_or_default();
    assert!(
        daily.contains("stale") && daily.contains("partial"),
        "{status}"
    );

    p.run(&[]).ok();
    let new_day = vec!["day=2026-01-06".to_string()];
    assert_eq!(computed(&p)[1], ("marts.daily".into(), new_day, 6));
    daily_matches_whole(&p);
    let noop = p.run(&[]).ok();
    assert!(noop.stdout.contains("0 ran"), "{}", noop.text());

    let bad = p.run(&["--partition", "day"]).fails_with(2);
    assert!(bad.text().contains("names no column"), "{}", bad.text());
}

/// The `_partitions` records written so far under a table's builds in the instance folder
/// `instance` (a local store's, or an S3 server's bucket folder).
fn partition_records(instance: &std::path::Path, table: &str) -> usize {
    crate::common::files_in(&instance.join(format!("tables/marts/{table}")))
        .iter()
        .filter(|f| f.to_string_lossy().contains("/_partitions/"))
        .count()
}

/// SIGKILL in the middle of an incremental run: what is committed stays readable, and the next
/// run takes the partitions the killed one had computed instead of computing them again.
#[test]
fn a_killed_incremental_run_is_finished_by_the_next() {
    let p = project(40);
    let instance = p.instance_dir();
    killed_then_finished(&p, &instance, &[], &[]);
}

/// The same on an S3 store.
#[test]
fn a_killed_incremental_run_on_s3_is_finished_by_the_next() {
    let s3 = S3::start();
    s3.bucket("lake");
    let p = project(40);
    let instance = s3.root.path().join("lake/weir/default");
    killed_then_finished(&p, &instance, &s3.env(), &["--store", "s3://lake/weir"]);
}

/// Kill three runs once each has computed more partitions of `marts.daily`, then let one
/// finish: it takes what they computed.
fn killed_then_finished(
    p: &Project,
    instance: &std::path::Path,
    env: &[(&str, String)],
    store: &[&str],
) {
    let with = |args: &[&str]| -> Vec<String> {
        let mut all: Vec<String> = args.iter().map(|a| a.to_string()).collect();
        all.extend(store.iter().map(|a| a.to_string()));
        all
    };
    let args = with(&["run", "pipeline.rhai", "--select", "stage:raw"]);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    p.weir_env(&args, env).ok();
    let count = with(&["sql", "SELECT count(*) FROM raw.events", "-f", "csv"]);
    let count: Vec<&str> = count.iter().map(String::as_str).collect();
    let before = p.weir_env(&count, env).ok().stdout;
    let run = with(&["run", "pipeline.rhai", "--jobs", "1"]);
    let run: Vec<&str> = run.iter().map(String::as_str).collect();
    for round in 0..3 {
        let mut child = p
            .command(&run)
            .envs(env.iter().map(|(k, v)| (*k, v.as_str())))
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("spawn weir");
        let started = std::time::Instant::now();
        while partition_records(instance, "daily") < 3 * (round + 1)
            && started.elapsed() < std::time::Duration::from_secs(60)
        {
            std::thread::sleep(std::time::Duration::from_millis(5));
        }
        let _ = child.kill();
        let _ = child.wait();
        assert_eq!(p.weir_env(&count, env).ok().stdout, before);
    }
    let finished = p.weir_env(&run, env).ok();
    let daily = finished
        .stdout
        .lines()
        .skip_while(|l| !l.contains("marts.daily "))
        .nth(1)
        .unwrap_or_default()
        .to_string();
    let resumed: usize = daily
        .split(", ")
        .find_map(|part| part.strip_suffix(" taken from a run that stopped"))
        .and_then(|n| n.trim().parse().ok())
        .unwrap_or(0);
    assert!(resumed >= 3, "{}", finished.text());
    if store.is_empty() {
        daily_matches_whole(p);
        assert_eq!(
            p.query("SELECT count(DISTINCT day) FROM marts.per_user"),
            ["40"]
        );
    } else {
        let days = with(&[
            "sql",
            "SELECT count(DISTINCT day) FROM marts.daily",
            "-f",
            "csv",
        ]);
        let days: Vec<&str> = days.iter().map(String::as_str).collect();
        assert_eq!(
            p.weir_env(&days, env).ok().stdout.lines().nth(1),
            Some("40")
        );
    }
}

/// `weir clear --partition` marks some partitions: the next run computes those again (and
/// only those), and `status` says which until then.
#[test]
fn clearing_partitions_recomputes_them_only() {
    let p = project(5);
    p.run(&[]).ok();
    p.weir(&[
        "clear",
        "marts.daily",
        "--partition",
        "day=2026-01-02,2026-01-04",
        "pipeline.rhai",
    ])
    .ok();
    let status = p.weir(&["status", "pipeline.rhai"]).ok().stdout;
    assert!(
        status.contains("the next run computes day=2026-01-02,2026-01-04 again"),
        "{status}"
    );
    p.run(&[]).ok();
    let cleared = vec!["day=2026-01-02".to_string(), "day=2026-01-04".to_string()];
    assert_eq!(computed(&p), vec![("marts.daily".into(), cleared, 5)]);
    daily_matches_whole(&p);
    let noop = p.run(&[]).ok();
    assert!(noop.stdout.contains("0 ran"), "{}", noop.text());
}

/// `weir why --partition` says, partition by partition, what changed: the input's partition,
/// a new day, or the task as a whole.
#[test]
fn why_names_what_changed_in_each_partition() {
    let p = project(3);
    p.run(&[]).ok();
    events(&p, 2, &[(1, 7.0)]);
    events(&p, 4, &[(1, 8.0)]);
    p.run(&["--select", "stage:raw"]).ok();
    let why = |range: &str| {
        p.weir(&["why", "marts.daily", "--partition", range, "pipeline.rhai"])
            .ok()
            .stdout
    };
    let text = why("day=2026-01-01..2026-01-04");
    for expected in [
        "day=2026-01-01: fresh",
        "day=2026-01-03: fresh",
        "day=2026-01-04: new: not in the committed build",
    ] {
        assert!(text.contains(expected), "{expected}:\n{text}");
    }
    assert!(
        text.lines()
            .any(|l| l.contains("day=2026-01-02: raw.events's partition changed (")),
        "{text}"
    );
    p.file("data/users.csv", "user_id,country\n1,fr\n2,it\n3,fr\n");
    p.run(&["--select", "raw.users"]).ok();
    let text = why("day=2026-01-01");
    assert!(
        text.contains("day=2026-01-01: input raw.users changed"),
        "{text}"
    );
    let wrong = p
        .weir(&[
            "why",
            "marts.daily",
            "--partition",
            "country=fr",
            "pipeline.rhai",
        ])
        .fails_with(2);
    assert!(
        wrong
            .text()
            .contains("marts.daily is not partitioned by country"),
        "{}",
        wrong.text()
    );
}

/// `weir test` of an incremental task computes it whole over the rows it gives.
#[test]
fn an_incremental_task_is_unit_tested_on_given_rows() {
    let p = project(1);
    let tested = format!(
        "{PIPELINE}\n{}",
        r#"test("marts.daily", #{
    name: "two countries, one day",
    given: #{
        "raw.events": [#{ user_id: 1, amount: 2.0, day: "2026-03-01" }, #{ user_id: 2, amount: 3.0, day: "2026-03-01" }],
        "raw.users": [#{ user_id: 1, country: "fr" }, #{ user_id: 2, country: "de" }],
    },
    expect: [#{ day: "2026-03-01", country: "fr", events: 1, amount: 2.0 },
             #{ day: "2026-03-01", country: "de", events: 1, amount: 3.0 }],
});"#
    );
    p.file("pipeline.rhai", &tested);
    let out = p.weir(&["test"]).ok();
    assert!(
        out.stdout.contains("pass       two countries, one day"),
        "{}",
        out.text()
    );
}
