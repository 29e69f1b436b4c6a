//! The plan: for every task its cache key, and whether to reuse a stored build or run.
//! Keys depend only on code, options, parameters, external fingerprints and the keys of the
//! inputs, so the whole plan is known before any task runs.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::Path;

use datafusion::execution::context::SessionState;

use super::{Flow, Task};
use crate::config::CacheMode;
use crate::names::TableName;
use crate::script::TaskKind;
use crate::store::cache_key::{FORMAT_VERSION, VOLATILE_AT};
use crate::store::{CacheKey, KeyParts, StageManifest, Store, StoreError, TableBuild, sources};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    /// Every output is stored for this key: no work.
    Reuse,
    /// Every output is stored for this key, but a data check has not run on it (a check
    /// added or changed, or a table a check reads changed): run the checks only.
    Check,
    Run,
    /// Outside `--select`: neither run nor committed anew.
    NotSelected,
}

/// How a task stands against what is committed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Freshness {
    Fresh,
    /// Committed with another key; the reasons say which parts changed.
    Stale(Vec<String>),
    /// Never committed, but a complete build for this key is stored (a run that failed later).
    Uncommitted,
    /// Marked by `weir clear`: rebuilt by the next run, whatever its key.
    Cleared,
    /// Committed with this key, but its stored files are gone: rebuilt by the next run.
    Damaged,
    Never,
}

pub struct Step {
    pub task: usize,
    pub parts: KeyParts,
    pub key: CacheKey,
    pub action: Action,
    pub freshness: Freshness,
    /// Runs whatever its key says: `--force` or the cache mode.
    pub forced: bool,
    /// Partitions `weir clear --partition` marked: computed again, whatever their keys.
    pub cleared_partitions: Vec<super::partitions::PartitionRange>,
    /// A partitioned load's files as the plan listed them for its key: its folders are read
    /// from this listing, not from another that could differ.
    pub listed: Vec<object_store::ObjectMeta>,
    /// The builds of the outputs when they are stored for this key (or, for a task outside
    /// the selection, as committed).
    pub builds: Vec<TableBuild>,
    /// For a sample, the committed build of the other instance's table it reads.
    pub sampled: Option<TableBuild>,
    /// The key of each of the task's data checks (`Task::checks`, in order): what the check
    /// is and the key of any other table it reads. A build that has a check's key in its
    /// `checks` has passed it.
    pub checks: Vec<String>,
}

impl Step {
    /// Run the task on `given` builds of its inputs instead of the script's (the REPL's given
    /// inputs, `weir test`): its key covers theirs, so its build never passes for the
    /// script's, and it is computed whatever the plan said.
    pub fn given(&mut self, given: &[(TableName, TableBuild)]) {
        for (input, build) in given {
            self.parts
                .inputs
                .insert(input.to_string(), build.key.clone());
        }
        self.key = self.parts.key();
        self.action = Action::Run;
    }

    pub fn reasons(&self) -> Vec<String> {
        match &self.freshness {
            _ if self.action == Action::Check => vec!["checks not run on this build".into()],
            Freshness::Cleared => vec!["cleared".into()],
            Freshness::Damaged => vec!["damaged: its stored files are missing".into()],
            _ if self.forced && self.action == Action::Run => vec!["forced".into()],
            Freshness::Fresh => vec![],
            Freshness::Stale(why) => why.clone(),
            Freshness::Uncommitted => vec!["built, not committed".into()],
            Freshness::Never => vec!["never built".into()],
        }
    }
}

pub struct Plan {
    pub steps: Vec<Step>,
    pub manifests: BTreeMap<String, StageManifest>,
    /// Tasks whose outside inputs (files, `cache` tokens) changed since their committed build,
    /// with what changed: what `assert-no-fresh-input` refuses.
    pub fresh_inputs: Vec<(usize, Vec<&'static str>)>,
    /// The content hashes of local sources as this plan saw them, when they changed: a run
    /// keeps them for the next plan.
    pub source_hashes: Option<sources::SourceHashes>,
    /// Loads whose location lists no file, or cannot be listed: (task, why). Their keys never
    /// match, so a run that went on would run them and fail.
    pub missing_sources: Vec<(usize, String)>,
}

impl Plan {
    /// The committed build of `table`, if its stage committed one.
    pub fn committed(&self, table: &TableName) -> Option<&TableBuild> {
        self.manifests
            .get(&table.stage)
            .and_then(|m| m.tables.get(&table.table))
    }
}

pub struct PlanOptions<'a> {
    pub selected: &'a BTreeSet<usize>,
    pub force: bool,
    pub script_dir: &'a Path,
    pub cache_mode: CacheMode,
    /// The stores of the instances that samples read from, by instance name.
    pub instances: &'a BTreeMap<String, Store>,
    /// Tasks `weir clear` marked: rebuilt by the next run that selects them.
    pub cleared: &'a BTreeSet<String>,
}

impl PlanOptions<'_> {
    /// Whether a task runs whatever its key: `--force`, `force-cache-invalid`, or
    /// `force-fresh-input` for a task that reads outside the store.
    fn forces(&self, parts: &KeyParts) -> bool {
        self.force
            || self.cache_mode == CacheMode::ForceCacheInvalid
            || (self.cache_mode == CacheMode::ForceFreshInput && parts.has_fresh_input())
    }
}

pub async fn plan(
    flow: &Flow,
    store: &Store,
    state: &SessionState,
    opts: PlanOptions<'_>,
) -> Result<Plan, StoreError> {
    let manifests = committed_stages(flow, store).await?;
    let damaged = store.damaged(manifests.values()).await?;
    let hashes = sources::HashCache::new(store.read_source_hashes().await?, opts.script_dir);
    let (outside, missing_sources) = Outside::gather(flow, store, state, &opts, &hashes).await?;

    // The key each table is read at, filled in dependency order.
    let mut table_keys: HashMap<TableName, CacheKey> = HashMap::new();
    let mut steps = Vec::with_capacity(flow.tasks.len());
    let mut fresh_inputs = Vec::new();
    for (i, task) in flow.tasks.iter().enumerate() {
        let mut parts = outside.key_parts(i, task, &table_keys);
        let committed: Vec<Option<&TableBuild>> = task
            .outputs()
            .map(|o| {
                manifests
                    .get(&o.stage)
                    .and_then(|m: &StageManifest| m.tables.get(&o.table))
            })
            .collect();
        if let Some(old) = committed.iter().flatten().next() {
            let changed = parts.fresh_input_changes(&old.parts);
            if !changed.is_empty() {
                fresh_inputs.push((i, changed));
            }
            // The committed build stands for its sources, however they changed since.
            if opts.cache_mode == CacheMode::IgnoreFreshInput {
                parts.external.clone_from(&old.parts.external);
                parts.freshness.clone_from(&old.parts.freshness);
                parts.volatile.clone_from(&old.parts.volatile);
            }
        }
        let key = parts.key();
        let damaged = task.outputs().any(|o| damaged.contains(&o));
        let mut freshness = standing(&parts, &key, &committed, damaged);
        let mut builds: Vec<TableBuild> =
            committed.iter().flatten().map(|b| (*b).clone()).collect();
        if freshness != Freshness::Fresh {
            builds = stored_builds(store, task, &key).await?;
            if !builds.is_empty() && freshness == Freshness::Never {
                freshness = Freshness::Uncommitted;
            }
        }
        let selected = opts.selected.contains(&i);
        let id = task.id.to_string();
        let cleared_partitions = cleared_partitions(opts.cleared, &id);
        if opts.cleared.contains(&id) || !cleared_partitions.is_empty() {
            freshness = Freshness::Cleared;
        }
        let whole_cleared = freshness == Freshness::Cleared && cleared_partitions.is_empty();
        let forced = opts.forces(&parts) || whole_cleared || freshness == Freshness::Damaged;
        let checks = check_keys(flow, task, &table_keys);
        let action = match () {
            _ if !selected => Action::NotSelected,
            _ if forced || !cleared_partitions.is_empty() => Action::Run,
            _ => reuse_or_run(task, &key, &builds, &checks),
        };
        // A task outside the selection is read as committed, if it is.
        for (out, committed) in task.outputs().zip(&committed) {
            let k = match (action, committed) {
                (Action::NotSelected, Some(b)) => b.key.clone(),
                _ => key.clone(),
            };
            table_keys.insert(out, k);
        }
        if action == Action::NotSelected {
            builds = committed.iter().flatten().map(|b| (*b).clone()).collect();
        }
        steps.push(Step {
            task: i,
            parts,
            key,
            action,
            freshness,
            forced,
            cleared_partitions,
            listed: outside.listed.get(&i).cloned().unwrap_or_default(),
            builds,
            sampled: outside
                .sampled
                .get(&i)
                .and_then(|(_, source)| source.clone()),
            checks,
        });
    }
    Ok(Plan {
        steps,
        manifests,
        fresh_inputs,
        source_hashes: hashes.updated(),
        missing_sources,
    })
}

/// What a task's key takes from outside its declaration, gathered once for the plan: the
/// store's salt for secrets, the fingerprints of loads' files, the builds samples read, the
/// functions that make a task volatile, and this run's volatile value.
struct Outside {
    salt: Option<[u8; 32]>,
    external: HashMap<usize, String>,
    /// The files of partitioned loads, by task.
    listed: HashMap<usize, Vec<object_store::ObjectMeta>>,
    sampled: HashMap<usize, (String, Option<TableBuild>)>,
    impure: BTreeSet<String>,
    nonce: String,
}

impl Outside {
    /// Gather it, with the loads whose files are missing (`Plan::missing_sources`).
    async fn gather(
        flow: &Flow,
        store: &Store,
        state: &SessionState,
        opts: &PlanOptions<'_>,
        hashes: &sources::HashCache,
    ) -> Result<(Outside, Vec<(usize, String)>), StoreError> {
        // Stored key parts keep no secret: each becomes a hash keyed by the store's own salt.
        let salt = match crate::config::secrets::any() {
            true => Some(store.salt().await?),
            false => None,
        };
        let (external, listed, missing) = fingerprints(flow, state, hashes).await;
        let mut impure = impure_functions(state);
        let volatile_udfs = flow.udfs.iter().filter(|u| u.volatile);
        impure.extend(volatile_udfs.map(|u| u.decl.name.clone()));
        let outside = Outside {
            salt,
            external,
            listed,
            sampled: sampled_builds(flow, opts.instances).await?,
            impure,
            nonce: volatile_nonce(),
        };
        Ok((outside, missing))
    }

    /// The parts of task `i`'s key; `table_keys` holds the keys its inputs are read at.
    fn key_parts(
        &self,
        i: usize,
        task: &Task,
        table_keys: &HashMap<TableName, CacheKey>,
    ) -> KeyParts {
        let salt = self.salt.as_ref();
        let mut inputs: BTreeMap<String, CacheKey> = task
            .inputs
            .iter()
            .map(|t| {
                (
                    t.to_string(),
                    table_keys.get(t).cloned().unwrap_or_default(),
                )
            })
            .collect();
        if let Some((name, source)) = self.sampled.get(&i) {
            let key = source.as_ref().map(|b| b.key.clone()).unwrap_or_default();
            inputs.insert(name.clone(), key);
        }
        let nonce = &self.nonce;
        KeyParts {
            format: FORMAT_VERSION,
            kind: task.decl.kind.label().to_string(),
            code: task.code.clone(),
            udfs: task.udfs.clone(),
            options: masked(&task.decl.opts.keyed, salt),
            inputs,
            external: self.external.get(&i).cloned(),
            params: masked(&task.params, salt),
            freshness: task.decl.opts.cache.as_ref().map(|t| mask(t, salt)),
            volatile: volatile(task, &self.impure)
                .map(|calls| format!("{calls}{VOLATILE_AT}{nonce}")),
        }
    }
}

/// The committed manifests of the flow's stages, by stage.
async fn committed_stages(
    flow: &Flow,
    store: &Store,
) -> Result<BTreeMap<String, StageManifest>, StoreError> {
    let mut manifests = BTreeMap::new();
    for stage in flow.stages() {
        if let Some(m) = store.read_manifest(&stage).await? {
            manifests.insert(stage, m);
        }
    }
    Ok(manifests)
}

/// How a task whose key is `key` stands against its committed builds.
/// The partitions of task `id` that `weir clear --partition` marked (`id@day=...`).
fn cleared_partitions(
    cleared: &BTreeSet<String>,
    id: &str,
) -> Vec<super::partitions::PartitionRange> {
    let prefix = format!("{id}@");
    cleared
        .iter()
        .filter_map(|c| c.strip_prefix(&prefix))
        .filter_map(|r| super::partitions::PartitionRange::parse(r).ok())
        .collect()
}

fn standing(
    parts: &KeyParts,
    key: &CacheKey,
    committed: &[Option<&TableBuild>],
    damaged: bool,
) -> Freshness {
    if committed.iter().flatten().any(|b| b.partial) {
        Freshness::Stale(vec![
            "partial: some partitions were left out (--partition); the next run computes them"
                .into(),
        ])
    } else if committed.iter().all(|c| c.is_some_and(|b| b.key == *key)) {
        match damaged {
            true => Freshness::Damaged,
            false => Freshness::Fresh,
        }
    } else if let Some(old) = committed.iter().flatten().next() {
        Freshness::Stale(parts.changes_since(&old.parts))
    } else {
        Freshness::Never
    }
}

/// A selected, unforced task: reused when every output is stored for its key and has passed
/// its checks, checked when one has not, else run.
fn reuse_or_run(task: &Task, key: &CacheKey, builds: &[TableBuild], checks: &[String]) -> Action {
    let stored = builds.len() == task.decl.outputs.len() && builds.iter().all(|b| b.key == *key);
    match (stored, checked(task, checks, builds)) {
        (false, _) => Action::Run,
        (true, true) => Action::Reuse,
        (true, false) => Action::Check,
    }
}

/// The key of each of a task's checks: the check as written, its severity, the key of the
/// other table it reads (a changed table there re-runs the check, not the task), and the keys
/// of the UDFs a `sql(...)` check calls.
fn check_keys(flow: &Flow, task: &Task, table_keys: &HashMap<TableName, CacheKey>) -> Vec<String> {
    task.checks
        .iter()
        .map(|c| {
            let other = c
                .kind
                .reads()
                .and_then(|t| table_keys.get(t))
                .map_or("", CacheKey::as_str);
            let mut text = format!("{}\t{}\t{}\t{other}", c.table, c.text, c.severity.name());
            for udf in super::udfs::called(&flow.udfs, &super::calls(&c.text)) {
                text.push_str(&format!("\tudf {} {}", udf.decl.name, udf.key));
            }
            crate::store::cache_key::hash_text(&text)
        })
        .collect()
}

/// Whether every check of the task has run on the build of its table.
fn checked(task: &Task, keys: &[String], builds: &[TableBuild]) -> bool {
    task.checks.iter().zip(keys).all(|(check, key)| {
        builds
            .iter()
            .find(|b| b.table == check.table.table)
            .is_some_and(|b| b.checks.contains_key(key))
    })
}

/// What makes a volatile task's key new: one value per run, so that every plan between two
/// runs (status, the REPL's taint check) agrees on the key, and every run changes it.
static VOLATILE_NONCE: std::sync::Mutex<String> = std::sync::Mutex::new(String::new());

fn volatile_nonce() -> String {
    let mut nonce = VOLATILE_NONCE.lock().unwrap_or_else(|p| p.into_inner());
    if nonce.is_empty() {
        *nonce = fresh_nonce();
    }
    nonce.clone()
}

/// A run starts: volatile tasks get keys no build has.
pub fn renew_volatile_keys() {
    *VOLATILE_NONCE.lock().unwrap_or_else(|p| p.into_inner()) = fresh_nonce();
}

fn fresh_nonce() -> String {
    let now = chrono::Utc::now();
    let nanos = now
        .timestamp_nanos_opt()
        .unwrap_or_else(|| now.timestamp_millis());
    format!("{nanos}-{}", std::process::id())
}

/// Functions whose result is not fixed by their arguments (DataFusion's volatility is not
/// `Immutable`: now(), current_date, random(), uuid(), ...).
fn impure_functions(state: &SessionState) -> BTreeSet<String> {
    use datafusion::logical_expr::Volatility;
    state
        .scalar_functions()
        .iter()
        .filter(|(_, f)| f.signature().volatility != Volatility::Immutable)
        .flat_map(|(name, f)| {
            std::iter::once(name.to_ascii_lowercase())
                .chain(f.aliases().iter().map(|a| a.to_ascii_lowercase()))
        })
        .collect()
}

/// The impure functions a task calls, unless a `cache` option says when it re-runs.
fn volatile(task: &Task, impure: &BTreeSet<String>) -> Option<String> {
    if task.decl.opts.cache.is_some() {
        return None;
    }
    // Rhai's own clock, besides SQL inside its strings.
    let rhai = matches!(task.decl.kind, TaskKind::Rhai { .. });
    let called: Vec<String> = task
        .calls
        .iter()
        .filter(|c| impure.contains(*c) || (rhai && *c == "timestamp"))
        .map(|c| format!("{c}()"))
        .collect();
    (!called.is_empty()).then(|| called.join(", "))
}

/// The name (`instance:stage.table`) and committed build of the table each sample reads; none
/// when that instance has not committed it, so the task runs and says so.
async fn sampled_builds(
    flow: &Flow,
    instances: &BTreeMap<String, Store>,
) -> Result<HashMap<usize, (String, Option<TableBuild>)>, StoreError> {
    let mut manifests: HashMap<(String, String), Option<StageManifest>> = HashMap::new();
    let mut out = HashMap::new();
    for (i, task) in flow.tasks.iter().enumerate() {
        let TaskKind::Sample(spec) = &task.decl.kind else {
            continue;
        };
        let Some(store) = instances.get(&spec.instance) else {
            continue;
        };
        let slot = (spec.instance.clone(), spec.table.stage.clone());
        if !manifests.contains_key(&slot) {
            let m = store.read_manifest(&spec.table.stage).await?;
            manifests.insert(slot.clone(), m);
        }
        let build = manifests[&slot]
            .as_ref()
            .and_then(|m| m.tables.get(&spec.table.table))
            .cloned();
        out.insert(i, (spec.source_name(), build));
    }
    Ok(out)
}

/// Complete builds of every output at `key`, or none if any output has none whose files are
/// intact (a build recorded just before a power loss may have lost its data).
async fn stored_builds(
    store: &Store,
    task: &super::Task,
    key: &CacheKey,
) -> Result<Vec<TableBuild>, StoreError> {
    let mut out = Vec::new();
    for o in task.outputs() {
        match store.read_build(&o.stage, &o.table, key).await? {
            Some(b) => out.push(b),
            None => return Ok(Vec::new()),
        }
    }
    let intact = store.intact(&out.iter().collect::<Vec<_>>()).await?;
    if intact.iter().all(|ok| *ok) {
        Ok(out)
    } else {
        Ok(Vec::new())
    }
}

/// Fingerprints of every load task's files, listed concurrently, and the loads whose location
/// lists no file or cannot be listed (with why). Those get a fingerprint that never matches.
async fn fingerprints(
    flow: &Flow,
    state: &SessionState,
    hashes: &sources::HashCache,
) -> (
    HashMap<usize, String>,
    HashMap<usize, Vec<object_store::ObjectMeta>>,
    Vec<(usize, String)>,
) {
    let loads = flow
        .tasks
        .iter()
        .enumerate()
        .filter_map(|(i, t)| match &t.decl.kind {
            TaskKind::Load(spec) => Some((i, spec)),
            _ => None,
        });
    let futures = loads.map(|(i, spec)| async move {
        let location = &spec.resolved;
        let ext = spec.format.extension();
        // A table kept in place is checked against its source's fingerprint whenever it is
        // read: that must stay a listing, not a read of every byte.
        let hashes = (!spec.in_place).then_some(hashes);
        let listed = sources::fingerprint(state, location, ext, spec.strict, hashes).await;
        let remote = spec.url().is_some_and(|u| u.scheme() != "file");
        let why = |e: datafusion::error::DataFusionError| match crate::df_message::root_message(&e)
        {
            w if remote && w.contains("not found") => "there is no file at that URL".to_string(),
            w => w.lines().next().unwrap_or_default().to_string(),
        };
        (i, listed.map_err(why))
    });
    let mut fingerprints = HashMap::new();
    let mut partitioned = HashMap::new();
    let mut missing = Vec::new();
    for (i, listed) in futures::future::join_all(futures).await {
        let fp = match listed {
            Ok((fp, files)) if !files.is_empty() => {
                if !flow.tasks[i].decl.opts.partition_by.is_empty() {
                    partitioned.insert(i, files);
                }
                fp
            }
            Ok(_) => {
                missing.push((i, "no file matches".to_string()));
                unreadable("no file")
            }
            Err(e) => {
                let fp = unreadable(&e);
                missing.push((i, e));
                fp
            }
        };
        fingerprints.insert(i, fp);
    }
    (fingerprints, partitioned, missing)
}

/// A fingerprint no listing can give, new every time.
fn unreadable(why: &str) -> String {
    let now = chrono::Utc::now().timestamp_nanos_opt().unwrap_or(0);
    format!("unreadable {now}: {why}")
}

/// `text` with the secrets in it replaced by a salted hash (as is, when there is no secret).
fn mask(text: &str, salt: Option<&[u8; 32]>) -> String {
    match salt {
        Some(salt) => crate::config::secrets::redact_keyed(text, salt).into_owned(),
        None => text.to_string(),
    }
}

fn masked(values: &BTreeMap<String, String>, salt: Option<&[u8; 32]>) -> BTreeMap<String, String> {
    values
        .iter()
        .map(|(k, v)| (k.clone(), mask(v, salt)))
        .collect()
}
