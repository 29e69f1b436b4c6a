//! Errors of the store: I/O, corrupt records, the lock.

use std::path::PathBuf;

use miette::Diagnostic;
use thiserror::Error;

#[derive(Debug, Error, Diagnostic)]
pub enum StoreError {
    #[error("store error at `{path}`")]
    #[diagnostic(code(weir::store::io))]
    Io {
        path: String,
        #[source]
        source: object_store::Error,
    },

    #[error("`{path}` in the store is not a valid weir record")]
    #[diagnostic(
        code(weir::store::corrupt),
        help("it was not written by this version of weir, or was edited by hand")
    )]
    Corrupt {
        path: String,
        #[source]
        source: serde_json::Error,
    },

    #[error("cannot use `{}` as a store folder", path.display())]
    #[diagnostic(code(weir::store::path))]
    LocalPath {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },

    #[error("`{url}` is not a valid store URL")]
    #[diagnostic(
        code(weir::store::url),
        help("use a folder path or file:///absolute/path")
    )]
    BadUrl { url: String },

    #[error("store URL scheme of `{url}` is not supported yet")]
    #[diagnostic(
        code(weir::store::scheme),
        help("this build supports local stores: a folder path or file:///absolute/path")
    )]
    UnsupportedScheme { url: String },

    #[error(
        "the lock of instance `{instance}` was taken over by another run while this one stalled"
    )]
    #[diagnostic(
        code(weir::store::lock_lost),
        help(
            "this run stopped and committed nothing more; stages it committed before stay as they were"
        )
    )]
    LockLost { instance: String },

    #[error("cannot read committed table {table}: its stored files are missing or damaged")]
    #[diagnostic(
        code(weir::store::damaged),
        help("the next `weir run` rebuilds it (`weir status` lists damaged tables); {problem}")
    )]
    Damaged { table: String, problem: String },

    #[error("cannot use the store `{url}`: {problem}")]
    #[diagnostic(
        code(weir::store::unusable),
        help("--store (or [store] url in weir.toml) must name a folder weir can create and write")
    )]
    Unusable { url: String, problem: String },

    #[error(
        "instance `{instance}` is locked by another run ({holder}); gave up after {waited_s} s"
    )]
    #[diagnostic(
        code(weir::store::locked),
        help(
            "wait for that run to finish, or raise --lock-timeout; a lock left by a dead process is recovered automatically"
        )
    )]
    Locked {
        instance: String,
        holder: String,
        waited_s: u64,
    },
}

impl StoreError {
    /// The store cannot be written at all (its first write, the lock, failed): a store URL
    /// that names a file, a device or a folder without write access.
    pub fn unusable(store: &super::Store, e: StoreError) -> Self {
        let problem = match &e {
            StoreError::Io { source, .. } => format!("cannot write there: {}", root_cause(source)),
            other => other.to_string(),
        };
        StoreError::Unusable {
            url: store.display_url(),
            problem,
        }
    }

    pub fn sync(path: &object_store::path::Path, source: std::io::Error) -> Self {
        StoreError::io(
            path,
            object_store::Error::Generic {
                store: "LocalFileSystem",
                source: Box::new(source),
            },
        )
    }

    pub fn io(path: &object_store::path::Path, source: object_store::Error) -> Self {
        StoreError::Io {
            path: path.to_string(),
            source,
        }
    }
}

/// The innermost cause of an object_store error: its chains repeat the path at every level.
fn root_cause(e: &(dyn std::error::Error + 'static)) -> String {
    let mut cause = e;
    while let Some(next) = cause.source() {
        cause = next;
    }
    cause.to_string()
}
