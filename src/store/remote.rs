//! Object stores by URL: one builder per scheme (S3, GCS, Azure, HTTP), configured from the
//! environment first (the variables each builder reads: `AWS_*`, `GOOGLE_*`, `AZURE_*`), then
//! from options given with object_store's own config keys (weir.toml's `[store.options]`, as
//! datafusion-cli's `OPTIONS`), with bounded retries and timeouts so that an unreachable
//! endpoint fails with an error instead of hanging.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use object_store::aws::{AmazonS3Builder, AmazonS3ConfigKey};
use object_store::azure::{AzureConfigKey, MicrosoftAzureBuilder};
use object_store::gcp::{GoogleCloudStorageBuilder, GoogleConfigKey};
use object_store::http::HttpBuilder;
use object_store::{ClientOptions, ObjectStore, RetryConfig};
use url::Url;

use super::StoreError;

/// What serves a URL.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scheme {
    Local,
    S3,
    Gcs,
    Azure,
    Http,
}

impl Scheme {
    pub fn of(url: &Url) -> Option<Scheme> {
        match url.scheme() {
            "file" => Some(Scheme::Local),
            "s3" | "s3a" => Some(Scheme::S3),
            "gs" => Some(Scheme::Gcs),
            "az" | "azure" | "abfs" | "abfss" | "adl" => Some(Scheme::Azure),
            "http" | "https" => Some(Scheme::Http),
            _ => None,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Scheme::Local => "a local folder",
            Scheme::S3 => "S3",
            Scheme::Gcs => "Google Cloud Storage",
            Scheme::Azure => "Azure Blob Storage",
            Scheme::Http => "HTTP",
        }
    }
}

/// The schemes a store or a load may name, for messages.
pub const SCHEMES: &str = "file://, s3://, gs://, az:// (or abfss://), and http(s):// for loads";

/// The object store serving `url`'s bucket, container or host.
pub fn build(
    url: &Url,
    options: &BTreeMap<String, String>,
) -> Result<Arc<dyn ObjectStore>, StoreError> {
    let scheme = Scheme::of(url).ok_or_else(|| StoreError::UnsupportedScheme {
        url: url.to_string(),
    })?;
    let bad = |source: object_store::Error| StoreError::Config {
        url: url.to_string(),
        problem: super::error::root_cause(&source),
    };
    // Weir's bounded timeouts first; then the environment, as each builder's `from_env`
    // reads it (after, so that e.g. AWS_ALLOW_HTTP is kept); then the options given.
    let store: Arc<dyn ObjectStore> = match scheme {
        Scheme::Local => Arc::new(object_store::local::LocalFileSystem::new()),
        Scheme::S3 => {
            let mut b = AmazonS3Builder::new()
                .with_client_options(client())
                .with_retry(retry());
            for (k, v) in environment::<AmazonS3ConfigKey>("AWS_") {
                b = b.with_config(k, v);
            }
            b = b.with_url(url.as_str());
            for (k, v) in options {
                b = b.with_config(key::<AmazonS3ConfigKey>(url, scheme, k)?, v);
            }
            Arc::new(b.build().map_err(bad)?)
        }
        Scheme::Gcs => {
            let mut b = GoogleCloudStorageBuilder::new()
                .with_client_options(client())
                .with_retry(retry());
            for (k, v) in environment::<GoogleConfigKey>("GOOGLE_") {
                b = b.with_config(k, v);
            }
            b = b.with_url(url.as_str());
            for (k, v) in options {
                b = b.with_config(key::<GoogleConfigKey>(url, scheme, k)?, v);
            }
            Arc::new(b.build().map_err(bad)?)
        }
        Scheme::Azure => {
            let mut b = MicrosoftAzureBuilder::new()
                .with_client_options(client())
                .with_retry(retry());
            for (k, v) in environment::<AzureConfigKey>("AZURE_") {
                b = b.with_config(k, v);
            }
            b = b.with_url(url.as_str());
            for (k, v) in options {
                b = b.with_config(key::<AzureConfigKey>(url, scheme, k)?, v);
            }
            Arc::new(b.build().map_err(bad)?)
        }
        Scheme::Http => http(url, &[])?,
    };
    Ok(match scheme {
        // `http` wraps its own.
        Scheme::Local | Scheme::Http => store,
        // A remote store that stops answering fails the rest of the command at once.
        _ => Arc::new(super::unanswered::Unanswered::new(store)),
    })
}

/// The store of an HTTP(S) host, reading the files of `queried` (URLs with a query, such as
/// signed ones) with their query.
pub fn http(url: &Url, queried: &[Url]) -> Result<Arc<dyn ObjectStore>, StoreError> {
    let build = |base: &str| {
        HttpBuilder::new()
            .with_url(base)
            .with_client_options(client().with_allow_http(url.scheme() == "http"))
            .with_retry(retry())
            .build()
            .map(|s| Arc::new(s) as Arc<dyn ObjectStore>)
            .map_err(|source| StoreError::Config {
                url: url.to_string(),
                problem: super::error::root_cause(&source),
            })
    };
    let plain = build(&url[..url::Position::BeforePath])?;
    let mut by_path = BTreeMap::new();
    for q in queried {
        let path = object_store::path::Path::from_url_path(q.path())
            .map_err(|_| StoreError::BadUrl { url: q.to_string() })?;
        by_path.insert(path, build(q.as_str())?);
    }
    let files = Arc::new(super::http::HttpFiles::new(plain, by_path));
    Ok(Arc::new(super::unanswered::Unanswered::new(files)))
}

/// The variables with `prefix` that a builder's config keys name (`AWS_ENDPOINT_URL` is
/// `aws_endpoint_url`), as its `from_env` reads them.
fn environment<K: std::str::FromStr>(prefix: &str) -> Vec<(K, String)> {
    std::env::vars()
        .filter(|(name, _)| name.starts_with(prefix))
        .filter_map(|(name, value)| Some((name.to_ascii_lowercase().parse().ok()?, value)))
        .collect()
}

/// The URL an object store is registered under for DataFusion: scheme and authority.
pub fn base_url(url: &Url) -> Result<Url, StoreError> {
    let base = &url[..url::Position::BeforePath];
    let base = if url.scheme() == "file" {
        "file:///".to_string()
    } else {
        format!("{base}/")
    };
    Url::parse(&base).map_err(|_| StoreError::BadUrl {
        url: url.to_string(),
    })
}

/// An option key as the scheme's builder knows it, or an error listing what it takes.
fn key<K: std::str::FromStr>(url: &Url, scheme: Scheme, key: &str) -> Result<K, StoreError> {
    key.to_ascii_lowercase()
        .parse()
        .map_err(|_| StoreError::UnknownOption {
            url: url.to_string(),
            key: key.to_string(),
            store: scheme.name(),
        })
}

/// Requests give up rather than hang: connecting takes at most 5 s, a request 60 s.
fn client() -> ClientOptions {
    ClientOptions::new()
        .with_connect_timeout(Duration::from_secs(5))
        .with_timeout(Duration::from_secs(60))
}

/// A failing request is tried a few times over at most 20 s, then reported.
fn retry() -> RetryConfig {
    RetryConfig {
        max_retries: 3,
        retry_timeout: Duration::from_secs(20),
        ..RetryConfig::default()
    }
}
