//! A run's event log written to the store while the run goes on (it is otherwise written once,
//! at the end), so that `weir serve` in another process shows tasks start and finish as they
//! do. Only runs that compute something write it: a no-op run stays one write.

use std::time::Duration;

use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::report::LiveLog;
use crate::store::Store;

/// How often the log is written when it has grown: the page's delay is this plus its own poll.
const EVERY: Duration = Duration::from_millis(150);

pub(super) struct LiveWriter {
    stop: CancellationToken,
    task: JoinHandle<()>,
}

impl LiveWriter {
    pub(super) fn start(store: Store, run_id: String, log: LiveLog) -> Self {
        let stop = CancellationToken::new();
        let task = tokio::spawn(write_while_running(store, run_id, log, stop.clone()));
        Self { stop, task }
    }

    /// Stops writing; a write under way finishes first, so the final log is not overtaken.
    pub(super) async fn stop(self) {
        self.stop.cancel();
        let _ = self.task.await;
    }
}

async fn write_while_running(store: Store, run_id: String, log: LiveLog, stop: CancellationToken) {
    let mut written = 0;
    loop {
        tokio::select! {
            () = stop.cancelled() => return,
            () = tokio::time::sleep(EVERY) => {}
        }
        let len = log.len();
        if len == written {
            continue;
        }
        // The log is for watching; a failed write is retried on the next tick and the run's
        // final write is the one that counts.
        if let Err(e) = store.write_run_log(&run_id, &log.text()).await {
            tracing::debug!(error = %e, "could not write the live run log");
            continue;
        }
        written = len;
    }
}
