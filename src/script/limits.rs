//! What evaluating a script may cost beyond Rhai's operation and size limits: a wall-clock
//! limit (every command evaluates the script, so work done there slows `run`, `status` and
//! `watch` alike), and the map size Rhai does not check when `m[k] = v` adds a key.
//!
//! Both apply while the script's top level is evaluated. Task functions, which exec calls
//! later on the same engine, do eager work on data that may rightly take long: they run under
//! the operation limit and Rhai's own size checks only, and pay almost nothing for these.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use rhai::{Dynamic, Engine, EvalAltResult, Position};

/// How long evaluating a script may take, unless `WEIR_SCRIPT_TIMEOUT` says otherwise.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(30);

/// Entries a map may hold, nested maps' included (Rhai's own count).
pub const MAX_MAP_SIZE: usize = 1_000_000;

/// Checking the clock every this many operations costs nothing measurable and stops a
/// runaway loop within milliseconds of its limit.
const CLOCK_EVERY: u64 = 4096;

/// Nested entries are counted at least this many variable uses apart.
const NESTED_CHECK_EVERY: usize = 4096;

thread_local! {
    /// Uses of variables holding a map or array until nested entries are counted again.
    static UNTIL_NESTED_CHECK: std::cell::Cell<usize> = const { std::cell::Cell::new(0) };
}

/// The evaluation under way, if any: armed while the script's top level runs.
#[derive(Clone, Default)]
pub struct Evaluation(Arc<State>);

#[derive(Default)]
struct State {
    active: AtomicBool,
    /// When it started, and how long it may take.
    deadline: Mutex<Option<(Instant, Duration)>>,
}

impl Evaluation {
    /// From now until `disarm`, the script's top level runs: `limit` is its time (`None`:
    /// none) and maps are checked.
    pub fn arm(&self, limit: Option<Duration>) {
        *self.deadline() = limit.map(|l| (Instant::now(), l));
        self.0.active.store(true, Ordering::SeqCst);
    }

    pub fn disarm(&self) {
        self.0.active.store(false, Ordering::SeqCst);
        *self.deadline() = None;
    }

    fn active(&self) -> bool {
        self.0.active.load(Ordering::Relaxed)
    }

    /// The limit, once it has passed.
    fn passed(&self) -> Option<Duration> {
        let guard = self.deadline();
        let (start, limit) = (*guard)?;
        (start.elapsed() > limit).then_some(limit)
    }

    /// Holds only a copy of a time: a panic elsewhere cannot leave it half-written.
    fn deadline(&self) -> std::sync::MutexGuard<'_, Option<(Instant, Duration)>> {
        self.0.deadline.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Check the clock and the maps of `engine` while this evaluation is armed.
    pub fn install(&self, engine: &mut Engine) {
        let clock = self.clone();
        engine.on_progress(move |ops| {
            if ops % CLOCK_EVERY != 0 || !clock.active() {
                return None;
            }
            clock.passed().map(|limit| Dynamic::from(too_slow(limit)))
        });
        guard_map_sizes(engine, MAX_MAP_SIZE, self.clone());
    }
}

fn too_slow(limit: Duration) -> String {
    format!(
        "the script took longer than {} s to evaluate (the limit; WEIR_SCRIPT_TIMEOUT sets it): a script only declares tasks, every command evaluates it, and heavy work belongs in tasks",
        limit.as_secs_f64()
    )
}

/// Rhai (1.27) checks a map's size when it is passed to a function or grown with `+=`, but not
/// when `m[k] = v` adds a key, so a loop doing that grows the map until memory runs out. Check
/// each variable holding a map or array when the script uses it: its own entries every time,
/// nested ones (`m.a[k] = v`) now and then, looking at one value per use on average.
fn guard_map_sizes(engine: &mut Engine, max: usize, evaluation: Evaluation) {
    // "Deprecated" is only Rhai's mark of an API it may change.
    #[allow(deprecated)]
    engine.on_var(move |name, _, ctx| {
        if !evaluation.active() {
            return Ok(None);
        }
        let Some(value) = ctx.scope().get(name) else {
            return Ok(None);
        };
        if !(value.is_map() || value.is_array()) {
            return Ok(None);
        }
        let own = value.read_lock::<rhai::Map>().map_or(0, |m| m.len());
        let entries = if own <= max && nested_check_due() {
            let mut visited = 0;
            let entries = map_entries(value, 0, &mut visited);
            UNTIL_NESTED_CHECK.set(visited.max(NESTED_CHECK_EVERY));
            entries
        } else {
            own
        };
        if entries <= max {
            return Ok(None);
        }
        Err(EvalAltResult::ErrorRuntime(
            format!(
                "`{name}` holds {entries} map entries, more than the {max} a script's maps may hold: keep large data in tables"
            )
            .into(),
            Position::NONE,
        )
        .into())
    });
}

fn nested_check_due() -> bool {
    let left = UNTIL_NESTED_CHECK.get();
    UNTIL_NESTED_CHECK.set(left.saturating_sub(1));
    left == 0
}

/// The map entries in `value` and in what it holds, as Rhai counts them for its limit (to a
/// depth of 64); `visited` counts the values looked at.
fn map_entries(value: &Dynamic, depth: usize, visited: &mut usize) -> usize {
    *visited += 1;
    if depth > 64 {
        return 0;
    }
    if let Some(map) = value.read_lock::<rhai::Map>() {
        let nested: usize = map
            .values()
            .map(|v| map_entries(v, depth + 1, visited))
            .sum();
        return map.len() + nested;
    }
    if let Some(array) = value.read_lock::<rhai::Array>() {
        return array
            .iter()
            .map(|v| map_entries(v, depth + 1, visited))
            .sum();
    }
    0
}

#[cfg(test)]
mod tests {
    use super::*;

    fn engine(max: usize) -> Engine {
        let mut engine = Engine::new();
        engine.set_max_map_size(max);
        let evaluation = Evaluation::default();
        evaluation.arm(None);
        guard_map_sizes(&mut engine, max, evaluation);
        engine
    }

    /// Maps grown one key at a time, directly, nested, in a function or through a closure,
    /// stop at the limit where they grow; maps within it work as before.
    #[test]
    fn maps_grown_by_index_assignment_stop_at_the_limit() {
        let engine = engine(100);
        for script in [
            "let m = #{}; for i in 0..10000 { m[`k${i}`] = i; }",
            "let m = #{a: #{}}; for i in 0..10000 { m.a[`k${i}`] = i; }",
            "let m = [#{}]; for i in 0..10000 { m[0][`k${i}`] = i; }",
            "fn f(m) { for i in 0..10000 { m[`k${i}`] = i; } m } f(#{});",
            "let m = #{}; let f = |k| m[k] = 1; for i in 0..10000 { f.call(`k${i}`); }",
        ] {
            let Err(e) = engine.run(script) else {
                panic!("not stopped: {script}");
            };
            let text = e.to_string();
            assert!(
                text.contains("more than the 100 a script's maps may hold")
                    || text.contains("Size of object map too large"),
                "{script}: {text}"
            );
        }
        let fine = "let m = #{}; for i in 0..100 { m[`k${i}`] = i; } let n = m.len(); n";
        assert_eq!(engine.eval::<i64>(fine).ok(), Some(100));
    }
}
