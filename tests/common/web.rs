//! `weir serve` under test: the real binary serving a project on a free port, an HTTP client
//! for its API, and a headless Chromium driven over WebDriver (Debian's `chromium` and
//! `chromium-driver`, installed by `.ci/run`) whose screenshots are kept as test artifacts.

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use serde_json::Value;

use super::Project;

/// A running `weir serve`, stopped when dropped.
pub struct Served {
    child: Child,
    /// `http://127.0.0.1:PORT`, without a trailing slash.
    pub base: String,
}

impl Drop for Served {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Project {
    /// `weir serve --port 0` with `args`, once it has printed its address.
    pub fn serve(&self, args: &[&str]) -> Served {
        let mut cmd = self.command(&["serve", "--port", "0"]);
        cmd.args(args);
        Served::spawn(cmd)
    }
}

impl Served {
    /// Starts `cmd` (a `weir serve`) and waits for the address it prints.
    pub fn spawn(mut cmd: std::process::Command) -> Served {
        cmd.stdout(Stdio::piped()).stderr(Stdio::inherit());
        let mut child = cmd.spawn().expect("start weir serve");
        let stdout = child.stdout.take().expect("stdout");
        let mut line = String::new();
        BufReader::new(stdout)
            .read_line(&mut line)
            .expect("read weir serve's address");
        let base = line
            .split_whitespace()
            .find(|w| w.starts_with("http://"))
            .unwrap_or_else(|| panic!("no address in {line:?}"))
            .trim_end_matches('/')
            .to_string();
        Served { child, base }
    }
}

impl Project {
    /// task -> its state as `weir status` prints it (`fresh`, `stale`, `never built`, ...).
    pub fn states(&self) -> std::collections::BTreeMap<String, String> {
        let out = self.weir(&["status", "pipeline.rhai"]).ok().stdout;
        out.lines()
            .filter_map(|l| {
                let (task, rest) = l.trim().split_once(char::is_whitespace)?;
                let rest = rest.trim_start();
                let word = match rest.starts_with("never built") {
                    true => "never built",
                    false => rest.split_whitespace().next()?,
                };
                Some((task.to_string(), word.to_string()))
            })
            .collect()
    }

    /// How many run records the instance has.
    pub fn runs_recorded(&self) -> usize {
        std::fs::read_dir(self.instance_dir().join("runs"))
            .map(|d| {
                d.filter_map(Result::ok)
                    .filter(|e| e.file_name().to_string_lossy().ends_with(".json"))
                    .count()
            })
            .unwrap_or(0)
    }
}

/// What a request got back.
pub struct Reply {
    pub status: u16,
    pub headers: hyper::HeaderMap,
    pub body: String,
}

impl Reply {
    #[track_caller]
    pub fn json(&self) -> Value {
        serde_json::from_str(&self.body).unwrap_or_else(|e| panic!("not JSON ({e}): {}", self.body))
    }
}

/// Requests to a served page, with the headers a test chooses.
pub struct Http {
    client: Client<HttpConnector, Full<Bytes>>,
    runtime: tokio::runtime::Runtime,
}

impl Http {
    pub fn new() -> Self {
        Self {
            client: Client::builder(TokioExecutor::new()).build_http(),
            runtime: tokio::runtime::Runtime::new().expect("tokio"),
        }
    }

    pub fn get(&self, url: &str) -> Reply {
        self.send("GET", url, &[], None)
    }

    /// A POST of `body` to `path` as the page sends it: with the CSRF token from `/api/meta`.
    pub fn post(&self, served: &Served, path: &str, body: &Value) -> Reply {
        let meta = self.get(&format!("{}/api/meta", served.base)).json();
        let csrf = meta["csrf"].as_str().expect("a CSRF token in /api/meta");
        let url = format!("{}{path}", served.base);
        self.send("POST", &url, &[("x-weir-csrf", csrf)], Some(body))
    }

    pub fn send(
        &self,
        method: &str,
        url: &str,
        headers: &[(&str, &str)],
        body: Option<&Value>,
    ) -> Reply {
        let mut request = hyper::Request::builder().method(method).uri(url);
        for (k, v) in headers {
            request = request.header(*k, *v);
        }
        let bytes = match body {
            Some(b) => {
                request = request.header("content-type", "application/json");
                Bytes::from(b.to_string())
            }
            None => Bytes::new(),
        };
        let request = request.body(Full::new(bytes)).expect("request");
        self.runtime.block_on(async {
            let response = self.client.request(request).await.expect("request sent");
            let status = response.status().as_u16();
            let headers = response.headers().clone();
            let body = response
                .into_body()
                .collect()
                .await
                .expect("body")
                .to_bytes();
            Reply {
                status,
                headers,
                body: String::from_utf8_lossy(&body).into_owned(),
            }
        })
    }

    /// The first `n` events of the stream at `url`, or those that came within `wait`.
    pub fn events(&self, url: &str, n: usize, wait: Duration) -> Vec<String> {
        let request = hyper::Request::get(url)
            .body(Full::new(Bytes::new()))
            .expect("request");
        self.runtime.block_on(async {
            let mut events = Vec::new();
            let Ok(response) = self.client.request(request).await else {
                return events;
            };
            let mut body = response.into_body();
            let mut pending = String::new();
            let deadline = tokio::time::Instant::now() + wait;
            while events.len() < n {
                let Ok(Some(Ok(frame))) = tokio::time::timeout_at(deadline, body.frame()).await
                else {
                    break;
                };
                if let Ok(data) = frame.into_data() {
                    pending.push_str(&String::from_utf8_lossy(&data));
                }
                while let Some(end) = pending.find("\n\n") {
                    let event: String = pending.drain(..end + 2).collect();
                    if event.lines().any(|l| l.starts_with("data:")) {
                        events.push(event.trim().to_string());
                    }
                }
            }
            events
        })
    }
}

/// A headless Chromium under chromedriver, on a port of its own.
pub struct Browser {
    pub client: fantoccini::Client,
    pub runtime: tokio::runtime::Runtime,
    driver: Child,
}

impl Drop for Browser {
    fn drop(&mut self) {
        let client = self.client.clone();
        let _ = self.runtime.block_on(client.close());
        let _ = self.driver.kill();
        let _ = self.driver.wait();
    }
}

impl Browser {
    pub fn start() -> Self {
        let chromium = ["/usr/bin/chromium", "/usr/bin/chromium-browser"]
            .into_iter()
            .find(|p| std::path::Path::new(p).exists())
            .expect("Chromium is needed for the browser tests: apt-get install chromium chromium-driver (.ci/run does)");
        let port = free_port();
        let driver = std::process::Command::new("chromedriver")
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("chromedriver is needed for the browser tests: apt-get install chromium-driver (.ci/run does)");
        let runtime = tokio::runtime::Runtime::new().expect("tokio");
        let mut caps = serde_json::Map::new();
        caps.insert(
            "goog:chromeOptions".into(),
            serde_json::json!({
                "binary": chromium,
                "args": ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--window-size=1280,900"],
            }),
        );
        let url = format!("http://127.0.0.1:{port}");
        let started = Instant::now();
        let client = loop {
            let connect = runtime.block_on(
                fantoccini::ClientBuilder::new(HttpConnector::new())
                    .capabilities(caps.clone())
                    .connect(&url),
            );
            match connect {
                Ok(c) => break c,
                Err(e) if started.elapsed() > Duration::from_secs(30) => {
                    panic!("could not start a Chromium session: {e}")
                }
                Err(_) => std::thread::sleep(Duration::from_millis(200)),
            }
        };
        Self {
            client,
            runtime,
            driver,
        }
    }

    pub fn block<T>(&self, f: impl std::future::Future<Output = T>) -> T {
        self.runtime.block_on(f)
    }

    pub fn goto(&self, url: &str) {
        self.block(self.client.goto(url)).expect("navigate");
    }

    /// The element `css` once it is there (at most 10 s).
    #[track_caller]
    pub fn find(&self, css: &str) -> fantoccini::elements::Element {
        let wait = self
            .client
            .wait()
            .at_most(Duration::from_secs(10))
            .for_element(fantoccini::Locator::Css(css));
        self.block(wait)
            .unwrap_or_else(|e| panic!("no {css} on the page: {e}"))
    }

    /// Runs `script` in the page and returns what it returned.
    pub fn eval(&self, script: &str) -> Value {
        self.block(self.client.execute(script, Vec::new()))
            .expect("script runs")
    }

    /// Polls `script` until it returns true, for at most `within`; false if it never did.
    pub fn until(&self, script: &str, within: Duration) -> bool {
        let started = Instant::now();
        while started.elapsed() < within {
            if self.eval(script) == Value::Bool(true) {
                return true;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        false
    }

    /// A PNG of the page, kept as `screenshots/<name>.png` under the test target folder.
    pub fn screenshot(&self, name: &str) -> PathBuf {
        let png = self.block(self.client.screenshot()).expect("screenshot");
        let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("screenshots");
        std::fs::create_dir_all(&dir).expect("screenshot folder");
        let path = dir.join(format!("{name}.png"));
        std::fs::write(&path, png).expect("write screenshot");
        eprintln!("screenshot: {}", path.display());
        path
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}
