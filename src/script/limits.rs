//! What running a script's code may cost beyond Rhai's operation limit: a wall-clock limit on
//! evaluating the script (every command evaluates it, so work done there slows `run`, `status`
//! and `watch` alike), one on each call into task code (a task function, a UDF's call on a
//! batch of rows), and the sizes of strings, arrays and maps.
//!
//! Rhai checks sizes itself only by measuring a whole array or map, nested values included,
//! after every call that may change it: every `push` walks the array, so growing one is
//! quadratic (100,000 pushes took 9 s, 3 million rows built for `table(rows)` looked hung), and
//! `m[k] = v` is not checked at all. So weir sets none of Rhai's size limits and checks each
//! variable that holds a string, array or map when code uses it: its own length every time,
//! what it holds now and then, looking at about one value per use on average. `pad` and `blob`,
//! which make a value of a given length at once, are checked before they allocate.

use std::cell::Cell;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use rhai::{Dynamic, Engine, EvalAltResult, NativeCallContext, Position};

/// How long evaluating a script may take, unless `WEIR_SCRIPT_TIMEOUT` says otherwise.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(30);

/// How long one call into task code may run, unless `WEIR_TASK_TIMEOUT` says otherwise: eager
/// work on data may rightly take long, a loop that never ends may not.
pub const DEFAULT_TASK_TIMEOUT: Duration = Duration::from_secs(600);

/// How large a value may grow, its nested values included.
#[derive(Debug, Clone, Copy)]
pub struct Sizes {
    /// Map entries (as Rhai counts them).
    pub entries: usize,
    /// Array and blob items.
    pub items: usize,
    /// String bytes.
    pub bytes: usize,
}

/// What a script's values may hold.
pub const MAX_SIZES: Sizes = Sizes {
    entries: 1_000_000,
    items: 10_000_000,
    bytes: 64 << 20,
};

/// Checking the clock every this many operations costs nothing measurable and stops a
/// runaway loop within milliseconds of its limit.
const CLOCK_EVERY: u64 = 4096;

/// Nested values are counted at least this many variable uses apart.
const NESTED_CHECK_EVERY: usize = 4096;

thread_local! {
    /// Uses of variables holding a container until nested values are counted again.
    static UNTIL_NESTED_CHECK: Cell<usize> = const { Cell::new(0) };
    /// When the task code running on this thread was called, if it runs task code.
    static TASK_CODE_SINCE: Cell<Option<Instant>> = const { Cell::new(None) };
}

/// Run `f`, a call into task code, on this thread under the task-code time limit. A call
/// within one (a task function calling a UDF's query) counts from the outer call.
pub fn task_code<R>(f: impl FnOnce() -> R) -> R {
    let before = TASK_CODE_SINCE.get();
    TASK_CODE_SINCE.set(before.or(Some(Instant::now())));
    let out = f();
    TASK_CODE_SINCE.set(before);
    out
}

/// The evaluation under way, if any (armed while the script's top level runs), and the limit
/// on task code.
#[derive(Clone, Default)]
pub struct Evaluation(Arc<State>);

#[derive(Default)]
struct State {
    active: AtomicBool,
    /// When it started, and how long it may take.
    deadline: Mutex<Option<(Instant, Duration)>>,
    /// How long one call into task code may take; `None`: no limit.
    task_limit: Mutex<Option<Duration>>,
}

impl Evaluation {
    /// From now until `disarm`, the script's top level runs: `limit` is its time (`None`:
    /// none).
    pub fn arm(&self, limit: Option<Duration>) {
        *lock(&self.0.deadline) = limit.map(|l| (Instant::now(), l));
        self.0.active.store(true, Ordering::SeqCst);
    }

    pub fn disarm(&self) {
        self.0.active.store(false, Ordering::SeqCst);
        *lock(&self.0.deadline) = None;
    }

    /// How long each call into task code may run (`None`: no limit).
    pub fn limit_task_code(&self, limit: Option<Duration>) {
        *lock(&self.0.task_limit) = limit;
    }

    fn active(&self) -> bool {
        self.0.active.load(Ordering::Relaxed)
    }

    /// Why the code running on this thread must stop now, if it must.
    fn overdue(&self) -> Option<String> {
        if self.active() {
            let deadline = *lock(&self.0.deadline);
            if let Some((start, limit)) = deadline
                && start.elapsed() > limit
            {
                return Some(too_slow(limit));
            }
        }
        let since = TASK_CODE_SINCE.get()?;
        let limit = (*lock(&self.0.task_limit))?;
        (since.elapsed() > limit).then(|| task_too_slow(limit))
    }

    /// Check the clock and the sizes of values in `engine`'s code.
    pub fn install(&self, engine: &mut Engine) {
        let clock = self.clone();
        engine.on_progress(move |ops| {
            if ops % CLOCK_EVERY != 0 {
                return None;
            }
            clock.overdue().map(Dynamic::from)
        });
        guard_sizes(engine, MAX_SIZES);
    }
}

/// Holds only copies of times: a panic elsewhere cannot leave one half-written.
fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

fn too_slow(limit: Duration) -> String {
    format!(
        "the script took longer than {} s to evaluate (the limit; WEIR_SCRIPT_TIMEOUT sets it): a script only declares tasks, every command evaluates it, and heavy work belongs in tasks",
        limit.as_secs_f64()
    )
}

fn task_too_slow(limit: Duration) -> String {
    format!(
        "the task's code ran longer than {} s (the limit for one call of a task function or of a UDF on a batch of rows; WEIR_TASK_TIMEOUT sets it, 0 turns it off): look for a loop that does not end, or do the work in SQL",
        limit.as_secs_f64()
    )
}

/// The sizes a value holds: (array and blob items, map entries, string bytes), its own and its
/// nested values', to a depth of 64; `visited` counts the values looked at.
fn sizes(value: &Dynamic, depth: usize, visited: &mut usize) -> (usize, usize, usize) {
    *visited += 1;
    if depth > 64 {
        return (0, 0, 0);
    }
    if let Some(s) = value.read_lock::<rhai::ImmutableString>() {
        return (0, 0, s.len());
    }
    if let Some(blob) = value.read_lock::<rhai::Blob>() {
        return (blob.len(), 0, 0);
    }
    let add =
        |(a, m, s): (usize, usize, usize), (b, n, t): (usize, usize, usize)| (a + b, m + n, s + t);
    if let Some(map) = value.read_lock::<rhai::Map>() {
        let nested = map
            .values()
            .map(|v| sizes(v, depth + 1, visited))
            .fold((0, 0, 0), add);
        return add((0, map.len(), 0), nested);
    }
    if let Some(array) = value.read_lock::<rhai::Array>() {
        let nested = array
            .iter()
            .map(|v| sizes(v, depth + 1, visited))
            .fold((0, 0, 0), add);
        return add((array.len(), 0, 0), nested);
    }
    (0, 0, 0)
}

/// A value's own size: (items, entries, bytes), without looking inside.
fn own_size(value: &Dynamic) -> (usize, usize, usize) {
    if let Some(s) = value.read_lock::<rhai::ImmutableString>() {
        (0, 0, s.len())
    } else if let Some(blob) = value.read_lock::<rhai::Blob>() {
        (blob.len(), 0, 0)
    } else if let Some(map) = value.read_lock::<rhai::Map>() {
        (0, map.len(), 0)
    } else if let Some(array) = value.read_lock::<rhai::Array>() {
        (array.len(), 0, 0)
    } else {
        (0, 0, 0)
    }
}

/// What is wrong with sizes `(items, entries, bytes)` of variable `name`, if anything.
fn too_large(
    name: &str,
    (items, entries, bytes): (usize, usize, usize),
    max: Sizes,
) -> Option<String> {
    let kept = "keep large data in tables";
    if entries > max.entries {
        Some(format!(
            "`{name}` holds {entries} map entries, more than the {} a script's maps may hold: {kept}",
            max.entries
        ))
    } else if items > max.items {
        Some(format!(
            "`{name}` holds {items} array items, more than the {} a script's arrays may hold: {kept}",
            max.items
        ))
    } else if bytes > max.bytes {
        Some(format!(
            "`{name}` holds {bytes} bytes of strings, more than the {} a script's values may hold: {kept}",
            max.bytes
        ))
    } else {
        None
    }
}

/// Check each variable holding a string, array or map when code uses it: its own size every
/// time, what it holds now and then (after at least as many uses as values looked at).
fn guard_sizes(engine: &mut Engine, max: Sizes) {
    // "Deprecated" is only Rhai's mark of an API it may change.
    #[allow(deprecated)]
    engine.on_var(move |name, _, ctx| {
        let Some(value) = ctx.scope().get(name) else {
            return Ok(None);
        };
        if !(value.is_string() || value.is_array() || value.is_map() || value.is_blob()) {
            return Ok(None);
        }
        let own = own_size(value);
        let measured = match too_large(name, own, max).is_none() && nested_check_due() {
            true => {
                let mut visited = 0;
                let all = sizes(value, 0, &mut visited);
                UNTIL_NESTED_CHECK.set(visited.max(NESTED_CHECK_EVERY));
                all
            }
            false => own,
        };
        match too_large(name, measured, max) {
            None => Ok(None),
            Some(message) => {
                Err(EvalAltResult::ErrorRuntime(message.into(), Position::NONE).into())
            }
        }
    });
    // The functions that make a value of a given length at once are checked before they do.
    let pad_limit = |ctx: &NativeCallContext, len: i64, max: usize, what: &str| {
        match usize::try_from(len).map_or(true, |l| l <= max) {
            true => Ok(()),
            false => Err(Box::new(EvalAltResult::ErrorRuntime(
                format!("{what} of length {len} is more than the {max} a script's values may hold: keep large data in tables").into(),
                ctx.call_position(),
            ))),
        }
    };
    engine.register_fn(
        "pad",
        move |ctx: NativeCallContext, a: &mut rhai::Array, len: i64, item: Dynamic| {
            pad_limit(&ctx, len, max.items, "an array")?;
            if let Ok(len) = usize::try_from(len)
                && len > a.len()
            {
                a.resize(len, item);
            }
            Ok::<(), Box<EvalAltResult>>(())
        },
    );
    engine.register_fn(
        "pad",
        move |ctx: NativeCallContext, s: &mut rhai::ImmutableString, len: i64, c: char| {
            pad_limit(&ctx, len, max.bytes, "a string")?;
            let have = s.chars().count();
            if let Ok(len) = usize::try_from(len)
                && len > have
            {
                let mut text = s.to_string();
                text.extend(std::iter::repeat_n(c, len - have));
                *s = text.into();
            }
            Ok::<(), Box<EvalAltResult>>(())
        },
    );
    engine.register_fn(
        "pad",
        move |ctx: NativeCallContext, s: &mut rhai::ImmutableString, len: i64, fill: &str| {
            pad_limit(&ctx, len, max.bytes, "a string")?;
            let have = s.chars().count();
            if let Ok(len) = usize::try_from(len)
                && len > have
                && !fill.is_empty()
            {
                let mut text = s.to_string();
                text.extend(fill.chars().cycle().take(len - have));
                *s = text.into();
            }
            Ok::<(), Box<EvalAltResult>>(())
        },
    );
    engine.register_fn("blob", move |ctx: NativeCallContext, len: i64| {
        pad_limit(&ctx, len, max.items, "a blob")?;
        Ok::<rhai::Blob, Box<EvalAltResult>>(vec![0; usize::try_from(len).unwrap_or(0)])
    });
    engine.register_fn(
        "blob",
        move |ctx: NativeCallContext, len: i64, value: i64| {
            pad_limit(&ctx, len, max.items, "a blob")?;
            Ok::<rhai::Blob, Box<EvalAltResult>>(vec![
                value as u8;
                usize::try_from(len).unwrap_or(0)
            ])
        },
    );
}

fn nested_check_due() -> bool {
    let left = UNTIL_NESTED_CHECK.get();
    UNTIL_NESTED_CHECK.set(left.saturating_sub(1));
    left == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An engine whose values may hold `n` of each kind.
    fn engine(n: usize) -> Engine {
        let mut engine = Engine::new();
        Evaluation::default().install(&mut engine);
        let max = Sizes {
            entries: n,
            items: n,
            bytes: n,
        };
        guard_sizes(&mut engine, max);
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
        ] {
            let Err(e) = engine.run(script) else {
                panic!("not stopped: {script}");
            };
            let text = e.to_string();
            assert!(
                text.contains("map entries, more than the 100 "),
                "{script}: {text}"
            );
        }
        let fine = "let m = #{}; for i in 0..100 { m[`k${i}`] = i; } let n = m.len(); n";
        assert_eq!(engine.eval::<i64>(fine).ok(), Some(100));
    }

    /// weir's engine sets none of Rhai's size limits, whose checks walk an array on every push
    /// (growing one is then quadratic); its own stop arrays, strings and `pad` at the limit.
    #[test]
    fn arrays_and_strings_stop_at_the_limit_without_rhais_checks() {
        let weir = crate::script::session_engine(std::path::Path::new("."), Default::default());
        let limits = (
            weir.max_array_size(),
            weir.max_map_size(),
            weir.max_string_size(),
        );
        assert_eq!(
            limits,
            (0, 0, 0),
            "a Rhai size limit makes every push walk the array"
        );
        let engine = engine(1_000_000);
        let grown = "let a = []; for i in 0..100000 { a.push(#{ i: i }); } a.len()";
        assert_eq!(engine.eval::<i64>(grown).ok(), Some(100_000));
        let Err(e) = engine.run("let s = \"x\"; loop { s += s; }") else {
            panic!("a doubling string was not stopped");
        };
        assert!(e.to_string().contains("bytes of strings"), "{e}");
        let Err(e) = engine.run("let a = []; a.pad(100000000, 0);") else {
            panic!("pad was not checked");
        };
        assert!(
            e.to_string().contains("an array of length 100000000"),
            "{e}"
        );
        let Err(e) = engine.run("let a = []; for i in 0..2000000 { a.push(i); }") else {
            panic!("a growing array was not stopped");
        };
        assert!(
            e.to_string().contains("array items, more than the 1000000"),
            "{e}"
        );
        assert_eq!(
            engine.eval::<i64>("let a = [1]; a.pad(3, 0); a.len()").ok(),
            Some(3)
        );
        assert_eq!(
            engine
                .eval::<String>("let s = \"ab\"; s.pad(5, '-'); s")
                .ok(),
            Some("ab---".into())
        );
    }

    /// Task code stops at its time limit with a message that says which limit.
    #[test]
    fn task_code_stops_at_its_time_limit() {
        let mut engine = Engine::new();
        let evaluation = Evaluation::default();
        evaluation.install(&mut engine);
        evaluation.limit_task_code(Some(Duration::from_millis(200)));
        let result = task_code(|| engine.run("loop { }"));
        let Err(e) = result else {
            panic!("not stopped")
        };
        let text = crate::script::runtime_message(&e);
        assert!(
            text.contains("the task's code ran longer than 0.2 s"),
            "{text}"
        );
        // Outside task code, the same engine is not timed.
        assert!(
            engine
                .eval::<i64>("let x = 0; for i in 0..1000 { x += i; } x")
                .is_ok()
        );
    }
}
