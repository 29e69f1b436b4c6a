//! External inputs of load tasks: resolve a location (path relative to the script, absolute
//! path, glob or URL) to the files DataFusion will read, and fingerprint them.

use std::path::Path;

use datafusion::datasource::listing::ListingTableUrl;
use datafusion::execution::context::SessionState;
use futures::TryStreamExt;
use object_store::{ObjectMeta, ObjectStoreExt};

/// A load location as DataFusion reads it.
pub fn resolve(location: &str, script_dir: &Path) -> String {
    if location.contains("://") || Path::new(location).is_absolute() {
        location.to_string()
    } else {
        script_dir.join(location).display().to_string()
    }
}

/// The files behind a location, sorted, and a fingerprint of their path, size, modification
/// time and ETag: any change to any of them, or a new file matching a glob, changes it. With
/// `strict`, their content is hashed too (every byte read: for files whose time is unreliable).
pub async fn fingerprint(
    state: &SessionState,
    location: &str,
    extension: &str,
    strict: bool,
) -> datafusion::error::Result<(String, Vec<ObjectMeta>)> {
    let url = ListingTableUrl::parse(location)?;
    let store = state.runtime_env().object_store(&url)?;
    // A single file or glob is taken as named; a folder is filtered by the format's extension.
    let ext = if url.is_collection() { extension } else { "" };
    let mut files: Vec<ObjectMeta> = url
        .list_all_files(state, store.as_ref(), ext)
        .await?
        .try_collect()
        .await?;
    files.sort_by(|a, b| a.location.cmp(&b.location));
    let mut hasher = blake3::Hasher::new();
    for f in &files {
        let line = format!(
            "{}\t{}\t{}\t{}\n",
            f.location,
            f.size,
            f.last_modified.timestamp_nanos_opt().unwrap_or(0),
            f.e_tag.as_deref().unwrap_or("")
        );
        hasher.update(line.as_bytes());
        if strict {
            let bytes = store.get(&f.location).await?.bytes().await?;
            hasher.update(blake3::hash(&bytes).as_bytes());
        }
    }
    Ok((hasher.finalize().to_hex()[..32].to_string(), files))
}
