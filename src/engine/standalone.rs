//! `ballista://standalone`: a Ballista scheduler and one executor inside weir's process, over
//! gRPC on loopback. One per process, so `watch` and the REPL start it once.
//!
//! Ballista's own in-process executor (`new_standalone_executor_from_state`) takes a temporary
//! folder for its shuffle files, drops it (which deletes it) and then writes there anyway, so
//! every run left its shuffles in the system's temporary folder: 5.5 GB per TPC-H SF 1 run.
//! The executor is therefore assembled here from the same parts, around a folder weir owns:
//! `weir-shuffle-<pid>-<n>` under the spill folder (`[engine] spill_dir`, else the system's
//! temporary folder; `scratch.rs`). Its contents go when the run that wrote them ends
//! (`ShuffleFolder`'s drop), and the folder with the next weir after this one.

use std::path::Path;
use std::sync::Arc;

use arrow_flight::flight_service_server::FlightServiceServer;
use ballista::extension::SessionConfigExt;
use ballista_core::serde::BallistaCodec;
use ballista_core::serde::protobuf::ExecutorRegistration;
use ballista_core::serde::protobuf::scheduler_grpc_client::SchedulerGrpcClient;
use ballista_core::serde::scheduler::{
    ExecutorOperatingSystemSpecification, ExecutorSpecification,
};
use ballista_core::utils::{GrpcServerConfig, create_grpc_server};
use ballista_core::{BALLISTA_PROTOCOL_VERSION, ConfigProducer, RuntimeProducer};
use ballista_executor::executor::Executor;
use ballista_executor::flight_service::BallistaFlightService;
use ballista_executor::metrics::LoggingMetricsCollector;
use datafusion::execution::context::SessionState;
use tokio::sync::OnceCell;

use super::scratch::Scratch;

/// How long to wait for the in-process scheduler to answer.
const START_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(5);

/// The in-process cluster: its scheduler's address and the executor's work folder.
pub(super) struct Standalone {
    pub scheduler: String,
    pub work_dir: Scratch,
}

/// Why the in-process cluster did not start.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct NotStarted(String);

static STANDALONE: OnceCell<Standalone> = OnceCell::const_new();

/// The in-process cluster, started on first use with `state`'s settings, object stores and
/// memory pool; its shuffle files go under `spill_root`.
pub(super) async fn get(
    state: &SessionState,
    spill_root: &Path,
) -> Result<&'static Standalone, NotStarted> {
    STANDALONE
        .get_or_try_init(|| start(state, spill_root))
        .await
}

async fn start(state: &SessionState, spill_root: &Path) -> Result<Standalone, NotStarted> {
    let failed = |e: &dyn std::fmt::Display| NotStarted(e.to_string());
    let work_dir = Scratch::create(spill_root, "shuffle")
        .map_err(|e| failed(&format!("{}: {e}", spill_root.display())))?;

    let address = ballista_scheduler::standalone::new_standalone_scheduler_from_state(state)
        .await
        .map_err(|e| failed(&e))?;
    let scheduler = format!("http://localhost:{}", address.port());
    let connect = async {
        loop {
            match SchedulerGrpcClient::connect(scheduler.clone()).await {
                Ok(client) => break client,
                Err(_) => tokio::time::sleep(std::time::Duration::from_millis(50)).await,
            }
        }
    };
    let client = tokio::time::timeout(START_TIMEOUT, connect)
        .await
        .map_err(|_| failed(&"its scheduler did not answer"))?;
    executor(client, state, work_dir.path())
        .await
        .map_err(|e| failed(&e))?;
    Ok(Standalone {
        scheduler,
        work_dir,
    })
}

/// What `ballista_executor::new_standalone_executor_from_state` does, with `work_dir` kept.
async fn executor(
    scheduler: SchedulerGrpcClient<tonic::transport::Channel>,
    state: &SessionState,
    work_dir: &Path,
) -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
    let vcores = state.config().ballista_standalone_parallelism();
    let codec: BallistaCodec = BallistaCodec::new(
        state.config().ballista_logical_extension_codec(),
        state.config().ballista_physical_extension_codec(),
    );
    let config = state.config().clone().upgrade_for_ballista();
    let runtime = state.runtime_env().clone();
    let config_producer: ConfigProducer = Arc::new(move || config.clone());
    let runtime_producer: RuntimeProducer = Arc::new(move |_| Ok(runtime.clone()));
    let max_message_size = config_producer().ballista_grpc_client_max_message_size();

    let listener = tokio::net::TcpListener::bind("localhost:0").await?;
    let registration = ExecutorRegistration {
        id: ballista_core::ids::new_instance_id(),
        host: Some("localhost".to_string()),
        port: listener.local_addr()?.port() as u32,
        // Unused: this executor pulls its tasks from the scheduler.
        grpc_port: 50020,
        specification: Some(
            ExecutorSpecification::default()
                .with_vcores(vcores as u32)
                .into(),
        ),
        os_info: Some(ExecutorOperatingSystemSpecification::default().into()),
        ballista_protocol_version: BALLISTA_PROTOCOL_VERSION,
    };
    let work_dir = work_dir.to_string_lossy().into_owned();
    let executor = Arc::new(Executor::with_default_execution_engine(
        registration,
        &work_dir,
        runtime_producer,
        config_producer,
        Arc::new(state.into()),
        Arc::new(LoggingMetricsCollector::default()),
        vcores,
    ));
    // Other stages fetch this executor's shuffle partitions over Arrow Flight.
    let flight = FlightServiceServer::new(BallistaFlightService::new(work_dir))
        .max_decoding_message_size(max_message_size)
        .max_encoding_message_size(max_message_size);
    tokio::spawn(
        create_grpc_server(&GrpcServerConfig::default())
            .add_service(flight)
            .serve_with_incoming(tokio_stream::wrappers::TcpListenerStream::new(listener)),
    );
    tokio::spawn(ballista_executor::execution_loop::poll_loop(
        scheduler,
        executor,
        codec,
        None,
        None,
        ballista_executor::health::ExecutorHealth::new(),
    ));
    Ok(())
}

/// The in-process executor's shuffle files, removed when the run that holds this ends. Runs
/// in one process follow each other (`watch`), so no job is running by then.
#[derive(Debug)]
pub(super) struct ShuffleFolder(pub &'static Scratch);

impl Drop for ShuffleFolder {
    fn drop(&mut self) {
        self.0.clear();
    }
}
