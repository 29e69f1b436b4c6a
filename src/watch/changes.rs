//! After each run in `watch`: which committed tables changed, and a short look at each (rows,
//! schema changes, first rows), so a save shows its effect without another command.

use std::collections::BTreeMap;
use std::io::Write;

use crate::Result;
use crate::exec::{Engine, ExecError, committed_context};
use crate::report::{OutputFormat, print_batches};
use crate::store::{Column, StageManifest, Store, TableBuild};

/// The committed builds, by `stage.table`.
pub type Snapshot = BTreeMap<String, TableBuild>;

pub async fn snapshot(store: &Store) -> Result<(Snapshot, BTreeMap<String, StageManifest>)> {
    let manifests = store.read_manifests().await?;
    let tables = manifests
        .iter()
        .flat_map(|(stage, m)| {
            m.tables
                .iter()
                .map(move |(t, b)| (format!("{stage}.{t}"), b.clone()))
        })
        .collect();
    Ok((tables, manifests))
}

/// Print each table whose committed build differs from `before`, with up to `rows` rows.
pub async fn print_changes(store: &Store, before: &Snapshot, rows: usize) -> Result<()> {
    let (after, manifests) = snapshot(store).await?;
    let changed: Vec<(&String, &TableBuild)> = after
        .iter()
        .filter(|(name, b)| before.get(*name).is_none_or(|old| old.key != b.key))
        .collect();
    let mut out = std::io::stdout().lock();
    if changed.is_empty() {
        writeln!(out, "no table changed")?;
        return Ok(());
    }
    let engine = Engine::new(store).map_err(ExecError::Engine)?;
    let ctx = committed_context(&engine, store, &manifests)
        .await
        .map_err(|(table, cause)| crate::Error::Query {
            message: format!("cannot read committed table {table}"),
            cause,
        })?;
    for (name, build) in changed {
        let old = before.get(name);
        let count = match old {
            Some(o) if o.rows != build.rows => format!("{} -> {} rows", o.rows, build.rows),
            _ => format!("{} rows", build.rows),
        };
        let schema = old.map(|o| schema_change(&o.schema, &build.schema));
        let schema = match schema.filter(|s| !s.is_empty()) {
            Some(s) => format!("; schema: {s}"),
            None if old.is_none() => "; new".to_string(),
            None => String::new(),
        };
        writeln!(out, "changed {name}: {count}{schema}")?;
        if rows == 0 {
            continue;
        }
        drop(out);
        let batches = match ctx.sql(&format!("SELECT * FROM {name} LIMIT {rows}")).await {
            Ok(df) => df.collect().await,
            Err(e) => Err(e),
        };
        if let Ok(batches) = batches {
            print_batches(&batches, OutputFormat::Table)?;
        }
        out = std::io::stdout().lock();
    }
    Ok(())
}

/// Columns added, removed or retyped, in words: `+email Utf8, -name, amount Int64 -> Float64`.
pub(crate) fn schema_change(old: &[Column], new: &[Column]) -> String {
    let find = |cols: &[Column], name: &str| cols.iter().find(|c| c.name == name).cloned();
    let mut parts = Vec::new();
    for c in new {
        match find(old, &c.name) {
            None => parts.push(format!("+{} {}", c.name, c.data_type)),
            Some(o) if o.data_type != c.data_type => {
                parts.push(format!("{} {} -> {}", c.name, o.data_type, c.data_type))
            }
            Some(_) => {}
        }
    }
    for c in old.iter().filter(|c| find(new, &c.name).is_none()) {
        parts.push(format!("-{}", c.name));
    }
    parts.join(", ")
}
