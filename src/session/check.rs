//! `weir check`: evaluate the script, resolve its table references and plan every task
//! against the schemas planned upstream (or committed), running nothing and writing nothing.

use std::collections::HashMap;

use super::{Loaded, plan_all};
use crate::exec::{TaskError, Verdict};
use crate::names::TableName;
use crate::report::StatusLine;
use crate::store::runs::new_run_id;
use crate::{Error, Result};

/// Each task's line, and the errors found, in flow order.
pub struct Checked {
    pub lines: Vec<StatusLine>,
    pub problems: Vec<TaskError>,
}

impl Checked {
    /// The check's failure as an error (exit 2), with every problem's diagnostic.
    pub fn failure(self) -> Option<Error> {
        (!self.problems.is_empty()).then(|| Error::CheckFailed {
            errors: self.problems.len(),
            total: self.lines.len(),
            problems: self.problems,
        })
    }
}

pub async fn check(loaded: &Loaded) -> Result<Checked> {
    let planned = plan_all(loaded, None).await?;
    crate::flow::refuse_missing_sources(&loaded.script, &planned.flow, &planned.plan)?;
    let committed: HashMap<TableName, crate::store::TableBuild> = planned
        .plan
        .manifests
        .iter()
        .flat_map(|(stage, m)| {
            m.tables
                .iter()
                .map(move |(table, b)| (TableName::new(stage, table), b.clone()))
        })
        .collect();
    let engine = loaded.engine(None)?;
    let shared = super::shared(
        loaded,
        planned.flow,
        planned.plan.steps,
        engine,
        &new_run_id(),
        false,
        Default::default(),
    );
    let verdicts = crate::exec::validate(&shared, &committed).await;
    let mut checked = Checked {
        lines: Vec::new(),
        problems: Vec::new(),
    };
    for (task, verdict) in shared.flow.tasks.iter().zip(verdicts) {
        let (state, detail) = match verdict {
            Verdict::Planned => ("planned", String::new()),
            Verdict::Committed(what) => ("committed", format!("{what}: its committed columns")),
            Verdict::Contracted(what) => ("contract", format!("{what}: its contract's columns")),
            Verdict::Unchecked(why) => ("not checked", why),
            Verdict::Failed(e) => {
                let brief = e.brief().lines().next().unwrap_or_default().to_string();
                checked.problems.push(*e);
                ("error", brief)
            }
        };
        checked.lines.push(StatusLine {
            task: task.id.to_string(),
            state: state.to_string(),
            detail,
            extra: Vec::new(),
        });
    }
    Ok(checked)
}
