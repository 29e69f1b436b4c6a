//! What the page may do with `--allow-run`: start a run (stale tasks, a selection, forced) and
//! clear tasks, each under the instance lock as the CLI takes it, with the instance's hooks
//! told how a run ended. A run started here is followed like any other (`events.rs`).

use std::sync::Arc;
use std::time::Duration;

use axum::Json;
use axum::extract::{Query, State};
use axum::http::StatusCode;
use serde::Deserialize;
use serde_json::json;
use tokio_util::sync::CancellationToken;

use super::reply::{ApiError, Reply, json};
use super::{App, Params};
use crate::flow::select::Selection;
use crate::report::Verbosity;
use crate::session::hooks::Ended;
use crate::session::{self, RunOptions};

/// A clear waits this long for a run to release the lock, then says the instance is busy.
const CLEAR_WAIT: Duration = Duration::from_secs(5);

#[derive(Deserialize, Default)]
pub(super) struct RunAsk {
    #[serde(default)]
    select: Vec<String>,
    #[serde(default)]
    force: bool,
}

fn allowed(app: &App) -> Result<(), ApiError> {
    match app.allow_run {
        true => Ok(()),
        false => Err(ApiError::new(
            StatusCode::FORBIDDEN,
            "this server does not run or clear tasks",
            "start it with weir serve --allow-run",
        )),
    }
}

pub(super) async fn run(
    State(app): State<Arc<App>>,
    Query(q): Query<Params>,
    Json(ask): Json<RunAsk>,
) -> Reply {
    allowed(&app)?;
    let loaded = app.load(q.instance.as_deref())?;
    let selection = Selection::new(ask.select, Vec::new());
    // A bad selector is the request's mistake: say so now, not in a run nobody watches.
    crate::flow::select::select(&crate::flow::Flow::build(&loaded.script)?, &selection)?;
    let mut action = app.action.lock().await;
    let busy = action.as_ref().is_some_and(|h| !h.is_finished());
    if busy || loaded.store.running().await?.is_some() {
        return Err(ApiError::new(
            StatusCode::CONFLICT,
            "a run holds the instance lock",
            "wait for it to end; the page shows it as it goes",
        ));
    }
    let opts = RunOptions {
        selection,
        force: ask.force,
        verbosity: Verbosity::Quiet,
        ..RunOptions::default()
    };
    // On a thread and runtime of its own, as the REPL runs: the run's future borrows what it
    // runs, and the server's requests go on beside it.
    let runner = std::thread::Builder::new()
        .name("weir-serve-run".into())
        .spawn(move || run_here(loaded, opts))
        .map_err(|e| ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, e.to_string(), ""))?;
    *action = Some(runner);
    Ok(json(json!({ "started": true })))
}

fn run_here(loaded: session::Loaded, opts: RunOptions) {
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            crate::report::note(&format!("weir serve: cannot start a run: {e}"));
            return;
        }
    };
    runtime.block_on(async {
        let cancel = CancellationToken::new();
        let ended = session::run(&loaded, &opts, &cancel).await;
        let problem = match &ended {
            Ok(report) => session::hooks::after_run(&loaded, Ended::Ran(report)).await,
            Err(e) => session::hooks::after_run(&loaded, Ended::Refused(e)).await,
        };
        if let Some(problem) = problem {
            crate::report::note(&format!("warning: {problem}"));
        }
        if let Err(e) = ended {
            crate::report::note(&format!("weir serve: the run did not start: {e}"));
        }
    });
}

#[derive(Deserialize)]
pub(super) struct ClearAsk {
    task: String,
    #[serde(default)]
    downstream: bool,
}

pub(super) async fn clear(
    State(app): State<Arc<App>>,
    Query(q): Query<Params>,
    Json(ask): Json<ClearAsk>,
) -> Reply {
    allowed(&app)?;
    let loaded = app.load(q.instance.as_deref())?;
    let selection = Selection::new(vec![ask.task], Vec::new());
    let cleared = session::clear(
        &loaded,
        &selection,
        ask.downstream,
        None,
        CLEAR_WAIT,
        |_| {},
    )
    .await?;
    Ok(json(json!({ "cleared": cleared })))
}
