//! External inputs of load tasks: resolve a location (path relative to the script, absolute
//! path, glob or URL) to the files DataFusion will read, and fingerprint them.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use datafusion::datasource::listing::ListingTableUrl;
use datafusion::error::DataFusionError;
use datafusion::execution::context::SessionState;
use futures::TryStreamExt;
use object_store::{ObjectMeta, ObjectStoreExt};
use serde::{Deserialize, Serialize};

/// The content hashes of local source files as last seen, by path, with the size and
/// modification time they had: a file whose size and time are unchanged is not read again, and
/// one touched without changing is read once and found unchanged (early cutoff at the source).
#[derive(Debug, Default, Serialize, Deserialize)]
pub struct SourceHashes {
    files: BTreeMap<String, SeenFile>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct SeenFile {
    size: u64,
    modified: i64,
    blake3: String,
}

/// The hashes a plan started from and the ones it saw: what the next plan starts from.
#[derive(Default)]
pub struct HashCache {
    old: SourceHashes,
    seen: Mutex<BTreeMap<String, SeenFile>>,
    /// The project's folder: a file under it is named in fingerprints relative to it, so a
    /// project moved or cloned elsewhere keeps its keys.
    project: PathBuf,
}

impl HashCache {
    pub fn new(old: SourceHashes, project: &Path) -> Self {
        Self {
            old,
            seen: Mutex::default(),
            project: project.to_path_buf(),
        }
    }

    /// A local file as a fingerprint names it: relative to the project when it is in it.
    fn name(&self, file: &ObjectMeta) -> String {
        let path = PathBuf::from(format!("/{}", file.location));
        match path.strip_prefix(&self.project) {
            Ok(rel) => format!("project/{}", rel.display()),
            Err(_) => file.location.to_string(),
        }
    }

    /// What to keep for the next plan, when it differs from what this one started from.
    pub fn updated(self) -> Option<SourceHashes> {
        let seen = self.seen.into_inner().unwrap_or_else(|p| p.into_inner());
        (seen != self.old.files).then_some(SourceHashes { files: seen })
    }

    /// The content hash of a local file, from the cache when its size and time are as seen.
    async fn hash(&self, file: &ObjectMeta, strict: bool) -> datafusion::error::Result<String> {
        let path = format!("/{}", file.location);
        let modified = file.last_modified.timestamp_nanos_opt().unwrap_or(0);
        let known = self
            .old
            .files
            .get(&path)
            .filter(|f| !strict && f.size == file.size && f.modified == modified);
        let blake3 = match known {
            Some(f) => f.blake3.clone(),
            None => {
                let from = path.clone();
                tokio::task::spawn_blocking(move || {
                    let mut hasher = blake3::Hasher::new();
                    hasher.update_reader(std::fs::File::open(&from)?)?;
                    Ok::<_, std::io::Error>(hasher.finalize().to_hex().to_string())
                })
                .await
                .map_err(|e| DataFusionError::External(Box::new(e)))?
                .map_err(DataFusionError::IoError)?
            }
        };
        let seen = SeenFile {
            size: file.size,
            modified,
            blake3: blake3.clone(),
        };
        self.seen
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(path, seen);
        Ok(blake3)
    }
}

/// A load location as DataFusion reads it. A glob over Hive folders (`events/day=*/*.csv`)
/// is written as DataFusion takes it (`events/*.csv`): its listing skips `col=value` folders
/// when it matches a glob, and matches a glob against a file's name alone.
pub fn resolve(location: &str, script_dir: &Path) -> String {
    let location = without_hive_globs(location);
    if location.contains("://") || Path::new(&location).is_absolute() {
        location
    } else {
        script_dir.join(location).display().to_string()
    }
}

/// `location` without its `col=*` folder segments.
fn without_hive_globs(location: &str) -> String {
    let hive_glob = |segment: &str| {
        segment.split_once('=').is_some_and(|(column, value)| {
            !column.is_empty() && !column.contains(['*', '?', '[']) && value == "*"
        })
    };
    if !location.split('/').any(hive_glob) {
        return location.to_string();
    }
    location
        .split('/')
        .filter(|segment| !hive_glob(segment))
        .collect::<Vec<_>>()
        .join("/")
}

/// The files behind a location, sorted, and a fingerprint of them: any change to any of them,
/// or a new file matching a glob, changes it. Local files are fingerprinted by path, size and
/// content when `hashes` is given (read only when their size or time changed since the cache
/// saw them), else by path, size and modification time; remote ones by path, size, time and
/// ETag. With `strict`, content is hashed every time (every byte read: for files whose time
/// is unreliable).
pub async fn fingerprint(
    state: &SessionState,
    location: &str,
    extension: &str,
    strict: bool,
    hashes: Option<&HashCache>,
) -> datafusion::error::Result<(String, Vec<ObjectMeta>)> {
    let url = ListingTableUrl::parse(location)?;
    let store = state.runtime_env().object_store(&url)?;
    // A single file or glob is taken as named; a folder is filtered by the format's extension
    // (as the load reads them: a glob `*.ndjson` of a JSON load lists its `.ndjson` files).
    let folder = location.ends_with('/') || Path::new(location).is_dir();
    let ext = if folder { extension } else { "" };
    let mut files: Vec<ObjectMeta> = url
        .list_all_files(state, store.as_ref(), ext)
        .await?
        .try_collect()
        .await?;
    files.sort_by(|a, b| a.location.cmp(&b.location));
    let local = url.as_str().starts_with("file://");
    let mut hasher = blake3::Hasher::new();
    for f in &files {
        if let Some(hashes) = hashes.filter(|_| local) {
            let content = hashes.hash(f, strict).await?;
            let name = hashes.name(f);
            hasher.update(format!("{name}\t{}\tblake3 {content}\n", f.size).as_bytes());
            continue;
        }
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
