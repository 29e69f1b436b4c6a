//! The object store an instance lives in: where every object goes (`layout`), cache keys,
//! table builds and stage manifests, the writer lock and run records. Table data is never
//! touched with std::fs: everything goes through `object_store`, so any store works alike.

pub mod cache_key;
mod cleared;
mod error;
pub mod inventory;
pub mod layout;
pub mod lock;
pub mod manifest;
pub mod runs;
pub mod sources;

pub use cache_key::{CacheKey, KeyParts};
pub use error::StoreError;
pub use manifest::{Column, StageManifest, TableBuild};

use std::path::Path;
use std::sync::Arc;

use bytes::Bytes;
use futures::TryStreamExt;
use object_store::local::LocalFileSystem;
use object_store::path::Path as ObjectPath;
use object_store::{ObjectMeta, ObjectStore, ObjectStoreExt, PutMode, PutOptions, PutPayload};
use serde::Serialize;
use serde::de::DeserializeOwned;
use url::Url;

use layout::Layout;

/// One instance's view of a store.
#[derive(Clone)]
pub struct Store {
    pub objects: Arc<dyn ObjectStore>,
    /// The URL DataFusion resolves the store by (scheme + authority) and the root under it.
    pub url: Url,
    pub layout: Layout,
}

impl Store {
    /// Open a store from `--store` (a URL or a local folder, relative to `base`) for an instance.
    pub fn open(spec: &str, base: &Path, instance: &str) -> Result<Self, StoreError> {
        let (objects, url, root): (Arc<dyn ObjectStore>, Url, ObjectPath) = if let Some(rest) = spec
            .strip_prefix("file://")
            .map(Some)
            .unwrap_or_else(|| (!spec.contains("://")).then_some(spec))
        {
            let dir = if Path::new(rest).is_absolute() {
                rest.into()
            } else {
                base.join(rest)
            };
            let dir = std::path::absolute(&dir).map_err(|source| StoreError::LocalPath {
                path: dir.clone(),
                source,
            })?;
            let url = Url::from_directory_path(&dir).map_err(|_| StoreError::BadUrl {
                url: spec.to_string(),
            })?;
            let root = ObjectPath::from_url_path(url.path()).map_err(|_| StoreError::BadUrl {
                url: spec.to_string(),
            })?;
            (
                Arc::new(LocalFileSystem::new()),
                Url::parse("file:///").expect("static url"),
                root,
            )
        } else {
            return Err(StoreError::UnsupportedScheme {
                url: spec.to_string(),
            });
        };
        Ok(Self {
            objects,
            url,
            layout: Layout::new(root, instance),
        })
    }

    /// The folder of this instance when the store is a local one: what `watch` must not
    /// react to, since weir writes there itself.
    pub fn local_dir(&self) -> Option<std::path::PathBuf> {
        (self.url.scheme() == "file")
            .then(|| std::path::Path::new("/").join(self.layout.instance_root().as_ref()))
    }

    /// The URL of an object, as DataFusion reads it.
    pub fn url_of(&self, path: &ObjectPath) -> String {
        format!("{}{}", self.url, path)
    }

    pub async fn get_json<T: DeserializeOwned>(
        &self,
        path: &ObjectPath,
    ) -> Result<Option<T>, StoreError> {
        match self.objects.get(path).await {
            Ok(r) => {
                let bytes = r.bytes().await.map_err(|e| StoreError::io(path, e))?;
                let value =
                    serde_json::from_slice(&bytes).map_err(|source| StoreError::Corrupt {
                        path: path.to_string(),
                        source,
                    })?;
                Ok(Some(value))
            }
            Err(object_store::Error::NotFound { .. }) => Ok(None),
            Err(e) => Err(StoreError::io(path, e)),
        }
    }

    /// Replace an object whole. Readers see the old or the new content, never a mix: local
    /// files are written aside and renamed; object stores replace objects atomically.
    pub async fn put_json<T: Serialize>(
        &self,
        path: &ObjectPath,
        value: &T,
    ) -> Result<(), StoreError> {
        let bytes = serde_json::to_vec_pretty(value).map_err(|source| StoreError::Corrupt {
            path: path.to_string(),
            source,
        })?;
        self.objects
            .put(path, PutPayload::from(Bytes::from(bytes)))
            .await
            .map_err(|e| StoreError::io(path, e))?;
        Ok(())
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
