//! A query that stops without failing: DataFusion 55 can hang under memory pressure, every
//! thread parked, neither finishing nor erring (apache/datafusion#24883, a repartition waiting
//! on its own spill files; fixed after 55). TPC-H's q18 at SF 10 under 1 GiB did so in one run
//! of several. A query has stopped when, over a whole window, none of its operators produced a
//! row, read a byte or spilled, and weir's whole process used less than a hundredth of the
//! window's CPU: a slow source or store still moves bytes or rows, and a long computation uses
//! CPU. Such a query is cancelled; the hang is a race, so the task then runs it once more.

use std::future::Future;
use std::time::Duration;

/// The window unless `WEIR_STALL_SECS` says otherwise: longer than object_store's retries of a
/// request that gets no answer (three minutes), which end in an error of their own.
const WINDOW: Duration = Duration::from_secs(300);

/// The window of CPU-less time after which a query counts as stopped, given `set` (from
/// `WEIR_STALL_SECS`; `None`: the default, zero: never); `None` also where CPU time is unknown.
pub fn window(set: Option<Duration>) -> Option<Duration> {
    match set {
        Some(d) if d.is_zero() => None,
        Some(d) => Some(d),
        None => Some(WINDOW),
    }
    .filter(|_| cpu_time().is_some())
}

/// `work`'s output, or `None` when `progress` did not change and the process used (almost) no
/// CPU for a whole `window` while it ran: then `work` is dropped, which cancels its query.
pub async fn unless_stalled<F: Future>(
    work: F,
    window: Duration,
    progress: impl Fn() -> usize,
) -> Option<F::Output> {
    let mut work = std::pin::pin!(work);
    let mut ticks = tokio::time::interval(window);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    ticks.tick().await;
    let mut last = (cpu_time(), progress());
    loop {
        tokio::select! {
            out = &mut work => return Some(out),
            _ = ticks.tick() => {
                let now = (cpu_time(), progress());
                if let (Some(before), Some(cpu)) = (last.0, now.0)
                    && cpu.saturating_sub(before) < window / 100
                    && now.1 == last.1
                {
                    return None;
                }
                last = now;
            }
        }
    }
}

/// The CPU time weir's process has used, all threads together.
fn cpu_time() -> Option<Duration> {
    #[cfg(unix)]
    {
        let mut usage = std::mem::MaybeUninit::<libc::rusage>::zeroed();
        // SAFETY: getrusage fills the struct it is given and reads nothing else.
        let usage = unsafe {
            (libc::getrusage(libc::RUSAGE_SELF, usage.as_mut_ptr()) == 0)
                .then(|| usage.assume_init())
        }?;
        let time = |t: libc::timeval| {
            Duration::from_secs(t.tv_sec as u64) + Duration::from_micros(t.tv_usec as u64)
        };
        Some(time(usage.ru_utime) + time(usage.ru_stime))
    }
    #[cfg(not(unix))]
    None
}
