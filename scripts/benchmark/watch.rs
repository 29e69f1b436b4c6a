//! Save -> re-run started, in `weir watch`: the time from writing a query file to the
//! watcher's re-run (script evaluated, config read), with weir's debounce included.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::mpsc::{Receiver, channel};
use std::time::{Duration, Instant};

/// `samples` latencies in seconds, each after an edit of q06 in the TPC-H copy at `tpch`.
pub fn save_to_start(
    weir: &Path,
    tpch: &Path,
    data: &Path,
    store: &Path,
    samples: usize,
) -> Result<Vec<f64>, String> {
    let mut child = Command::new(weir)
        .arg("watch")
        .arg(tpch.join("pipeline.rhai"))
        .arg("--param")
        .arg(format!("data={}", data.display()))
        .arg("--store")
        .arg(store)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| format!("cannot start weir watch: {e}"))?;
    let (tx, lines) = channel();
    let err = child.stderr.take().ok_or("no stderr")?;
    std::thread::spawn(move || {
        for l in BufReader::new(err).lines().map_while(Result::ok) {
            let _ = tx.send(l);
        }
    });
    let result = measure(&lines, tpch, samples);
    unsafe { libc::kill(child.id() as i32, libc::SIGINT) };
    let _ = child.wait();
    result
}

fn measure(lines: &Receiver<String>, tpch: &Path, samples: usize) -> Result<Vec<f64>, String> {
    let q06 = tpch.join("queries/q06.sql");
    let original = std::fs::read_to_string(&q06).map_err(|e| e.to_string())?;
    wait_for(lines, "watch: waiting for changes")?;
    let mut out = Vec::with_capacity(samples);
    for i in 0..samples {
        let bound = if i % 2 == 0 {
            "l_quantity < 26"
        } else {
            "l_quantity < 24"
        };
        let text = original.replace("l_quantity < 24", bound);
        let saved = Instant::now();
        std::fs::write(&q06, text).map_err(|e| e.to_string())?;
        // The re-run's start: the script evaluated again, the plan about to be made. Its
        // first task starts within milliseconds, unless its output is revived from the store.
        wait_for(lines, "watch: re-run started")?;
        out.push(saved.elapsed().as_secs_f64());
        wait_for(lines, "watch: waiting for changes")?;
    }
    std::fs::write(&q06, original).map_err(|e| e.to_string())?;
    Ok(out)
}

fn wait_for(lines: &Receiver<String>, prefix: &str) -> Result<(), String> {
    let deadline = Instant::now() + Duration::from_secs(120);
    let mut seen = Vec::new();
    while Instant::now() < deadline {
        match lines.recv_timeout(Duration::from_secs(1)) {
            Ok(l) if l.starts_with(prefix) => return Ok(()),
            Ok(l) => seen.push(l),
            Err(std::sync::mpsc::RecvTimeoutError::Timeout) => {}
            Err(_) => return Err(format!("weir watch ended before `{prefix}`")),
        }
    }
    Err(format!(
        "no `{prefix}` from weir watch in 2 minutes; it printed:\n{}",
        seen.join("\n")
    ))
}
