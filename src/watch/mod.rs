//! `weir watch`: run, then re-run on every save. The script is evaluated afresh each time and
//! only stale tasks run, through the one run path (`session::run`). A save during a run
//! cancels it (stages are committed whole or not at all) and starts again; an error is shown
//! and the watcher waits for the next save. Only files the flow reads count (see `paths`).

mod changes;
mod paths;

use paths::Interest;

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;
use std::time::{Duration, Instant};

use notify::{RecommendedWatcher, RecursiveMode, Watcher};
use tokio::sync::mpsc::{UnboundedReceiver, unbounded_channel};
use tokio_util::sync::CancellationToken;

use crate::report::{note, print_error};
use crate::session::{self, Loaded, RunOptions, Target};
use crate::{Error, Result};

/// Quiet time after a change before the re-run: editors write a file in several steps.
const DEBOUNCE: Duration = Duration::from_millis(80);

pub struct WatchOptions {
    pub run: RunOptions,
    pub quiet: bool,
    /// Rows shown of each changed table.
    pub preview_rows: usize,
}

/// Watch until Ctrl-C. The config and script of `target` are read again for every re-run.
pub async fn watch(target: &Target, opts: WatchOptions) -> Result<()> {
    let project = &target.dir();
    let (tx, mut events) = unbounded_channel::<PathBuf>();
    let mut watcher = notify::recommended_watcher(move |res: notify::Result<notify::Event>| {
        if let Ok(event) = res
            && !event.kind.is_access()
        {
            for path in event.paths {
                let _ = tx.send(path);
            }
        }
    })
    .map_err(|e| Error::usage(format!("cannot watch files: {e}"), "check inotify limits"))?;
    let mut watched: BTreeMap<PathBuf, RecursiveMode> = BTreeMap::new();
    let mut last_loaded: Option<Interest> = None;
    // One listener for the whole session: a Ctrl-C between two waits is not lost.
    let quit = CancellationToken::new();
    let on_ctrl_c = quit.clone();
    tokio::spawn(async move {
        if tokio::signal::ctrl_c().await.is_ok() {
            on_ctrl_c.cancel();
        }
    });
    let mut changed_at: Option<Instant> = None;
    loop {
        let loaded = target.load();
        let interest = match &loaded {
            Ok(l) => Interest::of_loaded(l),
            Err(_) => Interest::of_failed(target, last_loaded.as_ref()),
        };
        rewatch(&mut watcher, &mut watched, interest.folders());
        let outcome = match loaded {
            Err(e) => {
                print_error(e);
                Cycle::Done
            }
            Ok(loaded) => {
                last_loaded = Some(interest.clone());
                run_once(&loaded, &opts, &mut events, &interest, changed_at, &quit).await?
            }
        };
        match outcome {
            Cycle::Quit => return Ok(()),
            Cycle::Restart => {
                changed_at = Some(Instant::now());
                let mut changed = BTreeSet::new();
                settle(&mut events, &interest, &mut changed).await;
                continue;
            }
            Cycle::Done => {}
        }
        note("watch: waiting for changes (Ctrl-C to stop)");
        match next_change(&mut events, &interest, &quit).await {
            Some(path) => {
                changed_at = Some(Instant::now());
                let mut changed = BTreeSet::from([path]);
                settle(&mut events, &interest, &mut changed).await;
                // Editors save through temporary files: name the files that are there.
                let names: Vec<String> = changed
                    .iter()
                    .filter(|p| p.exists())
                    .map(|p| p.strip_prefix(project).unwrap_or(p).display().to_string())
                    .collect();
                note(&format!("watch: changed {}", names.join(", ")));
            }
            None => return Ok(()),
        }
    }
}

/// Watch `wanted` folders instead of `watched` ones; a folder whose mode changed is watched anew.
fn rewatch(
    watcher: &mut RecommendedWatcher,
    watched: &mut BTreeMap<PathBuf, RecursiveMode>,
    wanted: &BTreeMap<PathBuf, RecursiveMode>,
) {
    for (dir, mode) in watched.iter() {
        if wanted.get(dir) != Some(mode) {
            let _ = watcher.unwatch(dir);
        }
    }
    for (dir, mode) in wanted {
        if watched.get(dir) != Some(mode) {
            let _ = watcher.watch(dir, *mode);
        }
    }
    watched.clone_from(wanted);
}

enum Cycle {
    Done,
    /// A file changed during the run: run again.
    Restart,
    Quit,
}

/// One run, cancelled by a change or Ctrl-C; then the summary and what changed.
async fn run_once(
    loaded: &Loaded,
    opts: &WatchOptions,
    events: &mut UnboundedReceiver<PathBuf>,
    interest: &Interest,
    changed_at: Option<Instant>,
    quit: &CancellationToken,
) -> Result<Cycle> {
    let before = changes::snapshot(&loaded.store).await?;
    let cancel = CancellationToken::new();
    let run = session::run(loaded, &opts.run, &cancel);
    tokio::pin!(run);
    if let Some(t) = changed_at {
        note(&format!(
            "watch: re-run started {} ms after the save",
            t.elapsed().as_millis()
        ));
    }
    let mut next = Cycle::Done;
    let result = loop {
        tokio::select! {
            result = &mut run => break result,
            Some(path) = events.recv() => {
                if next.is_done() && interest.relevant(&path) {
                    let shown = path.strip_prefix(&loaded.script.dir).unwrap_or(&path);
                    note(&format!("watch: {} changed during the run: cancelling it", shown.display()));
                    cancel.cancel();
                    next = Cycle::Restart;
                }
            }
            () = quit.cancelled(), if !matches!(next, Cycle::Quit) => {
                cancel.cancel();
                next = Cycle::Quit;
            }
        }
    };
    match result {
        Ok(report) if !report.cancelled => {
            report.print_summary(false)?;
            // Failed tasks' diagnostics, pointing into the script, as `weir run` shows them.
            if let Some(e) = report.failure() {
                print_error(e);
            }
            // The first run builds everything: a preview of every table would bury the summary.
            let rows = if before.is_empty() {
                0
            } else {
                opts.preview_rows
            };
            let printed = match loaded.engine(opts.run.memory_limit) {
                Ok(engine) => changes::print_changes(&loaded.store, &engine, &before, rows).await,
                Err(e) => Err(e),
            };
            if let Err(e) = printed {
                print_error(e);
            }
        }
        Ok(_) | Err(Error::Cancelled) => note("watch: run cancelled"),
        Err(e) => print_error(e),
    }
    Ok(next)
}

impl Cycle {
    fn is_done(&self) -> bool {
        matches!(self, Cycle::Done)
    }
}

/// The next relevant change, or `None` on Ctrl-C.
async fn next_change(
    events: &mut UnboundedReceiver<PathBuf>,
    interest: &Interest,
    quit: &CancellationToken,
) -> Option<PathBuf> {
    loop {
        tokio::select! {
            path = events.recv() => match path {
                Some(p) if interest.relevant(&p) => return Some(p),
                Some(_) => {}
                None => return None,
            },
            () = quit.cancelled() => return None,
        }
    }
}

/// Wait until no relevant change came for `DEBOUNCE`, collecting what changed.
async fn settle(
    events: &mut UnboundedReceiver<PathBuf>,
    interest: &Interest,
    changed: &mut BTreeSet<PathBuf>,
) {
    loop {
        match tokio::time::timeout(DEBOUNCE, events.recv()).await {
            Ok(Some(p)) if interest.relevant(&p) => {
                changed.insert(p);
            }
            Ok(Some(_)) => {}
            _ => return,
        }
    }
}
