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

/// One partition a task's build has: its folder (`day=2026-12-01`), its key, and for a load
/// the files it reads.
#[derive(Debug, Clone)]
pub struct Wanted {
    pub path: String,
    pub key: String,
    pub files: Vec<String>,
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
            }
            Wanted {
                path: path.clone(),
                key: hash_text(&text),
                files: Vec::new(),
            }
        })
        .collect();
    let tables = partitioned.into_iter().map(|(n, _)| n.clone()).collect();
    Ok((tables, wanted))
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
            for f in &files {
                text.push_str(&format!(
                    "{}\t{}\t{}\t{}\n",
                    f.location,
                    f.size,
                    f.last_modified.timestamp_nanos_opt().unwrap_or(0),
                    f.e_tag.as_deref().unwrap_or("")
                ));
            }
            Wanted {
                path,
                key: hash_text(&text),
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
            run_id: build.run_id.clone(),
        })
        .collect()
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
