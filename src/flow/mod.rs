//! Declarations become a validated `Flow`: unique names, every input resolved to the task
//! that produces it, no cycles, tasks in dependency order. `select` narrows it, `plan` decides
//! per task whether to reuse a stored build or run.

mod attach;
mod error;
mod missing;
pub mod partitions;
pub mod plan;
pub mod select;
pub mod sql;
pub mod sql_error;
mod sql_place;
pub mod statements;
pub mod udfs;

pub use error::{At, FlowError};
pub use missing::refuse_missing_sources;
pub use plan::{Action, Plan, Step};
pub use sql_error::QueryError;
pub use sql_place::SqlPlace;
pub use udfs::Udf;

use std::collections::{BTreeMap, BTreeSet, HashMap};

use crate::names::TableName;
use crate::script::checks::CheckDecl;
use crate::script::{Script, TaskDecl, TaskKind};
use crate::store::cache_key::hash_text;

pub struct Task {
    pub decl: TaskDecl,
    pub id: TableName,
    /// Tables the task reads, sorted.
    pub inputs: Vec<TableName>,
    /// Indices (into `Flow::tasks`) of the tasks producing those inputs.
    pub deps: Vec<usize>,
    /// blake3 of the normalized code.
    pub code: String,
    /// Parameters that are part of the key: those a task function reads while it runs.
    pub params: BTreeMap<String, String>,
    /// Where an SQL task's text is, for errors found when it is planned.
    pub sql: Option<SqlPlace>,
    /// A multi-statement SQL task's statements, in order; empty for one query.
    pub statements: Vec<statements::Part>,
    /// Names the code calls (lowercase), SQL inside Rhai strings included: the plan checks
    /// them for impure functions such as now() and random().
    pub calls: BTreeSet<String>,
    /// The UDFs it calls (in its SQL, or SQL inside its Rhai code), name -> their key.
    pub udfs: BTreeMap<String, String>,
    /// Data checks of its outputs.
    pub checks: Vec<CheckDecl>,
    /// Contracts and column descriptions of its outputs.
    pub contracts: Vec<crate::script::contract::ContractDecl>,
    /// Tables its checks read besides its outputs (`relationships`): built before it, but not
    /// part of its key, so a change there re-runs the check, not the task.
    pub check_inputs: Vec<TableName>,
}

impl Task {
    /// The stage unqualified table names in its SQL refer to: `default_stage`, else its own.
    pub fn default_stage(&self) -> &str {
        self.decl
            .opts
            .default_stage
            .as_deref()
            .unwrap_or(&self.decl.stage)
    }

    /// The column descriptions its contracts give output `table`.
    pub fn descriptions(&self, table: &str) -> BTreeMap<String, String> {
        self.contracts
            .iter()
            .filter(|c| c.table.table == table)
            .flat_map(|c| &c.columns)
            .filter_map(|c| Some((c.name.clone(), c.description.clone()?)))
            .collect()
    }

    pub fn outputs(&self) -> impl Iterator<Item = TableName> + '_ {
        self.decl
            .outputs
            .iter()
            .map(|o| TableName::new(&self.decl.stage, o))
    }
}

pub struct Flow {
    /// In dependency order: every task after the tasks it reads from.
    pub tasks: Vec<Task>,
    pub producers: HashMap<TableName, usize>,
    /// Scalar functions the script declared for SQL.
    pub udfs: Vec<Udf>,
}

impl Flow {
    pub fn build(script: &Script) -> Result<Flow, FlowError> {
        let mut problems = Vec::new();
        // Every output, and a multi-output task's own name, is claimed once, whatever its case:
        // SQL would not tell `s.dfA` from `s.dfa`.
        let mut producers: HashMap<TableName, usize> = HashMap::new();
        let mut claimed: HashMap<TableName, usize> = HashMap::new();
        for (i, decl) in script.tasks.iter().enumerate() {
            let outputs: Vec<TableName> = decl
                .outputs
                .iter()
                .map(|o| TableName::new(&decl.stage, o))
                .collect();
            let own = (!decl.outputs.contains(&decl.name)).then(|| decl.id());
            for name in outputs.iter().cloned().chain(own) {
                if let Some(&first) = claimed.get(&name.folded()) {
                    let at = At::new(script.source_of(decl.origin), decl.origin);
                    problems.push(FlowError::Duplicate {
                        table: name.to_string(),
                        first: script.tasks[first]
                            .origin
                            .display(&script.source_of(script.tasks[first].origin).path),
                        location: at.location,
                        src: at.src,
                        span: at.span,
                    });
                } else {
                    claimed.insert(name.folded(), i);
                }
            }
            for name in outputs {
                producers.entry(name).or_insert(i);
            }
        }

        problems.extend(stages_differing_in_case(script));
        // SQL and the command line may name a table in any case: each finds the one declared.
        let by_folded: HashMap<TableName, TableName> = producers
            .keys()
            .map(|name| (name.folded(), name.clone()))
            .collect();
        let mut tasks = Vec::with_capacity(script.tasks.len());
        let (udfs, udf_problems) = udfs::build(script);
        problems.extend(udf_problems);
        for decl in &script.tasks {
            match describe(script, decl, &udfs) {
                Ok(task) => tasks.push(task),
                Err(e) => problems.push(e),
            }
        }
        for task in &mut tasks {
            for input in &mut task.inputs {
                if let Some(declared) = by_folded.get(&input.folded()) {
                    input.clone_from(declared);
                }
            }
            task.inputs.sort();
            task.inputs.dedup();
            for input in &task.inputs {
                match producers.get(input) {
                    Some(&p) => task.deps.push(p),
                    None => {
                        let at = table_in_sql(task, input).unwrap_or_else(|| {
                            At::new(script.source_of(task.decl.origin), task.decl.origin)
                        });
                        let known: Vec<String> =
                            producers.keys().map(ToString::to_string).collect();
                        problems.push(FlowError::UnknownTable {
                            table: input.to_string(),
                            task: task.id.to_string(),
                            help: error::suggest(
                                &input.to_string(),
                                known.iter().map(String::as_str),
                            ),
                            location: at.location,
                            src: at.src,
                            span: at.span,
                        });
                    }
                }
            }
            task.deps.sort_unstable();
            task.deps.dedup();
        }
        problems.extend(incremental_without_partitions(script, &tasks));
        problems.extend(attach::checks(script, &mut tasks, &producers, &by_folded));
        problems.extend(attach::contracts(
            script, &mut tasks, &producers, &by_folded,
        ));
        FlowError::collect(problems)?;
        let mut flow = order(script, tasks)?;
        flow.udfs = udfs;
        Ok(flow)
    }

    pub fn stages(&self) -> Vec<String> {
        let mut out: Vec<String> = Vec::new();
        for t in &self.tasks {
            if !out.contains(&t.decl.stage) {
                out.push(t.decl.stage.clone());
            }
        }
        out
    }
}

/// Incremental tasks none of whose inputs is partitioned by their columns: nothing to
/// compute them partition by partition from.
fn incremental_without_partitions(script: &Script, tasks: &[Task]) -> Vec<FlowError> {
    let partitioned: HashMap<TableName, &Vec<String>> = tasks
        .iter()
        .flat_map(|t| t.outputs().map(move |o| (o, &t.decl.opts.partition_by)))
        .collect();
    tasks
        .iter()
        .filter(|t| t.decl.opts.incremental && !matches!(t.decl.kind, TaskKind::Load(_)))
        .filter(|t| {
            !t.inputs
                .iter()
                .any(|i| partitioned.get(i).is_some_and(|p| **p == t.decl.opts.partition_by))
        })
        .map(|t| {
            let at = At::new(script.source_of(t.decl.origin), t.decl.origin);
            let (by, quoted) = (
                t.decl.opts.partition_by.join(", "),
                t.decl.opts.partition_by.join("\", \""),
            );
            let inputs: Vec<String> = t.inputs.iter().map(ToString::to_string).collect();
            FlowError::Invalid {
                task: t.id.to_string(),
                message: format!(
                    "it is incremental by {by}, but none of its inputs ({}) is partitioned by {by}: declare `partition_by: [\"{quoted}\"]` on the task that makes the table it computes from, or drop `incremental`",
                    inputs.join(", ")
                ),
                location: at.location,
                src: at.src,
                span: at.span,
            }
        })
        .collect()
}

/// Two stages whose names differ only in case: SQL would see one schema.
fn stages_differing_in_case(script: &Script) -> Vec<FlowError> {
    let mut seen: HashMap<String, &str> = HashMap::new();
    let mut reported: BTreeSet<&str> = BTreeSet::new();
    let mut problems = Vec::new();
    for decl in &script.tasks {
        let folded = decl.stage.to_ascii_lowercase();
        match seen.get(folded.as_str()) {
            Some(first) if *first != decl.stage && reported.insert(&decl.stage) => {
                let at = At::new(script.source_of(decl.origin), decl.origin);
                problems.push(FlowError::Invalid {
                    task: decl.id().to_string(),
                    message: format!(
                        "stage `{}` differs from stage `{first}` only in case, which SQL does not tell apart",
                        decl.stage
                    ),
                    location: at.location,
                    src: at.src,
                    span: at.span,
                });
            }
            Some(_) => {}
            None => {
                seen.insert(folded, &decl.stage);
            }
        }
    }
    problems
}

/// Where an SQL task names `table`: `stage.table` as written, else the bare name (a default
/// stage), as a whole word outside other identifiers; `None` when it cannot be found.
fn table_in_sql(task: &Task, table: &TableName) -> Option<At> {
    let (TaskKind::Sql { sql, .. }, Some(place)) = (&task.decl.kind, &task.sql) else {
        return None;
    };
    let lower = sql.to_ascii_lowercase();
    let word =
        |c: Option<char>| c.is_some_and(|c| c.is_ascii_alphanumeric() || c == '_' || c == '.');
    let find = |needle: &str| {
        lower.match_indices(needle).map(|(i, _)| i).find(|&i| {
            !word(lower[..i].chars().next_back()) && !word(lower[i + needle.len()..].chars().next())
        })
    };
    let qualified = table.to_string().to_ascii_lowercase();
    let bare = table.table.to_ascii_lowercase();
    let (from, len) = find(&qualified)
        .map(|i| (i, qualified.len()))
        .or_else(|| find(&bare).map(|i| (i, bare.len())))?;
    Some(place.at_offset(sql, from, Some(from + len)))
}

/// Inputs and normalized code of one declaration.
fn describe(script: &Script, decl: &TaskDecl, udfs: &[Udf]) -> Result<Task, FlowError> {
    let invalid = |message: String| {
        let at = At::new(script.source_of(decl.origin), decl.origin);
        FlowError::Invalid {
            task: decl.id().to_string(),
            message,
            location: at.location,
            src: at.src,
            span: at.span,
        }
    };
    let mut params = BTreeMap::new();
    let mut place = None;
    let mut parts = Vec::new();
    let (inputs, code) = match &decl.kind {
        TaskKind::Load(spec) => (Vec::new(), format!("load {}", spec.location)),
        TaskKind::Sample(spec) => {
            let inputs = match &spec.mode {
                crate::script::SampleMode::Follow { parent, .. } => vec![parent.clone()],
                _ => Vec::new(),
            };
            (inputs, format!("sample {}", spec.describe()))
        }
        TaskKind::Sql {
            sql,
            file,
            statements,
        } => {
            let here = SqlPlace::new(script, decl, sql, file.as_deref());
            let parsed = sql_task(script, decl, sql, *statements, &here)?;
            place = Some(here);
            parts = parsed.1;
            (parsed.0.tables, parsed.0.normalized)
        }
        TaskKind::Rhai { func, inputs } => {
            let (code, read) = function_code(script, func).map_err(invalid)?;
            params = read;
            let mut inputs = inputs.clone();
            inputs.sort();
            inputs.dedup();
            (inputs, code)
        }
    };
    let calls = match decl.kind {
        TaskKind::Sql { .. } | TaskKind::Rhai { .. } => calls(&code),
        _ => BTreeSet::new(),
    };
    // The UDFs its SQL calls: their code is part of its key, what they read among its params.
    let mut keyed_udfs = BTreeMap::new();
    for udf in udfs::called(udfs, &calls) {
        keyed_udfs.insert(udf.decl.name.clone(), udf.key.clone());
        params.extend(udf.params.clone());
    }
    Ok(Task {
        id: decl.id(),
        decl: decl.clone(),
        inputs,
        deps: Vec::new(),
        calls,
        udfs: keyed_udfs,
        code: hash_text(&code),
        params,
        sql: place,
        statements: parts,
        checks: Vec::new(),
        check_inputs: Vec::new(),
        contracts: Vec::new(),
    })
}

/// The normalized code of a script function (a task function or a UDF) with every script
/// function it calls and its captured values, and the params and attrs it reads.
fn function_code(
    script: &Script,
    func: &rhai::FnPtr,
) -> Result<(String, BTreeMap<String, String>), String> {
    let closure = script.functions.closure(func.fn_name()).ok_or_else(|| {
        format!(
            "`{}` is not a function defined in the script",
            func.fn_name()
        )
    })?;
    let mut params = BTreeMap::new();
    if closure.idents.contains("param") {
        // Only the params its code names; all of them when it names one by a variable.
        let read = crate::script::ParamsRead::scan(&closure.code);
        params = script.params.canonical(
            (!read.dynamic)
                .then(|| read.names.into_keys().collect())
                .as_ref(),
        );
    }
    let captured = script.functions.params(func.fn_name());
    if closure.idents.contains("attrs") {
        // Only the attrs the code reads; all of them when it uses the map otherwise.
        let read = closure.fields_read("attrs");
        params.extend(
            script
                .attrs
                .iter()
                .filter(|(k, _)| read.as_ref().is_none_or(|r| r.contains(*k)))
                .map(|(k, v)| (format!("attrs.{k}"), v.clone())),
        );
    }
    // Captured variables are curried values; `attrs` is keyed above, by what is read.
    let curried: Vec<String> = func
        .curry()
        .iter()
        .zip(captured.iter().map(Some).chain(std::iter::repeat(None)))
        .filter(|(_, name)| name.is_none_or(|n| n != "attrs"))
        .map(|(v, _)| format!("{v:?}"))
        .collect();
    Ok((
        format!("{}\ncurry {}", closure.code, curried.join(",")),
        params,
    ))
}

/// An SQL task's inputs and normalized SQL, and its statements when it has several; a query
/// that does not parse, or a statement that is not allowed, is labelled in the user's file.
fn sql_task(
    script: &Script,
    decl: &TaskDecl,
    sql: &str,
    several: bool,
    here: &SqlPlace,
) -> Result<(sql::ParsedSql, Vec<statements::Part>), FlowError> {
    let default_stage = decl.opts.default_stage.as_deref().unwrap_or(&decl.stage);
    let parsed = match several {
        true => statements::parse(sql, default_stage),
        false => sql::parse(sql, default_stage).map(|p| (p, Vec::new())),
    };
    parsed.map_err(|problem| sql_problem(script, decl, sql, several, here, problem))
}

/// An SQL problem found when the script is loaded, labelled where it is.
fn sql_problem(
    script: &Script,
    decl: &TaskDecl,
    sql: &str,
    several: bool,
    here: &SqlPlace,
    problem: sql::SqlProblem,
) -> FlowError {
    let task = decl.id().to_string();
    let parse_help = match several {
        true => statements::HELP,
        false => "a task's SQL is one DataFusion query (SELECT or WITH ... SELECT)",
    };
    match problem {
        sql::SqlProblem::Invalid(message) => {
            let at = At::new(script.source_of(decl.origin), decl.origin);
            FlowError::Invalid {
                task,
                message,
                location: at.location,
                src: at.src,
                span: at.span,
            }
        }
        sql::SqlProblem::Parse(message, start) => {
            let at = here.at(sql, start, None);
            FlowError::Sql {
                task,
                message,
                location: at.location,
                src: at.src,
                span: at.span,
                label: "the parser stopped here",
                help: parse_help,
            }
        }
        sql::SqlProblem::Several(count, start) => {
            let at = here.at(sql, start, None);
            FlowError::Sql {
                task,
                message: format!("a task is one query; found {count} statements"),
                location: at.location,
                src: at.src,
                span: at.span,
                label: "a second statement",
                help: "for views, then a query that is the table, add the option #{ statements: true }",
            }
        }
        sql::SqlProblem::NotAQuery(statement, start) => {
            let at = here.at(sql, start, None);
            FlowError::NotAQuery {
                task,
                statement,
                location: at.location,
                src: at.src,
                span: at.span,
            }
        }
        sql::SqlProblem::Refused(r) => {
            let at = here.at_offset(sql, r.at.start, Some(r.at.end));
            FlowError::Statement {
                task,
                message: r.message,
                location: at.location,
                src: at.src,
                span: at.span,
                label: r.label,
                help: r.help,
            }
        }
    }
}

/// Functions SQL has without parentheses.
const NILADIC: [&str; 5] = [
    "current_date",
    "current_time",
    "current_timestamp",
    "localtime",
    "localtimestamp",
];

/// The lowercase names in `code` that are called: followed by `(`, or niladic SQL functions.
/// Text, not syntax: SQL sits inside Rhai strings, so strings are read too.
pub(crate) fn calls(code: &str) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    let mut rest = code;
    while let Some(start) = rest.find(|c: char| c.is_ascii_alphabetic() || c == '_') {
        let tail = &rest[start..];
        let len = tail
            .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
            .unwrap_or(tail.len());
        // An identifier must not continue a longer word (`x1now(` is not `now(`).
        let glued = rest[..start]
            .chars()
            .next_back()
            .is_some_and(|c| c.is_alphanumeric() || c == '_' || c == '.');
        let name = tail[..len].to_ascii_lowercase();
        let called = tail[len..].trim_start().starts_with('(');
        if !glued && (called || NILADIC.contains(&name.as_str())) {
            out.insert(name);
        }
        rest = &tail[len..];
    }
    out
}

/// Sort tasks so each comes after its inputs (declaration order otherwise); report a cycle
/// as its path of tasks.
fn order(script: &Script, tasks: Vec<Task>) -> Result<Flow, FlowError> {
    let n = tasks.len();
    let mut indegree: Vec<usize> = tasks.iter().map(|t| t.deps.len()).collect();
    let mut dependents: Vec<Vec<usize>> = vec![Vec::new(); n];
    for (i, t) in tasks.iter().enumerate() {
        for &d in &t.deps {
            dependents[d].push(i);
        }
    }
    let mut ready: std::collections::BTreeSet<usize> =
        (0..n).filter(|&i| indegree[i] == 0).collect();
    let mut sequence = Vec::with_capacity(n);
    while let Some(i) = ready.pop_first() {
        sequence.push(i);
        for &d in &dependents[i] {
            indegree[d] -= 1;
            if indegree[d] == 0 {
                ready.insert(d);
            }
        }
    }
    if sequence.len() < n {
        let start = (0..n).find(|&i| indegree[i] > 0).unwrap_or(0);
        let path = cycle_path(&tasks, start, &indegree);
        let at = At::new(
            script.source_of(tasks[path[0]].decl.origin),
            tasks[path[0]].decl.origin,
        );
        let mut names: Vec<String> = path.iter().map(|&i| tasks[i].id.to_string()).collect();
        // Each task on the path reads the one before it; the first reads the last.
        let reads = |k: usize| format!("reads {}", names[(k + names.len() - 1) % names.len()]);
        let file = tasks[path[0]].decl.origin.file;
        let others = (1..path.len())
            .filter(|&k| tasks[path[k]].decl.origin.file == file)
            .map(|k| {
                let origin = tasks[path[k]].decl.origin;
                let span = At::new(script.source_of(origin), origin).span;
                miette::LabeledSpan::new_with_span(Some(reads(k)), span)
            })
            .collect();
        let first_reads = reads(0);
        names.push(names[0].clone());
        return Err(FlowError::Cycle {
            path: names.join(" -> "),
            location: at.location,
            src: at.src,
            span: at.span,
            reads: first_reads,
            others,
        });
    }

    let mut new_index = vec![0; n];
    for (pos, &old) in sequence.iter().enumerate() {
        new_index[old] = pos;
    }
    let mut slots: Vec<Option<Task>> = tasks.into_iter().map(Some).collect();
    let mut ordered = Vec::with_capacity(n);
    for &old in &sequence {
        if let Some(mut t) = slots[old].take() {
            t.deps = t.deps.iter().map(|&d| new_index[d]).collect();
            ordered.push(t);
        }
    }
    let mut producers = HashMap::new();
    for (i, t) in ordered.iter().enumerate() {
        for out in t.outputs() {
            producers.insert(out, i);
        }
    }
    Ok(Flow {
        tasks: ordered,
        producers,
        udfs: Vec::new(),
    })
}

/// Follow unfinished dependencies from `start` until a task repeats: that loop is the cycle.
fn cycle_path(tasks: &[Task], start: usize, indegree: &[usize]) -> Vec<usize> {
    let mut path = vec![start];
    let mut at = start;
    loop {
        let Some(&next) = tasks[at].deps.iter().find(|&&d| indegree[d] > 0) else {
            return path;
        };
        if let Some(pos) = path.iter().position(|&p| p == next) {
            let mut cycle = path.split_off(pos);
            cycle.reverse(); // deps point upstream; show the direction data flows
            return cycle;
        }
        path.push(next);
        at = next;
    }
}

#[cfg(test)]
mod tests {
    use super::calls;

    #[test]
    fn calls_are_names_before_parentheses_and_niladic_sql_functions() {
        let found = calls("SELECT NOW(), x1now(), t.random(), CURRENT_DATE, \"rand om\" FROM s.a");
        let names: Vec<&str> = found.iter().map(String::as_str).collect();
        assert_eq!(
            names,
            ["current_date", "now", "x1now"],
            "x1now( is not now("
        );
        let rhai = calls("fn f(t) { let n = timestamp(); t.filter(\"uuid() > ''\") }");
        assert!(rhai.contains("timestamp") && rhai.contains("uuid") && rhai.contains("f"));
        assert!(!rhai.contains("filter"), "methods are not SQL calls");
    }
}
