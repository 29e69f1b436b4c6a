//! `--select` and `--exclude`, with dbt's set semantics. A selector is `prep.x` (that task),
//! `stage:prep` (every task of a stage) or `tag:nightly` (every task with that tag), with `+`
//! before it for everything upstream and after it for everything downstream. Selectors
//! separated by spaces, or given as several `--select`, add up; selectors joined by commas
//! intersect (`tag:nightly,stage:marts`: the nightly tasks of marts); `--exclude` takes away
//! what its own selectors select.

use std::collections::BTreeSet;

use super::{Flow, FlowError, error::suggest};

/// What to select: several `--select` and `--exclude` values, each as typed.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Selection {
    pub select: Vec<String>,
    pub exclude: Vec<String>,
}

impl Selection {
    pub fn new(select: Vec<String>, exclude: Vec<String>) -> Self {
        Self { select, exclude }
    }

    /// Whether it narrows anything: without selectors, every task is selected.
    pub fn is_empty(&self) -> bool {
        terms(&self.select).next().is_none() && terms(&self.exclude).next().is_none()
    }
}

/// The indices of the selected tasks; every task when nothing is selected or excluded.
pub fn select(flow: &Flow, selection: &Selection) -> Result<BTreeSet<usize>, FlowError> {
    selected(flow, selection, false)
}

/// The selected tasks and every task downstream of them, less the excluded ones
/// (`weir clear --downstream`).
pub fn select_downstream(flow: &Flow, selection: &Selection) -> Result<BTreeSet<usize>, FlowError> {
    selected(flow, selection, true)
}

fn selected(
    flow: &Flow,
    selection: &Selection,
    with_downstream: bool,
) -> Result<BTreeSet<usize>, FlowError> {
    let mut out: BTreeSet<usize> = match terms(&selection.select).next() {
        None => (0..flow.tasks.len()).collect(),
        Some(_) => union(flow, &selection.select)?,
    };
    if with_downstream {
        for i in out.clone() {
            downstream(flow, i, &mut out);
        }
    }
    for i in union(flow, &selection.exclude)? {
        out.remove(&i);
    }
    Ok(out)
}

/// The selectors of several values, split at spaces: each term is one intersection.
fn terms(values: &[String]) -> impl Iterator<Item = &str> {
    values.iter().flat_map(|v| v.split_whitespace())
}

fn union(flow: &Flow, values: &[String]) -> Result<BTreeSet<usize>, FlowError> {
    let mut out = BTreeSet::new();
    for term in terms(values) {
        out.extend(intersection(flow, term)?);
    }
    Ok(out)
}

fn intersection(flow: &Flow, term: &str) -> Result<BTreeSet<usize>, FlowError> {
    let mut parts = term.split(',').map(str::trim).filter(|s| !s.is_empty());
    let Some(first) = parts.next() else {
        return Ok(BTreeSet::new());
    };
    let mut out = one(flow, first)?;
    for part in parts {
        let next = one(flow, part)?;
        out.retain(|i| next.contains(i));
    }
    Ok(out)
}

/// One selector with its graph operators.
fn one(flow: &Flow, raw: &str) -> Result<BTreeSet<usize>, FlowError> {
    let (up, rest) = raw.strip_prefix('+').map_or((false, raw), |r| (true, r));
    let (down, name) = rest.strip_suffix('+').map_or((false, rest), |r| (true, r));
    let matched = matching(flow, name)?;
    let mut out = BTreeSet::new();
    for i in matched {
        out.insert(i);
        if up {
            upstream(flow, i, &mut out);
        }
        if down {
            downstream(flow, i, &mut out);
        }
    }
    Ok(out)
}

/// The tasks a selector without graph operators names; none is an error that says what exists.
fn matching(flow: &Flow, name: &str) -> Result<Vec<usize>, FlowError> {
    let tasks = flow.tasks.iter().enumerate();
    let (matched, known): (Vec<usize>, Vec<String>) =
        if let Some(stage) = name.strip_prefix("stage:") {
            let matched = tasks
                .filter(|(_, t)| t.decl.stage.eq_ignore_ascii_case(stage))
                .map(|(i, _)| i)
                .collect();
            let stages: BTreeSet<&str> = flow.tasks.iter().map(|t| t.decl.stage.as_str()).collect();
            (
                matched,
                stages.iter().map(|s| format!("stage:{s}")).collect(),
            )
        } else if let Some(tag) = name.strip_prefix("tag:") {
            let matched = tasks
                .filter(|(_, t)| t.decl.opts.tags.iter().any(|x| x.eq_ignore_ascii_case(tag)))
                .map(|(i, _)| i)
                .collect();
            let tags: BTreeSet<&str> = flow
                .tasks
                .iter()
                .flat_map(|t| t.decl.opts.tags.iter().map(String::as_str))
                .collect();
            (matched, tags.iter().map(|s| format!("tag:{s}")).collect())
        } else {
            let matched = tasks
                .filter(|(_, t)| {
                    t.id.to_string().eq_ignore_ascii_case(name)
                        || t.outputs()
                            .any(|o| o.to_string().eq_ignore_ascii_case(name))
                })
                .map(|(i, _)| i)
                .collect();
            (
                matched,
                flow.tasks.iter().map(|t| t.id.to_string()).collect(),
            )
        };
    if matched.is_empty() {
        let help = if known.is_empty() {
            "no task of this flow has a tag: give tasks `tags: [\"...\"]`".to_string()
        } else {
            suggest(name, known.iter().map(String::as_str))
        };
        return Err(FlowError::Select {
            name: name.to_string(),
            help,
        });
    }
    Ok(matched)
}

fn upstream(flow: &Flow, i: usize, out: &mut BTreeSet<usize>) {
    let mut seen = BTreeSet::new();
    let mut todo = vec![i];
    while let Some(t) = todo.pop() {
        for &d in &flow.tasks[t].deps {
            if seen.insert(d) {
                out.insert(d);
                todo.push(d);
            }
        }
    }
}

fn downstream(flow: &Flow, i: usize, out: &mut BTreeSet<usize>) {
    // Tasks are in dependency order, so one pass over the later ones finds them all.
    let mut reached = BTreeSet::from([i]);
    for (j, t) in flow.tasks.iter().enumerate().skip(i + 1) {
        if t.deps.iter().any(|d| reached.contains(d)) {
            reached.insert(j);
            out.insert(j);
        }
    }
}
