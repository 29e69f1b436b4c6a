//! DataFusion sessions. One runtime (memory pool, object stores, disk manager) is shared by the
//! whole run; each task gets its own context with every stage registered as a schema and its
//! inputs registered as tables, so `SELECT * FROM raw.orders` just works.

use std::sync::Arc;

use datafusion::catalog::MemorySchemaProvider;
use datafusion::common::TableReference;
use datafusion::execution::context::SessionState;
use datafusion::execution::runtime_env::{RuntimeEnv, RuntimeEnvBuilder};
use datafusion::execution::session_state::SessionStateBuilder;
use datafusion::prelude::{ParquetReadOptions, SessionConfig, SessionContext};

use crate::store::{Store, TableBuild};

#[derive(Clone)]
pub struct Engine {
    runtime: Arc<RuntimeEnv>,
    config: SessionConfig,
}

impl Engine {
    pub fn new(store: &Store) -> datafusion::error::Result<Self> {
        let runtime = RuntimeEnvBuilder::new().build_arc()?;
        runtime.register_object_store(&store.url, store.objects.clone());
        let mut config = SessionConfig::new().with_information_schema(false);
        // Planning errors then carry where in the SQL they are, for diagnostics in the script.
        config.options_mut().sql_parser.collect_spans = true;
        Ok(Self { runtime, config })
    }

    pub fn state(&self, default_stage: Option<&str>) -> SessionState {
        self.state_with(default_stage, None)
    }

    fn state_with(&self, default_stage: Option<&str>, partitions: Option<usize>) -> SessionState {
        let mut config = self.config.clone();
        if let Some(n) = partitions {
            config = config.with_target_partitions(n);
        }
        if let Some(stage) = default_stage {
            config.options_mut().catalog.default_schema = stage.to_string();
        }
        SessionStateBuilder::new()
            .with_config(config)
            .with_runtime_env(self.runtime.clone())
            .with_default_features()
            .build()
    }

    /// A context with `stages` registered as (empty) schemas; `partitions` overrides the
    /// number of cores a query spreads over.
    pub fn context<'a>(
        &self,
        default_stage: Option<&str>,
        stages: impl IntoIterator<Item = &'a str>,
        partitions: Option<usize>,
    ) -> SessionContext {
        let ctx = SessionContext::new_with_state(self.state_with(default_stage, partitions));
        if let Some(catalog) = ctx.catalog("datafusion") {
            for stage in stages {
                if catalog.schema(stage).is_none() {
                    let _ = catalog.register_schema(stage, Arc::new(MemorySchemaProvider::new()));
                }
            }
        }
        ctx
    }
}

/// A context over every committed table of `manifests`, each as `stage.table`.
pub async fn committed_context(
    engine: &Engine,
    store: &Store,
    manifests: &std::collections::BTreeMap<String, crate::store::StageManifest>,
) -> Result<SessionContext, (String, datafusion::error::DataFusionError)> {
    let ctx = engine.context(None, manifests.keys().map(String::as_str), None);
    for (stage, manifest) in manifests {
        for (table, build) in &manifest.tables {
            register_build(&ctx, store, stage, table, build)
                .await
                .map_err(|e| (format!("{stage}.{table}"), e))?;
        }
    }
    Ok(ctx)
}

/// Register a stored build as `stage.table`.
pub async fn register_build(
    ctx: &SessionContext,
    store: &Store,
    stage: &str,
    table: &str,
    build: &TableBuild,
) -> datafusion::error::Result<()> {
    let url = store.build_url(stage, table, &build.key);
    ctx.register_parquet(
        TableReference::partial(stage, table),
        url,
        ParquetReadOptions::default(),
    )
    .await
}
