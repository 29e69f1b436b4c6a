//! What is compared of a query's result across runs and engines: its rows, and an
//! order-independent checksum of them, computed as tests/cases/tpch.rs does.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use datafusion::arrow::array::{Array, ArrayRef, AsArray, StringArray};
use datafusion::arrow::compute::cast;
use datafusion::arrow::datatypes::{DataType, Float32Type, Float64Type};
use datafusion::parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Digest {
    pub rows: u64,
    /// Hex: a u64 does not survive JSON readers that parse numbers as doubles.
    #[serde(with = "hex")]
    pub checksum: u64,
}

/// Query name (`q01`) -> digest.
pub type Digests = BTreeMap<String, Digest>;

/// The 22 marts of a weir store's default instance, from the files its committed manifest names.
pub fn weir_marts(store: &Path) -> Result<Digests, String> {
    let instance = store.join("default");
    let path = instance.join("manifests/marts.json");
    let text = std::fs::read_to_string(&path).map_err(|e| format!("{}: {e}", path.display()))?;
    let manifest: serde_json::Value =
        serde_json::from_str(&text).map_err(|e| format!("{}: {e}", path.display()))?;
    let tables = manifest["tables"]
        .as_object()
        .ok_or_else(|| format!("{}: no tables", path.display()))?;
    let mut out = Digests::new();
    for (name, table) in tables {
        let files: Vec<PathBuf> = table["files"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|f| f.as_str())
            .map(|f| instance.join(f))
            .collect();
        out.insert(name.clone(), files_digest(&files)?);
    }
    Ok(out)
}

/// The 22 marts a baseline wrote, one file each: `<out>/marts/qNN.parquet`.
pub fn plain_marts(out: &Path) -> Result<Digests, String> {
    (1..=22)
        .map(|q| {
            let name = format!("q{q:02}");
            let file = out.join("marts").join(format!("{name}.parquet"));
            Ok((name, files_digest(&[file])?))
        })
        .collect()
}

fn files_digest(files: &[PathBuf]) -> Result<Digest, String> {
    let mut d = Digest {
        rows: 0,
        checksum: 0,
    };
    for file in files {
        let err = |e: &dyn std::fmt::Display| format!("{}: {e}", file.display());
        let f = std::fs::File::open(file).map_err(|e| err(&e))?;
        let reader = ParquetRecordBatchReaderBuilder::try_new(f)
            .and_then(|b| b.build())
            .map_err(|e| err(&e))?;
        for batch in reader {
            let batch = batch.map_err(|e| err(&e))?;
            let columns = batch
                .columns()
                .iter()
                .map(as_text)
                .collect::<Result<Vec<_>, _>>()
                .map_err(|e| err(&e))?;
            for row in 0..batch.num_rows() {
                let mut h = blake3::Hasher::new();
                for c in &columns {
                    let text = c.as_string::<i32>();
                    h.update(if text.is_null(row) {
                        b"\0null"
                    } else {
                        text.value(row).as_bytes()
                    });
                    h.update(b"\x1f");
                }
                let bytes = h.finalize();
                let first: [u8; 8] = bytes.as_bytes()[..8].try_into().expect("8 bytes");
                d.checksum = d.checksum.wrapping_add(u64::from_le_bytes(first));
            }
            d.rows += batch.num_rows() as u64;
        }
    }
    Ok(d)
}

/// Floats to 9 significant digits: sums over partitions differ in the last bits from run to run.
fn as_text(c: &ArrayRef) -> Result<ArrayRef, datafusion::arrow::error::ArrowError> {
    let float = |v: Option<f64>| v.map(|v| format!("{v:.8e}"));
    Ok(match c.data_type() {
        DataType::Float64 => Arc::new(
            c.as_primitive::<Float64Type>()
                .iter()
                .map(float)
                .collect::<StringArray>(),
        ),
        DataType::Float32 => Arc::new(
            c.as_primitive::<Float32Type>()
                .iter()
                .map(|v| float(v.map(f64::from)))
                .collect::<StringArray>(),
        ),
        _ => cast(c, &DataType::Utf8)?,
    })
}

/// How `b` differs from `a`: one line per query whose rows (or, with `checksums`, content)
/// differ, or that one side lacks.
pub fn differences(a: &Digests, b: &Digests, checksums: bool) -> Vec<String> {
    let mut out = Vec::new();
    for (name, x) in a {
        match b.get(name) {
            None => out.push(format!("{name}: missing")),
            Some(y) if x.rows != y.rows => {
                out.push(format!("{name}: {} rows against {}", y.rows, x.rows))
            }
            Some(y) if checksums && x.checksum != y.checksum => {
                out.push(format!("{name}: same rows ({}), other content", x.rows))
            }
            Some(_) => {}
        }
    }
    for name in b.keys().filter(|n| !a.contains_key(*n)) {
        out.push(format!("{name}: not expected"));
    }
    out
}

/// Queries with equal checksums: across engines, result types differ (DuckDB's `avg` is a
/// double, DataFusion's a decimal), so only some can match; the count is reported, not checked.
pub fn equal_checksums(a: &Digests, b: &Digests) -> usize {
    a.iter()
        .filter(|(n, x)| b.get(*n).is_some_and(|y| y.checksum == x.checksum))
        .count()
}

mod hex {
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(v: &u64, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&format!("{v:016x}"))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<u64, D::Error> {
        let text = String::deserialize(d)?;
        u64::from_str_radix(&text, 16).map_err(serde::de::Error::custom)
    }
}
