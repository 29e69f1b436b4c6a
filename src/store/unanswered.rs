//! A remote store that stopped answering fails the rest of the command at once. A request to
//! an endpoint that accepts connections but never replies ends only at the request timeout
//! (60 s); a failed run then makes a few more requests (its run record, the lock's release),
//! each waiting as long. Once one request has timed out, every later one fails immediately,
//! saying why, so the whole command is bounded by one timeout, not one per request. A store
//! that refuses (an error answered) is not concerned: its errors come back fast anyway.

use std::fmt;
use std::ops::Range;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use bytes::Bytes;
use futures::stream::BoxStream;
use futures::{FutureExt, StreamExt};
use object_store::path::Path;
use object_store::{
    CopyOptions, GetOptions, GetResult, GetResultPayload, ListResult, MultipartUpload, ObjectMeta,
    ObjectStore, PutMultipartOptions, PutOptions, PutPayload, PutResult, Result, UploadPart,
};

#[derive(Debug)]
pub struct Unanswered {
    inner: Arc<dyn ObjectStore>,
    /// A request timed out: the store is taken to be gone for the rest of the command.
    gone: Arc<AtomicBool>,
}

impl Unanswered {
    pub fn new(inner: Arc<dyn ObjectStore>) -> Self {
        Self {
            inner,
            gone: Arc::default(),
        }
    }
}

/// What a request made after the store stopped answering fails with.
fn gone() -> object_store::Error {
    object_store::Error::Generic {
        store: "weir",
        source: "the store stopped answering: a request timed out, so weir makes no more requests in this command (committed stages are as they were; a lock left behind is taken over by the next run)".into(),
    }
}

/// Whether `e` is a request that got no answer in time.
pub fn timed_out(e: &(dyn std::error::Error + 'static)) -> bool {
    let mut cause: Option<&(dyn std::error::Error + 'static)> = Some(e);
    while let Some(c) = cause {
        if let Some(http) = c.downcast_ref::<object_store::client::HttpError>()
            && http.kind() == object_store::client::HttpErrorKind::Timeout
        {
            return true;
        }
        if let Some(io) = c.downcast_ref::<std::io::Error>()
            && io.kind() == std::io::ErrorKind::TimedOut
        {
            return true;
        }
        cause = c.source();
    }
    false
}

/// Mark the store gone when `result` timed out.
fn watch<T>(gone: &AtomicBool, result: Result<T>) -> Result<T> {
    if let Err(e) = &result
        && timed_out(e)
    {
        gone.store(true, Ordering::SeqCst);
    }
    result
}

impl Unanswered {
    fn check(&self) -> Result<()> {
        match self.gone.load(Ordering::SeqCst) {
            true => Err(gone()),
            false => Ok(()),
        }
    }

    fn watched<T: Send + 'static>(
        &self,
        stream: BoxStream<'static, Result<T>>,
    ) -> BoxStream<'static, Result<T>> {
        if self.gone.load(Ordering::SeqCst) {
            return futures::stream::once(async { Err(gone()) }).boxed();
        }
        let flag = self.gone.clone();
        stream.map(move |item| watch(&flag, item)).boxed()
    }
}

impl fmt::Display for Unanswered {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.inner)
    }
}

#[async_trait::async_trait]
impl ObjectStore for Unanswered {
    async fn put_opts(
        &self,
        location: &Path,
        payload: PutPayload,
        opts: PutOptions,
    ) -> Result<PutResult> {
        self.check()?;
        watch(
            &self.gone,
            self.inner.put_opts(location, payload, opts).await,
        )
    }

    async fn put_multipart_opts(
        &self,
        location: &Path,
        opts: PutMultipartOptions,
    ) -> Result<Box<dyn MultipartUpload>> {
        self.check()?;
        let upload = watch(
            &self.gone,
            self.inner.put_multipart_opts(location, opts).await,
        )?;
        Ok(Box::new(Upload {
            inner: upload,
            gone: self.gone.clone(),
        }))
    }

    async fn get_opts(&self, location: &Path, options: GetOptions) -> Result<GetResult> {
        self.check()?;
        let mut got = watch(&self.gone, self.inner.get_opts(location, options).await)?;
        if let GetResultPayload::Stream(stream) = got.payload {
            got.payload = GetResultPayload::Stream(self.watched(stream));
        }
        Ok(got)
    }

    async fn get_ranges(&self, location: &Path, ranges: &[Range<u64>]) -> Result<Vec<Bytes>> {
        self.check()?;
        watch(&self.gone, self.inner.get_ranges(location, ranges).await)
    }

    fn delete_stream(
        &self,
        locations: BoxStream<'static, Result<Path>>,
    ) -> BoxStream<'static, Result<Path>> {
        let deleted = self.inner.delete_stream(locations);
        self.watched(deleted)
    }

    fn list(&self, prefix: Option<&Path>) -> BoxStream<'static, Result<ObjectMeta>> {
        self.watched(self.inner.list(prefix))
    }

    fn list_with_offset(
        &self,
        prefix: Option<&Path>,
        offset: &Path,
    ) -> BoxStream<'static, Result<ObjectMeta>> {
        self.watched(self.inner.list_with_offset(prefix, offset))
    }

    async fn list_with_delimiter(&self, prefix: Option<&Path>) -> Result<ListResult> {
        self.check()?;
        watch(&self.gone, self.inner.list_with_delimiter(prefix).await)
    }

    async fn copy_opts(&self, from: &Path, to: &Path, options: CopyOptions) -> Result<()> {
        self.check()?;
        watch(&self.gone, self.inner.copy_opts(from, to, options).await)
    }
}

/// A multipart upload whose parts mark the store gone when they time out.
#[derive(Debug)]
struct Upload {
    inner: Box<dyn MultipartUpload>,
    gone: Arc<AtomicBool>,
}

#[async_trait::async_trait]
impl MultipartUpload for Upload {
    fn put_part(&mut self, data: PutPayload) -> UploadPart {
        if self.gone.load(Ordering::SeqCst) {
            return async { Err(gone()) }.boxed();
        }
        let flag = self.gone.clone();
        self.inner
            .put_part(data)
            .map(move |r| watch(&flag, r))
            .boxed()
    }

    async fn complete(&mut self) -> Result<PutResult> {
        if self.gone.load(Ordering::SeqCst) {
            return Err(gone());
        }
        watch(&self.gone, self.inner.complete().await)
    }

    async fn abort(&mut self) -> Result<()> {
        if self.gone.load(Ordering::SeqCst) {
            return Err(gone());
        }
        watch(&self.gone, self.inner.abort().await)
    }
}
