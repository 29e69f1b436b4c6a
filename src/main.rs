//! The `weir` binary: parse arguments, run, render any error, and choose the exit code.

use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    let args = match weir::cli::Args::try_parse() {
        Ok(a) => a,
        Err(e) => {
            let _ = e.print();
            return ExitCode::from(if e.use_stderr() { 2 } else { 0 });
        }
    };
    // Cloud credentials in the environment are masked in everything weir prints.
    weir::config::secrets::register_environment();
    init_logging();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            // Before anything else runs: there is no secret to mask yet.
            #[allow(clippy::print_stderr)]
            {
                eprintln!("weir: cannot start the async runtime: {e}");
            }
            return ExitCode::from(1);
        }
    };
    let result = runtime.block_on(weir::cli::run(args));
    // A task function cancelled by Ctrl-C may still be running on a blocking thread, and
    // dropping the runtime would wait for it.
    runtime.shutdown_timeout(std::time::Duration::from_millis(500));
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(weir::Error::Io(e)) if e.kind() == std::io::ErrorKind::BrokenPipe => ExitCode::SUCCESS,
        Err(e) => {
            let code = e.exit_code();
            weir::report::print_error(e);
            ExitCode::from(code)
        }
    }
}

fn init_logging() {
    let filter = tracing_subscriber::EnvFilter::try_from_env("WEIR_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn"));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(|| weir::config::secrets::Redacted(std::io::stderr()))
        .try_init();
}
