//! What `watch` listens to: exactly what the flow reads. The script and the modules it imports,
//! its `.sql` files, weir.toml and the secrets file, and the files its loads read (a new file
//! matching a loaded glob, or in a loaded folder, included). Anything else in the project, such
//! as the file the watcher's own output is redirected to, an editor's swap file or `.DS_Store`,
//! triggers nothing; nor does the store, which weir writes.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use notify::RecursiveMode;

use crate::script::TaskKind;
use crate::session::{Loaded, Target};

/// The files a change to which re-runs the pipeline, and the folders to watch to see them.
#[derive(Debug, Default, Clone)]
pub struct Interest {
    /// Files read by name.
    files: BTreeSet<PathBuf>,
    /// Loaded globs: a file matching one, new or changed.
    globs: Vec<glob::Pattern>,
    /// Loaded folders, with the extension the load reads in them.
    folders: Vec<(PathBuf, String)>,
    /// After a script that did not load: any `.rhai` or `.sql` file of this folder.
    code_in: Option<PathBuf>,
    /// Folders to watch, and how.
    watch: BTreeMap<PathBuf, RecursiveMode>,
    /// Folders on the way to something read that do not exist yet: their creation is a change.
    missing: BTreeSet<PathBuf>,
    /// Never a change: the store, which weir writes.
    store: Option<PathBuf>,
}

impl Interest {
    /// What a loaded flow reads.
    pub fn of_loaded(loaded: &Loaded) -> Self {
        let script = &loaded.script;
        let mut out = Interest {
            store: loaded.store.local_dir(),
            ..Interest::default()
        };
        out.file(&script.source.path);
        for file in script.imports.iter().chain(&loaded.config_files) {
            out.file(file);
        }
        for module in &script.modules {
            out.file(&module.path);
        }
        for task in &script.tasks {
            match &task.kind {
                TaskKind::Sql {
                    file: Some(file), ..
                } => out.file(file),
                TaskKind::Load(spec) => out.location(&spec.resolved, spec.format.extension()),
                _ => {}
            }
        }
        out
    }

    /// After a script (or config) that did not load: the script, the code beside it and the
    /// config, so that fixing any of them runs again; and what the last loaded flow read.
    pub fn of_failed(target: &Target, last: Option<&Interest>) -> Self {
        let mut out = last.cloned().unwrap_or_default();
        let script = std::path::absolute(&target.script).unwrap_or_else(|_| target.script.clone());
        out.file(&script);
        out.file(&target.config_path());
        let dir = target.dir();
        out.watch_folder(&dir, RecursiveMode::NonRecursive);
        out.code_in = Some(dir);
        out
    }

    /// The folders to watch, each recursively or not.
    pub fn folders(&self) -> &BTreeMap<PathBuf, RecursiveMode> {
        &self.watch
    }

    /// Whether a change to `path` can change what the flow reads.
    pub fn relevant(&self, path: &Path) -> bool {
        if self.store.as_ref().is_some_and(|s| path.starts_with(s)) {
            return false;
        }
        // A folder on the way to something read appeared (not the watched folder itself).
        let on_the_way =
            !self.watch.contains_key(path) && self.missing.iter().any(|m| m.starts_with(path));
        if self.files.contains(path) || on_the_way {
            return true;
        }
        let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("");
        if is_scratch(name) {
            return false;
        }
        let in_code_folder = self.code_in.as_deref().is_some_and(|dir| {
            path.parent() == Some(dir) && (name.ends_with(".rhai") || name.ends_with(".sql"))
        });
        in_code_folder
            || self.globs.iter().any(|g| g.matches_path(path))
            || self
                .folders
                .iter()
                .any(|(dir, ext)| path.starts_with(dir) && name.ends_with(ext.as_str()))
    }

    /// A file read by name: its folder is watched, so that an editor's save by rename is seen.
    fn file(&mut self, path: &Path) {
        let path = std::path::absolute(path).unwrap_or_else(|_| path.to_path_buf());
        if let Some(dir) = path.parent() {
            self.watch_folder(dir, RecursiveMode::NonRecursive);
        }
        self.files.insert(path);
    }

    /// A load's location: a file, a glob or a folder; URLs are not watched.
    fn location(&mut self, resolved: &str, extension: &str) {
        let path = match resolved.strip_prefix("file://") {
            Some(p) => p.to_string(),
            None if resolved.contains("://") => return,
            None => resolved.to_string(),
        };
        if path.contains(['*', '?', '[']) {
            // The glob's fixed part: a new file matching it is created below that folder.
            let fixed = path.split(['*', '?', '[']).next().unwrap_or(&path);
            let dir = Path::new(fixed.rsplit_once('/').map_or(fixed, |(d, _)| d));
            self.watch_folder(dir, RecursiveMode::Recursive);
            if let Ok(pattern) = glob::Pattern::new(&path) {
                self.globs.push(pattern);
            }
        } else if Path::new(&path).is_dir() || path.ends_with('/') {
            let dir = PathBuf::from(path.trim_end_matches('/'));
            self.watch_folder(&dir, RecursiveMode::Recursive);
            self.folders.push((dir, extension.to_string()));
        } else {
            self.file(Path::new(&path));
        }
    }

    /// Watch `dir`, or, while it does not exist, the nearest folder above it that does.
    fn watch_folder(&mut self, dir: &Path, mode: RecursiveMode) {
        let mut existing = dir.to_path_buf();
        while !existing.is_dir() {
            match existing.parent() {
                Some(p) => existing = p.to_path_buf(),
                None => return,
            }
        }
        let mode = match existing == dir {
            true => mode,
            false => {
                self.missing.insert(dir.to_path_buf());
                RecursiveMode::NonRecursive
            }
        };
        let entry = self.watch.entry(existing).or_insert(mode);
        if mode == RecursiveMode::Recursive {
            *entry = mode;
        }
    }
}

/// An editor's swap or backup file, or a hidden one (`.DS_Store`): never data.
fn is_scratch(name: &str) -> bool {
    name.is_empty()
        || name.starts_with('.')
        || name.starts_with('#')
        || name.ends_with('~')
        || name.ends_with(".swp")
        || name.ends_with(".swx")
        || name.ends_with(".tmp")
        || name == "4913"
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_what_the_flow_reads_is_a_change() {
        let mut i = Interest {
            store: Some(PathBuf::from("/p/.weir/default")),
            ..Interest::default()
        };
        i.file(Path::new("/p/pipeline.rhai"));
        i.globs
            .push(glob::Pattern::new("/p/data/*.csv").expect("glob"));
        i.folders.push((PathBuf::from("/p/in"), ".parquet".into()));
        i.missing.insert(PathBuf::from("/p/later/data"));
        for yes in [
            "/p/pipeline.rhai",
            "/p/data/b.csv",
            "/p/in/x/part-0.parquet",
            "/p/later",
        ] {
            assert!(i.relevant(Path::new(yes)), "{yes}");
        }
        for no in [
            "/p/watch.log",
            "/p/notes.txt",
            "/p/.DS_Store",
            "/p/.pipeline.rhai.swp",
            "/p/pipeline.rhai~",
            "/p/data/.b.csv.swp",
            "/p/data/readme.md",
            "/p/in/_SUCCESS",
            "/p/.weir/default/lock",
            "/p/other.rhai",
        ] {
            assert!(!i.relevant(Path::new(no)), "{no}");
        }
        i.code_in = Some(PathBuf::from("/p"));
        assert!(i.relevant(Path::new("/p/other.rhai")));
        assert!(!i.relevant(Path::new("/p/sub/other.rhai")));
    }
}
