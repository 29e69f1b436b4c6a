//! Partitions as the unit of work: an incremental task (`partition_by` with `incremental:
//! true`) is evaluated once per partition whose inputs changed, each partitioned input read as
//! that partition's rows only; a load of Hive folders (`day=*/`) reads each changed folder
//! alone. Every other partition keeps its files where an earlier build wrote them: the new
//! build's record names them there (`store::views` shows DataFusion each build whole).
//!
//! A partition's key is the task's key without what is partitioned (its partitioned inputs'
//! keys, or its files' fingerprint), with the content of its own input partitions (or the
//! fingerprint of its own files) in their place: a new day changes one partition's key, a
//! changed dimension table every key.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::sync::Arc;

use datafusion::prelude::{DataFrame, lit};
use futures::{StreamExt, TryStreamExt};
use object_store::path::Path as ObjectPath;

use super::task::{Attempt, Only, Ran};
use super::write::{Data, record, write_data};
use super::{Shared, TaskError};
use crate::flow::partitions::{Counted, Wanted, by_inputs, of_load};
use crate::names::TableName;
use crate::script::{LoadSpec, TaskKind};
use crate::store::cache_key::hash_text;
use crate::store::{Partition, TableBuild};

/// Where a task's partitions come from.
enum From {
    /// Its inputs partitioned by the task's columns, read restricted to each partition.
    Inputs(BTreeSet<TableName>),
    /// A load's Hive folders, each read alone: text files with the columns and types all
    /// the table's files share (`file_schema`), not what one folder's first rows suggest.
    Folders(Option<datafusion::arrow::datatypes::SchemaRef>),
}

/// Run task `index` partition by partition, when it is incremental or a load of Hive folders;
/// `None` when it is computed whole.
pub async fn run(
    shared: &Arc<Shared>,
    index: usize,
    inputs: &[(TableName, TableBuild)],
    others: &[(TableName, TableBuild)],
    committed: &HashMap<TableName, TableBuild>,
    attempt: Attempt,
) -> Result<Option<Ran>, TaskError> {
    let task = &shared.flow.tasks[index];
    let columns = &task.decl.opts.partition_by;
    let (from, wanted) = match &task.decl.kind {
        TaskKind::Load(spec) if !columns.is_empty() && !spec.in_place => {
            let Some(wanted) = of_load(task, &shared.steps[index]) else {
                return Ok(None);
            };
            let name = TableName::new(&task.decl.stage, &task.decl.outputs[0]);
            let old = committed.get(&name).filter(|_| !shared.steps[index].forced);
            let schema = file_schema(shared, index, spec, &wanted, old).await?;
            (From::Folders(schema), wanted)
        }
        TaskKind::Sql { .. } | TaskKind::Rhai { .. } if task.decl.opts.incremental => {
            // No input partitioned by its columns, which the flow makes sure of for the
            // script's own tables: given rows (`weir test`, the REPL). Computed whole.
            let Ok((partitioned, wanted)) = by_inputs(task, &shared.steps[index].parts, inputs)
            else {
                return Ok(None);
            };
            (From::Inputs(partitioned), wanted)
        }
        _ => return Ok(None),
    };
    let step = &shared.steps[index];
    let mut outputs: Vec<Output> = Vec::new();
    for table in &task.decl.outputs {
        let name = TableName::new(&task.decl.stage, table);
        let old = committed
            .get(&name)
            .filter(|b| b.partition_by.len() == columns.len());
        let dir = shared.store.layout.build_dir(
            &task.decl.stage,
            table,
            step.key.as_str(),
            &build_name(shared, attempt),
        );
        outputs.push(Output {
            table: table.clone(),
            dir,
            kept: old.map(by_partition).unwrap_or_default(),
            old: old.cloned(),
            partitions: BTreeMap::new(),
            schema: None,
            copies: Vec::new(),
        });
    }
    let mut counted = Counted {
        total: wanted.len(),
        ..Counted::default()
    };
    // `--partition`: what is outside it stays as it is, and the build is partial.
    let range = shared
        .partitions
        .range
        .as_ref()
        .filter(|r| columns.contains(&r.column));
    let mut partial = inputs.iter().any(|(_, b)| b.partial);
    let paths: BTreeSet<String> = wanted.iter().map(|w| w.path.clone()).collect();
    let mut compute = Vec::new();
    for w in wanted {
        let in_range = range.is_none_or(|r| r.contains(&w.path));
        let same = outputs.iter().all(|o| {
            o.kept
                .get(&w.path)
                .is_some_and(|(p, _)| p.key.as_deref() == Some(&w.key))
        });
        let cleared = step.cleared_partitions.iter().any(|r| r.contains(&w.path));
        if in_range && (step.forced || cleared || !same) {
            compute.push(w);
            continue;
        }
        if !same {
            counted.left += 1;
            partial = true;
        }
        for o in &mut outputs {
            o.keep(shared, &w.path);
        }
    }
    // Committed partitions no longer wanted are dropped, unless left out.
    if let Some(range) = range {
        let gone: Vec<String> = outputs
            .iter()
            .flat_map(|o| o.old.iter().flat_map(|b| &b.partitions))
            .map(|p| p.path.clone())
            .filter(|p| !paths.contains(p) && !range.contains(p))
            .collect::<BTreeSet<_>>()
            .into_iter()
            .collect();
        for path in gone {
            counted.left += 1;
            partial = true;
            for o in &mut outputs {
                o.keep(shared, &path);
            }
        }
    }
    // What a run stopped midway (killed, failed) computed for this key is taken, not redone.
    if !step.forced && !compute.is_empty() {
        let found = resumable(shared, &outputs, &compute).await?;
        let mut rest = Vec::with_capacity(compute.len());
        for w in compute {
            // A cleared partition is computed again, not taken from an earlier build.
            if step.cleared_partitions.iter().any(|r| r.contains(&w.path)) {
                rest.push(w);
                continue;
            }
            let all: Option<Vec<&Done>> = outputs
                .iter()
                .map(|o| found.get(&(o.table.clone(), w.path.clone())))
                .collect();
            match all {
                Some(records)
                    if records
                        .iter()
                        .all(|d| d.partition.key.as_deref() == Some(&w.key)) =>
                {
                    for (o, record) in outputs.iter_mut().zip(records) {
                        o.resume(shared, record);
                    }
                    counted.resumed += 1;
                }
                _ => rest.push(w),
            }
        }
        compute = rest;
    }
    for o in &mut outputs {
        o.copy_kept(shared).await?;
    }
    let build = build_name(shared, attempt);
    let dirs: Vec<(String, ObjectPath)> = outputs
        .iter()
        .map(|o| (o.table.clone(), o.dir.clone()))
        .collect();
    let job = Job {
        shared,
        index,
        inputs,
        attempt,
        from: &from,
        dirs: &dirs,
        build: &build,
    };
    // Boxed, so the stream's type names no closure: a task's future must be `Send` for
    // every lifetime, which a closure's borrowed argument cannot promise.
    type Computing<'a> =
        futures::future::BoxFuture<'a, Result<(&'a Wanted, Vec<(String, Data)>), TaskError>>;
    let mut work: Vec<Computing<'_>> = Vec::with_capacity(compute.len());
    for w in &compute {
        work.push(Box::pin(job.compute(w)));
    }
    let cores = std::thread::available_parallelism().map_or(2, |n| n.get());
    let at_once = shared.partitions.jobs.unwrap_or(cores).clamp(1, 4);
    let results: Vec<(&Wanted, Vec<(String, Data)>)> = futures::stream::iter(work)
        .buffer_unordered(at_once)
        .try_collect()
        .await?;
    let mut ran = Ran::computing_nothing(Vec::new(), Vec::new(), None);
    for (w, written) in results {
        counted.ran.push(w.path.clone());
        for (table, data) in written {
            let Some(o) = outputs.iter_mut().find(|o| o.table == table) else {
                continue;
            };
            ran.spilled_bytes += data.spilled_bytes;
            o.computed(&shared.store.layout, w, data, &mut ran.plans)?;
        }
    }
    counted.ran.sort();
    for o in outputs {
        let mut build = o.finish(shared, index, attempt)?;
        build.partial = partial;
        record(&shared.store, &build).await?;
        ran.builds.push(build);
    }
    ran.checks = super::checks::verify(shared, index, &mut ran.builds, others).await?;
    if super::cutoff::same_as_committed(&ran.builds, committed) {
        ran.note = Some(super::cutoff::REBUILT_UNCHANGED);
    }
    ran.partitions = Some(counted);
    Ok(Some(ran))
}

/// A partition computed into a build that may never be recorded: found by the next run of
/// the same key (`resumable`) when the run that computed it stopped.
#[derive(Debug, serde::Serialize, serde::Deserialize)]
struct Done {
    partition: Partition,
    /// Its files, relative to the instance.
    files: Vec<String>,
    /// The table's columns, as computed.
    schema: Vec<crate::store::Column>,
}

/// Where a partition's `Done` record goes in a build's folder.
fn done_path(dir: &ObjectPath, path: &str) -> ObjectPath {
    dir.clone()
        .join("_partitions")
        .join(format!("{}.json", hash_text(path)))
}

/// Record partition `w` of a build, just written as `data`.
async fn done(shared: &Shared, dir: &ObjectPath, w: &Wanted, data: &Data) -> Result<(), TaskError> {
    let Some(partition) = data.partitions.first() else {
        return Ok(());
    };
    let record = Done {
        partition: Partition {
            key: Some(w.key.clone()),
            inputs: w.inputs.clone(),
            ..partition.clone()
        },
        files: data
            .files
            .iter()
            .map(|m| shared.store.layout.relative(&m.location))
            .collect(),
        schema: data.schema.clone(),
    };
    shared
        .store
        .put_json(&done_path(dir, &w.path), &record)
        .await
        .map_err(|e| TaskError::store(format!("recording partition {}", w.path), e))
}

/// The `Done` records of `compute`'s partitions in the other builds of the task's key, by
/// (table, partition), whose files are all still there.
async fn resumable(
    shared: &Shared,
    outputs: &[Output],
    compute: &[Wanted],
) -> Result<HashMap<(String, String), Done>, TaskError> {
    let (store, layout) = (&shared.store, &shared.store.layout);
    let mut found = HashMap::new();
    for o in outputs {
        let Some(key_dir) = parent(&o.dir) else {
            continue;
        };
        let failed = |e| TaskError::store(format!("looking for partitions of {}", o.table), e);
        let listed = store.list(&key_dir).await.map_err(failed)?;
        let there: HashSet<String> = listed
            .iter()
            .map(|m| layout.relative(&m.location))
            .collect();
        for w in compute {
            let name = format!("{}.json", hash_text(&w.path));
            for meta in listed
                .iter()
                .filter(|m| m.location.filename() == Some(name.as_str()))
            {
                let Ok(Some(done)) = store.get_json::<Done>(&meta.location).await else {
                    continue;
                };
                let whole =
                    done.partition.path == w.path && done.files.iter().all(|f| there.contains(f));
                if whole {
                    found.insert((o.table.clone(), w.path.clone()), done);
                    break;
                }
            }
        }
    }
    Ok(found)
}

/// A path's folder.
fn parent(path: &ObjectPath) -> Option<ObjectPath> {
    let mut parts: Vec<_> = path.parts().collect();
    parts.pop()?;
    Some(ObjectPath::from_iter(parts))
}

/// What computing one partition needs.
struct Job<'a> {
    shared: &'a Arc<Shared>,
    index: usize,
    inputs: &'a [(TableName, TableBuild)],
    attempt: Attempt,
    from: &'a From,
    /// Each output's build folder, by table.
    dirs: &'a [(String, ObjectPath)],
    build: &'a str,
}

impl<'a> Job<'a> {
    /// Compute partition `w` of every output, into its folder of the new build.
    async fn compute(&self, w: &'a Wanted) -> Result<(&'a Wanted, Vec<(String, Data)>), TaskError> {
        let (shared, index) = (self.shared, self.index);
        let frames = match self.from {
            From::Inputs(partitioned) => {
                let only = Only {
                    tables: partitioned.clone(),
                    values: Partition::values_of(&w.path),
                };
                let inputs = self.inputs.to_vec();
                super::task::frames(shared, index, inputs, self.attempt, Some(&only)).await?
            }
            From::Folders(schema) => {
                load_folder(shared, index, self.attempt, w, schema.as_deref()).await?
            }
        };
        let mut written = Vec::with_capacity(frames.len());
        for (table, df) in frames {
            let Some((_, dir)) = self.dirs.iter().find(|(t, _)| *t == table) else {
                continue;
            };
            let target = super::task::target(shared, index, &table, self.build);
            super::task::keep_contract(shared, index, &table, &df)?;
            let data = write_data(&shared.store, df, &target, dir, Some(&w.path)).await?;
            done(shared, dir, w, &data).await?;
            written.push((table, data));
        }
        Ok((w, written))
    }
}

/// A partitioned build's partitions with their files, by folder (`day=2026-01-01`); a file's
/// partition is its last folders, in the build's own folder or one it keeps partitions in.
fn by_partition(build: &TableBuild) -> HashMap<String, (Partition, Vec<String>)> {
    let depth = build.partition_by.len();
    let mut out: HashMap<String, (Partition, Vec<String>)> = build
        .partitions
        .iter()
        .map(|p| (p.path.clone(), (p.clone(), Vec::new())))
        .collect();
    for file in &build.files {
        if let Some((_, files)) = Partition::of_file(file, depth).and_then(|p| out.get_mut(&p)) {
            files.push(file.clone());
        }
    }
    out
}

/// The name of a run's builds (`-frugal` for the attempt with less memory).
fn build_name(shared: &Shared, attempt: Attempt) -> String {
    match attempt {
        Attempt::First => shared.run.id.clone(),
        Attempt::Frugal => format!("{}-frugal", shared.run.id),
    }
}

/// One output table of the task as its new build is put together.
struct Output {
    table: String,
    dir: ObjectPath,
    /// Its committed build, whose partitions may be kept.
    old: Option<TableBuild>,
    /// Its partitions so far, with their files (relative to the instance), by folder.
    partitions: BTreeMap<String, (Partition, Vec<String>)>,
    schema: Option<Vec<crate::store::Column>>,
    /// The committed build's partitions with their files, by folder, until kept.
    kept: HashMap<String, (Partition, Vec<String>)>,
    /// Files of kept partitions to copy into the new build: (from, to).
    copies: Vec<(ObjectPath, ObjectPath)>,
}

impl Output {
    /// Keep the committed build's partition `path`: its files stay where they are, named by
    /// the new build (`store::views`), or, for a remote cluster, copied into its folder.
    fn keep(&mut self, shared: &Shared, path: &str) {
        let Some(old) = &self.old else {
            return;
        };
        // What is computed anew must have the columns of what is kept.
        self.schema.get_or_insert_with(|| old.schema.clone());
        if let Some((partition, files)) = self.kept.remove(path) {
            self.take(shared, partition, files);
        }
    }

    /// Put `partition` in the build with its `files`, which another build wrote.
    fn take(&mut self, shared: &Shared, partition: Partition, files: Vec<String>) {
        if !shared.engine.remote() {
            self.partitions
                .insert(partition.path.clone(), (partition, files));
            return;
        }
        let layout = &shared.store.layout;
        let folder = format!("/{}/", partition.path);
        let mut taken = Vec::with_capacity(files.len());
        for file in files {
            let Some((_, inside)) = file.split_once(&folder) else {
                continue;
            };
            let to = format!("{}/{inside}", partition.path)
                .split('/')
                .fold(self.dir.clone(), |p, part| p.join(part));
            taken.push(layout.relative(&to));
            self.copies.push((layout.absolute(&file), to));
        }
        self.partitions
            .insert(partition.path.clone(), (partition, taken));
    }

    /// Take a partition an earlier run of the key computed.
    fn resume(&mut self, shared: &Shared, done: &Done) {
        self.schema.get_or_insert_with(|| done.schema.clone());
        self.take(shared, done.partition.clone(), done.files.clone());
    }

    /// Copy the kept partitions' files a remote cluster must find in the build's folder, many
    /// at once.
    async fn copy_kept(&mut self, shared: &Shared) -> Result<(), TaskError> {
        let copies = std::mem::take(&mut self.copies);
        shared
            .store
            .copy_all(&copies)
            .await
            .map_err(|e| TaskError::store(format!("keeping partitions of {}", self.table), e))
    }

    /// Add a partition just computed.
    fn computed(
        &mut self,
        layout: &crate::store::Layout,
        w: &Wanted,
        data: Data,
        plans: &mut Vec<(String, String)>,
    ) -> Result<(), TaskError> {
        match &self.schema {
            Some(s) if !same_columns(s, &data.schema) => {
                return Err(TaskError::invalid(format!(
                    "{}: partition {} has other columns or types than its other partitions ({}, where they have {}): every partition must have the same; give the types (a load's `schema`, a CAST in SQL), or run with --force to compute every partition anew",
                    self.table,
                    w.path,
                    columns_text(&data.schema),
                    columns_text(s)
                )));
            }
            Some(_) => {}
            None => self.schema = Some(data.schema.clone()),
        }
        if plans.is_empty() {
            plans.push((self.table.clone(), data.plan.clone()));
        }
        let Some(mut partition) = data.partitions.into_iter().next() else {
            return Ok(());
        };
        partition.key = Some(w.key.clone());
        partition.inputs = w.inputs.clone();
        let files = data
            .files
            .iter()
            .map(|m| layout.relative(&m.location))
            .collect();
        self.partitions.insert(w.path.clone(), (partition, files));
        Ok(())
    }

    /// The new build: every partition's files, its rows and bytes, and a content hash over
    /// the partitions' own.
    fn finish(
        self,
        shared: &Shared,
        index: usize,
        attempt: Attempt,
    ) -> Result<TableBuild, TaskError> {
        let schema = self
            .schema
            .or_else(|| self.old.as_ref().map(|b| b.schema.clone()))
            .unwrap_or_default();
        let name = build_name(shared, attempt);
        let target = super::task::target(shared, index, &self.table, &name);
        let mut build = target.build(schema);
        let mut hasher = blake3::Hasher::new();
        let mut hashed = true;
        for (path, (partition, files)) in self.partitions {
            build.rows += partition.rows;
            build.bytes += partition.bytes;
            build.files.extend(files);
            match &partition.content {
                Some(c) => {
                    hasher.update(format!("{path}\t{c}\n").as_bytes());
                }
                None => hashed = false,
            }
            build.partitions.push(partition);
        }
        build.content = hashed.then(|| hasher.finalize().to_hex()[..32].to_string());
        Ok(build)
    }
}

/// The same names and types, in order (whether a column may be null varies with how its
/// partition was read).
fn same_columns(a: &[crate::store::Column], b: &[crate::store::Column]) -> bool {
    a.iter()
        .map(|c| (&c.name, &c.data_type))
        .eq(b.iter().map(|c| (&c.name, &c.data_type)))
}

/// Columns as `name type, ...`.
fn columns_text(columns: &[crate::store::Column]) -> String {
    let shown: Vec<String> = columns
        .iter()
        .map(|c| format!("{} {}", c.name, c.data_type))
        .collect();
    shown.join(", ")
}

/// The columns and types of a partitioned text load's files: its committed build's (without
/// the partition columns), or inferred from all its files at once. `None` for Parquet, whose
/// files say their own.
async fn file_schema(
    shared: &Arc<Shared>,
    index: usize,
    spec: &LoadSpec,
    wanted: &[Wanted],
    old: Option<&TableBuild>,
) -> Result<Option<datafusion::arrow::datatypes::SchemaRef>, TaskError> {
    use datafusion::arrow::datatypes::{Field, Schema};
    if spec.format == crate::script::FileFormat::Parquet {
        return Ok(None);
    }
    let task = &shared.flow.tasks[index];
    if let Some(old) = old {
        let fields: Option<Vec<Field>> = old
            .schema
            .iter()
            .filter(|c| !task.decl.opts.partition_by.contains(&c.name))
            .map(|c| Some(Field::new(&c.name, c.data_type.parse().ok()?, true)))
            .collect();
        if let Some(fields) = fields {
            return Ok(Some(Arc::new(Schema::new(fields))));
        }
    }
    let ctx = super::task::context(shared, index, &[], Attempt::First).await?;
    let files: Vec<String> = wanted.iter().flat_map(|w| w.files.clone()).collect();
    let df = super::load::load_files(&ctx, task, spec, shared, files, None).await?;
    Ok(Some(Arc::new(df.schema().as_arrow().clone())))
}

/// One Hive folder of a load, read alone, with its partition columns from the folder's name.
async fn load_folder(
    shared: &Arc<Shared>,
    index: usize,
    attempt: Attempt,
    w: &Wanted,
    schema: Option<&datafusion::arrow::datatypes::Schema>,
) -> Result<Vec<(String, DataFrame)>, TaskError> {
    let task = &shared.flow.tasks[index];
    let TaskKind::Load(spec) = &task.decl.kind else {
        return Ok(Vec::new());
    };
    let ctx = super::task::context(shared, index, &[], attempt).await?;
    let files = w.files.clone();
    let mut df = super::load::load_files(&ctx, task, spec, shared, files, schema).await?;
    for (column, value) in Partition::values_of(&w.path) {
        if df.schema().has_column_with_unqualified_name(&column) {
            continue;
        }
        df = df
            .with_column(&column, lit(value))
            .map_err(|e| TaskError::engine(format!("cannot load {}", spec.location), e))?;
    }
    Ok(vec![(task.decl.outputs[0].clone(), df)])
}
