//! Reading committed tables: `weir show`, `weir sql`, the REPL's queries and watch's previews
//! all query through one `Reader`. Readers see committed manifests only, never a build in
//! progress.

use datafusion::prelude::SessionContext;

use crate::engine::{DamagedTable, Engine, committed_context, overlay_build};
use crate::flow::sql_error::{committed_help, typed_query};
use crate::names::TableName;
use crate::report::Rows;
use crate::store::{Store, StoreError, TableBuild};
use crate::{Error, Result};

/// A query context over every committed table of one instance, named `stage.table`.
pub struct Reader {
    ctx: SessionContext,
    /// The committed builds, by `stage.table`.
    builds: std::collections::BTreeMap<String, TableBuild>,
    /// The committed tables, `stage.table`, sorted.
    tables: Vec<String>,
    /// Where they are: the store and the instance, for messages.
    place: String,
}

impl Reader {
    /// A reader of `store`'s committed tables, querying with `engine` (`Loaded::engine`,
    /// `Target::engine`: the instance's memory limit, spill folder and DataFusion settings).
    pub async fn open(store: &Store, engine: &Engine) -> Result<Reader> {
        Self::open_as_of(store, engine, None).await
    }

    /// A reader of the tables as committed at the end of the run `as_of` names (`last~2`, an
    /// id or its start, a time: `session::as_of::resolve`), or as committed now.
    pub async fn open_as_of(store: &Store, engine: &Engine, as_of: Option<&str>) -> Result<Reader> {
        let (manifests, when) = match as_of {
            None => (store.read_manifests().await?, String::new()),
            Some(spec) => {
                let run = super::as_of::resolve(store, spec).await?;
                let manifests = super::as_of::manifests(store, &run).await?;
                (manifests, format!(" as of run {}", run.run_id))
            }
        };
        let ctx = committed_context(engine, store, &manifests);
        let builds: std::collections::BTreeMap<String, TableBuild> = manifests
            .iter()
            .flat_map(|(stage, m)| {
                m.tables
                    .iter()
                    .map(move |(t, b)| (format!("{stage}.{t}"), b.clone()))
            })
            .collect();
        let tables = builds.keys().cloned().collect();
        let place = format!(
            "{} (instance `{}`){when}",
            store.display_url(),
            store.layout.instance()
        );
        Ok(Reader {
            ctx,
            builds,
            tables,
            place,
        })
    }

    pub fn context(&self) -> &SessionContext {
        &self.ctx
    }

    /// Make the UDFs `script` declares callable from this reader's queries.
    pub fn add_udfs(&self, script: &crate::script::Script) -> Result<()> {
        let (udfs, problems) = crate::flow::udfs::build(script);
        crate::flow::FlowError::collect(problems)?;
        let functions = crate::exec::udf::functions(&udfs, &script.engine, &script.ast, None);
        crate::exec::udf::register(&self.ctx, &functions);
        Ok(())
    }

    /// Whether `query` calls a function this reader does not have (a UDF of the script,
    /// perhaps): planning it fails so.
    pub async fn calls_unknown_function(&self, query: &str) -> bool {
        match crate::df_message::plan_query(&self.ctx, query).await {
            Ok(_) => false,
            Err(e) => e.find_root().to_string().contains("Invalid function"),
        }
    }

    /// The committed build of a table (`committed` gives its exact name).
    pub fn build(&self, table: &TableName) -> Option<&TableBuild> {
        self.builds.get(&table.to_string())
    }

    /// The committed tables, `stage.table`.
    pub fn tables(&self) -> &[String] {
        &self.tables
    }

    /// `name` if it is committed, else an error that says what is.
    pub fn committed(&self, name: &str) -> Result<TableName> {
        let Some(table) = TableName::parse(name) else {
            return Err(Error::usage(
                format!("`{name}` is not a table name"),
                "name a table as stage.table",
            ));
        };
        // Names keep their case, and any spelling of the case finds them, as in SQL.
        let wanted = table.to_string();
        // The run history (`weir.runs`, ...) shows as tables do.
        if table
            .stage
            .eq_ignore_ascii_case(crate::names::HISTORY_SCHEMA)
            && crate::engine::HISTORY_TABLES.contains(&table.table.to_ascii_lowercase().as_str())
        {
            return Ok(TableName::new(
                crate::names::HISTORY_SCHEMA,
                table.table.to_ascii_lowercase(),
            ));
        }
        let Some(found) = self.tables.iter().find(|t| t.eq_ignore_ascii_case(&wanted)) else {
            return Err(Error::usage(
                format!("table `{table}` is not committed"),
                committed_help(&wanted, &self.tables, &self.place),
            ));
        };
        TableName::parse(found)
            .ok_or_else(|| Error::usage("a committed table name is not a name", ""))
    }

    /// Read `build` as its `stage.table` instead of the committed build: the REPL's session builds.
    pub async fn overlay(&self, store: &Store, build: &TableBuild) -> Result<()> {
        overlay_build(&self.ctx, store, build)
            .await
            .map_err(|cause| Error::Query {
                message: format!("cannot read {}.{}", build.stage, build.table),
                cause,
            })
    }

    /// Plan `query`; a query that does not parse or plan is labelled in its text. Only
    /// queries plan (readers write nothing and change no setting), and not too deep ones.
    pub async fn plan(&self, query: &str) -> Result<datafusion::prelude::DataFrame> {
        let planned = crate::df_message::plan_query(&self.ctx, query).await;
        planned.map_err(|e| {
            if let Some(damaged) = DamagedTable::in_error(&e) {
                return damaged_error(damaged);
            }
            // Tables registered on top (the REPL's session builds) are offered too.
            let tables = crate::flow::sql_error::registered_tables(&self.ctx);
            Error::from(typed_query(query, &e, &tables, &self.place))
        })
    }

    /// Run `query` and collect its rows.
    pub async fn query(&self, query: &str) -> Result<Rows> {
        let df = self.plan(query).await?;
        let schema = std::sync::Arc::new(df.schema().as_arrow().clone());
        let batches = df
            .collect()
            .await
            .map_err(|cause| match DamagedTable::in_error(&cause) {
                Some(damaged) => damaged_error(damaged),
                None => Error::Query {
                    message: "query failed".into(),
                    cause,
                },
            })?;
        Ok(Rows { schema, batches })
    }

    /// The first `rows` rows of a committed table.
    pub async fn head(&self, table: &TableName, rows: usize) -> Result<Rows> {
        self.query(&format!("SELECT * FROM {table} LIMIT {rows}"))
            .await
    }
}

fn damaged_error(damaged: &DamagedTable) -> Error {
    Error::Store(StoreError::Damaged {
        table: damaged.table.clone(),
        problem: damaged.problem.clone(),
    })
}
