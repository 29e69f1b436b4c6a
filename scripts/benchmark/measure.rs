//! One timed child process: wall time, peak resident memory, and what it printed.

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

pub struct Sample {
    pub wall: Duration,
    /// Peak resident set size of the child, in MiB.
    pub rss_mb: f64,
    /// Peak of its anonymous resident memory (`RssAnon`), in MiB: what a memory limit bounds.
    /// The peak RSS also counts mapped file pages (weir maps a local store's files), which the
    /// kernel can drop.
    pub anon_mb: f64,
    pub stdout: String,
}

/// Runs `cmd` to completion. Fails when it exits non-zero, with what it printed: a benchmark of a
/// failing run would measure nothing.
/// Output goes to files in `scratch` (a pipe could fill up while we are blocked in wait4).
pub fn run(cmd: &mut Command, scratch: &Path) -> Result<Sample, String> {
    let create = |name: &str| {
        std::fs::File::options()
            .read(true)
            .write(true)
            .create(true)
            .truncate(true)
            .open(scratch.join(name))
            .map_err(|e| format!("{}: {e}", scratch.display()))
    };
    let out_file = create("stdout")?;
    let err_file = create("stderr")?;
    let start = Instant::now();
    let child = cmd
        .stdin(Stdio::null())
        .stdout(out_file.try_clone().map_err(|e| e.to_string())?)
        .stderr(err_file.try_clone().map_err(|e| e.to_string())?)
        .spawn()
        .map_err(|e| format!("cannot start {cmd:?}: {e}"))?;
    let anon = AnonPeak::watch(child.id());
    let (status, rusage) = wait4(child.id())?;
    let wall = start.elapsed();
    let anon_mb = anon.stop();
    let stdout = read_all(out_file);
    if !(libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0) {
        return Err(format!(
            "{cmd:?} failed (status {status}) after {:.1} s, peak RSS {:.0} MB:\n{stdout}\n{}",
            wall.as_secs_f64(),
            rusage.ru_maxrss as f64 / 1024.0,
            read_all(err_file)
        ));
    }
    Ok(Sample {
        wall,
        // Linux reports ru_maxrss in KiB.
        rss_mb: rusage.ru_maxrss as f64 / 1024.0,
        anon_mb,
        stdout,
    })
}

/// The kernel keeps no peak of `RssAnon`: a thread reads it every 20 ms while the child runs.
struct AnonPeak {
    done: std::sync::Arc<std::sync::atomic::AtomicBool>,
    thread: std::thread::JoinHandle<u64>,
}

impl AnonPeak {
    fn watch(pid: u32) -> Self {
        let done = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let stop = done.clone();
        let thread = std::thread::spawn(move || {
            let mut peak = 0;
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                peak = peak.max(anon_kib(pid).unwrap_or(0));
                std::thread::sleep(Duration::from_millis(20));
            }
            peak
        });
        Self { done, thread }
    }

    /// The peak seen, in MiB.
    fn stop(self) -> f64 {
        self.done.store(true, std::sync::atomic::Ordering::Relaxed);
        self.thread.join().unwrap_or(0) as f64 / 1024.0
    }
}

/// `RssAnon` of process `pid`, in KiB.
fn anon_kib(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|l| l.starts_with("RssAnon:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

/// `wait4` rather than `Child::wait`: it returns the child's own resource usage, so each sample
/// has its own peak RSS (getrusage(RUSAGE_CHILDREN) would give the maximum over all children).
fn wait4(pid: u32) -> Result<(i32, libc::rusage), String> {
    let mut status = 0;
    // SAFETY: rusage is plain data that wait4 fills in; pid is our own child, not yet reaped.
    let mut rusage: libc::rusage = unsafe { std::mem::zeroed() };
    let got = unsafe { libc::wait4(pid as i32, &mut status, 0, &mut rusage) };
    if got < 0 {
        return Err(format!("wait4: {}", std::io::Error::last_os_error()));
    }
    Ok((status, rusage))
}

fn read_all(mut f: std::fs::File) -> String {
    use std::io::{Read, Seek};
    let mut s = String::new();
    let _ = f.rewind().and_then(|_| f.read_to_string(&mut s));
    s
}

pub fn median(mut xs: Vec<f64>) -> f64 {
    xs.sort_by(f64::total_cmp);
    match xs.len() {
        0 => f64::NAN,
        n if n % 2 == 1 => xs[n / 2],
        n => (xs[n / 2 - 1] + xs[n / 2]) / 2.0,
    }
}
