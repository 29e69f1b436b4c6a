//! A partitioned build keeps its unchanged partitions where an earlier build wrote them: its
//! record names those files in place, so a new day adds one partition's files, not a link or a
//! server-side copy of every other day's. Readers that take a build as a folder (DataFusion's
//! listing tables, with their partition pruning) see each registered build whole here: a
//! partition folder of the build that it holds in place is answered from the folder that holds
//! it, its files named as if they were in the build's own folder.
//!
//! Only DataFusion reads through this; the store's own requests (commits, `cache gc`, the Delta
//! logs, which name the files where they are) see the store as it is.

use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::ops::Range;
use std::sync::{Arc, LazyLock, Mutex, RwLock};

use bytes::Bytes;
use futures::stream::{self, BoxStream, StreamExt};
use object_store::path::Path;
use object_store::{
    CopyOptions, GetOptions, GetResult, ListResult, MultipartUpload, ObjectMeta, ObjectStore,
    PutMultipartOptions, PutOptions, PutPayload, PutResult, Result,
};

use super::{Layout, Partition, TableBuild};

/// The partition folders builds hold in place: a build's folder path joined with a partition's
/// (`.../<build>/day=2026-01-01`) -> the folder that holds its files. Builds never change, so
/// an entry, once known, holds for the life of the process.
#[derive(Debug, Default)]
pub struct Views {
    folders: RwLock<BTreeMap<String, Held>>,
    /// Builds added already, by folder: a build is opened once per task that reads it.
    builds: Mutex<std::collections::HashSet<String>>,
}

/// A partition folder a build holds in place.
#[derive(Debug, Clone)]
struct Held {
    /// Where it is.
    real: String,
    /// Its one file as listed in the build's folder, from the build's record (its size is the
    /// partition's bytes): a table of a thousand daily partitions is listed without a thousand
    /// folder listings. `None` for a partition of several files, which is listed.
    file: Option<ObjectMeta>,
}

/// One `Views` per store URL for the process: every `Store` opened on it, and every engine
/// reading it, see the same folders.
pub fn for_store(url: &url::Url) -> Arc<Views> {
    static ALL: LazyLock<Mutex<HashMap<String, Arc<Views>>>> = LazyLock::new(Default::default);
    let mut all = ALL.lock().unwrap_or_else(|e| e.into_inner());
    all.entry(url.to_string()).or_default().clone()
}

impl Views {
    /// Make `build`'s partitions held in place visible in its folder.
    pub fn add(&self, layout: &Layout, build: &TableBuild) {
        if build.partition_by.is_empty() {
            return;
        }
        let dir = layout
            .build_dir(&build.stage, &build.table, build.key.as_str(), &build.build)
            .to_string();
        let builds = || self.builds.lock().unwrap_or_else(|e| e.into_inner());
        if builds().contains(&dir) {
            return;
        }
        let held = held_in_place(layout, build);
        let mut folders = self.folders.write().unwrap_or_else(|e| e.into_inner());
        for (seen, held) in held {
            folders.entry(seen).or_insert(held);
        }
        // Only once its folders are in: a reader that finds the build here reads them all.
        builds().insert(dir);
    }

    fn is_empty(&self) -> bool {
        self.read().is_empty()
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, BTreeMap<String, Held>> {
        self.folders.read().unwrap_or_else(|e| e.into_inner())
    }

    /// Where `location` is: itself, or, inside a folder held in place, its path there; with
    /// the two folders (as seen, where it is) when it was moved.
    fn resolve(&self, location: &str) -> Option<(String, Held)> {
        let folders = self.read();
        if folders.is_empty() {
            return None;
        }
        let mut at = location;
        loop {
            if let Some(held) = folders.get(at) {
                return Some((at.to_string(), held.clone()));
            }
            at = at.rsplit_once('/')?.0;
        }
    }

    /// The folders held in place strictly under `prefix`, with where they are.
    fn under(&self, prefix: &str) -> Vec<(String, Held)> {
        let start = if prefix.is_empty() {
            String::new()
        } else {
            format!("{prefix}/")
        };
        self.read()
            .range(start.clone()..)
            .take_while(|(seen, _)| seen.starts_with(&start))
            .map(|(a, b)| (a.clone(), b.clone()))
            .collect()
    }
}

/// Whether `build` names files outside its own folder.
pub fn holds_in_place(layout: &Layout, build: &TableBuild) -> bool {
    !build.partition_by.is_empty() && {
        let own = own_folder(layout, build);
        build.files.iter().any(|f| !f.starts_with(&own))
    }
}

/// `build`'s own folder, relative to the instance, with its trailing `/`.
fn own_folder(layout: &Layout, build: &TableBuild) -> String {
    let own = layout.build_dir(&build.stage, &build.table, build.key.as_str(), &build.build);
    format!("{}/", layout.relative(&own))
}

/// `build`'s partition folders outside its own folder: (as seen, held).
fn held_in_place(layout: &Layout, build: &TableBuild) -> Vec<(String, Held)> {
    let depth = build.partition_by.len();
    if depth == 0 {
        return Vec::new();
    }
    let own_relative = own_folder(layout, build);
    // Partition folder -> (where it is, its files' names).
    let mut folders: BTreeMap<String, (&str, Vec<&str>)> = BTreeMap::new();
    for file in build.files.iter().filter(|f| !f.starts_with(&own_relative)) {
        let (Some(partition), Some((folder, name))) =
            (Partition::of_file(file, depth), file.rsplit_once('/'))
        else {
            continue;
        };
        folders
            .entry(partition)
            .or_insert((folder, Vec::new()))
            .1
            .push(name);
    }
    let bytes: HashMap<&str, u64> = build
        .partitions
        .iter()
        .map(|p| (p.path.as_str(), p.bytes))
        .collect();
    let written = chrono::DateTime::parse_from_rfc3339(&build.built_at)
        .map(|t| t.with_timezone(&chrono::Utc))
        .unwrap_or_default();
    folders
        .into_iter()
        .map(|(partition, (folder, names))| {
            let seen = layout
                .absolute(&format!("{own_relative}{partition}"))
                .to_string();
            let file = match (names.as_slice(), bytes.get(partition.as_str()).copied()) {
                ([name], Some(size)) if size > 0 => Some(ObjectMeta {
                    location: object(format!("{seen}/{name}")),
                    last_modified: written,
                    size,
                    e_tag: None,
                    version: None,
                }),
                _ => None,
            };
            let real = layout.absolute(folder).to_string();
            (seen, Held { real, file })
        })
        .collect()
}

/// `path` under folder `from` as the same path under folder `to`.
fn moved(path: &Path, from: &str, to: &str) -> Path {
    let rest = path.as_ref().strip_prefix(from).unwrap_or_default();
    object(format!("{to}{rest}"))
}

/// A path from its text, as object_store prints it (already encoded).
fn object(text: String) -> Path {
    Path::parse(&text).unwrap_or_else(|_| Path::from(text))
}

/// An object store that shows builds whole (`Views`) over the store's own.
#[derive(Debug)]
pub struct Viewed {
    inner: Arc<dyn ObjectStore>,
    views: Arc<Views>,
}

impl Viewed {
    pub fn new(inner: Arc<dyn ObjectStore>, views: Arc<Views>) -> Self {
        Viewed { inner, views }
    }

    /// Where to read `location`.
    fn real(&self, location: &Path) -> Path {
        match self.views.resolve(location.as_ref()) {
            Some((seen, held)) => moved(location, &seen, &held.real),
            None => location.clone(),
        }
    }
}

impl fmt::Display for Viewed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.inner)
    }
}

#[async_trait::async_trait]
impl ObjectStore for Viewed {
    async fn get_ranges(&self, location: &Path, ranges: &[Range<u64>]) -> Result<Vec<Bytes>> {
        self.inner.get_ranges(&self.real(location), ranges).await
    }

    async fn get_opts(&self, location: &Path, options: GetOptions) -> Result<GetResult> {
        let real = self.real(location);
        let mut got = self.inner.get_opts(&real, options).await?;
        got.meta.location = location.clone();
        Ok(got)
    }

    async fn put_opts(
        &self,
        location: &Path,
        payload: PutPayload,
        opts: PutOptions,
    ) -> Result<PutResult> {
        self.inner.put_opts(location, payload, opts).await
    }

    async fn put_multipart_opts(
        &self,
        location: &Path,
        opts: PutMultipartOptions,
    ) -> Result<Box<dyn MultipartUpload>> {
        self.inner.put_multipart_opts(location, opts).await
    }

    fn delete_stream(
        &self,
        locations: BoxStream<'static, Result<Path>>,
    ) -> BoxStream<'static, Result<Path>> {
        self.inner.delete_stream(locations)
    }

    fn list(&self, prefix: Option<&Path>) -> BoxStream<'static, Result<ObjectMeta>> {
        if self.views.is_empty() {
            return self.inner.list(prefix);
        }
        let at = prefix.map_or("", |p| p.as_ref());
        // Inside a folder held in place: that folder's listing, as seen.
        if let Some((seen, held)) = self.views.resolve(at) {
            if let Some(file) = held.file.filter(|f| f.location.as_ref().starts_with(at)) {
                return stream::once(async move { Ok(file) }).boxed();
            }
            let real = held.real;
            let real_prefix = moved(&object(at.to_string()), &seen, &real);
            return self
                .inner
                .list(Some(&real_prefix))
                .map(move |m| {
                    m.map(|mut m| {
                        m.location = moved(&m.location, &real, &seen);
                        m
                    })
                })
                .boxed();
        }
        let mut all = vec![self.inner.list(prefix)];
        let mut known = Vec::new();
        for (seen, held) in self.views.under(at) {
            if let Some(file) = held.file {
                known.push(Ok(file));
                continue;
            }
            let real = held.real;
            let listed = self.inner.list(Some(&object(real.clone())));
            all.push(
                listed
                    .map(move |m| {
                        m.map(|mut m| {
                            m.location = moved(&m.location, &real, &seen);
                            m
                        })
                    })
                    .boxed(),
            );
        }
        all.push(stream::iter(known).boxed());
        stream::iter(all).flatten().boxed()
    }

    async fn list_with_delimiter(&self, prefix: Option<&Path>) -> Result<ListResult> {
        let at = prefix.map_or("", |p| p.as_ref());
        if let Some((seen, held)) = self.views.resolve(at) {
            let real = held.real;
            let real_prefix = moved(&object(at.to_string()), &seen, &real);
            let mut listed = self.inner.list_with_delimiter(Some(&real_prefix)).await?;
            for m in &mut listed.objects {
                m.location = moved(&m.location, &real, &seen);
            }
            for p in &mut listed.common_prefixes {
                *p = moved(p, &real, &seen);
            }
            return Ok(listed);
        }
        let held = self.views.under(at);
        let mut listed = match self.inner.list_with_delimiter(prefix).await {
            Ok(listed) => listed,
            // A build whose every partition is held in place may have no folder of its own
            // with partitions in it on a local store; what it holds is listed all the same.
            Err(object_store::Error::NotFound { .. }) if !held.is_empty() => ListResult {
                objects: Vec::new(),
                common_prefixes: Vec::new(),
            },
            Err(e) => return Err(e),
        };
        let start = if at.is_empty() {
            String::new()
        } else {
            format!("{at}/")
        };
        for (seen, _) in held {
            let next = seen[start.len()..].split('/').next().unwrap_or_default();
            let folder = object(format!("{start}{next}"));
            if !listed.common_prefixes.contains(&folder) {
                listed.common_prefixes.push(folder);
            }
        }
        listed.common_prefixes.sort();
        Ok(listed)
    }

    async fn copy_opts(&self, from: &Path, to: &Path, options: CopyOptions) -> Result<()> {
        self.inner.copy_opts(&self.real(from), to, options).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use futures::TryStreamExt;
    use object_store::ObjectStoreExt;
    use object_store::memory::InMemory;

    #[tokio::test]
    async fn a_folder_held_in_place_is_listed_and_read_as_the_builds_own() {
        let inner: Arc<dyn ObjectStore> = Arc::new(InMemory::new());
        inner
            .put(&Path::from("t/old/day=1/a.parquet"), "one".into())
            .await
            .unwrap();
        inner
            .put(&Path::from("t/new/day=2/b.parquet"), "two".into())
            .await
            .unwrap();
        let views = Arc::new(Views::default());
        views.folders.write().unwrap().insert(
            "t/new/day=1".into(),
            Held {
                real: "t/old/day=1".into(),
                file: None,
            },
        );
        let store = Viewed::new(inner, views);
        let top = store
            .list_with_delimiter(Some(&Path::from("t/new")))
            .await
            .unwrap();
        let folders: Vec<String> = top.common_prefixes.iter().map(|p| p.to_string()).collect();
        assert_eq!(folders, ["t/new/day=1", "t/new/day=2"]);
        let mut all: Vec<String> = store
            .list(Some(&Path::from("t/new")))
            .map_ok(|m| m.location.to_string())
            .try_collect()
            .await
            .unwrap();
        all.sort();
        assert_eq!(all, ["t/new/day=1/a.parquet", "t/new/day=2/b.parquet"]);
        let inside: Vec<String> = store
            .list(Some(&Path::from("t/new/day=1")))
            .map_ok(|m| m.location.to_string())
            .try_collect()
            .await
            .unwrap();
        assert_eq!(inside, ["t/new/day=1/a.parquet"]);
        let got = store
            .get(&Path::from("t/new/day=1/a.parquet"))
            .await
            .unwrap();
        assert_eq!(got.meta.location.as_ref(), "t/new/day=1/a.parquet");
        assert_eq!(&got.bytes().await.unwrap()[..], b"one");
        // The old build's folder is its own, unchanged.
        let old: Vec<String> = store
            .list(Some(&Path::from("t/old")))
            .map_ok(|m| m.location.to_string())
            .try_collect()
            .await
            .unwrap();
        assert_eq!(old, ["t/old/day=1/a.parquet"]);
    }

    #[tokio::test]
    async fn a_held_partition_of_one_file_is_listed_from_the_record() {
        // Nothing under t/old: the listing comes from the record, the read from the file.
        let inner: Arc<dyn ObjectStore> = Arc::new(InMemory::new());
        let views = Arc::new(Views::default());
        let file = ObjectMeta {
            location: Path::from("t/new/day=1/a.parquet"),
            last_modified: chrono::DateTime::default(),
            size: 3,
            e_tag: None,
            version: None,
        };
        views.folders.write().unwrap().insert(
            "t/new/day=1".into(),
            Held {
                real: "t/old/day=1".into(),
                file: Some(file.clone()),
            },
        );
        let store = Viewed::new(inner, views);
        for prefix in ["t/new", "t/new/day=1"] {
            let listed: Vec<ObjectMeta> = store
                .list(Some(&Path::from(prefix)))
                .try_collect()
                .await
                .unwrap();
            assert_eq!(listed, std::slice::from_ref(&file), "{prefix}");
        }
    }
}
