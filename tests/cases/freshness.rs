//! Freshness functions in `cache` closures: a task re-runs when the token its closure returns
//! changes, and only then.

use crate::common::servers::Http;
use crate::common::{Project, set};

fn pipeline(token: &str) -> String {
    format!(
        r#"
let s = stage("s");
s.sql("pinned", "SELECT 1 AS x", #{{ cache: || {token} }});
s.sql("other", "SELECT 2 AS y");
"#
    )
}

/// `file_hash` follows the content: rewriting the same bytes re-runs nothing, new bytes re-run
/// the task that names the file and nothing else.
#[test]
fn file_hash_follows_the_content() {
    let p = Project::new();
    p.file("rates.txt", "1.25\n");
    p.file("pipeline.rhai", &pipeline("file_hash(\"rates.txt\")"));
    p.run(&[]).ok();
    p.file("rates.txt", "1.25\n");
    p.run(&[]).ok();
    assert!(p.ran().is_empty(), "{:?}", p.ran());
    p.file("rates.txt", "1.30\n");
    p.run(&[]).ok();
    assert_eq!(p.ran(), set(&["s.pinned"]));
}

/// `file_mtime` follows the modification time; `today()` and `now_hour()` give stable tokens
/// within their period, and a task keyed by them is not volatile.
#[test]
fn file_mtime_and_clocks_are_tokens() {
    let p = Project::new();
    p.file("marker", "x");
    p.file(
        "pipeline.rhai",
        &pipeline("file_mtime(\"marker\") + today() + now_hour()"),
    );
    p.run(&[]).ok();
    p.run(&[]).ok();
    assert!(p.ran().is_empty(), "{:?}", p.ran());
    let later = std::time::SystemTime::now() + std::time::Duration::from_secs(60);
    std::fs::File::options()
        .write(true)
        .open(p.path("marker"))
        .and_then(|f| f.set_modified(later))
        .expect("set mtime");
    p.run(&[]).ok();
    assert_eq!(p.ran(), set(&["s.pinned"]));
    let status = p.weir(&["status"]).ok().stdout;
    assert!(!status.contains("volatile"), "{status}");
}

/// `http_etag` and `http_last_modified` ask the server with one HEAD request: a file that
/// changed on the server re-runs the task.
#[test]
fn http_tokens_follow_the_server() {
    let p = Project::new();
    p.file("served/prices.csv", "a\n1\n");
    let http = Http::start(&p.path("served"));
    let url = http.url("prices.csv");
    p.file(
        "pipeline.rhai",
        &pipeline(&format!(
            "http_etag(\"{url}\") + http_last_modified(\"{url}\")"
        )),
    );
    p.run(&[]).ok();
    p.run(&[]).ok();
    assert!(p.ran().is_empty(), "{:?}", p.ran());
    p.file("served/prices.csv", "a\n1\n2\n");
    p.run(&[]).ok();
    assert_eq!(p.ran(), set(&["s.pinned"]));

    p.file(
        "pipeline.rhai",
        &pipeline(&format!("http_etag(\"{}\")", http.url("missing.csv"))),
    );
    let run = p.run(&[]).fails_with(2);
    assert!(run.stderr.contains("missing.csv"), "{}", run.text());
}

/// Freshness functions read only the project's files and URLs.
#[test]
fn freshness_functions_stay_in_the_project() {
    let p = Project::new();
    for (token, message) in [
        ("file_hash(\"../outside.txt\")", "is outside the project"),
        ("file_mtime(\"/etc/passwd\")", "is outside the project"),
        ("http_etag(\"file:///etc/passwd\")", "takes a URL"),
        ("file_hash(\"nope.txt\")", "cannot read it"),
    ] {
        p.file("pipeline.rhai", &pipeline(token));
        let run = p.run(&[]).fails_with(2);
        assert!(run.stderr.contains(message), "{token}: {}", run.text());
    }
}
