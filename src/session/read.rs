//! Reading committed tables: `weir show`, `weir sql`, the REPL's queries and watch's previews
//! all query through one `Reader`. Readers see committed manifests only, never a build in
//! progress.

use datafusion::arrow::record_batch::RecordBatch;
use datafusion::prelude::SessionContext;

use crate::exec::{Engine, ExecError, committed_context, overlay_build};
use crate::flow::sql_error::{committed_help, typed_query};
use crate::names::TableName;
use crate::store::{Store, TableBuild};
use crate::{Error, Result};

/// A query context over every committed table of one instance, named `stage.table`.
pub struct Reader {
    ctx: SessionContext,
    /// The committed tables, `stage.table`, sorted.
    tables: Vec<String>,
}

impl Reader {
    pub async fn open(store: &Store) -> Result<Reader> {
        let manifests = store.read_manifests().await?;
        let engine = Engine::new(store).map_err(ExecError::Engine)?;
        let ctx = committed_context(&engine, store, &manifests);
        let tables = manifests
            .iter()
            .flat_map(|(stage, m)| m.tables.keys().map(move |t| format!("{stage}.{t}")))
            .collect();
        Ok(Reader { ctx, tables })
    }

    pub fn context(&self) -> &SessionContext {
        &self.ctx
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
        if !self.tables.contains(&table.to_string()) {
            return Err(Error::usage(
                format!("table `{table}` is not committed"),
                committed_help(&table.to_string(), &self.tables),
            ));
        }
        Ok(table)
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
            // Tables registered on top (the REPL's session builds) are offered too.
            let tables = crate::flow::sql_error::registered_tables(&self.ctx);
            Error::from(typed_query(query, &e, &tables))
        })
    }

    /// Run `query` and collect its rows.
    pub async fn query(&self, query: &str) -> Result<Vec<RecordBatch>> {
        self.plan(query)
            .await?
            .collect()
            .await
            .map_err(|cause| Error::Query {
                message: "query failed".into(),
                cause,
            })
    }

    /// The first `rows` rows of a committed table.
    pub async fn head(&self, table: &TableName, rows: usize) -> Result<Vec<RecordBatch>> {
        self.query(&format!("SELECT * FROM {table} LIMIT {rows}"))
            .await
    }
}
