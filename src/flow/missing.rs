//! Loads whose files are not there, refused before anything runs: labelled at the load, with
//! "did you mean" over the files of its folder. The plan lists every load's files anyway (for
//! their fingerprints); this turns the ones it found nothing at into one diagnostic.

use std::path::Path;

use super::{At, Flow, FlowError, Plan};
use crate::script::{Script, TaskKind};

/// Every load of `flow` whose location `plan` found no file at, as one error.
pub fn refuse_missing_sources(script: &Script, flow: &Flow, plan: &Plan) -> Result<(), FlowError> {
    let problems = plan
        .missing_sources
        .iter()
        .filter_map(|(i, why)| {
            let task = &flow.tasks[*i];
            let TaskKind::Load(spec) = &task.decl.kind else {
                return None;
            };
            let at = At::new(script.source_of(task.decl.origin), task.decl.origin);
            Some(FlowError::MissingSource {
                task: task.id.to_string(),
                path: spec.location.clone(),
                why: why.to_string(),
                help: suggest(&spec.location, &script.dir),
                location: at.location,
                src: at.src,
                span: at.span,
            })
        })
        .collect();
    FlowError::collect(problems)
}

/// What to try instead of a local location that lists nothing: a file of its folder with a
/// close name, else what the folder holds.
fn suggest(location: &str, script_dir: &Path) -> String {
    if location.contains("://") && !location.starts_with("file://") {
        return "check the URL, and that the store's credentials can read it".to_string();
    }
    let path = Path::new(location.strip_prefix("file://").unwrap_or(location));
    let (folder, name) = match (path.parent(), path.file_name()) {
        (Some(folder), Some(name)) => (folder, name.to_string_lossy()),
        _ => return "check the path".to_string(),
    };
    let shown = match folder.as_os_str().is_empty() {
        true => ".".to_string(),
        false => folder.display().to_string(),
    };
    let Ok(entries) = std::fs::read_dir(script_dir.join(folder)) else {
        return format!("there is no folder {shown} (paths are relative to the script)");
    };
    let mut files: Vec<String> = entries
        .filter_map(|e| e.ok())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|f| !f.starts_with('.'))
        .collect();
    files.sort();
    let join = |f: &str| match shown.as_str() {
        "." => f.to_string(),
        dir => format!("{dir}/{f}"),
    };
    let glob = name.contains(['*', '?', '[']);
    let close = (!glob)
        .then(|| crate::names::closest(&name, files.iter().map(String::as_str), 0.8))
        .flatten();
    match close {
        Some(f) => format!("did you mean `{}`?", join(f)),
        None if files.is_empty() => format!("{shown} is empty"),
        None => {
            let listed: Vec<&str> = files.iter().take(8).map(String::as_str).collect();
            let more = if files.len() > 8 { ", ..." } else { "" };
            format!("{shown} holds: {}{more}", listed.join(", "))
        }
    }
}
