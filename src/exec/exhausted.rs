//! A task that ran out of the run's memory pool, said as what the user can act on.

use datafusion::error::DataFusionError;

use super::TaskError;
use crate::config::EngineSettings;

/// A task that ran out of the pool, said as what the user can act on: which task, the limit,
/// the operator that asked, and a limit to try; `None` for any other failure.
pub fn exhausted(error: &TaskError, task: &str, limits: &EngineSettings) -> Option<TaskError> {
    let TaskError::Engine { source, .. } = error else {
        return None;
    };
    let DataFusionError::ResourcesExhausted(message) = source.find_root() else {
        return None;
    };
    let rest = message.split("Failed to allocate additional ").nth(1)?;
    let (wanted, rest) = rest.split_once(" for ")?;
    let operator = rest.split(" with ").next()?.trim().to_string();
    let pool = limits.pool_bytes();
    let suggest = crate::report::human_bytes(pool.saturating_mul(2));
    let flag = match limits.explicit() {
        true => "raise --memory-limit (or [engine] memory_limit)",
        false => {
            "set --memory-limit (or [engine] memory_limit) to more than half of this machine's memory"
        }
    };
    Some(TaskError::Memory {
        task: task.to_string(),
        limit: crate::report::human_bytes(pool),
        operator: operator.clone(),
        wanted: wanted.to_string(),
        help: format!(
            "{flag}, e.g. {suggest}; {operator} holds its data in memory (a hash join's build side, a repartition) and cannot spill it all, even when run again alone with less memory{}",
            holders(message)
        ),
    })
}

/// What held the pool when it ran out, from the tracking pool's list: `; the pool's largest
/// holders: ExternalSorter[0] 301.2 MB (spills), HashJoinInput 120.0 MB`.
fn holders(message: &str) -> String {
    let Some((_, list)) = message.split_once("as:\n") else {
        return String::new();
    };
    let held: Vec<String> = list
        .lines()
        .map_while(|line| {
            let (name, rest) = line.trim().split_once('#')?;
            let spills = rest.contains("can spill: true");
            let size = rest.split("consumed ").nth(1)?.split(',').next()?;
            Some(format!(
                "{name} {size}{}",
                if spills { " (spills)" } else { "" }
            ))
        })
        .collect();
    match held.is_empty() {
        true => String::new(),
        false => format!("; the pool's largest holders: {}", held.join(", ")),
    }
}
