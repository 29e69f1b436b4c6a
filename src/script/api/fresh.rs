//! Freshness functions for `cache` closures: tokens that change when a source changes.
//! `today()` and `now_hour()` are clocks (UTC); `file_hash` and `file_mtime` read a file of
//! the project; `http_etag` and `http_last_modified` (also `etag` and `last_modified`) ask a
//! URL a load could read (http(s), s3, gs, az) without downloading it.

use std::path::{Path, PathBuf};
use std::time::Duration;

use object_store::{ObjectMeta, ObjectStoreExt};
use rhai::{Engine, EvalAltResult, NativeCallContext};
use url::Url;

use super::fail;

type RhaiResult<T> = Result<T, Box<EvalAltResult>>;

/// A HEAD request gives up after this long: a cache closure runs on every command.
const HEAD_TIMEOUT: Duration = Duration::from_secs(30);

pub fn register(engine: &mut Engine, dir: &Path) {
    engine
        .register_fn("today", || {
            chrono::Utc::now().format("%Y-%m-%d").to_string()
        })
        .register_fn("now_hour", || {
            chrono::Utc::now().format("%Y-%m-%dT%H").to_string()
        });
    let root = dir.to_path_buf();
    engine.register_fn(
        "file_hash",
        move |ctx: NativeCallContext, path: &str| -> RhaiResult<String> {
            let file = project_file(&ctx, &root, path)?;
            let bytes = std::fs::read(&file).or_else(|e| {
                fail(
                    format!("file_hash(\"{path}\"): cannot read it: {e}"),
                    ctx.call_position(),
                )
            })?;
            Ok(blake3::hash(&bytes).to_hex()[..32].to_string())
        },
    );
    let root = dir.to_path_buf();
    engine.register_fn(
        "file_mtime",
        move |ctx: NativeCallContext, path: &str| -> RhaiResult<String> {
            let file = project_file(&ctx, &root, path)?;
            let modified = std::fs::metadata(&file)
                .and_then(|m| m.modified())
                .or_else(|e| fail(format!("file_mtime(\"{path}\"): {e}"), ctx.call_position()))?;
            let at: chrono::DateTime<chrono::Utc> = modified.into();
            Ok(at.to_rfc3339_opts(chrono::SecondsFormat::Nanos, true))
        },
    );
    for name in ["http_etag", "etag"] {
        engine.register_fn(
            name,
            move |ctx: NativeCallContext, url: &str| -> RhaiResult<String> {
                let meta = head(&ctx, name, url)?;
                match meta.e_tag {
                    Some(tag) => Ok(tag),
                    None => fail(
                        format!(
                            "{name}(\"{url}\"): the server sends no ETag; try http_last_modified"
                        ),
                        ctx.call_position(),
                    ),
                }
            },
        );
    }
    for name in ["http_last_modified", "last_modified"] {
        engine.register_fn(
            name,
            move |ctx: NativeCallContext, url: &str| -> RhaiResult<String> {
                let meta = head(&ctx, name, url)?;
                Ok(meta
                    .last_modified
                    .to_rfc3339_opts(chrono::SecondsFormat::Secs, true))
            },
        );
    }
}

/// `path` relative to the script's folder, confined to the project as imports are.
fn project_file(ctx: &NativeCallContext, root: &Path, path: &str) -> RhaiResult<PathBuf> {
    super::super::engine::project_path(root, path).or_else(|e| fail(e, ctx.call_position()))
}

/// The object's metadata from one HEAD request, with the store's usual credentials from the
/// environment. It runs on a thread of its own: the script is evaluated inside weir's async
/// runtime, which a blocking wait must not stall.
fn head(ctx: &NativeCallContext, name: &str, url: &str) -> RhaiResult<ObjectMeta> {
    let pos = ctx.call_position();
    let parsed = match Url::parse(url) {
        Ok(u) if u.scheme() != "file" => u,
        _ => {
            return fail(
                format!(
                    "{name}(\"{url}\") takes a URL (http(s)://, s3://, gs://, az://); for a project file use file_hash or file_mtime"
                ),
                pos,
            );
        }
    };
    let store = crate::store::remote::build(&parsed, &Default::default())
        .or_else(|e| fail(format!("{name}(\"{url}\"): {e}"), pos))?;
    let path = match object_store::path::Path::from_url_path(parsed.path()) {
        Ok(p) => p,
        Err(e) => return fail(format!("{name}(\"{url}\"): {e}"), pos),
    };
    let asked = std::thread::spawn(move || {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| e.to_string())?;
        runtime.block_on(async {
            tokio::time::timeout(HEAD_TIMEOUT, store.head(&path))
                .await
                .map_err(|_| format!("no answer in {} s", HEAD_TIMEOUT.as_secs()))?
                .map_err(|e| crate::store::error::root_cause(&e))
        })
    })
    .join()
    .unwrap_or_else(|_| Err("the request stopped".to_string()));
    asked.or_else(|e| fail(format!("{name}(\"{url}\"): {e}"), pos))
}
