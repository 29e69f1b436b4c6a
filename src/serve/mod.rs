//! `weir serve`: the pipeline as a web page served by the binary, with no other install. The
//! page (`assets/`, embedded) reads a JSON API (the book's `serve.md`) built from the calls the CLI
//! makes: the flow and its statuses, a task's why, runs, the catalog and SQL over committed
//! tables, and, with `--allow-run`, the run and clear actions under the instance lock.
//!
//! Every request loads the script and reads the store afresh, as a CLI command would, so the
//! page is never staler than the store; a run in another process is followed through the
//! event log it writes while it runs (`events.rs`).

mod actions;
mod api;
mod auth;
mod events;
mod reply;
mod runs;
mod sql;

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

use axum::Router;
use axum::http::header;
use axum::response::IntoResponse;
use axum::routing::{get, post};
use tokio::sync::Mutex;

use crate::session::{Loaded, Target};
use crate::{Error, Result};

pub use reply::ApiError;

/// How `weir serve` was asked to serve.
pub struct Options {
    /// The script, its parameters and store; `instance` is the default the page opens on.
    pub target: Target,
    pub bind: IpAddr,
    /// 0: any free port (the address is printed).
    pub port: u16,
    /// Required on any address other than loopback.
    pub token: Option<String>,
    /// The page may start runs and clear tasks.
    pub allow_run: bool,
}

/// The query of most GETs: which instance, and for the flow which tasks.
#[derive(serde::Deserialize, Default)]
pub(crate) struct Params {
    pub instance: Option<String>,
    pub select: Option<String>,
}

/// What every request shares.
pub(crate) struct App {
    target: Target,
    token: Option<String>,
    /// Sent by the page with every POST: a form on another site cannot know it.
    csrf: String,
    allow_run: bool,
    /// The host names requests may carry (a DNS rebinding page names its own).
    hosts: Vec<String>,
    /// A run started from the page, while it runs.
    action: Mutex<Option<std::thread::JoinHandle<()>>>,
    /// The flow's drawing, laid out once for as long as its shape stays the same.
    layouts: crate::report::Layouts,
}

impl App {
    /// The pipeline as the instance `instance` (the default one when `None`) sees it.
    fn load(&self, instance: Option<&str>) -> Result<Loaded> {
        let mut target = self.target.clone();
        if let Some(name) = instance.filter(|n| !n.is_empty()) {
            target.instance = Some(name.to_string());
        }
        target.load()
    }
}

/// Bind, print the address, and serve until Ctrl-C. `ready` is told the address bound.
pub async fn serve(opts: Options, ready: impl FnOnce(SocketAddr)) -> Result<()> {
    if !opts.bind.is_loopback() && opts.token.as_deref().is_none_or(str::is_empty) {
        return Err(Error::usage(
            format!(
                "refusing to serve on {} without a token: anyone who can reach it could read every table",
                opts.bind
            ),
            "give --token T (or WEIR_SERVE_TOKEN), and open the page with ?token=T; or bind to 127.0.0.1",
        ));
    }
    // The script must load now: a typo is a diagnostic here, not a blank page.
    opts.target.load()?;
    let listener = tokio::net::TcpListener::bind((opts.bind, opts.port))
        .await
        .map_err(|e| {
            Error::usage(
                format!("cannot listen on {}:{}: {e}", opts.bind, opts.port),
                "choose another --port (0 takes any free one)",
            )
        })?;
    let addr = listener.local_addr()?;
    let app = Arc::new(App {
        hosts: auth::allowed_hosts(opts.bind, addr.port()),
        target: opts.target,
        token: opts.token.filter(|t| !t.is_empty()),
        csrf: auth::random_token(),
        allow_run: opts.allow_run,
        action: Mutex::new(None),
        layouts: Default::default(),
    });
    // Laid out before the first page asks: a large flow takes a second.
    let warm = app.clone();
    tokio::spawn(async move {
        let _ = reply::off_thread(move || api::flow_view(warm, Params::default())).await;
    });
    ready(addr);
    let router = router(app);
    axum::serve(listener, router)
        .with_graceful_shutdown(async {
            let _ = tokio::signal::ctrl_c().await;
        })
        .await?;
    Ok(())
}

fn router(app: Arc<App>) -> Router {
    Router::new()
        .route("/", get(index))
        .route(
            "/assets/app.js",
            get(|| async { asset("text/javascript; charset=utf-8", APP_JS) }),
        )
        .route(
            "/assets/app.css",
            get(|| async { asset("text/css; charset=utf-8", APP_CSS) }),
        )
        .route("/api/meta", get(api::meta))
        .route("/api/flow", get(api::flow))
        .route("/api/task/{id}", get(api::task))
        .route("/api/catalog", get(api::catalog))
        .route("/api/runs", get(runs::list))
        .route("/api/runs/{id}", get(runs::one))
        .route("/api/compare", get(runs::compare))
        .route("/api/sql", post(sql::query))
        .route("/api/sql.csv", get(sql::csv))
        .route("/api/events", get(events::stream))
        .route("/api/actions/run", post(actions::run))
        .route("/api/actions/clear", post(actions::clear))
        .layer(axum::middleware::from_fn_with_state(
            app.clone(),
            auth::check,
        ))
        .with_state(app)
}

const INDEX: &str = include_str!("assets/index.html");
const APP_JS: &str = include_str!("assets/app.js");
const APP_CSS: &str = include_str!("assets/app.css");

/// The page may not be framed by another site (clickjacking the actions).
const NO_FRAMES: (header::HeaderName, &str) = (header::X_FRAME_OPTIONS, "DENY");

async fn index() -> impl IntoResponse {
    (
        [
            (header::CONTENT_TYPE, "text/html; charset=utf-8"),
            NO_FRAMES,
        ],
        INDEX,
    )
}

/// One of the page's files, as the type it is.
fn asset(content_type: &'static str, body: &'static str) -> impl IntoResponse {
    ([(header::CONTENT_TYPE, content_type)], body)
}
