//! `ballista://standalone`: a Ballista scheduler and one executor inside weir's process, over
//! gRPC on loopback. One per process, so `watch` and the REPL start it once.
//!
//! Ballista's own in-process executor (`new_standalone_executor_from_state`) takes a temporary
//! folder for its shuffle files, drops it (which deletes it) and then writes there anyway, so
//! every run left its shuffles in the system's temporary folder: 5.5 GB per TPC-H SF 1 run.
//! The executor is therefore assembled here from the same parts, around a folder weir owns:
//! `weir-ballista-<pid>` under the spill folder (`[engine] spill_dir`, else the system's
//! temporary folder). Its contents go when the run that wrote them ends (`ShuffleFolder`'s
//! drop), and folders of processes that no longer exist go when the next one starts.

use std::path::{Path, PathBuf};
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

/// How long to wait for the in-process scheduler to answer.
const START_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(5);

const PREFIX: &str = "weir-ballista-";

/// The in-process cluster: its scheduler's address and the executor's work folder.
pub(super) struct Standalone {
    pub scheduler: String,
    pub work_dir: PathBuf,
}

static STANDALONE: OnceCell<Standalone> = OnceCell::const_new();

/// The in-process cluster, started on first use with `state`'s settings, object stores and
/// memory pool; its shuffle files go under `spill_dir`.
pub(super) async fn get(
    state: &SessionState,
    spill_dir: Option<&Path>,
) -> Result<&'static Standalone, String> {
    STANDALONE.get_or_try_init(|| start(state, spill_dir)).await
}

async fn start(state: &SessionState, spill_dir: Option<&Path>) -> Result<Standalone, String> {
    let failed = |e: &dyn std::fmt::Display| format!("cannot start the in-process cluster: {e}");
    let root = spill_dir.map_or_else(std::env::temp_dir, Path::to_path_buf);
    remove_orphans(&root);
    let work_dir = root.join(format!("{PREFIX}{}", std::process::id()));
    std::fs::create_dir_all(&work_dir)
        .map_err(|e| failed(&format!("{}: {e}", work_dir.display())))?;

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
    executor(client, state, &work_dir)
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
pub(super) struct ShuffleFolder(pub PathBuf);

impl Drop for ShuffleFolder {
    fn drop(&mut self) {
        let Ok(entries) = std::fs::read_dir(&self.0) else {
            return;
        };
        for entry in entries.flatten() {
            // Best effort: what is left goes with the next process's start.
            let _ = std::fs::remove_dir_all(entry.path());
        }
    }
}

/// Work folders of weir processes that have ended (killed, say) without removing theirs.
fn remove_orphans(root: &Path) {
    // Whether a process is alive is only known here through /proc.
    if !Path::new("/proc/self").exists() {
        return;
    }
    let Ok(entries) = std::fs::read_dir(root) else {
        return;
    };
    for entry in entries.flatten() {
        let name = entry.file_name();
        let Some(pid) = name.to_str().and_then(|n| n.strip_prefix(PREFIX)) else {
            continue;
        };
        if pid.parse::<u32>().is_ok() && !Path::new("/proc").join(pid).exists() {
            let _ = std::fs::remove_dir_all(entry.path());
        }
    }
}
