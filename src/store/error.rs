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
    pub fn io(path: &object_store::path::Path, source: object_store::Error) -> Self {
        StoreError::Io {
            path: path.to_string(),
            source,
        }
    }
}
