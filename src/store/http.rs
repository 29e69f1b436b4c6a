//! Files loaded over HTTP(S). object_store's HTTP store lists a folder with WebDAV (PROPFIND),
//! which a plain web server answers with an error page, and builds every request's URL from
//! the path alone, dropping the query a signed URL needs (`.../r.csv?sig=...`). This store
//! lists nothing (a load from a web server names one file), so a missing file is "not found"
//! rather than a WebDAV error, and reads a file whose load URL has a query through a store of
//! that exact URL.

use std::collections::BTreeMap;
use std::fmt;
use std::ops::Range;
use std::sync::Arc;

use bytes::Bytes;
use futures::stream::BoxStream;
use object_store::path::Path;
use object_store::{
    CopyOptions, GetOptions, GetResult, ListResult, MultipartUpload, ObjectMeta, ObjectStore,
    PutMultipartOptions, PutOptions, PutPayload, PutResult, Result,
};

#[derive(Debug)]
pub struct HttpFiles {
    plain: Arc<dyn ObjectStore>,
    /// Path -> a store whose base URL is the file's whole URL, query included.
    queried: BTreeMap<Path, Arc<dyn ObjectStore>>,
}

impl HttpFiles {
    pub fn new(plain: Arc<dyn ObjectStore>, queried: BTreeMap<Path, Arc<dyn ObjectStore>>) -> Self {
        Self { plain, queried }
    }

    /// The store to ask for `location`, and the path to ask it for.
    fn route<'a>(&'a self, location: &'a Path) -> (&'a dyn ObjectStore, Path) {
        match self.queried.get(location) {
            Some(store) => (store.as_ref(), Path::default()),
            None => (self.plain.as_ref(), location.clone()),
        }
    }
}

impl fmt::Display for HttpFiles {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.plain)
    }
}

fn unlistable(prefix: Option<&Path>) -> object_store::Error {
    object_store::Error::NotFound {
        path: prefix.map(ToString::to_string).unwrap_or_default(),
        source:
            "no file at this URL (a web server cannot be listed, so an http(s) load names one file)"
                .into(),
    }
}

#[async_trait::async_trait]
impl ObjectStore for HttpFiles {
    async fn get_opts(&self, location: &Path, options: GetOptions) -> Result<GetResult> {
        let (store, path) = self.route(location);
        let mut got = store.get_opts(&path, options).await?;
        got.meta.location = location.clone();
        Ok(got)
    }

    async fn get_ranges(&self, location: &Path, ranges: &[Range<u64>]) -> Result<Vec<Bytes>> {
        let (store, path) = self.route(location);
        store.get_ranges(&path, ranges).await
    }

    async fn put_opts(
        &self,
        location: &Path,
        payload: PutPayload,
        opts: PutOptions,
    ) -> Result<PutResult> {
        self.plain.put_opts(location, payload, opts).await
    }

    async fn put_multipart_opts(
        &self,
        location: &Path,
        opts: PutMultipartOptions,
    ) -> Result<Box<dyn MultipartUpload>> {
        self.plain.put_multipart_opts(location, opts).await
    }

    fn delete_stream(
        &self,
        locations: BoxStream<'static, Result<Path>>,
    ) -> BoxStream<'static, Result<Path>> {
        self.plain.delete_stream(locations)
    }

    fn list(&self, prefix: Option<&Path>) -> BoxStream<'static, Result<ObjectMeta>> {
        let error = unlistable(prefix);
        Box::pin(futures::stream::once(async move { Err(error) }))
    }

    fn list_with_offset(
        &self,
        prefix: Option<&Path>,
        _: &Path,
    ) -> BoxStream<'static, Result<ObjectMeta>> {
        self.list(prefix)
    }

    async fn list_with_delimiter(&self, prefix: Option<&Path>) -> Result<ListResult> {
        Err(unlistable(prefix))
    }

    async fn copy_opts(&self, from: &Path, to: &Path, options: CopyOptions) -> Result<()> {
        self.plain.copy_opts(from, to, options).await
    }
}
