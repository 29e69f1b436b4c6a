//! One writer per instance: a lock object created only if absent. The holder refreshes it
//! while it runs; a lock whose process is gone (same host) or whose refresh stopped is stale
//! and is taken over.

use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

use super::{Store, StoreError};

/// A holder refreshes its lock this often...
const HEARTBEAT: Duration = Duration::from_secs(5);
/// ...and a lock not refreshed for this long belongs to a dead or hung writer.
const STALE_AFTER: Duration = Duration::from_secs(30);

#[derive(Debug, Clone, Serialize, Deserialize)]
struct LockInfo {
    pid: u32,
    host: String,
    run_id: String,
    /// Unix milliseconds of the last refresh.
    heartbeat_ms: i64,
}

impl LockInfo {
    fn describe(&self) -> String {
        format!("run {} by pid {} on {}", self.run_id, self.pid, self.host)
    }

    fn is_stale(&self) -> bool {
        let age = chrono::Utc::now().timestamp_millis() - self.heartbeat_ms;
        if age > STALE_AFTER.as_millis() as i64 {
            return true;
        }
        self.host == hostname() && !process_alive(self.pid)
    }
}

/// The instance lock while it is held. `release` (or `hold`, which releases whatever the work
/// returned) gives it back; a lock dropped without that, on a cancelled or panicking path, is
/// released in the background, and failing that recovered as stale by the next run.
pub struct Lock {
    store: Store,
    heartbeat: tokio::task::JoinHandle<()>,
    released: bool,
}

impl Lock {
    /// Take the instance's lock, waiting up to `timeout`; `on_wait` is told once whom we wait for.
    pub async fn acquire(
        store: &Store,
        run_id: &str,
        timeout: Duration,
        on_wait: impl FnOnce(&str),
    ) -> Result<Lock, StoreError> {
        let path = store.layout.lock();
        let started = Instant::now();
        let mut on_wait = Some(on_wait);
        loop {
            let info = LockInfo {
                pid: std::process::id(),
                host: hostname(),
                run_id: run_id.to_string(),
                heartbeat_ms: chrono::Utc::now().timestamp_millis(),
            };
            let bytes = serde_json::to_vec(&info).unwrap_or_default();
            if store.create(&path, bytes).await? {
                return Ok(Lock {
                    store: store.clone(),
                    heartbeat: spawn_heartbeat(store.clone(), info),
                    released: false,
                });
            }
            let holder: Option<LockInfo> = store.get_json(&path).await.ok().flatten();
            match holder {
                // Gone between our create and read, or unreadable (half-written by a killed
                // process): try again, or clear it.
                None => store.delete(&path).await?,
                Some(h) if h.is_stale() => {
                    tracing::warn!(holder = %h.describe(), "recovering a stale lock");
                    store.delete(&path).await?;
                }
                Some(h) => {
                    if started.elapsed() >= timeout {
                        return Err(StoreError::Locked {
                            instance: store.layout_instance(),
                            holder: h.describe(),
                            waited_s: started.elapsed().as_secs(),
                        });
                    }
                    if let Some(f) = on_wait.take() {
                        f(&h.describe());
                    }
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
            }
        }
    }

    /// Run `work` holding the lock, then release it, whatever `work` returned: no path can
    /// forget to.
    pub async fn hold<T, E: From<StoreError>>(
        self,
        work: impl Future<Output = Result<T, E>>,
    ) -> Result<T, E> {
        let out = work.await;
        let released = self.release().await;
        let value = out?;
        released?;
        Ok(value)
    }

    pub async fn release(mut self) -> Result<(), StoreError> {
        self.released = true;
        self.heartbeat.abort();
        self.store.delete(&self.store.layout.lock()).await
    }
}

impl Drop for Lock {
    fn drop(&mut self) {
        if self.released {
            return;
        }
        self.heartbeat.abort();
        if let Ok(runtime) = tokio::runtime::Handle::try_current() {
            let store = self.store.clone();
            runtime.spawn(async move { store.delete(&store.layout.lock()).await });
        }
    }
}

fn spawn_heartbeat(store: Store, mut info: LockInfo) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        loop {
            tokio::time::sleep(HEARTBEAT).await;
            info.heartbeat_ms = chrono::Utc::now().timestamp_millis();
            if let Err(e) = store.put_json(&store.layout.lock(), &info).await {
                tracing::warn!(error = %e, "cannot refresh the lock");
            }
        }
    })
}

fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|s| s.trim().to_string())
        .or_else(|_| std::env::var("HOSTNAME"))
        .unwrap_or_else(|_| "localhost".to_string())
}

fn process_alive(pid: u32) -> bool {
    if cfg!(target_os = "linux") {
        // A zombie (killed, not yet reaped) holds no lock either.
        match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
            Ok(stat) => !stat
                .rsplit(')')
                .next()
                .is_some_and(|rest| rest.trim_start().starts_with('Z')),
            Err(_) => false,
        }
    } else {
        true // elsewhere rely on the heartbeat alone
    }
}
