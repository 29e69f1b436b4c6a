//! The object store an instance lives in: where every object goes (`layout`), cache keys,
//! table builds and stage manifests, the writer lock and run records. Table data is never
//! touched with std::fs: everything goes through `object_store`, so any store works alike.

pub mod cache_key;
mod cleared;
pub mod counting;
pub mod delta;
pub(crate) mod error;
pub mod history;
mod http;
pub mod inventory;
pub mod layout;
pub mod lock;
pub mod manifest;
mod mapped;
pub mod remote;
pub mod runs;
pub mod sources;
mod unanswered;
pub mod views;

pub use cache_key::{CacheKey, KeyParts};
pub use error::StoreError;
pub use manifest::{CheckOutcome, Column, InPlace, Partition, StageManifest, TableBuild};
pub use runs::LogLine;

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;

use bytes::Bytes;
use futures::TryStreamExt;
use object_store::path::Path as ObjectPath;
use object_store::{ObjectMeta, ObjectStore, ObjectStoreExt, PutMode, PutOptions, PutPayload};
use path_absolutize::Absolutize;
use serde::Serialize;
use serde::de::DeserializeOwned;
use url::Url;

use counting::{Counting, Counts, Requests};
pub use layout::Layout;
use remote::Scheme;

/// One instance's view of a store.
/// The space a local store keeps for `cache gc` on a full disk: a lock and a little more.
const RESERVE: u64 = 64 << 10;

#[derive(Clone)]
pub struct Store {
    /// Every request goes through here, counted.
    pub objects: Arc<dyn ObjectStore>,
    /// The URL DataFusion resolves the store by (scheme + authority) and the root under it.
    pub url: Url,
    pub layout: Layout,
    /// The store as the user named it, resolved (a local folder as an absolute path).
    shown: String,
    counts: Arc<Counts>,
    /// What commits still do in the background (Delta versions, history copies): `settle`
    /// waits for it.
    post_commit: Arc<std::sync::Mutex<Vec<tokio::task::JoinHandle<()>>>>,
    /// `WEIR_UNLOCKED=1`: the user vouched that one writer at most ever runs, so a store
    /// without conditional puts is used without the lock.
    pub unlocked: bool,
    /// Each committed table is also a Delta Lake table (`[store] delta`, on by default).
    pub delta: bool,
    /// The partitions builds hold in place, for DataFusion to see each build whole.
    pub views: Arc<views::Views>,
}

impl Store {
    /// Open a store for an instance: `spec` is a URL (`s3://bucket/prefix`, ...) or a local
    /// folder, relative to `base`; `options` are object_store config keys for its builder.
    pub fn open(
        spec: &str,
        base: &Path,
        instance: &str,
        options: &BTreeMap<String, String>,
    ) -> Result<Self, StoreError> {
        let bad_url = || StoreError::BadUrl {
            url: spec.to_string(),
        };
        let local = spec
            .strip_prefix("file://")
            .or_else(|| (!spec.contains("://")).then_some(spec));
        let url = match local {
            Some(rest) => {
                let dir = if Path::new(rest).is_absolute() {
                    rest.into()
                } else {
                    base.join(rest)
                };
                // `..` resolved here: a URL of the folder cannot hold it (`--store ../x`).
                let dir = dir.absolutize().map(|d| d.into_owned()).map_err(|source| {
                    StoreError::LocalPath {
                        path: dir.clone(),
                        source,
                    }
                })?;
                check_folder(&dir)?;
                Url::from_directory_path(&dir).map_err(|_| bad_url())?
            }
            None => Url::parse(spec).map_err(|_| bad_url())?,
        };
        match Scheme::of(&url) {
            Some(Scheme::Http) | None => {
                return Err(StoreError::UnsupportedScheme {
                    url: spec.to_string(),
                });
            }
            Some(_) => {}
        }
        if url.scheme() != "file" && url.host_str().is_none_or(str::is_empty) {
            return Err(StoreError::BadUrl {
                url: spec.to_string(),
            });
        }
        let root = ObjectPath::from_url_path(url.path()).map_err(|_| bad_url())?;
        let mut objects = remote::build(&url, options)?;
        if let Ok(dir) = url.to_file_path() {
            objects = Arc::new(mapped::Mapped::new(objects, dir));
        }
        let (objects, counts) = Counting::new(objects);
        let shown = match url.scheme() {
            "file" => url.to_file_path().map_or(url.to_string(), |p| {
                p.display().to_string().trim_end_matches('/').to_string()
            }),
            _ => url.to_string().trim_end_matches('/').to_string(),
        };
        Ok(Self {
            objects: Arc::new(objects),
            views: views::for_store(&url),
            url: remote::base_url(&url)?,
            layout: Layout::new(root, instance),
            shown,
            counts,
            post_commit: Arc::default(),
            unlocked: false,
            delta: true,
        })
    }

    /// The store as DataFusion reads it: each registered build whole, the partitions it holds
    /// in place included (`views`).
    pub fn viewed(&self) -> Arc<dyn ObjectStore> {
        Arc::new(views::Viewed::new(self.objects.clone(), self.views.clone()))
    }

    /// Whether `build` names files of another build's folder (partitions it keeps in place).
    pub fn holds_in_place(&self, build: &TableBuild) -> bool {
        views::holds_in_place(&self.layout, build)
    }

    /// Show `build`'s partitions held in place in its folder, for DataFusion's listing.
    pub fn view(&self, build: &TableBuild) {
        self.views.add(&self.layout, build);
    }

    /// Keep the reserve of a local store's disk (`RESERVE` bytes), best effort: what `cache gc` gives
    /// up on a full disk to take its lock.
    pub fn keep_reserve(&self) {
        let Some(path) = self.local_path(&self.layout.reserve()) else {
            return;
        };
        // Made again whole when a full disk left it short.
        if std::fs::metadata(&path).map_or(true, |m| m.len() < RESERVE) {
            let _ = std::fs::write(&path, vec![0u8; RESERVE as usize]);
        }
    }

    /// Give up the reserve of a local store's disk; whether there was one.
    pub fn spend_reserve(&self) -> bool {
        self.local_path(&self.layout.reserve())
            .is_some_and(|p| std::fs::remove_file(p).is_ok())
    }

    /// The requests made through this store so far.
    pub fn requests(&self) -> Requests {
        self.counts.now()
    }

    /// The store as a user knows it: its folder, or its URL.
    pub fn display_url(&self) -> String {
        self.shown.clone()
    }

    /// The folder of this instance when the store is a local one: what `watch` must not
    /// react to, since weir writes there itself.
    pub fn local_dir(&self) -> Option<std::path::PathBuf> {
        (self.url.scheme() == "file")
            .then(|| std::path::Path::new("/").join(self.layout.instance_root().as_ref()))
    }

    /// Where an object lives on the local disk, for a local store.
    pub(crate) fn local_path(&self, path: &ObjectPath) -> Option<std::path::PathBuf> {
        (self.url.scheme() == "file").then(|| std::path::Path::new("/").join(path.as_ref()))
    }

    /// Make objects durable: on a local store, fsync each file and the folders holding them
    /// (object_store writes a file aside and renames it, and fsyncs neither). Object stores
    /// have made a put durable when it returns.
    pub async fn sync(&self, paths: &[ObjectPath]) -> Result<(), StoreError> {
        let files: Vec<(ObjectPath, std::path::PathBuf)> = paths
            .iter()
            .filter_map(|p| Some((p.clone(), self.local_path(p)?)))
            .collect();
        if files.is_empty() {
            return Ok(());
        }
        let Some(root) = self
            .local_dir()
            .and_then(|d| d.parent().map(std::path::Path::to_path_buf))
        else {
            return Ok(());
        };
        let synced = tokio::task::spawn_blocking(move || {
            let sync = |p: &std::path::Path| std::fs::File::open(p).and_then(|f| f.sync_all());
            // Many at once: a file system commits concurrent syncs together.
            let chunk = files.len().div_ceil(16);
            std::thread::scope(|scope| {
                let workers: Vec<_> = files
                    .chunks(chunk)
                    .map(|part| {
                        scope.spawn(move || {
                            for (object, file) in part {
                                sync(file).map_err(|e| StoreError::sync(object, e))?;
                            }
                            Ok::<(), StoreError>(())
                        })
                    })
                    .collect();
                for w in workers {
                    w.join().unwrap_or(Ok(()))?;
                }
                Ok::<(), StoreError>(())
            })?;
            // A folder's entries (the renamed files, the folders made for them) are durable
            // once the folder is synced: each file's folder and those above it, to the store's.
            for dir in folders_to_sync(files.iter().map(|(_, f)| f.as_path()), &root) {
                match sync(dir) {
                    Ok(()) => {}
                    // A file system that cannot sync a folder makes no promise to keep.
                    Err(e) if matches!(e.raw_os_error(), Some(libc::EINVAL | libc::ENOTSUP)) => {}
                    Err(e) => {
                        let object = ObjectPath::from(dir.to_string_lossy().as_ref());
                        return Err(StoreError::sync(&object, e));
                    }
                }
            }
            Ok(())
        })
        .await;
        synced.unwrap_or(Ok(()))
    }

    /// The URL of an object, as DataFusion reads it.
    pub fn url_of(&self, path: &ObjectPath) -> String {
        format!("{}{}", self.url, path)
    }

    /// An object's bytes, or `None` if there is none.
    pub async fn get_bytes(&self, path: &ObjectPath) -> Result<Option<Bytes>, StoreError> {
        Ok(self.get_with_meta(path).await?.map(|(bytes, _)| bytes))
    }

    /// An object's bytes and what the store says of it (size, last modified), in one request.
    pub async fn get_with_meta(
        &self,
        path: &ObjectPath,
    ) -> Result<Option<(Bytes, ObjectMeta)>, StoreError> {
        match self.objects.get(path).await {
            Ok(r) => {
                let meta = r.meta.clone();
                let bytes = r.bytes().await.map_err(|e| StoreError::io(path, e))?;
                Ok(Some((bytes, meta)))
            }
            Err(object_store::Error::NotFound { .. }) => Ok(None),
            Err(e) => Err(StoreError::io(path, e)),
        }
    }

    /// Replace an object whole (see `put_json`).
    pub async fn put_bytes(&self, path: &ObjectPath, bytes: Vec<u8>) -> Result<(), StoreError> {
        self.objects
            .put(path, PutPayload::from(Bytes::from(bytes)))
            .await
            .map_err(|e| StoreError::io(path, e))?;
        Ok(())
    }

    /// Copy an object: a hard link on a local store, a server-side copy on an object store.
    pub async fn copy(&self, from: &ObjectPath, to: &ObjectPath) -> Result<(), StoreError> {
        self.objects
            .copy(from, to)
            .await
            .map_err(|e| StoreError::io(from, e))
    }

    /// Copy many objects into folders no reader looks at yet (a new build's): on a local
    /// store hard links made in one blocking task, each folder made once (object_store's copy
    /// tries the link, makes the folder, links again and renames, per file); else 32
    /// server-side copies at once.
    pub async fn copy_all(&self, pairs: &[(ObjectPath, ObjectPath)]) -> Result<(), StoreError> {
        let local: Option<Vec<(std::path::PathBuf, std::path::PathBuf)>> = pairs
            .iter()
            .map(|(from, to)| Some((self.local_path(from)?, self.local_path(to)?)))
            .collect();
        let Some(local) = local.filter(|_| self.local_dir().is_some()) else {
            let mut work: Vec<futures::future::BoxFuture<'_, _>> = Vec::new();
            for (from, to) in pairs {
                work.push(Box::pin(self.copy(from, to)));
            }
            return futures::StreamExt::buffer_unordered(futures::stream::iter(work), 32)
                .try_collect::<Vec<()>>()
                .await
                .map(|_| ());
        };
        let first = pairs
            .first()
            .map(|(from, _)| from.clone())
            .unwrap_or_default();
        tokio::task::spawn_blocking(move || {
            let mut made = std::collections::HashSet::new();
            for (from, to) in &local {
                if let Some(dir) = to.parent()
                    && made.insert(dir.to_path_buf())
                {
                    std::fs::create_dir_all(dir)?;
                }
                // Another file system than the source's: a copy of the bytes.
                if std::fs::hard_link(from, to).is_err() {
                    std::fs::copy(from, to)?;
                }
            }
            Ok::<(), std::io::Error>(())
        })
        .await
        .map_err(|e| StoreError::sync(&first, std::io::Error::other(e)))?
        .map_err(|e| StoreError::sync(&first, e))
    }

    pub async fn get_json<T: DeserializeOwned>(
        &self,
        path: &ObjectPath,
    ) -> Result<Option<T>, StoreError> {
        let Some(bytes) = self.get_bytes(path).await? else {
            return Ok(None);
        };
        let value = serde_json::from_slice(&bytes).map_err(|source| StoreError::Corrupt {
            path: path.to_string(),
            source,
        })?;
        Ok(Some(value))
    }

    /// Replace an object whole. Readers see the old or the new content, never a mix: local
    /// files are written aside and renamed; object stores replace objects atomically.
    /// The content hashes of local sources as the last run saw them (none before a run).
    pub async fn read_source_hashes(&self) -> Result<sources::SourceHashes, StoreError> {
        let path = self.layout.source_hashes();
        // A cache: one that cannot be read is started again, not an error.
        Ok(self
            .get_json(&path)
            .await
            .ok()
            .flatten()
            .unwrap_or_default())
    }

    pub async fn write_source_hashes(
        &self,
        hashes: &sources::SourceHashes,
    ) -> Result<(), StoreError> {
        self.put_json(&self.layout.source_hashes(), hashes).await
    }

    pub async fn put_json<T: Serialize>(
        &self,
        path: &ObjectPath,
        value: &T,
    ) -> Result<(), StoreError> {
        let bytes = serde_json::to_vec_pretty(value).map_err(|source| StoreError::Corrupt {
            path: path.to_string(),
            source,
        })?;
        self.put_bytes(path, bytes).await
    }

    /// The instance's random salt, made on first use: the hashes standing in for secrets in
    /// stored cache keys are keyed with it, so they can be compared but not looked up.
    pub async fn salt(&self) -> Result<[u8; 32], StoreError> {
        let path = self.layout.salt();
        loop {
            if let Some(bytes) = self.get_bytes(&path).await? {
                let hex = String::from_utf8_lossy(&bytes);
                let mut salt = [0u8; 32];
                let ok = hex.len() == 64
                    && (0..32).all(|i| match u8::from_str_radix(&hex[2 * i..2 * i + 2], 16) {
                        Ok(b) => {
                            salt[i] = b;
                            true
                        }
                        Err(_) => false,
                    });
                if ok {
                    return Ok(salt);
                }
                return Err(StoreError::Unusable {
                    url: self.display_url(),
                    problem: format!("{path} is not a salt weir wrote"),
                    help: "delete it: weir makes a new one (tasks reading secrets then run once)"
                        .into(),
                });
            }
            let fresh: String = random_bytes().iter().map(|b| format!("{b:02x}")).collect();
            // Two first runs at once: whichever creates it first, both then read that one.
            self.create(&path, fresh.into_bytes()).await?;
        }
    }

    /// Create an object only if it does not exist; `false` when it already did.
    pub async fn create(&self, path: &ObjectPath, bytes: Vec<u8>) -> Result<bool, StoreError> {
        let opts = PutOptions {
            mode: PutMode::Create,
            ..Default::default()
        };
        match self
            .objects
            .put_opts(path, PutPayload::from(Bytes::from(bytes)), opts)
            .await
        {
            Ok(_) => Ok(true),
            Err(object_store::Error::AlreadyExists { .. }) => Ok(false),
            Err(object_store::Error::NotImplemented { .. }) => Err(StoreError::NoConditionalPut {
                url: self.display_url(),
            }),
            Err(e) => Err(StoreError::io(path, e)),
        }
    }

    pub async fn delete(&self, path: &ObjectPath) -> Result<(), StoreError> {
        match self.objects.delete(path).await {
            Ok(()) | Err(object_store::Error::NotFound { .. }) => Ok(()),
            Err(e) => Err(StoreError::io(path, e)),
        }
    }

    pub async fn head(&self, path: &ObjectPath) -> Result<Option<ObjectMeta>, StoreError> {
        match self.objects.head(path).await {
            Ok(m) => Ok(Some(m)),
            Err(object_store::Error::NotFound { .. }) => Ok(None),
            Err(e) => Err(StoreError::io(path, e)),
        }
    }

    pub async fn list(&self, prefix: &ObjectPath) -> Result<Vec<ObjectMeta>, StoreError> {
        self.objects
            .list(Some(prefix))
            .try_collect()
            .await
            .map_err(|e| StoreError::io(prefix, e))
    }

    /// Delete everything under a prefix (a half-written build left by a killed run).
    pub async fn delete_prefix(&self, prefix: &ObjectPath) -> Result<(), StoreError> {
        for meta in self.list(prefix).await? {
            self.delete(&meta.location).await?;
        }
        Ok(())
    }
}

/// A local store must be a folder or not exist yet, and nothing above it may be a file: say so
/// now, in one line, rather than with object_store's chain at the first write.
/// The folders to sync for `files` to be durable in the store at `root`: each file's folder
/// and every folder above it up to `root`'s parent, whose entries name the folders a write
/// made (a new build folder, a new table's), deepest first.
fn folders_to_sync<'a>(files: impl Iterator<Item = &'a Path>, root: &'a Path) -> Vec<&'a Path> {
    let top = root.parent().unwrap_or(root);
    let mut dirs = std::collections::BTreeSet::new();
    for file in files {
        for dir in file.ancestors().skip(1) {
            if !dir.starts_with(top) || !dirs.insert(dir) {
                break;
            }
            if dir == top {
                break;
            }
        }
    }
    let mut dirs: Vec<&Path> = dirs.into_iter().collect();
    dirs.sort_by_key(|d| std::cmp::Reverse(d.components().count()));
    dirs
}

fn check_folder(dir: &Path) -> Result<(), StoreError> {
    let unusable = |problem: String| StoreError::Unusable {
        url: dir.display().to_string(),
        problem,
        help: error::FOLDER.into(),
    };
    for at in dir.ancestors() {
        match std::fs::metadata(at) {
            Ok(m) if m.is_dir() => return Ok(()),
            Ok(_) if at == dir => return Err(unusable("it is a file, not a folder".into())),
            Ok(_) => {
                return Err(unusable(format!(
                    "{} is a file, not a folder",
                    at.display()
                )));
            }
            // Not there yet, or under a file: look further up for what is there.
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::NotFound | std::io::ErrorKind::NotADirectory
                ) =>
            {
                continue;
            }
            Err(e) => return Err(unusable(e.to_string())),
        }
    }
    Ok(())
}

/// 32 bytes from the system's random source, or, where it fails, from the clock and the
/// process: a salt only needs to differ between stores.
fn random_bytes() -> [u8; 32] {
    let mut bytes = [0u8; 32];
    if getrandom::fill(&mut bytes).is_err() {
        let seed = format!(
            "{:?}-{}-{:p}",
            std::time::SystemTime::now(),
            std::process::id(),
            &bytes
        );
        bytes = *blake3::hash(seed.as_bytes()).as_bytes();
    }
    bytes
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A build's file is durable once every folder above it is synced, up to the folder that
    /// holds the store: the folders a write made are entries of their parents.
    #[test]
    fn every_folder_above_a_file_is_synced_up_to_the_stores_parent() {
        let root = Path::new("/p/.weir/default");
        let files = [
            Path::new("/p/.weir/default/tables/s/t/k1/b1/part-0.parquet"),
            Path::new("/p/.weir/default/tables/s/t/k1/b1/part-1.parquet"),
            Path::new("/p/.weir/default/manifests/s.json"),
        ];
        let dirs = folders_to_sync(files.into_iter(), root);
        let shown: Vec<&str> = dirs.iter().map(|d| d.to_str().unwrap()).collect();
        assert_eq!(
            shown,
            [
                "/p/.weir/default/tables/s/t/k1/b1",
                "/p/.weir/default/tables/s/t/k1",
                "/p/.weir/default/tables/s/t",
                "/p/.weir/default/tables/s",
                "/p/.weir/default/manifests",
                "/p/.weir/default/tables",
                "/p/.weir/default",
                "/p/.weir",
            ]
        );
    }
}
