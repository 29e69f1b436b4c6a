//! Real servers the tests start on loopback, in this process: an S3-compatible store
//! (s3s-fs, objects as files under a temporary folder) and an HTTP file server with ETags.
//! Each runs on its own thread with its own tokio runtime and stops when dropped.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto::Builder as ConnBuilder;
use tokio::net::TcpListener;

pub const ACCESS_KEY: &str = "weir-test-access";
pub const SECRET_KEY: &str = "weir-test-secret-9f3k";

/// A running server: its address, and the runtime thread that serves it.
struct Running {
    addr: SocketAddr,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Drop for Running {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// Serve connections accepted on an ephemeral port with `serve` until dropped.
fn serve<F>(serve: F) -> Running
where
    F: Fn(tokio::net::TcpStream) + Send + 'static,
{
    let (addr_tx, addr_rx) = std::sync::mpsc::channel();
    let (stop_tx, mut stop_rx) = tokio::sync::oneshot::channel::<()>();
    let thread = std::thread::spawn(move || {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .expect("a runtime for the test server");
        runtime.block_on(async move {
            let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
            addr_tx
                .send(listener.local_addr().expect("addr"))
                .expect("send");
            loop {
                tokio::select! {
                    accepted = listener.accept() => {
                        if let Ok((socket, _)) = accepted {
                            serve(socket);
                        }
                    }
                    _ = &mut stop_rx => break,
                }
            }
        });
    });
    Running {
        addr: addr_rx.recv().expect("server address"),
        stop: Some(stop_tx),
        thread: Some(thread),
    }
}

/// An S3-compatible server (s3s-fs) whose buckets are folders under `root`. `fall_silent`
/// makes it stop answering: requests are taken and never replied to, as by a hung endpoint.
pub struct S3 {
    pub root: tempfile::TempDir,
    running: Running,
    silent: std::sync::Arc<std::sync::atomic::AtomicBool>,
}

impl S3 {
    /// A server that accepts only `ACCESS_KEY` / `SECRET_KEY`.
    pub fn start() -> S3 {
        let root = tempfile::tempdir().expect("s3 root");
        let fs = s3s_fs::FileSystem::new(root.path()).expect("s3s-fs");
        let mut builder = s3s::service::S3ServiceBuilder::new(fs);
        builder.set_auth(s3s::auth::SimpleAuth::from_single(ACCESS_KEY, SECRET_KEY));
        let service = builder.build();
        let silent = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let quiet = silent.clone();
        let running = serve(move |socket| {
            let (service, quiet) = (service.clone(), quiet.clone());
            tokio::spawn(async move {
                let answer = hyper::service::service_fn(move |req| {
                    let (service, quiet) = (service.clone(), quiet.clone());
                    async move {
                        if quiet.load(std::sync::atomic::Ordering::SeqCst) {
                            std::future::pending::<()>().await;
                        }
                        hyper::service::Service::call(&service, req).await
                    }
                });
                let conn = ConnBuilder::new(TokioExecutor::new());
                let _ = conn.serve_connection(TokioIo::new(socket), answer).await;
            });
        });
        S3 {
            root,
            running,
            silent,
        }
    }

    /// From now on, take requests and never answer them.
    pub fn fall_silent(&self) {
        self.silent.store(true, std::sync::atomic::Ordering::SeqCst);
    }

    pub fn endpoint(&self) -> String {
        format!("http://{}", self.running.addr)
    }

    /// A new empty bucket.
    pub fn bucket(&self, name: &str) -> &Self {
        std::fs::create_dir_all(self.root.path().join(name)).expect("bucket");
        self
    }

    /// Put a file into a bucket directly (as another tool would have).
    pub fn put(&self, bucket: &str, key: &str, content: &[u8]) {
        let path = self.root.path().join(bucket).join(key);
        std::fs::create_dir_all(path.parent().expect("parent")).expect("mkdir");
        std::fs::write(path, content).expect("write object");
    }

    /// The objects of a bucket, as keys.
    pub fn keys(&self, bucket: &str) -> Vec<String> {
        let dir = self.root.path().join(bucket);
        let mut out = Vec::new();
        walk(&dir, &dir, &mut out);
        out.sort();
        out
    }

    /// The environment the AWS builder reads to reach this server.
    pub fn env(&self) -> Vec<(&'static str, String)> {
        vec![
            ("AWS_ENDPOINT_URL", self.endpoint()),
            ("AWS_ACCESS_KEY_ID", ACCESS_KEY.to_string()),
            ("AWS_SECRET_ACCESS_KEY", SECRET_KEY.to_string()),
            ("AWS_REGION", "us-east-1".to_string()),
            ("AWS_ALLOW_HTTP", "true".to_string()),
        ]
    }
}

fn walk(root: &Path, dir: &Path, out: &mut Vec<String>) {
    for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let path = entry.path();
        if path.is_dir() {
            walk(root, &path, out);
        } else if let Ok(rel) = path.strip_prefix(root) {
            let key = rel.to_string_lossy().to_string();
            // s3s-fs keeps its own metadata beside objects.
            if !key.contains(".s3s-fs") && !key.starts_with('.') {
                out.push(key);
            }
        }
    }
}

/// An HTTP server of the files under a folder, with ETag and Last-Modified headers (from the
/// file's size and modification time) and HEAD, as static file hosts send them. A file with a
/// `<name>.sig` beside it is served only to a URL whose query is `sig=<its content>`, as a
/// signed URL is. Every request is kept as `METHOD /path?query`.
pub struct Http {
    pub root: PathBuf,
    running: Running,
    requests: std::sync::Arc<std::sync::Mutex<Vec<String>>>,
}

impl Http {
    pub fn start(root: &Path) -> Http {
        Http::with_faults(root, 0, 0)
    }

    /// A server that never answers its first `reads` reads of Parquet column data: a source
    /// that stops answering in the middle of a query.
    pub fn stalling(root: &Path, reads: usize) -> Http {
        Http::with_faults(root, reads, 0)
    }

    /// A server that answers its first `gets` GET requests with 503 Service Unavailable (HEAD
    /// requests are answered): a source that is down for a while.
    pub fn flaky(root: &Path, gets: usize) -> Http {
        Http::with_faults(root, 0, gets)
    }

    fn with_faults(root: &Path, reads: usize, gets: usize) -> Http {
        let dir = root.to_path_buf();
        let stalls = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(reads));
        let failures = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(gets));
        let requests = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let log = requests.clone();
        let running = serve(move |socket| {
            let (dir, stalls, failures, log) =
                (dir.clone(), stalls.clone(), failures.clone(), log.clone());
            tokio::spawn(async move {
                let service = hyper::service::service_fn(move |req| {
                    let (dir, stalls, failures, log) =
                        (dir.clone(), stalls.clone(), failures.clone(), log.clone());
                    async move {
                        if let Ok(mut log) = log.lock() {
                            log.push(format!("{} {}", req.method(), req.uri()));
                        }
                        if reads_column_data(&req) && take_one(&stalls) {
                            std::future::pending::<()>().await;
                        }
                        if req.method() == hyper::Method::GET && take_one(&failures) {
                            let body = http_body_util::Full::new(bytes::Bytes::new());
                            let unavailable = hyper::Response::builder().status(503).body(body);
                            return Ok(unavailable.expect("response"));
                        }
                        Ok::<_, std::convert::Infallible>(respond(&dir, &req))
                    }
                });
                let conn = ConnBuilder::new(TokioExecutor::new());
                let _ = conn.serve_connection(TokioIo::new(socket), service).await;
            });
        });
        Http {
            root: root.to_path_buf(),
            running,
            requests,
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}/{path}", self.running.addr)
    }

    /// The requests served so far, as `METHOD /path?query`.
    pub fn requests(&self) -> Vec<String> {
        self.requests.lock().map(|r| r.clone()).unwrap_or_default()
    }
}

/// A read of a Parquet file's first column data, which starts after its 4-byte magic (its
/// footer is read from the end).
fn reads_column_data<B>(req: &hyper::Request<B>) -> bool {
    let range = req.headers().get("range").and_then(|r| r.to_str().ok());
    range.is_some_and(|r| r.starts_with("bytes=4-"))
}

/// Whether `left` was above zero, counting one down if so.
fn take_one(left: &std::sync::atomic::AtomicUsize) -> bool {
    use std::sync::atomic::Ordering;
    left.fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
        .is_ok()
}

fn respond<B>(
    dir: &Path,
    req: &hyper::Request<B>,
) -> hyper::Response<http_body_util::Full<bytes::Bytes>> {
    use http_body_util::Full;
    let rel = req.uri().path().trim_start_matches('/');
    let path = dir.join(rel);
    let not_found = || {
        hyper::Response::builder()
            .status(404)
            .body(Full::new(bytes::Bytes::new()))
            .expect("response")
    };
    if rel.contains("..") {
        return not_found();
    }
    let signature = std::fs::read_to_string(dir.join(format!("{rel}.sig"))).ok();
    if signature.is_some_and(|sig| req.uri().query() != Some(&format!("sig={}", sig.trim()))) {
        return hyper::Response::builder()
            .status(403)
            .body(Full::new(bytes::Bytes::new()))
            .expect("response");
    }
    let Some(meta) = std::fs::metadata(&path).ok().filter(|m| m.is_file()) else {
        return not_found();
    };
    let Ok(content) = std::fs::read(&path) else {
        return not_found();
    };
    let modified = meta
        .modified()
        .ok()
        .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
        .map_or(0, |d| d.as_secs());
    let etag = format!("\"{:x}-{:x}\"", meta.len(), modified);
    let last_modified = httpdate(modified);
    let total = content.len();
    let (status, body, range) = match req.headers().get("range").and_then(|r| r.to_str().ok()) {
        Some(range) => match byte_range(range, total) {
            Some((from, to)) => (
                206,
                content[from..to].to_vec(),
                Some(format!("bytes {from}-{}/{total}", to - 1)),
            ),
            None => (416, Vec::new(), Some(format!("bytes */{total}"))),
        },
        None => (200, content, None),
    };
    let len = body.len();
    let body = if req.method() == hyper::Method::HEAD {
        Vec::new()
    } else {
        body
    };
    let mut response = hyper::Response::builder();
    if let Some(range) = range {
        response = response.header("content-range", range);
    }
    response
        .status(status)
        .header("etag", etag)
        .header("last-modified", last_modified)
        .header("content-length", len)
        .header("accept-ranges", "bytes")
        .body(Full::new(bytes::Bytes::from(body)))
        .expect("response")
}

/// `bytes=a-b`, `bytes=a-`, `bytes=-n` as a half-open range of a `len`-byte file.
fn byte_range(header: &str, len: usize) -> Option<(usize, usize)> {
    let spec = header.strip_prefix("bytes=")?;
    let (a, b) = spec.split_once('-')?;
    let (from, to) = match (a.parse::<usize>().ok(), b.parse::<usize>().ok()) {
        (Some(a), Some(b)) => (a, b + 1),
        (Some(a), None) => (a, len),
        (None, Some(n)) => (len.saturating_sub(n), len),
        (None, None) => return None,
    };
    (from < to && to <= len).then_some((from, to))
}

/// An HTTP date (RFC 7231) for Unix seconds.
fn httpdate(secs: u64) -> String {
    chrono::DateTime::from_timestamp(secs as i64, 0)
        .unwrap_or_default()
        .format("%a, %d %b %Y %H:%M:%S GMT")
        .to_string()
}

/// Azurite, the Azure Storage emulator (its blob service), on an ephemeral port with a
/// container made: `None` when it is not installed (`npm install -g azurite
/// @azure/storage-blob`, which `.ci/run` does). Stopped when dropped.
pub struct Azurite {
    child: std::process::Child,
    pub port: u16,
    _dir: tempfile::TempDir,
}

impl Drop for Azurite {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The emulator's well-known development account key (public, in Azure's documentation).
const AZURITE_KEY: &str =
    "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw==";

impl Azurite {
    pub fn start(container: &str) -> Option<Azurite> {
        let dir = tempfile::tempdir().expect("azurite dir");
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("a free port")
            .port();
        let child = std::process::Command::new("azurite-blob")
            .args(["--blobHost", "127.0.0.1", "--blobPort", &port.to_string()])
            .args(["--silent", "--skipApiVersionCheck", "--loose", "--location"])
            .arg(dir.path())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .ok()?;
        let azurite = Azurite {
            child,
            port,
            _dir: dir,
        };
        let started = std::time::Instant::now();
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            if started.elapsed() > std::time::Duration::from_secs(30) {
                return None;
            }
            std::thread::sleep(std::time::Duration::from_millis(100));
        }
        azurite.create_container(container).then_some(azurite)
    }

    /// Through Azure's own JavaScript SDK: object_store makes no containers.
    fn create_container(&self, name: &str) -> bool {
        let root = std::process::Command::new("npm")
            .args(["root", "-g"])
            .output()
            .ok()
            .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
            .unwrap_or_default();
        let script = format!(
            "require('@azure/storage-blob').BlobServiceClient.fromConnectionString('{}')\
             .createContainer('{name}').then(() => process.exit(0), e => {{ console.error(e); process.exit(1); }})",
            self.connection_string()
        );
        std::process::Command::new("node")
            .args(["-e", &script])
            .env("NODE_PATH", root)
            .output()
            .is_ok_and(|o| o.status.success())
    }

    fn connection_string(&self) -> String {
        format!(
            "DefaultEndpointsProtocol=http;AccountName=devstoreaccount1;AccountKey={AZURITE_KEY};\
             BlobEndpoint=http://127.0.0.1:{}/devstoreaccount1;",
            self.port
        )
    }

    /// The environment the Azure builder reads to reach the emulator.
    pub fn env(&self) -> Vec<(&'static str, String)> {
        vec![
            ("AZURE_STORAGE_USE_EMULATOR", "true".to_string()),
            (
                "AZURITE_BLOB_STORAGE_URL",
                format!("http://127.0.0.1:{}", self.port),
            ),
        ]
    }
}
