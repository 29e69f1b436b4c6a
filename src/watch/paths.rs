//! What `watch` listens to: the project folder (script, modules, weir.toml, SQL files, data in
//! the project) and the folders of loaded files outside it; never the store, which weir writes.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use crate::script::{Script, TaskKind};
use crate::store::sources;

/// Folders to watch, recursively.
pub fn folders(project: &Path, script: Option<&Script>) -> BTreeSet<PathBuf> {
    let mut out = BTreeSet::from([project.to_path_buf()]);
    let Some(script) = script else {
        return out;
    };
    for task in &script.tasks {
        let TaskKind::Load(spec) = &task.kind else {
            continue;
        };
        let location = sources::resolve(&spec.location, &script.dir);
        if location.contains("://") && !location.starts_with("file://") {
            continue;
        }
        let path = location.trim_start_matches("file://");
        // A glob's fixed part; a new file matching it shows up as an event in that folder.
        let fixed = path.split(['*', '?', '[']).next().unwrap_or(path);
        let mut dir = PathBuf::from(fixed);
        while !dir.is_dir() {
            match dir.parent() {
                Some(p) => dir = p.to_path_buf(),
                None => break,
            }
        }
        if !dir.starts_with(project) && dir.is_dir() {
            out.insert(dir);
        }
    }
    out
}

/// Whether a change to `path` can change the pipeline: not the store, not version control or
/// build output inside the project, not an editor's swap or backup file.
pub fn relevant(path: &Path, project: &Path, store: Option<&Path>) -> bool {
    if store.is_some_and(|s| path.starts_with(s)) {
        return false;
    }
    // Only below the project: the project itself may well live under a `target` folder.
    let inside = path.strip_prefix(project).unwrap_or(path);
    if inside
        .components()
        .any(|c| matches!(c.as_os_str().to_str(), Some(".weir" | ".git" | "target")))
    {
        return false;
    }
    let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("");
    !(name.is_empty()
        || name.starts_with('.')
        || name.starts_with('#')
        || name.ends_with('~')
        || name.ends_with(".swp")
        || name.ends_with(".swx")
        || name.ends_with(".tmp")
        || name == "4913")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn store_and_editor_files_are_not_changes() {
        let store = Path::new("/p/.weir/default");
        let p = Path::new("/p");
        assert!(relevant(Path::new("/p/pipeline.rhai"), p, Some(store)));
        assert!(relevant(Path::new("/p/data/orders.csv"), p, Some(store)));
        assert!(!relevant(
            Path::new("/p/.weir/default/lock"),
            p,
            Some(store)
        ));
        let st = Path::new("/elsewhere/st");
        assert!(!relevant(Path::new("/elsewhere/st/x"), p, Some(st)));
        assert!(!relevant(Path::new("/p/.pipeline.rhai.swp"), p, None));
        assert!(!relevant(Path::new("/p/pipeline.rhai~"), p, None));
        assert!(!relevant(Path::new("/p/target/debug/x"), p, None));
        let nested = Path::new("/repo/target/bench/tpch");
        assert!(relevant(
            Path::new("/repo/target/bench/tpch/q.sql"),
            nested,
            None
        ));
    }
}
