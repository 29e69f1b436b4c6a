//! Where tasks run: in weir's process, or, with `--engine ballista://HOST:PORT` (the
//! `ballista` feature), SQL tasks and loads on an Apache DataFusion Ballista cluster.
//!
//! A task on the cluster is planned here exactly as a local one: its inputs are registered as
//! Parquet tables at their store paths, and its output is the same COPY into its build folder
//! (`write.rs`). Only the physical planning and execution move: Ballista's query planner
//! sends the logical plan to the scheduler, executors read the inputs and write the files
//! themselves, and weir gets the row count back and commits the build as it always does. The
//! engine is not part of any key, so builds move freely between the two.

use datafusion::prelude::SessionConfig;

use crate::config::EngineUrl;
use crate::flow::Task;
use crate::script::TaskKind;

/// Where a task runs when the run has a cluster.
#[derive(Debug, PartialEq, Eq)]
pub enum Placement {
    Cluster,
    /// In weir's process, for the reason given (which the task's log records).
    Local(String),
    /// In weir's process, with nothing to say: a load kept in place computes nothing.
    Here,
}

pub fn placement(task: &Task) -> Placement {
    match &task.decl.kind {
        TaskKind::Sql { .. } if !task.udfs.is_empty() => Placement::Local(format!(
            "ran locally: it calls {}, which only weir's process can run",
            task.udfs
                .keys()
                .map(|u| format!("the UDF `{u}`"))
                .collect::<Vec<_>>()
                .join(", ")
        )),
        TaskKind::Load(spec) if spec.in_place => Placement::Here,
        TaskKind::Sql { .. } | TaskKind::Load(_) => Placement::Cluster,
        TaskKind::Rhai { .. } => {
            Placement::Local("ran locally: a Rhai function task runs in weir's process".into())
        }
        TaskKind::Sample(_) => Placement::Here,
    }
}

/// `config` with Ballista's own settings in place. An in-process scheduler and executor plan
/// with the config they are given; without these they disagree with the client on the shape
/// of a plan (TPC-H q09 counted some rows twice, q08's job never ended). Ballista 55's adaptive
/// planner is off: with two executor processes it lost the LIMIT of TPC-H q03 and q10 (20 rows
/// instead of 10), and its static planner gets all 22 right.
pub fn tune(config: SessionConfig) -> SessionConfig {
    #[cfg(feature = "ballista")]
    let config = {
        let mut config = ballista::extension::SessionConfigExt::upgrade_for_ballista(config);
        let _ = config
            .options_mut()
            .set("ballista.planner.adaptive.enabled", "false");
        config
    };
    config
}

/// Why a task's plan cannot run on the cluster, from the error the cluster gave, if that is
/// why it failed: Ballista 55 cannot send table functions (`generate_series`, `range`) to its
/// scheduler, nor run some operators (a recursive CTE's `RecursiveQueryExec`). Either is
/// refused before anything of the task runs.
pub fn undistributable(error: &str) -> Option<String> {
    if error.contains("failed to serialize logical plan") {
        return Some(
            "ran locally: the cluster cannot take its plan (a table function such as \
             generate_series or range)"
                .into(),
        );
    }
    let rest = error.split("Unsupported plan node, name: [").nth(1)?;
    let node = rest.split(']').next()?;
    Some(format!(
        "ran locally: the cluster cannot run its plan ({node})"
    ))
}

/// Why a run cannot have the cluster it asked for.
#[derive(Debug, thiserror::Error)]
pub enum ClusterError {
    #[error("cannot reach the Ballista scheduler at {address}: {reason}")]
    Unreachable { address: String, reason: String },
    #[cfg(feature = "ballista")]
    #[error("cannot start the in-process cluster: {0}")]
    Standalone(#[from] super::standalone::NotStarted),
    #[error("`{0}` needs a weir built with Ballista: cargo build --release --features ballista")]
    NotBuilt(EngineUrl),
}

/// The cluster a run's SQL tasks and loads go to.
#[derive(Debug)]
pub struct Cluster {
    /// `http://HOST:PORT` of its scheduler.
    #[cfg_attr(not(feature = "ballista"), allow(dead_code))]
    scheduler: String,
    /// As the user named it.
    pub url: EngineUrl,
    /// The in-process executor's shuffle files, removed when the run ends.
    #[cfg(feature = "ballista")]
    #[allow(dead_code)] // held for its drop
    shuffles: Option<super::standalone::ShuffleFolder>,
}

/// How long to wait for a scheduler that does not answer.
#[cfg(feature = "ballista")]
const CONNECT_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(5);

#[cfg(feature = "ballista")]
mod ballista_impl {
    use ballista::extension::SessionStateExt;
    use datafusion::execution::context::SessionState;

    use std::path::Path;

    use super::super::standalone;
    use super::{CONNECT_TIMEOUT, Cluster, ClusterError};
    use crate::config::EngineUrl;

    impl Cluster {
        /// Connect to the scheduler `url` names, or start one and an executor in this process
        /// (`ballista://standalone`); `state` is the local engine's, whose object stores,
        /// memory pool and settings an in-process executor shares, and which writes its
        /// shuffle files under `spill_root`.
        pub async fn connect(
            url: &EngineUrl,
            state: &SessionState,
            spill_root: &Path,
        ) -> Result<Option<Self>, ClusterError> {
            let (scheduler, shuffles) = match url {
                EngineUrl::Local => return Ok(None),
                EngineUrl::Ballista { scheduler } => {
                    reachable(scheduler).await?;
                    (scheduler.clone(), None)
                }
                EngineUrl::Standalone => {
                    let cluster = standalone::get(state, spill_root).await?;
                    let shuffles = standalone::ShuffleFolder(&cluster.work_dir);
                    (cluster.scheduler.clone(), Some(shuffles))
                }
            };
            Ok(Some(Self {
                scheduler,
                url: url.clone(),
                shuffles,
            }))
        }

        /// `state` with its queries planned and run by the cluster.
        pub fn upgrade(&self, state: SessionState) -> datafusion::error::Result<SessionState> {
            state.upgrade_for_ballista(self.scheduler.clone())
        }
    }

    /// Fail within `CONNECT_TIMEOUT` when nothing answers at the scheduler's address, rather
    /// than at the first task, after a gRPC client's own (much longer) wait.
    async fn reachable(scheduler: &str) -> Result<(), ClusterError> {
        let address = scheduler.strip_prefix("http://").unwrap_or(scheduler);
        let connect = tokio::net::TcpStream::connect(address.to_string());
        let reason = match tokio::time::timeout(CONNECT_TIMEOUT, connect).await {
            Ok(Ok(_)) => return Ok(()),
            Ok(Err(e)) => e.to_string(),
            Err(_) => format!("no answer within {} s", CONNECT_TIMEOUT.as_secs()),
        };
        Err(ClusterError::Unreachable {
            address: address.to_string(),
            reason,
        })
    }
}

#[cfg(not(feature = "ballista"))]
impl Cluster {
    /// Without the `ballista` feature only the local engine exists (`EngineUrl::parse`
    /// refuses the others with how to build weir with it).
    pub async fn connect(
        url: &EngineUrl,
        _state: &datafusion::execution::context::SessionState,
        _spill_root: &std::path::Path,
    ) -> Result<Option<Self>, ClusterError> {
        match url {
            EngineUrl::Local => Ok(None),
            other => Err(ClusterError::NotBuilt(other.clone())),
        }
    }

    pub fn upgrade(
        &self,
        state: datafusion::execution::context::SessionState,
    ) -> datafusion::error::Result<datafusion::execution::context::SessionState> {
        Ok(state)
    }
}
