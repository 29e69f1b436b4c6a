//! One writer per instance: a lock object created only if absent (`PutMode::Create`). The
//! holder refreshes it while it runs; a lock whose process is gone (same host) or whose
//! refresh stopped is stale and is taken over.
//!
//! Taking over is a compare-and-swap built from create-if-absent alone, so that it works on
//! every store (a local folder has no conditional update): a run that finds a stale lock
//! first creates a takeover marker named after that lock's exact content. Only the one run
//! whose create succeeds may delete the stale lock, and only if it still reads the same
//! content; the others wait and see the winner's lock. A marker left by a winner that died
//! half-way is followed by the next generation's after `STALE_AFTER`. Release and refresh
//! touch only a lock that is still the holder's own; a holder that finds its lock taken over
//! (it stalled for longer than `STALE_AFTER`) is told through `lost`, and the run stops.

use std::time::{Duration, Instant};

use object_store::path::Path as ObjectPath;
use serde::{Deserialize, Serialize};
use tokio_util::sync::CancellationToken;

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
    fn now(run_id: &str) -> Self {
        LockInfo {
            pid: std::process::id(),
            host: hostname(),
            run_id: run_id.to_string(),
            heartbeat_ms: chrono::Utc::now().timestamp_millis(),
        }
    }

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

    fn bytes(&self) -> Vec<u8> {
        // Four plain fields: serializing them cannot fail.
        serde_json::to_vec(self).unwrap_or_default()
    }
}

/// The lock as found: its holder, or bytes that are not a lock record (written by something
/// else), with when it was last written.
struct Found {
    bytes: bytes::Bytes,
    holder: Option<LockInfo>,
    modified: chrono::DateTime<chrono::Utc>,
}

impl Found {
    fn is_stale(&self) -> bool {
        match &self.holder {
            Some(h) => h.is_stale(),
            None => (chrono::Utc::now() - self.modified)
                .to_std()
                .is_ok_and(|age| age > STALE_AFTER),
        }
    }

    fn describe(&self) -> String {
        self.holder
            .as_ref()
            .map_or("an unreadable lock".into(), LockInfo::describe)
    }
}

/// The instance lock while it is held. `release` (or `hold`, which releases whatever the work
/// returned) gives it back; a lock dropped without that, on a cancelled or panicking path, is
/// released in the background, and failing that recovered as stale by the next run.
pub struct Lock {
    store: Store,
    run_id: String,
    heartbeat: tokio::task::JoinHandle<()>,
    lost: CancellationToken,
    /// Cancelled when the lock is given back: the heartbeat stops quietly.
    stopping: CancellationToken,
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
        let lock = Self::take(store, run_id, timeout, on_wait).await?;
        store.keep_reserve();
        Ok(lock)
    }

    /// `acquire`, for what frees space: on a full disk, the store's reserve is given up to
    /// make room for the lock.
    pub async fn acquire_to_free(
        store: &Store,
        run_id: &str,
        timeout: Duration,
        on_wait: impl FnOnce(&str),
    ) -> Result<Lock, StoreError> {
        let mut on_wait = Some(on_wait);
        let wait = |holder: &str| {
            if let Some(f) = on_wait.take() {
                f(holder)
            }
        };
        match Self::take(store, run_id, timeout, wait).await {
            Err(StoreError::Full { .. }) if store.spend_reserve() => {
                tracing::warn!("the store's disk is full: its reserve was given up for the lock");
                Self::take(store, run_id, timeout, |_| {}).await
            }
            taken => taken,
        }
    }

    async fn take(
        store: &Store,
        run_id: &str,
        timeout: Duration,
        on_wait: impl FnOnce(&str),
    ) -> Result<Lock, StoreError> {
        let path = store.layout.lock();
        let started = Instant::now();
        let mut on_wait = Some(on_wait);
        let unlocked = store.unlocked;
        let mut took_over = false;
        loop {
            let info = LockInfo::now(run_id);
            let created = match store.create(&path, info.bytes()).await {
                Ok(created) => created,
                // The user vouched that no other writer runs on a store without the put the
                // lock needs.
                Err(StoreError::NoConditionalPut { .. }) if unlocked => {
                    tracing::warn!("running without the instance lock (WEIR_UNLOCKED=1)");
                    return Ok(Lock {
                        store: store.clone(),
                        run_id: run_id.to_string(),
                        heartbeat: tokio::spawn(async {}),
                        lost: CancellationToken::new(),
                        stopping: CancellationToken::new(),
                        released: true,
                    });
                }
                Err(e) => return Err(StoreError::unusable(store, e)),
            };
            if created {
                if took_over {
                    forget_old_markers(store).await;
                }
                let (lost, stopping) = (CancellationToken::new(), CancellationToken::new());
                tracing::debug!(run_id, took_over, "took the instance lock");
                let heartbeat =
                    spawn_heartbeat(store.clone(), info, lost.clone(), stopping.clone());
                return Ok(Lock {
                    store: store.clone(),
                    run_id: run_id.to_string(),
                    heartbeat,
                    lost,
                    stopping,
                    released: false,
                });
            }
            let Some(found) = read(store, &path).await? else {
                continue; // released between our create and read: try again
            };
            if found.is_stale() {
                tracing::warn!(holder = %found.describe(), "recovering a stale lock");
                took_over |= take_over(store, &path, &found).await?;
                continue;
            }
            if started.elapsed() >= timeout {
                return Err(StoreError::Locked {
                    instance: store.layout_instance(),
                    holder: found.describe(),
                    waited_s: started.elapsed().as_secs(),
                });
            }
            if let Some(f) = on_wait.take() {
                tracing::debug!(holder = %found.describe(), "waiting for the instance lock");
                f(&found.describe());
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Cancelled when another run took this lock over: whoever holds it must stop writing.
    pub fn lost(&self) -> CancellationToken {
        self.lost.clone()
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

    /// Give the lock back, if it is still ours.
    pub async fn release(mut self) -> Result<(), StoreError> {
        self.released = true;
        // A refresh cut short by the release is no news.
        self.stopping.cancel();
        self.heartbeat.abort();
        release(&self.store, &self.run_id).await
    }
}

impl Drop for Lock {
    fn drop(&mut self) {
        if self.released {
            return;
        }
        self.stopping.cancel();
        self.heartbeat.abort();
        if let Ok(runtime) = tokio::runtime::Handle::try_current() {
            let (store, run_id) = (self.store.clone(), self.run_id.clone());
            runtime.spawn(async move { release(&store, &run_id).await });
        }
    }
}

/// Delete the lock if `run_id` holds it: never another run's.
async fn release(store: &Store, run_id: &str) -> Result<(), StoreError> {
    let path = store.layout.lock();
    match read(store, &path).await? {
        Some(found) if found.holder.as_ref().is_some_and(|h| h.run_id == run_id) => {
            tracing::debug!(run_id, "releasing the instance lock");
            store.delete(&path).await
        }
        Some(found) => {
            tracing::warn!(holder = %found.describe(), "the lock was taken over; leaving it");
            Ok(())
        }
        None => Ok(()),
    }
}

async fn read(store: &Store, path: &ObjectPath) -> Result<Option<Found>, StoreError> {
    let Some((bytes, meta)) = store.get_with_meta(path).await? else {
        return Ok(None);
    };
    Ok(Some(Found {
        holder: serde_json::from_slice(&bytes).ok(),
        bytes,
        modified: meta.last_modified,
    }))
}

/// Take over the stale lock `found`: claim it with a marker only one run can create, then
/// delete it if it is still the same lock. Returns whether this run made a marker.
async fn take_over(store: &Store, path: &ObjectPath, found: &Found) -> Result<bool, StoreError> {
    let identity = crate::store::cache_key::hash_text(&String::from_utf8_lossy(&found.bytes));
    for generation in 0.. {
        let marker = store.layout.lock_takeover(&identity, generation);
        let claim = LockInfo::now("takeover").bytes();
        if store.create(&marker, claim).await? {
            if read(store, path)
                .await?
                .is_some_and(|now| now.bytes == found.bytes)
            {
                store.delete(path).await?;
            }
            return Ok(true);
        }
        // Another run claimed this generation: wait for it, unless it died doing so.
        let age = store
            .head(&marker)
            .await?
            .and_then(|m| (chrono::Utc::now() - m.last_modified).to_std().ok());
        if age.is_none_or(|a| a < STALE_AFTER) {
            tokio::time::sleep(Duration::from_millis(100)).await;
            return Ok(false);
        }
    }
    Ok(false)
}

/// Takeover markers of locks long gone: each names one stale lock, which never comes back.
async fn forget_old_markers(store: &Store) {
    let Ok(markers) = store.list(&store.layout.lock_takeovers()).await else {
        return;
    };
    for m in markers {
        let old = (chrono::Utc::now() - m.last_modified)
            .to_std()
            .is_ok_and(|age| age > 10 * STALE_AFTER);
        if old {
            let _ = store.delete(&m.location).await;
        }
    }
}

fn spawn_heartbeat(
    store: Store,
    mut info: LockInfo,
    lost: CancellationToken,
    stopping: CancellationToken,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let path = store.layout.lock();
        loop {
            tokio::time::sleep(HEARTBEAT).await;
            let ours = match read(&store, &path).await {
                Ok(found) => found
                    .and_then(|f| f.holder)
                    .is_some_and(|h| h.run_id == info.run_id),
                Err(e) => {
                    tracing::warn!(error = %e, "cannot read the lock to refresh it");
                    continue;
                }
            };
            if !ours {
                tracing::error!("the instance lock was taken over by another run: stopping");
                lost.cancel();
                return;
            }
            info.heartbeat_ms = chrono::Utc::now().timestamp_millis();
            if let Err(e) = store.put_bytes(&path, info.bytes()).await
                && !stopping.is_cancelled()
            {
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

impl Store {
    /// The run holding this instance's lock, if one does and is alive: what `weir serve` shows
    /// as running.
    pub async fn running(&self) -> Result<Option<String>, StoreError> {
        let found = read(self, &self.layout.lock()).await?;
        Ok(found
            .filter(|f| !f.is_stale())
            .and_then(|f| f.holder)
            .map(|h| h.run_id))
    }
}
