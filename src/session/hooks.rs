//! After `weir run`: the instance's `on_success` or `on_failure` hook (`[hooks]` in weir.toml),
//! run by `sh -c` in the script's folder with the run's record as JSON on stdin and what it is
//! about in `WEIR_*` variables. A hook's failure is reported, never the run's: it does not
//! change the exit code.

use std::io::Write;
use std::os::fd::AsFd;
use std::os::unix::process::CommandExt;
use std::process::{Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use super::{Loaded, RunReport};
use crate::Error;

/// How a run ended, as its hook hears it.
pub enum Ended<'a> {
    Ran(&'a RunReport),
    /// It stopped before its tasks ran (the lock, a missing source, a bad selection).
    Refused(&'a Error),
}

/// Run the hook `ended` calls for, if the instance has one; what went wrong with it, if anything.
pub async fn after_run(loaded: &Loaded, ended: Ended<'_>) -> Option<String> {
    let hooks = &loaded.instance.hooks;
    let ok = matches!(ended, Ended::Ran(r) if r.failure().is_none() && !r.cancelled);
    let (name, command) = match ok {
        true => ("on_success", hooks.on_success.as_ref()?),
        false => ("on_failure", hooks.on_failure.as_ref()?),
    };
    let (input, env) = about(loaded, &ended).await;
    let (dir, command, timeout) = (loaded.script.dir.clone(), command.clone(), hooks.timeout);
    let ran = tokio::task::spawn_blocking(move || run(&dir, &command, input, &env, timeout)).await;
    match ran {
        Ok(Ok(Some(status))) if status.success() => None,
        Ok(Ok(Some(status))) => Some(format!("the {name} hook failed: {status}")),
        Ok(Ok(None)) => Some(format!(
            "the {name} hook did not finish within {} and was stopped",
            crate::report::secs(timeout)
        )),
        Ok(Err(e)) => Some(format!("the {name} hook could not run: {e}")),
        Err(e) => Some(format!("the {name} hook could not run: {e}")),
    }
}

/// The hook's stdin (the run record, or the error) and its `WEIR_*` variables.
async fn about(loaded: &Loaded, ended: &Ended<'_>) -> (String, Vec<(&'static str, String)>) {
    let mut env = vec![
        ("WEIR_INSTANCE", loaded.instance.name.clone()),
        (
            "WEIR_SCRIPT",
            loaded.script.source.path.display().to_string(),
        ),
        ("WEIR_FLOW", loaded.flow_name.clone()),
    ];
    let input = match ended {
        Ended::Ran(report) => {
            let status = match (report.cancelled, report.failed()) {
                (true, _) => "cancelled",
                (false, 0) => "ok",
                (false, _) => "failed",
            };
            env.push(("WEIR_STATUS", status.into()));
            env.push(("WEIR_RUN_ID", report.run_id.clone()));
            env.push(("WEIR_FAILED_TASKS", report.failed().to_string()));
            env.push(("WEIR_TASKS", report.outcome.tasks.len().to_string()));
            match loaded.store.read_run(&report.run_id).await {
                Ok(Some(record)) => serde_json::to_string(&record).unwrap_or_default(),
                _ => {
                    serde_json::json!({ "run_id": report.run_id, "ok": status == "ok" }).to_string()
                }
            }
        }
        Ended::Refused(error) => {
            env.push(("WEIR_STATUS", "error".into()));
            serde_json::json!({ "ok": false, "error": error.to_string() }).to_string()
        }
    };
    // What a hook reads may reach a chat or a mail: secrets are masked as everywhere.
    (crate::config::secrets::redact(&input).into_owned(), env)
}

/// Run `command`, feeding it `input`; its status, or `None` when it ran past `timeout` and
/// was killed. Blocking: called on a blocking thread.
fn run(
    dir: &std::path::Path,
    command: &str,
    input: String,
    env: &[(&'static str, String)],
    timeout: Duration,
) -> std::io::Result<Option<ExitStatus>> {
    // The hook's output goes to weir's stderr: stdout is the run's summary.
    let out = Stdio::from(std::io::stderr().as_fd().try_clone_to_owned()?);
    let mut child = Command::new("sh")
        .arg("-c")
        .arg(command)
        .current_dir(dir)
        .envs(env.iter().map(|(k, v)| (k, v)))
        .stdin(Stdio::piped())
        .stdout(out)
        .stderr(Stdio::inherit())
        // Its own process group, so a hook stopped at its timeout takes what it started along.
        .process_group(0)
        .spawn()?;
    if let Some(mut stdin) = child.stdin.take() {
        // A hook that does not read its input closes the pipe early: that is its business.
        std::thread::spawn(move || {
            let _ = stdin.write_all(input.as_bytes());
        });
    }
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(status) = child.try_wait()? {
            return Ok(Some(status));
        }
        if Instant::now() >= deadline {
            // SAFETY: kill(2) with the group of a child this process started and still owns.
            unsafe {
                libc::kill(-(child.id() as i32), libc::SIGKILL);
            }
            let _ = child.wait();
            return Ok(None);
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}
