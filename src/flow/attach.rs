//! Checks and contracts go to the task that writes their table: declared anywhere in the
//! script, they are part of that task's work (and a contract of its key).

use std::collections::HashMap;

use super::{At, FlowError, Task, error};
use crate::names::TableName;
use crate::script::Script;
use crate::script::checks::CheckDecl;

/// Give each contract to the task that writes its table; an enforced one is part of its key,
/// so a changed contract is checked against a new build.
pub(super) fn contracts(
    script: &Script,
    tasks: &mut [Task],
    producers: &HashMap<TableName, usize>,
    by_folded: &HashMap<TableName, TableName>,
) -> Vec<FlowError> {
    let mut problems = Vec::new();
    let known: Vec<String> = producers.keys().map(ToString::to_string).collect();
    for contract in &script.contracts {
        let at = At::new(script.source_of(contract.origin), contract.origin);
        let Some(table) = by_folded.get(&contract.table.folded()) else {
            problems.push(unknown(
                script,
                &contract.table,
                "a contract".into(),
                contract.origin,
                &known,
            ));
            continue;
        };
        let task = &mut tasks[producers[table]];
        if task.contracts.iter().any(|c| &c.table == table) {
            problems.push(FlowError::TwoContracts {
                table: table.to_string(),
                location: at.location,
                src: at.src,
                span: at.span,
            });
            continue;
        }
        let mut contract = contract.clone();
        contract.table = table.clone();
        if contract.enforced {
            task.decl
                .opts
                .key_option(&format!("contract {}", table.table), contract.keyed());
        }
        task.contracts.push(contract);
    }
    problems
}

/// Give each check to the task that writes its table, with the tables it reads besides.
pub(super) fn checks(
    script: &Script,
    tasks: &mut [Task],
    producers: &HashMap<TableName, usize>,
    by_folded: &HashMap<TableName, TableName>,
) -> Vec<FlowError> {
    let mut problems = Vec::new();
    let known: Vec<String> = producers.keys().map(ToString::to_string).collect();
    let mut unknown = |table: &TableName, check: &CheckDecl| {
        let task = format!("check `{}`", check.text);
        problems.push(unknown(script, table, task, check.origin, &known));
    };
    for check in &script.checks {
        let Some(table) = by_folded.get(&check.table.folded()) else {
            unknown(&check.table, check);
            continue;
        };
        let mut check = check.clone();
        check.table = table.clone();
        let other = match check.kind.reads() {
            None => None,
            Some(other) => match by_folded.get(&other.folded()) {
                Some(o) => Some(o.clone()),
                None => {
                    unknown(other, &check);
                    continue;
                }
            },
        };
        let index = producers[table];
        let task = &mut tasks[index];
        if let Some(other) = other.filter(|o| producers[o] != index) {
            task.deps.push(producers[&other]);
            task.deps.sort_unstable();
            task.deps.dedup();
            task.check_inputs.push(other);
        }
        task.checks.push(check);
    }
    problems
}

/// `table`, named by `task` declared at `origin`, is not a table of the flow.
fn unknown(
    script: &Script,
    table: &TableName,
    task: String,
    origin: crate::source::Origin,
    known: &[String],
) -> FlowError {
    let at = At::new(script.source_of(origin), origin);
    FlowError::UnknownTable {
        table: table.to_string(),
        task,
        help: error::suggest(&table.to_string(), known.iter().map(String::as_str)),
        location: at.location,
        src: at.src,
        span: at.span,
    }
}
