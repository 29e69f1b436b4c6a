//! `[hooks]`: `on_success` and `on_failure` run after `weir run` with the run's record on
//! stdin, as a webhook posts it; a hook's failure is reported but never changes the exit code.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::sync::{Arc, Mutex};

use crate::common::Project;

/// A webhook receiver on loopback: it keeps the path and body of every POST.
struct Webhook {
    port: u16,
    posts: Arc<Mutex<Vec<(String, String)>>>,
}

impl Webhook {
    fn start() -> Webhook {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let posts = Arc::new(Mutex::new(Vec::new()));
        let kept = posts.clone();
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(mut stream) = stream else { continue };
                if let Some(post) = read_post(&mut stream) {
                    kept.lock().unwrap().push(post);
                }
                let _ = stream.write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok");
            }
        });
        Webhook { port, posts }
    }

    fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}/{path}", self.port)
    }

    /// The posts so far, waiting a little for one in flight.
    fn posts(&self) -> Vec<(String, String)> {
        self.posts.lock().unwrap().clone()
    }
}

fn read_post(stream: &mut std::net::TcpStream) -> Option<(String, String)> {
    let mut reader = BufReader::new(stream);
    let mut line = String::new();
    reader.read_line(&mut line).ok()?;
    let path = line.split_whitespace().nth(1)?.to_string();
    let mut length = 0;
    loop {
        let mut header = String::new();
        reader.read_line(&mut header).ok()?;
        if header.trim().is_empty() {
            break;
        }
        if let Some((k, v)) = header.split_once(':')
            && k.eq_ignore_ascii_case("content-length")
        {
            length = v.trim().parse().ok()?;
        }
    }
    let mut body = vec![0; length];
    reader.read_exact(&mut body).ok()?;
    Some((path, String::from_utf8_lossy(&body).into_owned()))
}

/// A pipeline with one task that fails when `fail` is set.
fn project(config: &str) -> Project {
    let p = Project::new();
    p.file(
        "pipeline.rhai",
        "let s = stage(\"s\");\n\
         s.sql(\"n\", `SELECT 1 AS n`);\n\
         if param(\"fail\", false) { s.sql(\"bad\", `SELECT CAST('x' AS INT) AS n`); }\n",
    )
    .file("weir.toml", config);
    p
}

fn post_to(hook: &Webhook, path: &str) -> String {
    format!(
        "curl -sS --max-time 10 -X POST -H 'Content-Type: application/json' --data-binary @- {}",
        hook.url(path)
    )
}

/// A run that succeeds posts its record to `on_success`; one that fails posts to
/// `on_failure` and still exits 1; the hook sees the run in its environment.
#[test]
fn hooks_post_the_run_record_after_a_run() {
    let hook = Webhook::start();
    let config = format!(
        "[hooks]\non_success = \"env | grep ^WEIR_ | sort > hook.env; {}\"\non_failure = \"{}\"\n",
        post_to(&hook, "ok"),
        post_to(&hook, "failed")
    );
    let p = project(&config);
    p.run(&[]).ok();
    let posts = hook.posts();
    assert_eq!(posts.len(), 1, "{posts:?}");
    assert_eq!(posts[0].0, "/ok");
    let posted: serde_json::Value = serde_json::from_str(&posts[0].1).unwrap();
    let record = p.last_record();
    assert_eq!(posted["run_id"], record["run_id"]);
    assert_eq!(posted["ok"], true);
    assert_eq!(posted["tasks"][0]["task"], "s.n");
    let env = p.read("hook.env");
    let run_id = record["run_id"].as_str().unwrap();
    for line in [
        format!("WEIR_RUN_ID={run_id}"),
        "WEIR_STATUS=ok".into(),
        "WEIR_INSTANCE=default".into(),
        "WEIR_FAILED_TASKS=0".into(),
    ] {
        assert!(env.lines().any(|l| l == line), "{line} in\n{env}");
    }

    let failed = p.run(&["-p", "fail=true"]).fails_with(1);
    let posts = hook.posts();
    assert_eq!(posts.len(), 2, "{posts:?}\n{}", failed.text());
    assert_eq!(posts[1].0, "/failed");
    let posted: serde_json::Value = serde_json::from_str(&posts[1].1).unwrap();
    assert_eq!(posted["ok"], false);
    assert_eq!(posted["run_id"], p.last_record()["run_id"]);
}

/// A hook that fails, or runs past its timeout, is reported on stderr; the run's exit code
/// stays its own, and a hook stopped at its timeout does not hold the run.
#[test]
fn a_failing_or_hung_hook_is_reported_but_does_not_change_the_exit_code() {
    let p = project("[hooks]\non_success = \"echo posting; exit 3\"\n");
    let run = p.run(&[]).ok();
    assert!(
        run.stderr
            .contains("warning: the on_success hook failed: exit status: 3")
            && run.stderr.contains("posting"),
        "{}",
        run.text()
    );
    assert!(
        !run.stdout.contains("posting"),
        "a hook's output is not the summary"
    );

    let p = project("[hooks]\non_failure = \"sleep 30; touch late\"\ntimeout = \"1s\"\n");
    let started = std::time::Instant::now();
    let run = p.run(&["-p", "fail=true"]).fails_with(1);
    assert!(
        run.stderr
            .contains("warning: the on_failure hook did not finish within 1.00 s and was stopped"),
        "{}",
        run.text()
    );
    assert!(started.elapsed() < std::time::Duration::from_secs(20));
    std::thread::sleep(std::time::Duration::from_millis(200));
    assert!(
        !p.path("late").exists(),
        "the hook's process group was stopped"
    );
}

/// An instance's hooks replace the project's, hook by hook.
#[test]
fn an_instance_has_its_own_hooks() {
    let p = project(
        "[hooks]\non_success = \"echo project > which\"\n\
         [instances.default]\n\
         [instances.prod.hooks]\non_success = \"echo prod > which\"\n",
    );
    p.run(&[]).ok();
    assert_eq!(p.read("which").trim(), "project");
    p.run(&["--instance", "prod"]).ok();
    assert_eq!(p.read("which").trim(), "prod");
}

/// Malformed hooks fail before anything runs, at their line of weir.toml.
#[test]
fn malformed_hooks_are_refused() {
    for (config, message) in [
        (
            "[hooks]\non_sucess = \"true\"\n",
            "unknown field `on_sucess`",
        ),
        (
            "[hooks]\non_success = \"  \"\n",
            "a hook's command is empty",
        ),
        ("[hooks]\ntimeout = \"forever\"\n", "is not a hook timeout"),
        ("[hooks]\ntimeout = \"2h\"\n", "is not a hook timeout"),
    ] {
        let p = project(config);
        let bad = p.run(&[]).fails_with(2);
        assert!(
            bad.stderr.contains(message) && bad.stderr.contains("weir.toml:"),
            "{config}: {}",
            bad.text()
        );
        assert!(p.manifest("s").is_none(), "nothing ran");
    }
}
