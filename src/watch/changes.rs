//! After each run in `watch`: which committed tables changed, and a short look at each (rows,
//! schema changes, first rows), so a save shows its effect without another command.

use std::collections::BTreeMap;

use crate::Result;
use crate::names::TableName;
use crate::report::{OutputFormat, out, print_batches, schema_change};
use crate::session::Reader;
use crate::store::{Store, TableBuild};

/// The committed builds, by `stage.table`.
pub type Snapshot = BTreeMap<String, TableBuild>;

pub async fn snapshot(store: &Store) -> Result<Snapshot> {
    let manifests = store.read_manifests().await?;
    Ok(manifests
        .iter()
        .flat_map(|(stage, m)| {
            m.tables
                .iter()
                .map(move |(t, b)| (format!("{stage}.{t}"), b.clone()))
        })
        .collect())
}

/// A new build whose rows or columns differ from the old one's: early cutoff gives a table
/// a new key with the same rows (its content hash, whatever their order).
fn differs(old: &TableBuild, new: &TableBuild) -> bool {
    let same_rows = old.content.is_some() && old.content == new.content;
    old.key != new.key && !(same_rows && old.schema == new.schema)
}

/// Print each table whose committed build differs from `before`, with up to `rows` rows.
pub async fn print_changes(
    store: &Store,
    engine: &crate::engine::Engine,
    before: &Snapshot,
    rows: usize,
) -> Result<()> {
    let after = snapshot(store).await?;
    let changed: Vec<(&String, &TableBuild)> = after
        .iter()
        .filter(|(name, b)| before.get(*name).is_none_or(|old| differs(old, b)))
        .collect();
    if changed.is_empty() {
        out("no table changed");
        return Ok(());
    }
    let reader = Reader::open(store, engine).await?;
    for (name, build) in changed {
        let old = before.get(name);
        let count = match old {
            Some(o) if o.rows != build.rows => format!("{} -> {} rows", o.rows, build.rows),
            _ => crate::report::plural(build.rows, "row"),
        };
        let schema = old.map(|o| schema_change(&o.schema, &build.schema));
        let schema = match schema.filter(|s| !s.is_empty()) {
            Some(s) => format!("; schema: {s}"),
            None if old.is_none() => "; new".to_string(),
            None => String::new(),
        };
        out(&format!("changed {name}: {count}{schema}"));
        let Some(table) = TableName::parse(name).filter(|_| rows > 0) else {
            continue;
        };
        if let Ok(batches) = reader.head(&table, rows).await {
            print_batches(&batches, OutputFormat::Table)?;
        }
    }
    Ok(())
}
