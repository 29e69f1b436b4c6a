//! `weir cache`: which stored builds the instance still needs, and deleting the rest. What a
//! build's standing is and which builds gc deletes are the store's rules (`store::inventory`);
//! this adds what only a loaded pipeline knows: the keys the script would build now.

use std::collections::BTreeSet;
use std::time::Duration;

use super::{Loaded, plan_all};
use crate::Result;
use crate::store::inventory::{Committed, Standing, StoredBuild, doomed, standing, with_held};
use crate::store::lock::Lock;
use crate::store::runs::new_run_id;

/// Every build folder of the instance, with how it stands.
pub type Inventory = Vec<(StoredBuild, Standing)>;

/// How many runs back `cache gc` keeps what was committed, unless told otherwise.
pub const KEEP_RUNS: usize = 10;

/// Each build with how it stands, from the committed manifests (and those the last
/// `keep_runs` runs committed) and the script's plan.
pub async fn inventory(loaded: &Loaded, keep_runs: usize) -> Result<Inventory> {
    let planned = plan_all(loaded, None).await?;
    let current: BTreeSet<String> = planned
        .plan
        .steps
        .iter()
        .map(|s| s.key.to_string())
        .collect();
    // Every committed manifest, not only the plan's: a stage the script no longer declares
    // is still committed, and readers still read it.
    let manifests = loaded.store.read_manifests().await?;
    let recent = loaded.store.recent_manifests(keep_runs).await?;
    let committed = Committed::new(manifests.values()).with_recent(&recent);
    let builds = loaded.store.stored_builds().await?;
    Ok(with_held(
        builds
            .into_iter()
            .map(|b| {
                let s = standing(&b, &committed, &current);
                (b, s)
            })
            .collect(),
    ))
}

/// What gc did (or, dry, would do): the builds it deleted and how many it kept.
pub struct Collected {
    pub deleted: Vec<StoredBuild>,
    pub kept: usize,
    /// Half-written files of killed processes (manifests, records) removed.
    pub leftovers: Vec<std::path::PathBuf>,
}

pub struct GcOptions {
    /// Keep old builds younger than this.
    pub older_than: Option<Duration>,
    /// Keep what the last this many runs committed (for `--as-of` and `rollback`).
    pub keep_runs: usize,
    /// Say what would go, delete nothing.
    pub dry_run: bool,
    pub lock_timeout: Duration,
}

/// Delete the builds neither committed nor current (old ones only past `older_than`), under
/// the lock from looking to deleting: a run must not commit a build this has judged old.
/// `on_wait` is told whom it waits for; `on_delete` of each build before it goes.
pub async fn gc(
    loaded: &Loaded,
    opts: &GcOptions,
    on_wait: impl FnOnce(&str),
    on_delete: impl Fn(&StoredBuild),
) -> Result<Collected> {
    let store = &loaded.store;
    let lock = Lock::acquire_to_free(store, &new_run_id(), opts.lock_timeout, on_wait).await?;
    lock.hold(async {
        let builds = inventory(loaded, opts.keep_runs).await?;
        let total = builds.len();
        let deleted = doomed(builds, opts.older_than, chrono::Utc::now());
        for b in &deleted {
            on_delete(b);
            if !opts.dry_run {
                store.delete_build(b).await?;
            }
        }
        // Under the lock no writer is half-way through a file: every staging file is a
        // killed process's.
        let leftovers = store.leftovers().await;
        if !opts.dry_run {
            for file in &leftovers {
                let _ = std::fs::remove_file(file);
            }
        }
        // What a full disk took to let this run, it gets back now that there is room.
        store.keep_reserve();
        Ok(Collected {
            kept: total - deleted.len(),
            deleted,
            leftovers,
        })
    })
    .await
}
