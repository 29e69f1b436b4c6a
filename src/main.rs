//! The `weir` binary: parse arguments, run, render any error, and choose the exit code.

use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    if cpu_lacks_v3() {
        return unsupported_cpu();
    }
    tune_allocator();
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
    // The main thread's stack is fixed by the OS: the command runs on a thread of its own.
    let command = std::thread::Builder::new()
        .name("weir".into())
        .stack_size(STACK_SIZE)
        .spawn(move || run(args));
    match command.map(|c| c.join()) {
        Ok(Ok(code)) => code,
        // The panic has been printed; 101 is Rust's exit code for one.
        Ok(Err(_)) => ExitCode::from(101),
        Err(e) => start_failure("the command thread", &e),
    }
}

/// The stack of every thread that plans SQL or runs Rhai: the one running the command, the
/// runtime's workers and its blocking threads. Rendering, printing and dropping a query
/// nested `MAX_SQL_DEPTH` deep recurses once per level where DataFusion does not guard it
/// (about 5 KB a level in a debug build); 64 MB leaves room several times over. A stack is
/// reserved, not committed, so what is not used costs address space only.
const STACK_SIZE: usize = 64 << 20;

fn run(args: weir::cli::Args) -> ExitCode {
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .thread_stack_size(STACK_SIZE)
        .build()
    {
        Ok(r) => r,
        Err(e) => return start_failure("the async runtime", &e),
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

fn start_failure(what: &str, e: &std::io::Error) -> ExitCode {
    // Before anything else runs: there is no secret to mask yet.
    #[allow(clippy::print_stderr)]
    {
        eprintln!("weir: cannot start {what}: {e}");
    }
    ExitCode::from(1)
}

/// `WEIR_LOG` is about weir: a bare level (`debug`) is weir's own, and other crates (SQL
/// parsing, object stores, DataFusion) stay at `warn` unless named (`debug,datafusion=debug`),
/// as their debug output drowns weir's. Colour only on a terminal, as everything else weir prints.
fn init_logging() {
    let spec = std::env::var("WEIR_LOG").unwrap_or_default();
    let filter = tracing_subscriber::EnvFilter::builder()
        .parse(log_directives(&spec))
        .unwrap_or_else(|e| {
            weir::report::note(&format!(
                "weir: WEIR_LOG=`{spec}` is not a log filter ({e}); logging warnings only (e.g. WEIR_LOG=debug, WEIR_LOG=debug,datafusion=info)"
            ));
            tracing_subscriber::EnvFilter::new("warn")
        });
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(weir::report::color_on_stderr())
        .with_writer(|| weir::config::secrets::Redacted(std::io::stderr()))
        .try_init();
}

/// `WEIR_LOG`'s directives with third-party crates at `warn` and a bare level meaning `weir=`
/// that level (`off` still turns everything off).
fn log_directives(spec: &str) -> String {
    let mut directives = vec!["warn".to_string()];
    // An in-process Ballista cluster logs each failed job with its whole plan; weir reports the
    // task's failure (or that it ran here instead) itself.
    if !spec.contains("ballista") {
        directives.extend(
            [
                "ballista_scheduler=off",
                "ballista_executor=off",
                "ballista_core=off",
            ]
            .map(String::from),
        );
    }
    for d in spec.split(',').map(str::trim).filter(|d| !d.is_empty()) {
        let bare = d.parse::<tracing_subscriber::filter::LevelFilter>().is_ok();
        if bare && d.eq_ignore_ascii_case("off") {
            directives[0] = "off".to_string();
        }
        directives.push(match bare {
            true => format!("weir={d}"),
            false => d.to_string(),
        });
    }
    directives.join(",")
}

/// glibc's malloc serves a block above its mmap threshold by mmap, and returns it to the
/// system when freed; but each such free raises the threshold (up to 32 MiB), after which
/// Arrow's buffers come from the heap arenas and stay there as fragments. A fixed 4 MiB
/// threshold took 175 MB off the peak of the TPC-H run at SF 1 (710 -> 536 MB) for about 3% of
/// its time; 128 KiB, glibc's start, took 260 MB for 27% (README, Memory).
///
/// Fixing it also freezes the trim threshold at its 128 KiB start (glibc moves the two together,
/// trim at twice mmap), so each free at an arena's top gave the pages back and the next
/// allocation faulted them in and zeroed them again: a tenth of the TPC-H queries' time. Twice
/// the mmap threshold, as glibc would set it, took that back for no measurable peak.
fn tune_allocator() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: mallopt only sets parameters; no other thread exists yet to allocate meanwhile.
    unsafe {
        libc::mallopt(libc::M_MMAP_THRESHOLD, 4 << 20);
        libc::mallopt(libc::M_TRIM_THRESHOLD, 8 << 20);
    }
}

/// Whether the CPU has the instructions this build was compiled to use (x86-64-v3,
/// `.cargo/config.toml`): without this check weir would die of an illegal instruction wherever
/// the compiler first used one. This code is compiled for v3 too, so it keeps to scalars, which
/// the compiler has no vector instructions for (a copied array here was one).
#[inline(never)]
fn cpu_lacks_v3() -> bool {
    // Asked of the CPU itself: `is_x86_feature_detected!` answers yes for whatever the build
    // was compiled with.
    #[cfg(all(target_arch = "x86_64", target_feature = "avx2"))]
    {
        use std::arch::x86_64::__cpuid_count;
        let bit = |word: u32, n: u32| word & (1 << n) != 0;
        let basic = __cpuid_count(1, 0).ecx;
        let extended = __cpuid_count(7, 0).ebx;
        let amd = __cpuid_count(0x8000_0001, 0).ecx;
        let v3 = bit(basic, 12) // FMA
            && bit(basic, 22) // MOVBE
            && bit(basic, 28) // AVX
            && bit(basic, 29) // F16C
            && bit(extended, 3) // BMI1
            && bit(extended, 5) // AVX2
            && bit(extended, 8) // BMI2
            && bit(amd, 5); // LZCNT
        !v3
    }
    #[cfg(not(all(target_arch = "x86_64", target_feature = "avx2")))]
    false
}

/// Said without formatting, which would copy its arguments through vector registers.
#[inline(never)]
fn unsupported_cpu() -> ExitCode {
    use std::io::Write;
    let _ = std::io::stderr().write_all(
        b"error: this weir was built for x86-64-v3 CPUs (AVX2, FMA, BMI2: Intel from 2013, AMD \
          from 2015), which this CPU is not\n  help: build it for any x86-64 CPU with \
          `RUSTFLAGS= cargo build --release` (docs/src/development.md)\n",
    );
    ExitCode::from(2)
}

#[cfg(test)]
mod tests {
    use super::log_directives;

    #[test]
    fn a_bare_level_is_weirs_own() {
        let quiet = "ballista_scheduler=off,ballista_executor=off,ballista_core=off";
        assert_eq!(log_directives(""), format!("warn,{quiet}"));
        assert_eq!(log_directives("debug"), format!("warn,{quiet},weir=debug"));
        assert_eq!(
            log_directives("debug, datafusion=debug"),
            format!("warn,{quiet},weir=debug,datafusion=debug")
        );
        assert_eq!(
            log_directives("weir=trace"),
            format!("warn,{quiet},weir=trace")
        );
        assert_eq!(log_directives("off"), format!("off,{quiet},weir=off"));
        assert_eq!(
            log_directives("ballista_scheduler=info"),
            "warn,ballista_scheduler=info"
        );
    }
}
