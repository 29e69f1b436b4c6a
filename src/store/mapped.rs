//! A local store's table files read by mapping them (`mmap`) instead of copying them into fresh
//! buffers. object_store's local reads allocate a buffer per range, zero it and copy the file into
//! it: on the TPC-H pipeline that was 12% of the 22 queries' CPU (zeroing, the page faults of
//! fresh memory, the kernel's copy), nearly as much as decoding LZ4. A mapping shares the page
//! cache's pages, so a range costs one system call and no copy.
//!
//! Only files under the store's own folder are mapped. Weir writes each of them once, under a
//! new name, and never rewrites or truncates one; `gc` removes files, which leaves a mapping
//! valid. A file another program truncates while it is mapped would stop the process (SIGBUS),
//! which is why sources kept in place (`copy: false`), which are the user's files, are read as
//! object_store reads them.

use std::fmt;
use std::fs::File;
use std::io::{Read, Seek, SeekFrom};
use std::ops::Range;
use std::path::PathBuf;
use std::sync::Arc;

use bytes::Bytes;
use futures::stream::BoxStream;
use object_store::path::Path;
use object_store::{
    CopyOptions, GetOptions, GetResult, ListResult, MultipartUpload, ObjectMeta, ObjectStore,
    PutMultipartOptions, PutOptions, PutPayload, PutResult, Result,
};

/// Below this span a range is read, not mapped: a mapping costs a system call to make and one
/// to remove, which a small read (a footer, a dictionary page) does not repay.
const MAP_AT_LEAST: u64 = 256 << 10;

#[derive(Debug)]
pub struct Mapped {
    inner: Arc<dyn ObjectStore>,
    /// The store's folder; objects under it are mapped.
    root: PathBuf,
}

impl Mapped {
    pub fn new(inner: Arc<dyn ObjectStore>, root: PathBuf) -> Self {
        Mapped { inner, root }
    }

    /// The file behind `location` when weir wrote it: a Parquet file under the store's folder.
    fn mappable(&self, location: &Path) -> Option<PathBuf> {
        let path = std::path::Path::new("/").join(location.as_ref());
        let parquet = path.extension().is_some_and(|e| e == "parquet");
        (parquet && path.starts_with(&self.root)).then_some(path)
    }
}

/// Each range mapped on its own, so the columns between them are never touched. `None` when a
/// range is not wholly in the file: object_store's read then gives its own error for it.
fn map_ranges(
    path: &std::path::Path,
    ranges: &[Range<u64>],
) -> std::io::Result<Option<Vec<Bytes>>> {
    let file = File::open(path)?;
    let len = file.metadata()?.len();
    if ranges.iter().any(|r| r.start > r.end || r.end > len) {
        return Ok(None);
    }
    let mut out = Vec::with_capacity(ranges.len());
    for r in ranges {
        let span = r.end - r.start;
        if span < MAP_AT_LEAST {
            let mut buf = vec![0; span as usize];
            (&file).seek(SeekFrom::Start(r.start))?;
            (&file).read_exact(&mut buf)?;
            out.push(Bytes::from(buf));
            continue;
        }
        // SAFETY: the file is one weir wrote under a fresh name and never changes (see the
        // module's note); the mapping is read-only and lives as long as the Bytes over it.
        // `populate` faults the range in with the call, instead of one fault per page later.
        let map = unsafe {
            memmap2::MmapOptions::new()
                .offset(r.start)
                .len(span as usize)
                .populate()
                .map(&file)?
        };
        out.push(Bytes::from_owner(map));
    }
    Ok(Some(out))
}

impl fmt::Display for Mapped {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.inner)
    }
}

#[async_trait::async_trait]
impl ObjectStore for Mapped {
    async fn get_ranges(&self, location: &Path, ranges: &[Range<u64>]) -> Result<Vec<Bytes>> {
        let Some(path) = self.mappable(location) else {
            return self.inner.get_ranges(location, ranges).await;
        };
        let owned = ranges.to_vec();
        let mapped = tokio::task::spawn_blocking(move || map_ranges(&path, &owned)).await;
        match mapped {
            Ok(Ok(Some(bytes))) => Ok(bytes),
            // A missing file, a short one or a failed mapping: object_store reads it and
            // reports what is wrong in its own terms.
            _ => self.inner.get_ranges(location, ranges).await,
        }
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

    async fn get_opts(&self, location: &Path, options: GetOptions) -> Result<GetResult> {
        self.inner.get_opts(location, options).await
    }

    fn delete_stream(
        &self,
        locations: BoxStream<'static, Result<Path>>,
    ) -> BoxStream<'static, Result<Path>> {
        self.inner.delete_stream(locations)
    }

    fn list(&self, prefix: Option<&Path>) -> BoxStream<'static, Result<ObjectMeta>> {
        self.inner.list(prefix)
    }

    fn list_with_offset(
        &self,
        prefix: Option<&Path>,
        offset: &Path,
    ) -> BoxStream<'static, Result<ObjectMeta>> {
        self.inner.list_with_offset(prefix, offset)
    }

    async fn list_with_delimiter(&self, prefix: Option<&Path>) -> Result<ListResult> {
        self.inner.list_with_delimiter(prefix).await
    }

    async fn copy_opts(&self, from: &Path, to: &Path, options: CopyOptions) -> Result<()> {
        self.inner.copy_opts(from, to, options).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use object_store::ObjectStoreExt;
    use object_store::local::LocalFileSystem;

    /// A mapping store whose folder is `dir`.
    fn store(dir: &std::path::Path) -> Mapped {
        Mapped::new(Arc::new(LocalFileSystem::new()), dir.to_path_buf())
    }

    fn object(file: &std::path::Path) -> Path {
        Path::from_absolute_path(file).unwrap()
    }

    #[tokio::test]
    async fn ranges_read_mapped_equal_the_files_bytes() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("t.parquet");
        let bytes: Vec<u8> = (0..3 * MAP_AT_LEAST as usize)
            .map(|i| (i * 7 % 251) as u8)
            .collect();
        std::fs::write(&file, &bytes).unwrap();
        let store = store(dir.path());
        assert!(store.mappable(&object(&file)).is_some());
        // A large range (mapped), a small one (read), one ending at the file's end, an empty one.
        let ranges = [
            100..100 + 2 * MAP_AT_LEAST,
            5..50,
            MAP_AT_LEAST..3 * MAP_AT_LEAST,
            7..7,
        ];
        let got = store.get_ranges(&object(&file), &ranges).await.unwrap();
        for (r, b) in ranges.iter().zip(&got) {
            assert_eq!(&b[..], &bytes[r.start as usize..r.end as usize]);
        }
    }

    #[tokio::test]
    async fn a_range_past_the_end_fails_as_object_store_says() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("t.parquet");
        std::fs::write(&file, vec![1u8; 1000]).unwrap();
        let store = store(dir.path());
        let past = store.get_ranges(&object(&file), &[0..10, 500..2000]).await;
        let plain = LocalFileSystem::new()
            .get_ranges(&object(&file), &[0..10, 500..2000])
            .await;
        assert_eq!(
            past.unwrap_err().to_string(),
            plain.unwrap_err().to_string()
        );
        let missing = dir.path().join("gone.parquet");
        let err = store.get_range(&object(&missing), 0..10).await.unwrap_err();
        assert!(matches!(err, object_store::Error::NotFound { .. }), "{err}");
    }

    #[test]
    fn only_parquet_files_under_the_store_are_mapped() {
        let dir = tempfile::tempdir().unwrap();
        let store = store(&dir.path().join("store"));
        assert!(
            store
                .mappable(&object(&dir.path().join("store/a/t.parquet")))
                .is_some()
        );
        // A source kept in place, beside the store, and the store's own JSON.
        assert!(
            store
                .mappable(&object(&dir.path().join("lake/t.parquet")))
                .is_none()
        );
        assert!(
            store
                .mappable(&object(&dir.path().join("store/a/m.json")))
                .is_none()
        );
    }
}
