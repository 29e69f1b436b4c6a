//! `[engine]` in weir.toml (and per instance): how much memory the run's queries may hold
//! before they spill, and where they spill to.

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
}

impl RawEngine {
    /// `over`'s settings where it has them, else these.
    pub fn merge(&mut self, over: RawEngine) {
        self.memory_limit = over.memory_limit.or(self.memory_limit.take());
        self.spill_dir = over.spill_dir.or(self.spill_dir.take());
        self.target_file_size = over.target_file_size.or(self.target_file_size.take());
        self.compression = over.compression.or(self.compression.take());
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
    /// The Parquet codec tables are written with; `None`: zstd(3).
    pub compression: Option<String>,
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
            ("uncompressed" | "snappy" | "zstd", _) => Ok(codec),
            (_, Some(Ok(1..=22))) => Ok(codec),
            _ => Err(format!(
                "`{text}` is not a codec weir writes: uncompressed, snappy or zstd(1) to zstd(22)"
            )),
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

/// `2GiB`, `512 MiB`, `1.5GB`, `1000000`: a size in bytes. Binary units (KiB, MiB, GiB, TiB)
/// count 1024s, decimal ones (KB, MB, GB, TB) 1000s; a bare number is bytes.
pub fn parse_size(text: &str) -> Result<u64, String> {
    let text = text.trim();
    let split = text
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(text.len());
    let (number, unit) = text.split_at(split);
    let number: f64 = number
        .parse()
        .map_err(|_| format!("`{text}` is not a size like 2GiB, 512MiB or 1.5GB"))?;
    let scale: f64 = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 1.0,
        "k" | "kb" => 1e3,
        "m" | "mb" => 1e6,
        "g" | "gb" => 1e9,
        "t" | "tb" => 1e12,
        "kib" => 1024.0,
        "mib" => 1024.0 * 1024.0,
        "gib" => 1024.0 * 1024.0 * 1024.0,
        "tib" => 1024.0 * 1024.0 * 1024.0 * 1024.0,
        other => {
            return Err(format!(
                "`{other}` in `{text}` is not a unit: use B, KiB, MiB, GiB, TiB (or KB, MB, GB, TB)"
            ));
        }
    };
    let bytes = number * scale;
    if !bytes.is_finite() || bytes < 1.0 || bytes > u64::MAX as f64 {
        return Err(format!("`{text}` is not a size weir can use"));
    }
    Ok(bytes as u64)
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
}
