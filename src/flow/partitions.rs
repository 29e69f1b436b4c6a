//! Which partitions a partitioned task has, and what decides each (its key): the part of
//! incremental runs that needs no engine, shared by a run (`exec::partitions`) and by
//! `weir status`.
//!
//! A partition's key is the task's key without what is partitioned (its partitioned inputs'
//! keys, or a load's fingerprint of all its files), with the content of its own input
//! partitions (or the fingerprint of its own files) in their place: a new day changes one
//! partition's key, a changed dimension table every key.

use std::collections::{BTreeMap, BTreeSet};

use object_store::ObjectMeta;

use super::Task;
use crate::names::TableName;
use crate::store::cache_key::hash_text;
use crate::store::{KeyParts, Partition, TableBuild};

/// Which partitions of a task ran in a run, of how many it has.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Counted {
    /// The folders computed, in order (`day=2026-12-01`).
    pub ran: Vec<String>,
    pub total: usize,
    /// Stale ones left as they were (`--partition`).
    pub left: usize,
    /// Computed by an earlier run of the same key that stopped before it finished.
    pub resumed: usize,
}

impl Counted {
    /// `1 of 365 partitions ran`.
    pub fn summary(&self) -> String {
        let ran = format!(
            "{} of {} ran",
            self.ran.len(),
            crate::report::plural(self.total as u64, "partition")
        );
        let mut text = ran;
        if self.resumed > 0 {
            text.push_str(&format!(", {} taken from a run that stopped", self.resumed));
        }
        if self.left > 0 {
            text.push_str(&format!(
                ", {} stale left as they were (--partition)",
                self.left
            ));
        }
        text
    }
}

/// One partition a task's build has: its folder (`day=2026-12-01`), its key, and for a load
/// the files it reads.
#[derive(Debug, Clone)]
pub struct Wanted {
    pub path: String,
    pub key: String,
    pub files: Vec<String>,
    /// What the key took from the partitioned inputs (`Partition::inputs`).
    pub inputs: BTreeMap<String, String>,
}

/// An incremental task's partitions: those of its inputs partitioned by its columns, which it
/// reads restricted to each partition (the first value). `Err`: none is, in words.
pub fn by_inputs(
    task: &Task,
    parts: &KeyParts,
    inputs: &[(TableName, TableBuild)],
) -> Result<(BTreeSet<TableName>, Vec<Wanted>), String> {
    let columns = &task.decl.opts.partition_by;
    let partitioned: Vec<&(TableName, TableBuild)> = inputs
        .iter()
        .filter(|(_, b)| b.partition_by.iter().map(|c| &c.name).eq(columns.iter()))
        .collect();
    if partitioned.is_empty() {
        let names: Vec<String> = inputs.iter().map(|(n, _)| n.to_string()).collect();
        let (by, quoted) = (columns.join(", "), columns.join("\", \""));
        return Err(format!(
            "{} is incremental by {by}, but none of its inputs ({}) is partitioned by {by}: declare `partition_by: [\"{quoted}\"]` on the task that makes the table it computes from, or drop `incremental`",
            task.id,
            names.join(", "),
        ));
    }
    let mut parts = parts.clone();
    parts
        .inputs
        .retain(|name, _| !partitioned.iter().any(|(n, _)| n.to_string() == *name));
    let base = parts.key();
    let stored: Vec<(&TableName, &TableBuild, Vec<Partition>)> = partitioned
        .iter()
        .map(|(n, b)| (n, b, stored_partitions(b)))
        .collect();
    let paths: BTreeSet<&String> = stored
        .iter()
        .flat_map(|(_, _, ps)| ps.iter().map(|p| &p.path))
        .collect();
    let wanted = paths
        .into_iter()
        .map(|path| {
            let mut text = format!("weir partition\t{base}\t{path}\n");
            let mut inputs = BTreeMap::new();
            for (name, build, partitions) in &stored {
                let what = match partitions.iter().find(|p| &p.path == path) {
                    None => "absent".to_string(),
                    Some(Partition {
                        content: Some(c), ..
                    }) => c.clone(),
                    // No hash: changed, as far as anyone can tell.
                    Some(_) => format!("build {}", build.build),
                };
                text.push_str(&format!("{name}\t{what}\n"));
                inputs.insert(name.to_string(), what);
            }
            Wanted {
                path: path.clone(),
                key: hash_text(&text),
                files: Vec::new(),
                inputs,
            }
        })
        .collect();
    let tables = partitioned.into_iter().map(|(n, _)| n.clone()).collect();
    Ok((tables, wanted))
}

/// The partitions of partitioned load `step` (its files as its plan listed them); `None` when
/// its files are not in Hive folders, or are remote text (staged and loaded whole).
pub fn of_load(task: &Task, step: &super::Step) -> Option<Vec<Wanted>> {
    let crate::script::TaskKind::Load(spec) = &task.decl.kind else {
        return None;
    };
    let remote = spec.url().is_some_and(|u| u.scheme() != "file");
    if step.listed.is_empty() || (remote && spec.format != crate::script::FileFormat::Parquet) {
        return None;
    }
    let url = datafusion::datasource::listing::ListingTableUrl::parse(&spec.resolved).ok()?;
    let root = url.object_store();
    let columns = &task.decl.opts.partition_by;
    by_folders(columns, &step.parts, &step.listed, root.as_str())
}

/// A load's partitions: `files` (under the object store `root`, a URL) grouped by their Hive
/// folders for `columns`; `None` when some file sits in no such folder.
pub fn by_folders(
    columns: &[String],
    parts: &KeyParts,
    files: &[ObjectMeta],
    root: &str,
) -> Option<Vec<Wanted>> {
    let mut groups: BTreeMap<String, Vec<&ObjectMeta>> = BTreeMap::new();
    for f in files {
        let segments: Vec<&str> = f.location.as_ref().split('/').collect();
        let mut path = Vec::with_capacity(columns.len());
        for c in columns {
            let prefix = format!("{c}=");
            path.push(*segments.iter().find(|s| s.starts_with(&prefix))?);
        }
        groups.entry(path.join("/")).or_default().push(f);
    }
    let mut parts = parts.clone();
    parts.external = None;
    let base = parts.key();
    let wanted = groups
        .into_iter()
        .map(|(path, files)| {
            let mut text = format!("weir partition\t{base}\t{path}\n");
            let mut listed = String::new();
            for f in &files {
                listed.push_str(&format!(
                    "{}\t{}\t{}\t{}\n",
                    f.location,
                    f.size,
                    f.last_modified.timestamp_nanos_opt().unwrap_or(0),
                    f.e_tag.as_deref().unwrap_or("")
                ));
            }
            text.push_str(&listed);
            Wanted {
                path,
                key: hash_text(&text),
                inputs: BTreeMap::from([("files".to_string(), hash_text(&listed))]),
                files: files
                    .iter()
                    .map(|f| format!("{root}{}", f.location))
                    .collect(),
            }
        })
        .collect();
    Some(wanted)
}

/// A build's partitions: as recorded, or, for a build made before partitions were recorded,
/// its files' folders (without hashes).
pub fn stored_partitions(build: &TableBuild) -> Vec<Partition> {
    if !build.partitions.is_empty() {
        return build.partitions.clone();
    }
    let mut folders: BTreeSet<String> = BTreeSet::new();
    for f in &build.files {
        let inside: Vec<&str> = f
            .split('/')
            .filter(|p| {
                build
                    .partition_by
                    .iter()
                    .any(|c| p.starts_with(&format!("{}=", c.name)))
            })
            .collect();
        if !inside.is_empty() && inside.len() == build.partition_by.len() {
            folders.insert(inside.join("/"));
        }
    }
    folders
        .into_iter()
        .map(|path| Partition {
            path,
            rows: 0,
            bytes: 0,
            content: None,
            key: None,
            inputs: BTreeMap::new(),
            run_id: build.run_id.clone(),
        })
        .collect()
}

/// Why each partition in `range` of a task stands as it does, against its committed build:
/// `(folder, why)`, `why` empty for a fresh one. `whole` is what changed in the task as a whole
/// (its code, an unpartitioned input): every partition is computed again for it.
pub fn reasons(
    wanted: &[Wanted],
    committed: Option<&TableBuild>,
    whole: &[String],
    range: &PartitionRange,
) -> Vec<(String, String)> {
    let old: BTreeMap<&str, &Partition> = committed
        .map(|b| b.partitions.iter().map(|p| (p.path.as_str(), p)).collect())
        .unwrap_or_default();
    let mut out = Vec::new();
    for w in wanted.iter().filter(|w| range.contains(&w.path)) {
        let why = match old.get(w.path.as_str()) {
            None => "new: not in the committed build".to_string(),
            Some(p) if p.key.as_deref() == Some(&w.key) => String::new(),
            Some(p) => {
                let mut why: Vec<String> = w
                    .inputs
                    .iter()
                    .filter(|(name, what)| p.inputs.get(*name) != Some(*what))
                    .map(|(name, what)| match (name.as_str(), p.inputs.get(name)) {
                        ("files", _) => "its files changed".to_string(),
                        (_, None) => format!("new input {name}"),
                        (_, Some(was)) => {
                            format!(
                                "{name}'s partition changed ({} -> {})",
                                short(was),
                                short(what)
                            )
                        }
                    })
                    .collect();
                why.extend(whole.iter().cloned());
                if why.is_empty() {
                    why.push("computed from other inputs than now".into());
                }
                why.join(", ")
            }
        };
        out.push((w.path.clone(), why));
    }
    let paths: BTreeSet<&str> = wanted.iter().map(|w| w.path.as_str()).collect();
    for path in old
        .keys()
        .filter(|p| !paths.contains(**p) && range.contains(p))
    {
        out.push((
            path.to_string(),
            "dropped: its inputs no longer have it".into(),
        ));
    }
    out.sort();
    out
}

/// A row hash as shown: its first digits.
fn short(hash: &str) -> &str {
    // A record edited by hand may hold anything: never cut inside a character.
    hash.get(..8).unwrap_or(hash)
}

/// How a task's wanted partitions stand against its committed build's.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Standing {
    pub fresh: usize,
    /// Not in the committed build.
    pub new: usize,
    /// In it, made from something else.
    pub changed: usize,
    /// In it, no longer wanted: dropped by the next run.
    pub dropped: usize,
}

impl Standing {
    pub fn of(wanted: &[Wanted], committed: Option<&TableBuild>) -> Standing {
        let old: BTreeMap<&str, Option<&str>> = committed
            .map(|b| {
                b.partitions
                    .iter()
                    .map(|p| (p.path.as_str(), p.key.as_deref()))
                    .collect()
            })
            .unwrap_or_default();
        let mut s = Standing::default();
        for w in wanted {
            match old.get(w.path.as_str()) {
                None => s.new += 1,
                Some(Some(k)) if *k == w.key => s.fresh += 1,
                Some(_) => s.changed += 1,
            }
        }
        let paths: BTreeSet<&str> = wanted.iter().map(|w| w.path.as_str()).collect();
        s.dropped = old.keys().filter(|p| !paths.contains(*p)).count();
        s
    }

    /// `31 partitions: 30 fresh, 1 stale (1 new)`.
    pub fn summary(&self) -> String {
        let total = self.fresh + self.new + self.changed;
        let mut why = Vec::new();
        if self.new > 0 {
            why.push(format!("{} new", self.new));
        }
        if self.changed > 0 {
            why.push(format!("{} changed", self.changed));
        }
        let mut text = format!(
            "{}: {} fresh",
            crate::report::plural(total as u64, "partition"),
            self.fresh
        );
        if !why.is_empty() {
            text.push_str(&format!(
                ", {} stale ({})",
                self.new + self.changed,
                why.join(", ")
            ));
        }
        if self.dropped > 0 {
            text.push_str(&format!(", {} to drop", self.dropped));
        }
        text
    }
}

/// `--partition`: the partitions a run computes, by the values of one partition column: one
/// value, several (`a,b`), or a range with both ends included (`a..b`; numbers compared as
/// numbers, anything else as text, which orders ISO dates).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PartitionRange {
    pub column: String,
    values: Values,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Values {
    List(Vec<String>),
    Between(String, String),
}

impl PartitionRange {
    pub fn parse(text: &str) -> Result<PartitionRange, String> {
        let usage =
            "write COLUMN=VALUE, COLUMN=A,B or COLUMN=FROM..TO, e.g. day=2026-12-01..2026-12-07";
        let Some((column, values)) = text.split_once('=') else {
            return Err(format!("`{text}` names no column: {usage}"));
        };
        let column = column.trim();
        if !crate::names::is_identifier(column) || values.is_empty() {
            return Err(format!("`{text}` is not a partition: {usage}"));
        }
        let values = match values.split_once("..") {
            Some((from, to)) if !from.is_empty() && !to.is_empty() => {
                if compare(from, to) == std::cmp::Ordering::Greater {
                    return Err(format!("`{text}`: the range ends before it starts"));
                }
                Values::Between(from.to_string(), to.to_string())
            }
            Some(_) => return Err(format!("`{text}`: a range needs both ends: {usage}")),
            None => Values::List(values.split(',').map(str::to_string).collect()),
        };
        Ok(PartitionRange {
            column: column.to_string(),
            values,
        })
    }

    /// Whether the partition in folder `path` is in the range (one without the column is).
    pub fn contains(&self, path: &str) -> bool {
        let values = Partition::values_of(path);
        let Some((_, value)) = values.iter().find(|(c, _)| *c == self.column) else {
            return true;
        };
        match &self.values {
            Values::List(list) => list.iter().any(|v| v == value),
            Values::Between(from, to) => {
                compare(from, value) != std::cmp::Ordering::Greater
                    && compare(value, to) != std::cmp::Ordering::Greater
            }
        }
    }
}

impl std::fmt::Display for PartitionRange {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.values {
            Values::List(list) => write!(f, "{}={}", self.column, list.join(",")),
            Values::Between(from, to) => write!(f, "{}={from}..{to}", self.column),
        }
    }
}

/// Two partition values in order: as numbers when both are.
fn compare(a: &str, b: &str) -> std::cmp::Ordering {
    match (a.parse::<i64>(), b.parse::<i64>()) {
        (Ok(a), Ok(b)) => a.cmp(&b),
        _ => a.cmp(b),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges_take_values_lists_and_both_ends() {
        let day = PartitionRange::parse("day=2026-11-30..2026-12-02").unwrap();
        assert!(day.contains("day=2026-11-30") && day.contains("day=2026-12-02"));
        assert!(!day.contains("day=2026-12-03") && !day.contains("day=2026-11-29"));
        let n = PartitionRange::parse("n=9..10").unwrap();
        assert!(
            n.contains("n=10") && !n.contains("n=100"),
            "numbers as numbers"
        );
        let list = PartitionRange::parse("region=eu,us").unwrap();
        assert!(list.contains("day=1/region=us") && !list.contains("region=asia"));
        for bad in ["day", "=x", "day=", "day=b..a", "day=..a", "1x=2"] {
            assert!(PartitionRange::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn a_files_partition_is_its_last_folders_in_any_build() {
        let held = "tables/m/t/k1/run1/region=eu/day=2026-01-01/a.parquet";
        assert_eq!(
            Partition::of_file(held, 2).as_deref(),
            Some("region=eu/day=2026-01-01")
        );
        assert_eq!(
            Partition::of_file(held, 1).as_deref(),
            Some("day=2026-01-01")
        );
        // Not deep enough in `col=value` folders, or not partitioned.
        assert_eq!(
            Partition::of_file("tables/m/t/k1/run1/day=1/a.parquet", 2),
            None
        );
        assert_eq!(Partition::of_file(held, 0), None);
        assert_eq!(Partition::of_file("a.parquet", 1), None);
    }
}
