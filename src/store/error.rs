//! Errors of the store: I/O, corrupt records, the lock.

use std::path::PathBuf;

use miette::Diagnostic;
use thiserror::Error;

#[derive(Debug, Error, Diagnostic)]
pub enum StoreError {
    #[error("store request failed for `{path}`: {problem}")]
    #[diagnostic(code(weir::store::io), help("{help}"))]
    Io {
        path: String,
        /// The innermost cause: object_store's chains repeat the path at every level.
        problem: String,
        help: String,
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

    #[error("`{url}` is not a store weir can use")]
    #[diagnostic(
        code(weir::store::scheme),
        help(
            "a store is a folder, or a URL: file://, s3://bucket/prefix, gs://bucket/prefix, az://container/prefix (or abfss://)"
        )
    )]
    UnsupportedScheme { url: String },

    #[error("`{key}` is not an option of {store} (for `{url}`)")]
    #[diagnostic(
        code(weir::store::option),
        help(
            "options are object_store's config keys, e.g. aws_endpoint, aws_region, aws_allow_http for S3; google_service_account for GCS; azure_storage_account_name for Azure"
        )
    )]
    UnknownOption {
        url: String,
        key: String,
        store: &'static str,
    },

    #[error("cannot configure the store `{url}`: {problem}")]
    #[diagnostic(
        code(weir::store::config),
        help(
            "set its options in [store.options] of weir.toml or with the environment variables its builder reads (AWS_*, GOOGLE_*, AZURE_*)"
        )
    )]
    Config { url: String, problem: String },

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

    #[error("cannot read committed table {table}: {problem}")]
    #[diagnostic(
        code(weir::store::damaged),
        help("the next `weir run` builds it again (`weir status` lists such tables)")
    )]
    Damaged { table: String, problem: String },

    #[error(
        "the store `{url}` cannot create an object only if it is absent, which the instance lock needs"
    )]
    #[diagnostic(
        code(weir::store::no_conditional_put),
        help(
            "enable conditional puts (for S3-compatible servers: aws_conditional_put = \"etag\", the default), or, if you are sure only one writer ever runs, set WEIR_UNLOCKED=1 to run without the lock"
        )
    )]
    NoConditionalPut { url: String },

    #[error("the disk of the store `{url}` is full: nothing was written")]
    #[diagnostic(
        code(weir::store::full),
        help(
            "free space there: `weir cache gc` deletes the builds nothing needs (it runs on a full disk too), `weir cache list` shows them"
        )
    )]
    Full { url: String },

    #[error("cannot use the store `{url}`: {problem}")]
    #[diagnostic(code(weir::store::unusable), help("{help}"))]
    Unusable {
        url: String,
        problem: String,
        help: String,
    },

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
    /// Whether a write failed for want of space on the disk.
    pub fn disk_full(&self) -> bool {
        matches!(self, StoreError::Io { problem, .. }
            if problem.contains("No space left on device") || problem.contains("os error 28"))
    }

    /// The store cannot be written at all (its first write, the lock, failed): a store URL
    /// that names a file, a device or a folder without write access, or a full disk.
    pub fn unusable(store: &super::Store, e: StoreError) -> Self {
        let (problem, help) = match e {
            StoreError::NoConditionalPut { .. } => return e,
            e if e.disk_full() => {
                return StoreError::Full {
                    url: store.display_url(),
                };
            }
            StoreError::Io { problem, help, .. } if store.local_dir().is_none() => {
                (format!("cannot write there: {problem}"), help)
            }
            StoreError::Io { problem, .. } => {
                (format!("cannot write there: {problem}"), FOLDER.into())
            }
            other => (other.to_string(), FOLDER.into()),
        };
        StoreError::Unusable {
            url: store.display_url(),
            problem,
            help,
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
        use object_store::Error as E;
        let help = match &source {
            E::PermissionDenied { .. } | E::Unauthenticated { .. } => {
                "the store refused the credentials: check AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY (or the GOOGLE_ / AZURE_ variables, or [store.options] in weir.toml)"
            }
            E::NotFound { .. } => {
                "check that the bucket or container exists and that the URL names it"
            }
            _ if root_cause(&source).contains("No space left on device") => {
                "the store's disk is full: free space there (`weir cache gc` deletes the builds nothing needs); committed stages are as they were"
            }
            _ => "check that the store is reachable (its endpoint, the network) and retry",
        };
        StoreError::Io {
            path: path.to_string(),
            problem: root_cause(&source),
            help: help.to_string(),
        }
    }
}

/// The innermost cause of an object_store error: its chains repeat the path at every level.
pub(crate) fn root_cause(e: &(dyn std::error::Error + 'static)) -> String {
    let mut cause = e;
    while let Some(next) = cause.source() {
        cause = next;
    }
    cause.to_string()
}

pub(crate) const FOLDER: &str =
    "--store (or [store] url in weir.toml) must name a folder weir can create and write";
