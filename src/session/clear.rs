//! `weir clear`: mark tasks to be rebuilt by the next run. Nothing is deleted: readers see the
//! committed tables until the rebuild commits.

use std::collections::BTreeSet;
use std::time::Duration;

use super::Loaded;
use crate::Result;
use crate::flow::Flow;
use crate::flow::partitions::PartitionRange;
use crate::flow::select::{Selection, select, select_downstream};
use crate::store::lock::Lock;
use crate::store::runs::new_run_id;

/// Mark the tasks `selection` selects (with `downstream`, and their dependents), or with
/// `partitions` those partitions of the ones partitioned by its column (the others whole);
/// returns the marks.
pub async fn clear(
    loaded: &Loaded,
    selection: &Selection,
    downstream: bool,
    partitions: Option<&PartitionRange>,
    lock_timeout: Duration,
    on_wait: impl FnOnce(&str),
) -> Result<BTreeSet<String>> {
    let flow = Flow::build(&loaded.script)?;
    let chosen = match downstream {
        true => select_downstream(&flow, selection)?,
        false => select(&flow, selection)?,
    };
    let ids: BTreeSet<String> = chosen
        .iter()
        .map(|&i| {
            let task = &flow.tasks[i];
            match partitions {
                Some(r) if task.decl.opts.partition_by.contains(&r.column) => {
                    format!("{}@{r}", task.id)
                }
                _ => task.id.to_string(),
            }
        })
        .collect();
    let store = &loaded.store;
    let lock = Lock::acquire(store, &new_run_id(), lock_timeout, on_wait).await?;
    lock.hold(async {
        store.clear(&ids).await?;
        Ok(ids)
    })
    .await
}
