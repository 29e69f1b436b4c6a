//! Ctrl-C and SIGTERM during a run: the first cancels it cleanly, a second ends the process.

use std::sync::Arc;
use std::sync::atomic::{AtomicI32, Ordering};

use tokio::signal::unix::{SignalKind, signal};
use tokio_util::sync::CancellationToken;

use crate::Error;
use crate::report::note;

/// SIGINT and SIGTERM during a run: the first cancels it (running tasks stop, nothing more
/// commits, the run record is written and the lock released by the run itself); a second
/// exits at once, leaving the lock for the next run to recover.
pub(super) struct Signals {
    /// The first signal's number, 0 before one came.
    received: Arc<AtomicI32>,
    listener: tokio::task::JoinHandle<()>,
}

impl Signals {
    /// Listening starts only now, after the script is evaluated: until then the default
    /// action (ending the process) is right, as nothing is held. The handlers are installed
    /// before this returns, so no signal in between ends the run uncleanly.
    pub(super) fn listen(cancel: &CancellationToken) -> Self {
        let received = Arc::new(AtomicI32::new(0));
        let (Ok(mut int), Ok(mut term)) = (
            signal(SignalKind::interrupt()),
            signal(SignalKind::terminate()),
        ) else {
            tracing::warn!("cannot listen for Ctrl-C: it will end the run without cleanup");
            return Self {
                received,
                listener: tokio::spawn(async {}),
            };
        };
        let (cancel, got) = (cancel.clone(), received.clone());
        let listener = tokio::spawn(async move {
            loop {
                let number = tokio::select! {
                    Some(()) = int.recv() => libc::SIGINT,
                    Some(()) = term.recv() => libc::SIGTERM,
                    else => return,
                };
                if got.swap(number, Ordering::SeqCst) != 0 {
                    let code = Error::Interrupted { signal: number }.exit_code();
                    std::process::exit(i32::from(code));
                }
                note("interrupted: cancelling the run (again to stop at once)");
                cancel.cancel();
            }
        });
        Self { received, listener }
    }

    /// The error to end with, once a signal came.
    pub(super) fn interrupted(&self) -> Option<Error> {
        match self.received.load(Ordering::SeqCst) {
            0 => None,
            signal => Some(Error::Interrupted { signal }),
        }
    }
}

impl Drop for Signals {
    fn drop(&mut self) {
        self.listener.abort();
    }
}
