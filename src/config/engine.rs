//! `[engine]` in weir.toml (and per instance): how much memory the run's queries may hold
//! before they spill, and where they spill to; `[engine.datafusion]`, DataFusion settings.
//! What they mean for DataFusion (the pool, planning under a limit) is `engine::limits`.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::Deserialize;
use toml::Spanned;

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawEngine {
    pub memory_limit: Option<Spanned<String>>,
    pub spill_dir: Option<Spanned<String>>,
    pub target_file_size: Option<Spanned<String>>,
    pub compression: Option<Spanned<String>>,
    pub url: Option<Spanned<String>>,
    pub datafusion: Option<BTreeMap<Spanned<String>, Spanned<toml::Value>>>,
}

impl RawEngine {
    /// `over`'s settings where it has them, else these.
    pub fn merge(&mut self, over: RawEngine) {
        self.memory_limit = over.memory_limit.or(self.memory_limit.take());
        self.spill_dir = over.spill_dir.or(self.spill_dir.take());
        self.target_file_size = over.target_file_size.or(self.target_file_size.take());
        self.compression = over.compression.or(self.compression.take());
        self.url = over.url.or(self.url.take());
        // Setting by setting: an instance changes one without repeating the others.
        if let Some(over) = over.datafusion {
            self.datafusion.get_or_insert_default().extend(over);
        }
    }
}

/// The engine settings of one instance, resolved.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct EngineSettings {
    /// Bytes the queries of a run may hold together; `None`: the default share of memory.
    pub memory_limit: Option<u64>,
    /// Where queries spill; `None`: the system's temporary folder.
    pub spill_dir: Option<PathBuf>,
    /// The size a table's files aim at; `None`: 256 MiB.
    pub target_file_size: Option<u64>,
    /// The Parquet codec tables are written with; `None`: LZ4.
    pub compression: Option<String>,
    /// Where SQL tasks and loads run; `None`: in weir's process.
    pub url: Option<EngineUrl>,
    /// `[engine.datafusion]`: DataFusion settings by full name, applied over weir's own.
    pub datafusion: BTreeMap<String, String>,
    /// Stored input bytes from which a task runs alone; `None`: a share of the pool. Not in
    /// weir.toml: `WEIR_HEAVY_INPUT_MB`, read by the session.
    pub heavy_input: Option<u64>,
    /// How long a query may go without progress or CPU before it counts as stopped (zero:
    /// never); `None`: the default window. Not in weir.toml: `WEIR_STALL_SECS`.
    pub stall: Option<std::time::Duration>,
}

/// The DataFusion settings a pipeline may change: how queries are planned and run. Not the
/// catalog's (which could register a table at any location), the SQL parser's (weir reads the
/// SQL too) or the runtime's (the memory limit and spill folder are weir's `[engine]` keys).
const TUNABLE: [&str; 2] = ["datafusion.execution.", "datafusion.optimizer."];

/// Where a run's SQL tasks and loads are evaluated: `--engine` or `[engine] url`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EngineUrl {
    /// In weir's own process (the default).
    Local,
    /// On the Ballista cluster whose scheduler listens at this `http://HOST:PORT`.
    Ballista { scheduler: String },
    /// On a Ballista scheduler and executor started inside weir's process, talking gRPC over
    /// loopback: the cluster path on one machine, without a cluster.
    Standalone,
}

/// The port a Ballista scheduler listens on unless told otherwise.
const BALLISTA_PORT: u16 = 50050;

impl EngineUrl {
    /// `local`, `ballista://HOST[:PORT]` or `ballista://standalone`.
    pub fn parse(text: &str) -> Result<Self, String> {
        let text = text.trim();
        if text == "local" {
            return Ok(Self::Local);
        }
        let Some(rest) = text.strip_prefix("ballista://") else {
            return Err(format!(
                "`{text}` is not an engine: local, ballista://HOST:PORT or ballista://standalone"
            ));
        };
        if !cfg!(feature = "ballista") {
            return Err(format!(
                "`{text}` needs a weir built with Ballista: cargo build --release --features ballista"
            ));
        }
        let rest = rest.trim_end_matches('/');
        if rest == "standalone" {
            return Ok(Self::Standalone);
        }
        let url = url::Url::parse(&format!("http://{rest}"))
            .map_err(|e| format!("`{text}` is not a scheduler address ({e})"))?;
        match url.host_str() {
            Some(host) if url.path() == "/" && url.query().is_none() => Ok(Self::Ballista {
                scheduler: format!("http://{host}:{}", url.port().unwrap_or(BALLISTA_PORT)),
            }),
            _ => Err(format!(
                "`{text}` is not a scheduler address: ballista://HOST:PORT"
            )),
        }
    }
}

impl std::fmt::Display for EngineUrl {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Local => f.write_str("local"),
            Self::Ballista { scheduler } => {
                let address = scheduler.strip_prefix("http://").unwrap_or(scheduler);
                write!(f, "ballista://{address}")
            }
            Self::Standalone => f.write_str("ballista://standalone"),
        }
    }
}

impl EngineSettings {
    /// `text` as a Parquet codec DataFusion writes with, if weir is built with it.
    pub(super) fn compression(text: &str) -> Result<String, String> {
        let codec = text.trim().to_ascii_lowercase();
        let level = codec
            .strip_prefix("zstd(")
            .and_then(|l| l.strip_suffix(')'))
            .map(|l| l.parse::<u8>());
        match (codec.as_str(), level) {
            // The frame-less LZ4 of Parquet 2.9; Parquet's older `LZ4` is read differently by
            // different readers, so weir does not write it.
            ("lz4" | "lz4_raw", _) => Ok("lz4_raw".into()),
            ("uncompressed" | "snappy", _) => Ok(codec),
            // DataFusion's writer needs zstd's level: `zstd` alone is zstd(3), its default.
            ("zstd", _) => Ok("zstd(3)".into()),
            (_, Some(Ok(1..=22))) => Ok(codec),
            _ => Err(format!(
                "`{text}` is not a codec weir writes: lz4, snappy, zstd(1) to zstd(22) or uncompressed"
            )),
        }
    }

    /// `key = value` of `[engine.datafusion]`, checked against DataFusion's own settings: the
    /// setting's full name and its value as DataFusion takes it.
    pub(super) fn datafusion(key: &str, value: &toml::Value) -> Result<(String, String), String> {
        let key = match key.starts_with("datafusion.") {
            true => key.to_string(),
            false => format!("datafusion.{key}"),
        };
        if !TUNABLE.iter().any(|p| key.starts_with(p)) {
            return Err(format!(
                "`{key}` is not a DataFusion setting a pipeline can change: only datafusion.execution.* and datafusion.optimizer.*"
            ));
        }
        let value = match value {
            toml::Value::String(s) => s.clone(),
            toml::Value::Integer(i) => i.to_string(),
            toml::Value::Float(f) => f.to_string(),
            toml::Value::Boolean(b) => b.to_string(),
            _ => return Err(format!("`{key}` takes a string, a number or a boolean")),
        };
        let mut options = datafusion::config::ConfigOptions::default();
        match options.set(&key, &value) {
            Ok(()) => Ok((key, value)),
            Err(e) => {
                let why = crate::df_message::root_message(&e);
                let why = why.trim_start_matches("External error: ");
                Err(format!("DataFusion refuses `{key}` = `{value}`: {why}"))
            }
        }
    }

    pub(super) fn spill_dir(text: &str, base: &Path) -> PathBuf {
        let path = Path::new(text);
        match path.is_absolute() {
            true => path.to_path_buf(),
            false => base.join(path),
        }
    }
}

/// `2GiB`, `512 MiB`, `1.5GB`, `1000000`: a size in bytes (the bytesize crate's reading).
/// Binary units (KiB, MiB, GiB, TiB) count 1024s, decimal ones (KB, MB, GB, TB) 1000s; a bare
/// number is bytes.
pub fn parse_size(text: &str) -> Result<u64, String> {
    let text = text.trim();
    let size: bytesize::ByteSize = text.parse().map_err(|e: String| match e.contains("SI unit") {
        true => format!(
            "`{text}` is not a size: its unit is not one of B, KiB, MiB, GiB, TiB (or KB, MB, GB, TB)"
        ),
        false => format!("`{text}` is not a size like 2GiB, 512MiB or 1.5GB"),
    })?;
    match size.as_u64() {
        0 => Err(format!("`{text}` is not a size weir can use")),
        bytes => Ok(bytes),
    }
}

#[cfg(test)]
mod tests {
    use super::parse_size;

    #[test]
    fn sizes_parse_in_binary_and_decimal_units() {
        assert_eq!(parse_size("2GiB"), Ok(2 << 30));
        assert_eq!(parse_size("512 MiB"), Ok(512 << 20));
        assert_eq!(parse_size("1.5GB"), Ok(1_500_000_000));
        assert_eq!(parse_size("1000"), Ok(1000));
        assert!(parse_size("2 GiBs").is_err());
        assert!(parse_size("lots").is_err());
        assert!(parse_size("0").is_err());
    }

    #[test]
    fn engine_urls_name_a_cluster_or_the_local_engine() {
        use super::EngineUrl;
        assert_eq!(EngineUrl::parse("local"), Ok(EngineUrl::Local));
        assert!(EngineUrl::parse("spark://x").is_err());
        let cluster = EngineUrl::parse("ballista://10.0.0.5");
        if cfg!(feature = "ballista") {
            let expected = EngineUrl::Ballista {
                scheduler: "http://10.0.0.5:50050".into(),
            };
            assert_eq!(cluster, Ok(expected));
            assert_eq!(
                EngineUrl::parse("ballista://standalone"),
                Ok(EngineUrl::Standalone)
            );
            assert!(EngineUrl::parse("ballista://host:99999").is_err());
            assert!(EngineUrl::parse("ballista://host/path").is_err());
        } else {
            let message = cluster.unwrap_err();
            assert!(message.contains("--features ballista"), "{message}");
        }
    }
}
