//! `--select`: `prep.x` (that task), `prep.x+` (and everything downstream), `+prep.x` (and
//! everything upstream), `stage:prep` (every task of a stage). Several selectors add up.

use std::collections::BTreeSet;

use super::{Flow, FlowError, error::suggest};

/// The indices of the selected tasks; every task when there is no selector.
pub fn select(flow: &Flow, selectors: &[String]) -> Result<BTreeSet<usize>, FlowError> {
    if selectors.is_empty() {
        return Ok((0..flow.tasks.len()).collect());
    }
    let mut out = BTreeSet::new();
    for raw in selectors
        .iter()
        .flat_map(|s| s.split(','))
        .map(str::trim)
        .filter(|s| !s.is_empty())
    {
        let (up, rest) = raw.strip_prefix('+').map_or((false, raw), |r| (true, r));
        let (down, name) = rest.strip_suffix('+').map_or((false, rest), |r| (true, r));
        let matched: Vec<usize> = if let Some(stage) = name.strip_prefix("stage:") {
            flow.tasks
                .iter()
                .enumerate()
                .filter(|(_, t)| t.decl.stage.eq_ignore_ascii_case(stage))
                .map(|(i, _)| i)
                .collect()
        } else {
            flow.tasks
                .iter()
                .enumerate()
                .filter(|(_, t)| {
                    t.id.to_string().eq_ignore_ascii_case(name)
                        || t.outputs()
                            .any(|o| o.to_string().eq_ignore_ascii_case(name))
                })
                .map(|(i, _)| i)
                .collect()
        };
        if matched.is_empty() {
            let known: Vec<String> = flow.tasks.iter().map(|t| t.id.to_string()).collect();
            return Err(FlowError::Select {
                name: name.to_string(),
                help: suggest(name, known.iter().map(String::as_str)),
            });
        }
        for i in matched {
            out.insert(i);
            if up {
                upstream(flow, i, &mut out);
            }
            if down {
                downstream(flow, i, &mut out);
            }
        }
    }
    Ok(out)
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
