//! `weir watch`: run, then re-run on every save. The script is evaluated afresh each time and
//! only stale tasks run, through the one run path (`session::run`). A save during a run
//! cancels it (stages are committed whole or not at all) and starts again; an error is shown
//! and the watcher waits for the next save.

mod changes;
mod paths;

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use notify::{RecursiveMode, Watcher};
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
    let mut watched: BTreeSet<PathBuf> = BTreeSet::new();
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
        let store_dir = loaded.as_ref().ok().and_then(|l| l.store.local_dir());
        let wanted = paths::folders(project, loaded.as_ref().ok().map(|l| &l.script));
        for dir in wanted.difference(&watched) {
            let _ = watcher.watch(dir, RecursiveMode::Recursive);
        }
        for dir in watched.difference(&wanted) {
            let _ = watcher.unwatch(dir);
        }
        watched = wanted;
        let outcome = match loaded {
            Err(e) => {
                print_error(e);
                Cycle::Done
            }
            Ok(loaded) => run_once(&loaded, &opts, &mut events, changed_at, &quit).await?,
        };
        match outcome {
            Cycle::Quit => return Ok(()),
            Cycle::Restart => {
                changed_at = Some(Instant::now());
                let mut changed = BTreeSet::new();
                settle(&mut events, project, store_dir.as_deref(), &mut changed).await;
                continue;
            }
            Cycle::Done => {}
        }
        note("watch: waiting for changes (Ctrl-C to stop)");
        match next_change(&mut events, project, store_dir.as_deref(), &quit).await {
            Some(path) => {
                changed_at = Some(Instant::now());
                let mut changed = BTreeSet::from([path]);
                settle(&mut events, project, store_dir.as_deref(), &mut changed).await;
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
    changed_at: Option<Instant>,
    quit: &CancellationToken,
) -> Result<Cycle> {
    let store_dir = loaded.store.local_dir();
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
                if next.is_done() && paths::relevant(&path, &loaded.script.dir, store_dir.as_deref()) {
                    note(&format!("watch: {} changed during the run: cancelling it", path.display()));
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
            if let Err(e) = changes::print_changes(&loaded.store, &before, rows).await {
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
    project: &Path,
    store: Option<&Path>,
    quit: &CancellationToken,
) -> Option<PathBuf> {
    loop {
        tokio::select! {
            path = events.recv() => match path {
                Some(p) if paths::relevant(&p, project, store) => return Some(p),
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
    project: &Path,
    store: Option<&Path>,
    changed: &mut BTreeSet<PathBuf>,
) {
    loop {
        match tokio::time::timeout(DEBOUNCE, events.recv()).await {
            Ok(Some(p)) if paths::relevant(&p, project, store) => {
                changed.insert(p);
            }
            Ok(Some(_)) => {}
            _ => return,
        }
    }
}
