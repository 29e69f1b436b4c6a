//! DataFusion sessions. One runtime (memory pool, object stores, disk manager) is shared by the
//! whole run; each task gets its own context with every stage registered as a schema and its
//! inputs registered as tables, so `SELECT * FROM raw.orders` just works.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};

use datafusion::arrow::datatypes::DataType;
use datafusion::catalog::{MemorySchemaProvider, SchemaProvider, TableProvider};
use datafusion::common::TableReference;
use datafusion::datasource::file_format::options::ReadOptions;
use datafusion::datasource::listing::{ListingTable, ListingTableConfig, ListingTableUrl};
use datafusion::error::{DataFusionError, Result as DfResult};
use datafusion::execution::context::SessionState;
use datafusion::execution::runtime_env::RuntimeEnv;
use datafusion::execution::session_state::SessionStateBuilder;
use datafusion::physical_optimizer::optimizer::PhysicalOptimizer;
use datafusion::prelude::{ParquetReadOptions, SessionConfig, SessionContext};

use super::cluster::{Cluster, ClusterError};
use super::scratch::Scratch;
use crate::config::EngineSettings;
use crate::store::{StageManifest, Store, TableBuild};

/// Where a session's plans run.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Here {
    Local,
    Cluster,
}

#[derive(Clone)]
pub struct Engine {
    runtime: Arc<RuntimeEnv>,
    config: SessionConfig,
    pub settings: EngineSettings,
    /// Where SQL tasks and loads run when not in this process.
    pub cluster: Option<Arc<Cluster>>,
    /// Where queries spill; removed when the last clone of the engine goes.
    spills: Arc<Scratch>,
    /// Settings that need less memory, for a task run again after it ran out (`frugal`).
    frugal: bool,
}

impl Engine {
    pub fn new(store: &Store, settings: &EngineSettings) -> datafusion::error::Result<Self> {
        let root = settings.spill_root();
        let spills = Scratch::create(&root, "spill").map_err(|e| {
            DataFusionError::Execution(format!(
                "cannot make a spill folder in {}: {e}",
                root.display()
            ))
        })?;
        let runtime = settings.runtime(spills.path())?;
        runtime.register_object_store(&store.url, store.viewed());
        let mut config = SessionConfig::new().with_information_schema(false);
        // Planning errors then carry where in the SQL they are, for diagnostics in the script.
        config.options_mut().sql_parser.collect_spans = true;
        config.options_mut().execution.parquet.compression = Some(
            settings
                .compression
                .clone()
                .unwrap_or_else(|| super::limits::DEFAULT_COMPRESSION.to_string()),
        );
        if settings.explicit() {
            settings.tune(config.options_mut());
        }
        for (key, value) in &settings.datafusion {
            // Checked when weir.toml was read.
            config.options_mut().set(key, value)?;
        }
        Ok(Self {
            runtime,
            config,
            settings: settings.clone(),
            cluster: None,
            spills: Arc::new(spills),
            frugal: false,
        })
    }

    /// This engine with settings that need less memory, at some cost in speed: a task that
    /// ran out of memory runs once more, alone, with these. A hash join's build side cannot
    /// spill in DataFusion 55, so its joins are sort-merge joins, which can.
    pub fn frugal(&self) -> Self {
        let mut config = self.config.clone();
        self.settings.frugal(config.options_mut());
        Self {
            config,
            frugal: true,
            ..self.clone()
        }
    }

    /// The folder queries spill into, for the run to empty when it ends: a failed query may
    /// still hold spill files on a thread that outlives the run.
    pub fn spills(&self) -> Arc<Scratch> {
        self.spills.clone()
    }

    /// This engine, sending SQL tasks and loads where `url` says (`--engine`).
    pub async fn attach(mut self, url: &crate::config::EngineUrl) -> Result<Self, ClusterError> {
        let state = self.cluster_state(None);
        self.cluster = Cluster::connect(url, &state, &self.settings.spill_root())
            .await?
            .map(Arc::new);
        Ok(self)
    }

    /// Whether its queries may run where weir's view of the store is not (`store::views`): on
    /// a remote cluster's executors, which read the store through object stores of their own.
    pub fn remote(&self) -> bool {
        self.cluster
            .as_ref()
            .is_some_and(|c| !matches!(c.url, crate::config::EngineUrl::Standalone))
    }

    /// `local`, or the cluster's URL.
    pub fn label(&self) -> String {
        match &self.cluster {
            Some(c) => c.url.to_string(),
            None => "local".into(),
        }
    }

    /// Bytes the run's queries hold in the pool now, and what they have spilled so far.
    pub fn memory(&self) -> (usize, u64) {
        (
            self.runtime.memory_pool.reserved(),
            self.runtime.disk_manager.used_disk_space(),
        )
    }

    /// Wait, up to `limit`, until no query holds memory of the pool; returns what is still
    /// held. A failed query's error comes back before the operators on its other threads have
    /// wound down and released theirs, so a task run again alone would otherwise start with
    /// the pool still full of its first attempt.
    pub async fn drained(&self, limit: std::time::Duration) -> usize {
        let deadline = std::time::Instant::now() + limit;
        loop {
            let held = self.runtime.memory_pool.reserved();
            if held == 0 || std::time::Instant::now() >= deadline {
                return held;
            }
            tokio::time::sleep(std::time::Duration::from_millis(10)).await;
        }
    }

    /// Let queries read objects under `url` (scheme and authority) from `objects`.
    pub fn register_store(&self, url: &url::Url, objects: Arc<dyn object_store::ObjectStore>) {
        self.runtime.register_object_store(url, objects);
    }

    pub fn state(&self, default_stage: Option<&str>) -> SessionState {
        self.state_with(default_stage, None)
    }

    fn state_with(&self, default_stage: Option<&str>, partitions: Option<usize>) -> SessionState {
        self.state_of(self.config_with(default_stage, partitions), Here::Local)
    }

    /// A state for the cluster to plan and run: a local one with the settings a cluster needs.
    fn cluster_state(&self, default_stage: Option<&str>) -> SessionState {
        let config = super::cluster::tune(self.config_with(default_stage, None));
        self.state_of(config, Here::Cluster)
    }

    fn config_with(&self, default_stage: Option<&str>, partitions: Option<usize>) -> SessionConfig {
        let mut config = self.config.clone();
        if let Some(n) = partitions {
            config = config.with_target_partitions(n);
        }
        if let Some(stage) = default_stage {
            config.options_mut().catalog.default_schema = stage.to_string();
        }
        config
    }

    fn state_of(&self, config: SessionConfig, here: Here) -> SessionState {
        let mut builder = SessionStateBuilder::new()
            .with_config(config)
            .with_runtime_env(self.runtime.clone())
            .with_default_features();
        if here == Here::Local {
            // After DataFusion's rules (and so after its common subexpressions are taken out);
            // not on a cluster, whose executors do not know the function it plans.
            builder =
                builder.with_optimizer_rule(Arc::new(super::rules::decimal::DecimalArithmetic));
        }
        let mut rules = PhysicalOptimizer::new().rules;
        if self.frugal {
            // First, so that DataFusion's rules then partition, order and sort what it leaves.
            let small = super::rules::joins::SmallJoinsHashed::new(self.settings.pool_bytes());
            rules.insert(0, Arc::new(small));
        } else if !self.settings.explicit()
            && let Some(i) = rules.iter().position(|r| r.name() == "join_selection")
        {
            // Not under a limit, where a join building on its kept side emits those rows in
            // one batch at the end (`joins::streams_with_build`).
            rules.insert(i + 1, Arc::new(super::rules::build_side::BuildOnFewerRows));
        }
        if here == Here::Local && (self.frugal || self.settings.explicit()) {
            // Under a limit, after DataFusion's rules have placed every sort.
            rules.push(Arc::new(
                super::rules::compact_views::CompactViewsBeforeSorts,
            ));
        }
        // Last: the first filters by what DataFusion's last filter pushdown left in the scans,
        // the second takes in those filters. Not on a cluster, whose executors could not
        // decode the expressions they plan.
        if here == Here::Local {
            rules.push(Arc::new(super::rules::scan_filters::JoinFiltersOnScans));
            rules.push(Arc::new(super::rules::conjuncts::ConjunctsInTurn));
        }
        builder.with_physical_optimizer_rules(rules).build()
    }

    /// A context with `stages` registered as (empty) schemas; `partitions` overrides the
    /// number of cores a query spreads over.
    pub fn context<'a>(
        &self,
        default_stage: Option<&str>,
        stages: impl IntoIterator<Item = &'a str>,
        partitions: Option<usize>,
    ) -> SessionContext {
        let state = self.state_with(default_stage, partitions);
        with_stages(SessionContext::new_with_state(state), stages)
    }

    /// A context like `context`'s whose queries run on the cluster, if the engine has one.
    pub fn cluster_context<'a>(
        &self,
        default_stage: Option<&str>,
        stages: impl IntoIterator<Item = &'a str>,
    ) -> Option<DfResult<SessionContext>> {
        let cluster = self.cluster.as_ref()?;
        let state = cluster.upgrade(self.cluster_state(default_stage));
        Some(state.map(|s| with_stages(SessionContext::new_with_state(s), stages)))
    }
}

/// `ctx` with `stages` registered as (empty) schemas.
fn with_stages<'a>(
    ctx: SessionContext,
    stages: impl IntoIterator<Item = &'a str>,
) -> SessionContext {
    if let Some(catalog) = ctx.catalog("datafusion") {
        for stage in stages {
            if catalog.schema(stage).is_none() {
                register_schema(&*catalog, stage, Arc::new(MemorySchemaProvider::new()));
            }
        }
    }
    ctx
}

/// A context over every committed table of `manifests`, each as `stage.table`. Tables are
/// opened when a query names them, so one damaged table fails only the queries that read it.
pub fn committed_context(
    engine: &Engine,
    store: &Store,
    manifests: &BTreeMap<String, StageManifest>,
) -> SessionContext {
    let ctx = engine.context(None, std::iter::empty(), None);
    if let Some(catalog) = ctx.catalog("datafusion") {
        for (stage, manifest) in manifests {
            let provider = CommittedStage {
                store: store.clone(),
                state: engine.state(None),
                stage: stage.clone(),
                builds: manifest.tables.clone(),
                opened: Mutex::new(HashMap::new()),
            };
            register_schema(&*catalog, stage, Arc::new(provider));
        }
        let history = super::history::HistorySchema::new(store.clone());
        let _ = catalog.register_schema(super::HISTORY_SCHEMA, Arc::new(history));
    }
    ctx
}

/// Register a stage's schema under its name and, when that has capitals, under its lower-case
/// form too: SQL folds unquoted names to lower case, and names keep the case they were
/// declared with (one stage may not differ from another only in case).
fn register_schema(
    catalog: &dyn datafusion::catalog::CatalogProvider,
    stage: &str,
    schema: Arc<dyn SchemaProvider>,
) {
    let folded = stage.to_ascii_lowercase();
    if folded != stage && catalog.schema(&folded).is_none() {
        let _ = catalog.register_schema(&folded, schema.clone());
    }
    let _ = catalog.register_schema(stage, schema);
}

/// A committed table that cannot be opened: its files are gone or damaged. Raised through
/// DataFusion, recognized by readers (`DamagedTable::in_error`) to say which table it is.
#[derive(Debug)]
pub struct DamagedTable {
    pub table: String,
    pub problem: String,
}

impl std::fmt::Display for DamagedTable {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "cannot read committed table {}: {}",
            self.table, self.problem
        )
    }
}

impl std::error::Error for DamagedTable {}

impl DamagedTable {
    /// The damaged table a query failed on, if that is why it failed.
    pub fn in_error(e: &DataFusionError) -> Option<&DamagedTable> {
        match e.find_root() {
            DataFusionError::External(inner) => inner.downcast_ref::<DamagedTable>(),
            _ => None,
        }
    }
}

/// A committed stage as a SQL schema: its tables are listed from the manifest and opened on
/// first use. Tables registered on top (the REPL's session builds) shadow committed ones.
struct CommittedStage {
    store: Store,
    /// For reading Parquet footers; a state of its own, so the provider holds no context.
    state: SessionState,
    stage: String,
    builds: BTreeMap<String, TableBuild>,
    opened: Mutex<HashMap<String, Arc<dyn TableProvider>>>,
}

impl std::fmt::Debug for CommittedStage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CommittedStage")
            .field("stage", &self.stage)
            .finish_non_exhaustive()
    }
}

impl CommittedStage {
    fn opened(&self) -> std::sync::MutexGuard<'_, HashMap<String, Arc<dyn TableProvider>>> {
        self.opened.lock().unwrap_or_else(|p| p.into_inner())
    }
}

#[async_trait::async_trait]
impl SchemaProvider for CommittedStage {
    fn table_names(&self) -> Vec<String> {
        let mut names: Vec<String> = self.builds.keys().cloned().collect();
        names.extend(self.opened().keys().cloned());
        names.sort();
        names.dedup();
        names
    }

    async fn table(&self, name: &str) -> DfResult<Option<Arc<dyn TableProvider>>> {
        if let Some(t) = self.opened().get(name) {
            return Ok(Some(t.clone()));
        }
        // SQL folds unquoted names to lower case: `marts.dfA` arrives as `dfa`.
        let found = self.builds.get_key_value(name).or_else(|| {
            self.builds
                .iter()
                .find(|(table, _)| table.eq_ignore_ascii_case(name))
        });
        let Some((name, build)) = found else {
            return Ok(None);
        };
        let table = listing_table(&self.state, &self.store, build)
            .await
            .map_err(|e| {
                // A changed in-place source already says so; anything else is missing files.
                if let Some(DamagedTable { problem, .. }) = DamagedTable::in_error(&e) {
                    return DataFusionError::External(Box::new(DamagedTable {
                        table: format!("{}.{name}", self.stage),
                        problem: problem.clone(),
                    }));
                }
                DataFusionError::External(Box::new(DamagedTable {
                    table: format!("{}.{name}", self.stage),
                    problem: format!(
                        "its stored files are missing or damaged ({})",
                        crate::df_message::root_message(&e)
                    ),
                }))
            })?;
        self.opened().insert(name.to_string(), table.clone());
        Ok(Some(table))
    }

    fn register_table(
        &self,
        name: String,
        table: Arc<dyn TableProvider>,
    ) -> DfResult<Option<Arc<dyn TableProvider>>> {
        Ok(self.opened().insert(name, table))
    }

    fn deregister_table(&self, name: &str) -> DfResult<Option<Arc<dyn TableProvider>>> {
        Ok(self.opened().remove(name))
    }

    fn table_exist(&self, name: &str) -> bool {
        self.builds.keys().any(|t| t.eq_ignore_ascii_case(name)) || self.opened().contains_key(name)
    }
}

/// A stored build as a table, as `register_parquet` would make it.
async fn listing_table(
    state: &SessionState,
    store: &Store,
    build: &TableBuild,
) -> DfResult<Arc<dyn TableProvider>> {
    verify_in_place(state, build).await?;
    store.view(build);
    let url = ListingTableUrl::parse(store.build_url(build))?;
    let options =
        read_options(build).to_listing_options(state.config(), state.default_table_options());
    let schema = match known_schema(build) {
        Some(schema) => schema,
        None => options.infer_schema(state, &url).await?,
    };
    let config = ListingTableConfig::new(url)
        .with_listing_options(options)
        .with_schema(schema);
    let table = ListingTable::try_new(config)?
        .with_cache(state.runtime_env().cache_manager.get_file_statistic_cache());
    Ok(Arc::new(table))
}

/// Register a stored build under `name`.
pub async fn register_build(
    ctx: &SessionContext,
    store: &Store,
    name: TableReference,
    build: &TableBuild,
) -> datafusion::error::Result<()> {
    if known_schema(build).is_some() {
        let table = listing_table(&ctx.state(), store, build).await?;
        ctx.register_table(name.clone(), table)?;
    } else {
        verify_in_place(&ctx.state(), build).await?;
        store.view(build);
        let url = store.build_url(build);
        ctx.register_parquet(name.clone(), url, read_options(build))
            .await?;
    }
    // SQL folds unquoted names to lower case: a table declared `dfA` is also found as `dfa`.
    if let TableReference::Partial { schema, table } = &name {
        let folded = table.to_ascii_lowercase();
        if folded != table.as_ref()
            && let Some(provider) = ctx.table_provider(name.clone()).await.ok()
            && let Some(stage) = ctx.catalog("datafusion").and_then(|c| c.schema(schema))
            && !stage.table_exist(&folded)
        {
            stage.register_table(folded, provider)?;
        }
    }
    Ok(())
}

/// An in-place table is read only while its source still has the fingerprint it was committed
/// with: a changed source is never served as the committed table.
async fn verify_in_place(state: &SessionState, build: &TableBuild) -> DfResult<()> {
    let Some(source) = &build.source else {
        return Ok(());
    };
    let (now, _) = crate::store::sources::fingerprint(
        state,
        &source.location,
        ".parquet",
        source.strict,
        None,
    )
    .await?;
    if Some(&now) == build.parts.external.as_ref() {
        return Ok(());
    }
    Err(DataFusionError::External(Box::new(DamagedTable {
        table: format!("{}.{}", build.stage, build.table),
        problem: format!(
            "its source {} changed since it was committed (it is kept in place, `copy: false`); the next run loads it again",
            source.location
        ),
    })))
}

/// The columns of a partitioned build's files, from its record: inferring them reads a footer
/// of every file, one per partition, each time the table is opened (a thousand daily
/// partitions, read by an incremental task once per partition, would read a million).
fn known_schema(build: &TableBuild) -> Option<datafusion::arrow::datatypes::SchemaRef> {
    use datafusion::arrow::datatypes::{Field, Schema};
    if build.partitions.is_empty() || build.source.is_some() {
        return None;
    }
    let fields: Option<Vec<Field>> = build
        .schema
        .iter()
        .filter(|c| !build.partition_by.iter().any(|p| p.name == c.name))
        .map(|c| Some(Field::new(&c.name, c.data_type.parse().ok()?, c.nullable)))
        .collect();
    Some(Arc::new(Schema::new(fields?)))
}

/// How a build's files are read: a partitioned build's `col=value/` folders give columns too.
pub fn read_options(build: &TableBuild) -> ParquetReadOptions<'static> {
    let partitions = build
        .partition_by
        .iter()
        .map(|c| {
            let ty = c.data_type.parse().unwrap_or(DataType::Utf8);
            (c.name.clone(), ty)
        })
        .collect();
    let options = ParquetReadOptions::default().table_partition_cols(partitions);
    match &build.source {
        // A source named as one file (or a glob) is read as named, whatever its extension.
        Some(s) if !s.location.ends_with('/') => options.file_extension(""),
        _ => options,
    }
}

/// Register a build as `stage.table` over whatever is registered under that name (the
/// committed build), making the stage's schema if there is none yet.
pub async fn overlay_build(
    ctx: &SessionContext,
    store: &Store,
    build: &TableBuild,
) -> datafusion::error::Result<()> {
    if let Some(catalog) = ctx.catalog("datafusion") {
        match catalog.schema(&build.stage) {
            Some(schema) => {
                schema.deregister_table(&build.table)?;
            }
            None => {
                catalog.register_schema(&build.stage, Arc::new(MemorySchemaProvider::new()))?;
            }
        }
    }
    let name = TableReference::partial(build.stage.as_str(), build.table.as_str());
    register_build(ctx, store, name, build).await
}
