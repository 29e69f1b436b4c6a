//! Folders for files that live only while weir runs: queries' spills, and the in-process
//! cluster's shuffles. Each is named after its process (`weir-spill-<pid>-<n>`), removed by
//! weir itself when it is done with it rather than left to DataFusion's temporary folders,
//! which are deleted when the last query holding them lets go: a query still running on a
//! blocking thread when weir exits (a failed task's sort, say) never does, and a failed
//! TPC-H SF 10 run left 4.5 GB of spill files behind that way. A folder whose process no
//! longer exists (killed) is removed when the next weir makes one of the same kind.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};

#[derive(Debug)]
pub struct Scratch {
    path: PathBuf,
}

impl Scratch {
    /// A new, empty folder of `kind` under `root`.
    pub fn create(root: &Path, kind: &str) -> std::io::Result<Self> {
        static NEXT: AtomicUsize = AtomicUsize::new(0);
        let prefix = format!("weir-{kind}-");
        remove_orphans(root, &prefix);
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        let path = root.join(format!("{prefix}{}-{n}", std::process::id()));
        std::fs::create_dir_all(&path)?;
        Ok(Self { path })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Remove what is in the folder, keeping the folder. Best effort: what is left goes with
    /// the folder.
    pub fn clear(&self) {
        let Ok(entries) = std::fs::read_dir(&self.path) else {
            return;
        };
        for entry in entries.flatten() {
            let _ = match entry.file_type().is_ok_and(|t| t.is_dir()) {
                true => std::fs::remove_dir_all(entry.path()),
                false => std::fs::remove_file(entry.path()),
            };
        }
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.path);
    }
}

/// Folders named `<prefix><pid>-<n>` of processes that have ended.
fn remove_orphans(root: &Path, prefix: &str) {
    // Whether a process is alive is only known here through /proc.
    if !Path::new("/proc/self").exists() {
        return;
    }
    let Ok(entries) = std::fs::read_dir(root) else {
        return;
    };
    for entry in entries.flatten() {
        let name = entry.file_name();
        let Some(rest) = name.to_str().and_then(|n| n.strip_prefix(prefix)) else {
            continue;
        };
        let pid = rest.split('-').next().unwrap_or_default();
        if pid.parse::<u32>().is_ok() && !Path::new("/proc").join(pid).exists() {
            let _ = std::fs::remove_dir_all(entry.path());
        }
    }
}
