//! Object stores and remote sources, against real servers started by the tests on loopback:
//! an S3-compatible server (s3s-fs) and an HTTP file server. Everything that works on a local
//! store works on S3, with the same values.

use std::process::Stdio;

use crate::common::servers::{Http, S3};
use crate::common::{Project, read_parquet, set, write_parquet};

const STORE: &str = "s3://lake/weir";

/// The rows of a query, CSV without the header.
fn rows(p: &Project, env: &[(&str, String)], extra: &[&str], sql: &str) -> Vec<String> {
    let mut args = vec!["sql", sql, "-f", "csv"];
    args.extend_from_slice(extra);
    let out = p.weir_env(&args, env).ok().stdout;
    out.lines().skip(1).map(str::to_string).collect()
}

/// The quickstart on an S3 store gives the values it gives on a local folder; a no-op runs
/// nothing with a handful of requests per stage; one edit reruns that task and what reads it.
#[test]
fn quickstart_on_s3_matches_the_local_store() {
    let s3 = S3::start();
    s3.bucket("lake");
    let env = s3.env();
    let p = Project::example("quickstart");
    p.weir(&["run", "pipeline.rhai"]).ok();
    let cold = p
        .weir_env(&["run", "pipeline.rhai", "--store", STORE], &env)
        .ok();
    assert!(cold.stdout.contains("6 ran"), "{}", cold.text());
    let query = "SELECT customer_id, total FROM marts.top_customers ORDER BY customer_id";
    let local = rows(&p, &[], &[], query);
    assert_eq!(local.len(), 3);
    assert_eq!(rows(&p, &env, &["--store", STORE], query), local);
    let keys = s3.keys("lake");
    assert!(
        keys.iter()
            .any(|k| k == "weir/default/manifests/marts.json"),
        "{keys:?}"
    );

    let noop = p
        .weir_env(&["run", "pipeline.rhai", "--store", STORE], &env)
        .ok();
    assert!(noop.stdout.contains("0 ran, 6 cached"), "{}", noop.text());
    let log = p
        .weir_env(&["log", "last", "pipeline.rhai", "--store", STORE], &env)
        .ok()
        .stdout;
    let requests: u64 = log
        .lines()
        .find_map(|l| l.trim().strip_prefix("store requests "))
        .and_then(|l| l.split(':').next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no request count in:\n{log}"));
    // Three stages: a few requests each, not one per table.
    assert!(requests <= 20, "a no-op made {requests} requests:\n{log}");

    p.edit(
        "pipeline.rhai",
        "WHERE o.amount > 0",
        "WHERE o.amount > 100",
    );
    p.weir_env(&["run", "pipeline.rhai", "--store", STORE], &env)
        .ok();
    let ran = p
        .weir_env(&["status", "pipeline.rhai", "--store", STORE], &env)
        .ok()
        .stdout;
    assert!(ran.lines().all(|l| l.contains("fresh")), "{ran}");
    assert_eq!(
        rows(
            &p,
            &env,
            &["--store", STORE],
            "SELECT count(*) FROM prep.orders_clean"
        ),
        ["6"]
    );
}

/// Loads read `s3://` and `http://` URLs; an unchanged remote file is not read again (its ETag
/// is its fingerprint), a changed one re-runs its load.
#[test]
fn loads_read_s3_and_http_urls_and_notice_changes() {
    let s3 = S3::start();
    s3.bucket("lake").bucket("sources");
    let p = Project::example("quickstart");
    s3.put(
        "sources",
        "sales/orders.csv",
        p.read("data/orders.csv").as_bytes(),
    );
    let http = Http::start(&p.path("data"));
    p.edit(
        "pipeline.rhai",
        "raw.load(\"orders\", \"data/orders.csv\");",
        "raw.load(\"orders\", \"s3://sources/sales/orders.csv\");",
    );
    let customers = http.url("customers.ndjson");
    p.edit(
        "pipeline.rhai",
        "raw.load(\"customers\", \"data/customers.ndjson\");",
        &format!("raw.load(\"customers\", \"{customers}\");"),
    );
    let env = s3.env();
    let run = |p: &Project| p.weir_env(&["run", "pipeline.rhai", "--store", STORE], &env);
    run(&p).ok();
    assert_eq!(
        rows(
            &p,
            &env,
            &["--store", STORE],
            "SELECT count(*) FROM raw.orders"
        ),
        ["16"]
    );
    run(&p).ok();
    let noop = p
        .weir_env(&["log", "last", "pipeline.rhai", "--store", STORE], &env)
        .ok();
    assert!(noop.stdout.contains("0 ran"), "{}", noop.stdout);

    // A new row in the S3 object, and one customer more over HTTP.
    let orders = p.read("data/orders.csv");
    s3.put(
        "sources",
        "sales/orders.csv",
        format!("{orders}99,1,10.0,2024-03-01\n").as_bytes(),
    );
    run(&p).ok();
    assert_eq!(
        rows(
            &p,
            &env,
            &["--store", STORE],
            "SELECT count(*) FROM raw.orders"
        ),
        ["17"]
    );
    let record = p
        .weir_env(&["log", "last", "pipeline.rhai", "--store", STORE], &env)
        .ok();
    assert!(record.stdout.contains("raw.orders"), "{}", record.stdout);
    let customers_before = p.read("data/customers.ndjson");
    std::thread::sleep(std::time::Duration::from_millis(1100));
    p.file(
        "data/customers.ndjson",
        &format!(
            "{customers_before}{{\"customer_id\": 99, \"name\": \"New\", \"segment\": \"smb\"}}\n"
        ),
    );
    run(&p).ok();
    assert_eq!(
        rows(
            &p,
            &env,
            &["--store", STORE],
            "SELECT count(*) FROM raw.customers"
        ),
        ["9"]
    );
}

/// An http(s) load keeps its URL's query (a signed URL works, and a wrong signature is an
/// error, never another file's data); a remote CSV is downloaded once per run; a missing file
/// stops the run before anything runs, labelled at its load, without WebDAV requests.
#[test]
fn http_loads_keep_their_query_and_read_a_file_once() {
    let p = Project::new();
    p.file("www/r.csv", "id,v\n1,2\n3,4\n")
        .file("www/r.csv.sig", "abc");
    let http = Http::start(&p.path("www"));
    let script = |sig: &str| {
        format!(
            "let raw = stage(\"raw\");\nraw.load(\"r\", \"{}?sig={sig}\");\n",
            http.url("r.csv")
        )
    };
    p.file("pipeline.rhai", &script("abc"));
    p.run(&[]).ok();
    assert_eq!(p.query("SELECT sum(v) FROM raw.r"), ["6"]);
    let gets: Vec<String> = http
        .requests()
        .into_iter()
        .filter(|r| r.starts_with("GET"))
        .collect();
    assert_eq!(gets, ["GET /r.csv?sig=abc"], "one download, with its query");

    p.file("pipeline.rhai", &script("wrong"));
    let refused = p.run(&[]).fails_with(2);
    assert!(refused.stderr.contains("raw.r loads"), "{}", refused.text());
    assert_eq!(
        p.query("SELECT sum(v) FROM raw.r"),
        ["6"],
        "the committed table stays"
    );

    p.file(
        "pipeline.rhai",
        &format!(
            "let raw = stage(\"raw\");\nraw.load(\"r\", \"{}\");\n",
            http.url("gone.csv")
        ),
    );
    let missing = p.run(&[]).fails_with(2);
    assert!(
        missing.stderr.contains("there is no file at that URL")
            && missing.stderr.contains("pipeline.rhai:2:5"),
        "{}",
        missing.text()
    );
    assert!(
        !http.requests().iter().any(|r| r.starts_with("PROPFIND")),
        "{:?}",
        http.requests()
    );
}

/// A run on S3 killed at random moments leaves every committed table readable, and the next
/// run recovers the lock and finishes.
#[test]
fn a_run_on_s3_killed_midway_is_followed_by_a_correct_run() {
    let s3 = S3::start();
    s3.bucket("lake");
    let env = s3.env();
    let p = Project::example("quickstart");
    p.weir_env(&["run", "pipeline.rhai", "--store", STORE], &env)
        .ok();
    let script = p.read("pipeline.rhai");
    for (round, delay) in [150u64, 400, 700, 1000, 1500].into_iter().enumerate() {
        // A new key for prep.orders_clean and everything after it, every round.
        p.file(
            "pipeline.rhai",
            &script.replace("WHERE o.amount > 0", &format!("WHERE o.amount > {round}")),
        );
        let mut cmd = p.command(&["run", "pipeline.rhai", "--store", STORE]);
        for (k, v) in &env {
            cmd.env(k, v);
        }
        let mut child = cmd
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        std::thread::sleep(std::time::Duration::from_millis(delay));
        let _ = child.kill();
        let _ = child.wait();
        committed_read(&s3, &format!("round {round}"));
    }
    let run = p.weir_env(
        &[
            "run",
            "pipeline.rhai",
            "--store",
            STORE,
            "--lock-timeout",
            "60",
        ],
        &env,
    );
    run.ok();
    committed_read(&s3, "after recovery");
    assert_eq!(
        rows(
            &p,
            &env,
            &["--store", STORE],
            "SELECT count(*) FROM marts.top_customers"
        ),
        ["3"]
    );
}

/// Every table of every committed manifest in the bucket reads as Parquet with its rows.
#[track_caller]
fn committed_read(s3: &S3, when: &str) {
    let instance = s3.root.path().join("lake/weir/default");
    for entry in std::fs::read_dir(instance.join("manifests"))
        .into_iter()
        .flatten()
        .flatten()
    {
        let text = std::fs::read_to_string(entry.path()).unwrap_or_default();
        let Ok(manifest) = serde_json::from_str::<serde_json::Value>(&text) else {
            panic!(
                "{when}: {} is not a manifest: {text}",
                entry.path().display()
            );
        };
        for (table, build) in manifest["tables"].as_object().expect("tables") {
            let mut rows = 0;
            for file in build["files"].as_array().expect("files") {
                let file = instance.join(file.as_str().expect("path"));
                assert!(
                    file.is_file(),
                    "{when}: {table} names {}, which is gone",
                    file.display()
                );
                rows += read_parquet(&file).0;
            }
            assert_eq!(Some(rows as u64), build["rows"].as_u64(), "{when}: {table}");
        }
    }
}

/// Two runs at once on one S3 instance: one builds, the other waits for the lock and finds
/// everything built; a lock held by a live run makes a run wait and time out. (s3s-fs checks
/// `If-None-Match` and then writes, so two creates in the same millisecond can both succeed
/// there, unlike on S3: the second run starts 100 ms after the first.)
#[test]
fn two_runs_on_one_s3_instance_keep_one_writer() {
    let s3 = S3::start();
    s3.bucket("lake");
    let env = s3.env();
    let p = Project::example("quickstart");
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis();
    let held = format!(
        r#"{{"pid":{},"host":"elsewhere","run_id":"other","heartbeat_ms":{now}}}"#,
        std::process::id()
    );
    s3.put("lake", "weir/default/lock", held.as_bytes());
    let waited = p
        .weir_env(
            &[
                "run",
                "pipeline.rhai",
                "--store",
                STORE,
                "--lock-timeout",
                "1",
            ],
            &env,
        )
        .fails_with(1);
    assert!(
        waited.stderr.contains("locked by another run"),
        "{}",
        waited.stderr
    );
    std::fs::remove_file(s3.root.path().join("lake/weir/default/lock")).unwrap();

    let spawn = || {
        let mut cmd = p.command(&["run", "pipeline.rhai", "--store", STORE]);
        for (k, v) in &env {
            cmd.env(k, v);
        }
        cmd.stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap()
    };
    let a = spawn();
    std::thread::sleep(std::time::Duration::from_millis(100));
    let b = spawn();
    let (a, b) = (a.wait_with_output().unwrap(), b.wait_with_output().unwrap());
    assert!(a.status.success() && b.status.success(), "{a:?}\n{b:?}");
    let out = format!(
        "{}{}",
        String::from_utf8_lossy(&a.stdout),
        String::from_utf8_lossy(&b.stdout)
    );
    assert_eq!(out.matches("6 ran").count(), 1, "{out}");
    assert_eq!(out.matches("6 cached").count(), 1, "{out}");
    assert!(!s3.keys("lake").iter().any(|k| k.ends_with("/lock")));
}

/// Wrong credentials and an unreachable endpoint each fail clearly (exit 2, naming the store,
/// never showing the secret) and leave what is committed as it was. (s3s-fs makes a missing
/// bucket on the first put, so a missing bucket is not tried here.)
#[test]
fn store_errors_are_clear_and_change_nothing() {
    let s3 = S3::start();
    s3.bucket("lake");
    let env = s3.env();
    let p = Project::example("quickstart");
    p.weir_env(&["run", "pipeline.rhai", "--store", STORE], &env)
        .ok();
    let manifests = set(&["weir/default/manifests/marts.json"]);

    let wrong: Vec<(&str, String)> = env
        .iter()
        .map(|(k, v)| match *k {
            "AWS_SECRET_ACCESS_KEY" => (*k, "not-the-secret-xyz".to_string()),
            _ => (*k, v.clone()),
        })
        .collect();
    p.edit("pipeline.rhai", "WHERE o.amount > 0", "WHERE o.amount > 7");
    let denied = p.weir_env(&["run", "pipeline.rhai", "--store", STORE], &wrong);
    let denied = denied.fails_with(2);
    assert!(
        denied
            .stderr
            .contains("cannot use the store `s3://lake/weir`"),
        "{}",
        denied.stderr
    );
    assert!(
        !denied.text().contains("not-the-secret-xyz"),
        "{}",
        denied.text()
    );

    let unreachable: Vec<(&str, String)> = env
        .iter()
        .map(|(k, v)| match *k {
            "AWS_ENDPOINT_URL" => (*k, "http://127.0.0.1:9".to_string()),
            _ => (*k, v.clone()),
        })
        .collect();
    let started = std::time::Instant::now();
    let down = p
        .weir_env(&["run", "pipeline.rhai", "--store", STORE], &unreachable)
        .fails_with(2);
    assert!(
        started.elapsed() < std::time::Duration::from_secs(60),
        "bounded retries"
    );
    assert!(down.stderr.contains("s3://lake/weir"), "{}", down.stderr);

    assert!(s3.keys("lake").iter().any(|k| manifests.contains(k)));
    assert_eq!(
        rows(
            &p,
            &env,
            &["--store", STORE],
            "SELECT count(*) FROM prep.orders_clean"
        ),
        ["14"],
        "what was committed is still there"
    );
}

/// A store URL weir cannot serve, an option its builder does not know, and a load from a
/// scheme no store serves are refused before anything runs, with exit 2. GCS has no emulator
/// here: its URL and options are checked this far.
#[test]
fn bad_store_urls_and_options_are_refused_up_front() {
    let p = Project::example("quickstart");
    let ftp = p
        .weir(&["run", "pipeline.rhai", "--store", "ftp://host/x"])
        .fails_with(2);
    assert!(
        ftp.stderr.contains("not a store weir can use"),
        "{}",
        ftp.stderr
    );
    p.file(
        "weir.toml",
        "[store]\nurl = \"gs://bucket/prefix\"\n[store.options]\ngoogle_bogus_key = \"x\"\n",
    );
    let option = p.weir(&["run", "pipeline.rhai"]).fails_with(2);
    assert!(
        option
            .stderr
            .contains("`google_bogus_key` is not an option of Google Cloud Storage"),
        "{}",
        option.stderr
    );
    p.file(
        "weir.toml",
        "[store]\nurl = \"gs://bucket/prefix\"\n[store.options]\ngoogle_service_account = \"missing.json\"\n",
    );
    let account = p.weir(&["run", "pipeline.rhai"]).fails_with(2);
    assert!(
        account.stderr.contains("gs://bucket/prefix"),
        "{}",
        account.stderr
    );
    std::fs::remove_file(p.path("weir.toml")).unwrap();
    p.edit(
        "pipeline.rhai",
        "\"data/orders.csv\"",
        "\"ftp://host/orders.csv\"",
    );
    let load = p.weir(&["run", "pipeline.rhai"]).fails_with(2);
    assert!(
        load.stderr.contains("not a location weir can load from"),
        "{}",
        load.stderr
    );
    assert!(!p.path(".weir").exists(), "nothing was written");
}

/// The quickstart on Azure Blob Storage (Azurite, the emulator) runs, reads back the values of
/// a local run, and a second run is a no-op.
#[test]
fn quickstart_on_azurite_matches_the_local_store() {
    let Some(azurite) = crate::common::servers::Azurite::start("lake") else {
        assert!(
            std::env::var_os("CI").is_none(),
            "Azurite is missing in CI: .ci/run installs it (npm install -g azurite @azure/storage-blob)"
        );
        eprintln!("skipped: Azurite is not installed (npm install -g azurite @azure/storage-blob)");
        return;
    };
    let env = azurite.env();
    let store = "az://lake/weir";
    let p = Project::example("quickstart");
    p.weir(&["run", "pipeline.rhai"]).ok();
    let cold = p
        .weir_env(&["run", "pipeline.rhai", "--store", store], &env)
        .ok();
    assert!(cold.stdout.contains("6 ran"), "{}", cold.text());
    let query = "SELECT customer_id, total FROM marts.top_customers ORDER BY customer_id";
    assert_eq!(
        rows(&p, &env, &["--store", store], query),
        rows(&p, &[], &[], query)
    );
    let noop = p
        .weir_env(&["run", "pipeline.rhai", "--store", store], &env)
        .ok();
    assert!(noop.stdout.contains("0 ran, 6 cached"), "{}", noop.text());

    // Its tables are Delta tables there too, read by delta-rs and Polars through the emulator.
    let out = p
        .weir_env(
            &[
                "sql",
                "SELECT * FROM marts.top_customers",
                "-f",
                "json",
                "--store",
                store,
            ],
            &env,
        )
        .ok();
    let options = crate::common::delta::storage_options(&env);
    let table = crate::common::delta::Expected {
        table: "marts.top_customers".into(),
        location: format!("{store}/default/tables/marts/top_customers"),
        version: None,
        rows: serde_json::from_str(&out.stdout).unwrap(),
        storage_options: Some(options),
    };
    if let Some(read) = crate::common::delta::read_with(p.dir.path(), &[table], &env) {
        assert_eq!(read.matches(": ok 3 rows").count(), 2, "{read}");
    }
}

/// A query that stops, here on a source that stops answering in the middle of a read, is
/// cancelled after a window in which weir used no CPU, and run once more; when it stops again
/// the task fails by name, and the stage committed before stays.
#[test]
fn a_query_that_stops_runs_once_more_then_fails_by_name() {
    let p = Project::new();
    write_parquet(&p.path("served/events.parquet"), 1000);
    let script =
        |url: &str| format!("let raw = stage(\"raw\");\nraw.load(\"events\", \"{url}\");\n");
    let env = [("WEIR_STALL_SECS", "1".to_string())];
    let total = "SELECT count(*), sum(id) FROM raw.events";

    let once = Http::stalling(&p.path("served"), 1);
    p.file("pipeline.rhai", &script(&once.url("events.parquet")));
    let run = p.weir_env(&["run", "pipeline.rhai"], &env).ok();
    assert!(
        run.text().contains(
            "events's query stopped: no progress and no CPU for 1.00 s; running it once more"
        ),
        "{}",
        run.text()
    );
    assert_eq!(p.query(total), ["1000,500500"]);
    assert!(
        p.weir(&["log", "last"])
            .ok()
            .stdout
            .contains("running it once more"),
        "the run log keeps the retry"
    );

    let never = Http::stalling(&p.path("served"), usize::MAX);
    p.file("pipeline.rhai", &script(&never.url("events.parquet")));
    let failed = p.weir_env(&["run", "pipeline.rhai"], &env).fails_with(1);
    assert!(
        failed.text().contains(
            "raw.events: the query writing events stopped, and stopped again when run once more"
        ),
        "{}",
        failed.text()
    );
    assert!(
        failed.text().contains("WEIR_STALL_SECS"),
        "{}",
        failed.text()
    );
    assert_eq!(p.query(total), ["1000,500500"]);
}

/// An S3 endpoint that stops answering in the middle of a run (it takes requests and never
/// replies) fails that run after one request timeout: the requests after it (the run record,
/// the lock's release) fail at once, saying the store stopped answering.
#[test]
fn a_store_that_stops_answering_fails_the_run_after_one_timeout() {
    use std::io::{BufRead, BufReader};
    let s3 = S3::start();
    s3.bucket("lake");
    let p = Project::new();
    p.file(
        "weir.toml",
        "[store]\nurl = \"s3://lake/weir\"\n[store.options]\ntimeout = \"2s\"\n",
    )
    .file(
        "pipeline.rhai",
        r#"let s = stage("s");
s.sql("one", "SELECT 1 AS x");
fn slow(t) { let n = 0; for i in 0..param("spin", 1) { n += 1; } t }
s.materialize("slow", slow, [table("s.one")]);
"#,
    );
    let env = s3.env();
    p.weir_env(&["run", "pipeline.rhai"], &env).ok();
    let mut cmd = p.command(&["run", "pipeline.rhai", "-p", "spin=3000000"]);
    for (k, v) in &env {
        cmd.env(k, v);
    }
    let mut child = cmd
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut stderr = BufReader::new(child.stderr.take().unwrap());
    let mut seen = String::new();
    let mut line = String::new();
    while stderr.read_line(&mut line).unwrap_or(0) > 0 {
        seen.push_str(&line);
        if line.contains("start   s.slow") {
            s3.fall_silent();
        }
        line.clear();
    }
    let out = child.wait_with_output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let text = format!("{stdout}\n{seen}");
    assert_ne!(out.status.code(), Some(0), "{text}");
    assert!(text.contains("the store stopped answering"), "{text}");
    assert!(!text.contains("panicked"), "{text}");
}

/// `--store ../x` names a folder beside the one weir runs in, as any relative path does.
#[test]
fn a_store_folder_above_the_current_one_works() {
    let p = Project::standard();
    std::fs::create_dir_all(p.path("sub")).unwrap();
    std::fs::rename(p.path("pipeline.rhai"), p.path("sub/pipeline.rhai")).unwrap();
    std::fs::rename(p.path("data"), p.path("sub/data")).unwrap();
    let out = p
        .command(&["run", "pipeline.rhai", "--store", "../kept"])
        .current_dir(p.path("sub"))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(p.path("kept/default/manifests/prep.json").exists());
}
