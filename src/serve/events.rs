//! Following runs as they happen, wherever they were started: a run writes its event log to
//! the store while it runs (`session::live`), and each page's event stream polls the instance
//! lock for the run holding it and sends the lines of its log the page has not seen, then a
//! `refresh` when the run ends. Nothing is shared between the run and the server but the store.

use std::collections::BTreeSet;
use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::{Query, State};
use axum::response::sse::{Event, KeepAlive, Sse};
use futures::Stream;
use serde_json::Value;
use tokio::sync::mpsc;

use super::reply::ApiError;
use super::{App, Params};
use crate::store::Store;

/// How often the lock is read: with the run's own writes (every 150 ms), a task's end shows
/// on the page within ~300 ms.
const POLL: Duration = Duration::from_millis(150);
/// How often the newest run is listed, for runs too short to be seen holding the lock.
const LIST_EVERY: u32 = 7;

pub(super) async fn stream(
    State(app): State<Arc<App>>,
    Query(q): Query<Params>,
) -> Result<Sse<impl Stream<Item = Result<Event, Infallible>>>, ApiError> {
    let store = app.load(q.instance.as_deref())?.store;
    let (tx, rx) = mpsc::channel(256);
    tokio::spawn(follow(store, tx));
    let events =
        futures::stream::unfold(rx, |mut rx| async { rx.recv().await.map(|e| (Ok(e), rx)) });
    Ok(Sse::new(events).keep_alive(KeepAlive::default()))
}

/// Polls until the page goes away (the channel closes).
async fn follow(store: Store, tx: mpsc::Sender<Event>) {
    let mut newest = store
        .run_ids()
        .await
        .ok()
        .and_then(|ids| ids.into_iter().next());
    let mut current: Option<String> = None;
    let mut sent = 0;
    for tick in 0u32.. {
        tokio::time::sleep(POLL).await;
        // The page went away (its stream is dropped when a keep-alive cannot be written).
        if tx.is_closed() {
            return;
        }
        let running = store.running().await.ok().flatten();
        if running != current {
            if let Some(ended) = current.take() {
                // The rest of the log the run wrote as it ended.
                if !send_lines(&store, &ended, &mut sent, &tx).await || !refresh(&tx).await {
                    return;
                }
                newest = Some(ended);
            }
            current = running;
            sent = 0;
        }
        if let Some(run) = &current {
            if !send_lines(&store, run, &mut sent, &tx).await {
                return;
            }
            continue;
        }
        if tick % LIST_EVERY != 0 {
            continue;
        }
        // A run that began and ended between two polls: its whole log at once.
        let last = store
            .run_ids()
            .await
            .ok()
            .and_then(|ids| ids.into_iter().next());
        if last.is_some() && last != newest {
            let mut none = 0;
            if let Some(run) = &last
                && (!send_lines(&store, run, &mut none, &tx).await || !refresh(&tx).await)
            {
                return;
            }
            newest = last;
        }
    }
}

/// Sends the lines of `run`'s log after the first `sent`; false once the page is gone.
async fn send_lines(store: &Store, run: &str, sent: &mut usize, tx: &mpsc::Sender<Event>) -> bool {
    let Ok(Some(text)) = store.read_run_log(run).await else {
        return !tx.is_closed();
    };
    let lines: Vec<&str> = text.lines().filter(|l| !l.is_empty()).collect();
    for line in lines.iter().skip(*sent) {
        if tx.send(Event::default().data(*line)).await.is_err() {
            return false;
        }
    }
    *sent = (*sent).max(lines.len());
    true
}

async fn refresh(tx: &mpsc::Sender<Event>) -> bool {
    tx.send(Event::default().event("refresh").data("{}"))
        .await
        .is_ok()
}

/// The tasks the run holding the lock has started and not finished.
pub(super) async fn running_tasks(store: &Store) -> crate::Result<BTreeSet<String>> {
    let Some(run) = store.running().await? else {
        return Ok(BTreeSet::new());
    };
    let text = store.read_run_log(&run).await?.unwrap_or_default();
    let mut running = BTreeSet::new();
    for line in text.lines() {
        let Ok(event) = serde_json::from_str::<Value>(line) else {
            continue;
        };
        let Some(task) = event["task"].as_str() else {
            continue;
        };
        match event["event"].as_str() {
            Some("task_started") => running.insert(task.to_string()),
            Some("task_done" | "task_failed" | "task_cached" | "task_skipped") => {
                running.remove(task)
            }
            _ => false,
        };
    }
    Ok(running)
}
