//! The modules of `src/` form a stack: data moves one way, and a module imports only the
//! modules below it. This reads the code's own imports, so a new upward import fails here
//! rather than growing into a circle.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// Top to bottom. The last three are leaves that every module may use.
const STACK: &[&str] = &[
    "cli",
    "serve",
    "repl",
    "watch",
    "session",
    "error",
    "exec",
    "engine",
    "flow",
    "script",
    "report",
    "store",
    "config",
    "df_message",
    "names",
    "source",
];

/// Every module imports only modules below it in the stack, so there is no circle.
#[test]
fn modules_import_only_modules_below_them() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let imports = imports(&src);
    let level = |m: &str| STACK.iter().position(|s| *s == m);
    let mut wrong = Vec::new();
    for (module, used) in &imports {
        let Some(own) = level(module) else {
            wrong.push(format!(
                "src/{module} is not in the stack of tests/cases/layers.rs"
            ));
            continue;
        };
        for (target, file) in used {
            match level(target) {
                Some(l) if l > own => {}
                Some(_) => wrong.push(format!("{module} imports {target} (in {file})")),
                None => wrong.push(format!("{module} imports unknown module {target} ({file})")),
            }
        }
    }
    assert!(
        wrong.is_empty(),
        "imports against the stack:\n{}",
        wrong.join("\n")
    );
    assert!(imports.len() >= 10, "found only {:?}", imports.keys());
}

/// For each top-level module, the other top-level modules it names as `crate::x`, with a file
/// that does.
fn imports(src: &Path) -> BTreeMap<String, BTreeMap<String, String>> {
    let mut out: BTreeMap<String, BTreeMap<String, String>> = BTreeMap::new();
    for file in rust_files(src) {
        let rel = file.strip_prefix(src).expect("under src");
        let first = rel.components().next().expect("a path");
        let module = first
            .as_os_str()
            .to_string_lossy()
            .trim_end_matches(".rs")
            .to_string();
        if matches!(module.as_str(), "main" | "lib") {
            continue;
        }
        let text = std::fs::read_to_string(&file).expect("read");
        let entry = out.entry(module.clone()).or_default();
        for target in named_modules(&text) {
            if target != module {
                entry
                    .entry(target)
                    .or_insert_with(|| rel.display().to_string());
            }
        }
    }
    out
}

/// `crate::x::...` and `use crate::{x, y::z}` name modules x and y; `crate::Error` and
/// `crate::Result` are the error module's.
fn named_modules(text: &str) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    let mut rest = text;
    while let Some(i) = rest.find("crate::") {
        rest = &rest[i + "crate::".len()..];
        let names: Vec<&str> = match rest.strip_prefix('{') {
            Some(group) => {
                let end = group.find('}').unwrap_or(group.len());
                group[..end].split(',').collect()
            }
            None => vec![rest],
        };
        for name in names {
            let word: String = name
                .trim()
                .chars()
                .take_while(|c| c.is_alphanumeric() || *c == '_')
                .collect();
            match word.as_str() {
                "" => {}
                "Error" | "Result" => {
                    out.insert("error".to_string());
                }
                w => {
                    out.insert(w.to_string());
                }
            }
        }
    }
    out
}

fn rust_files(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).expect("src").flatten() {
        let path = entry.path();
        if path.is_dir() {
            out.extend(rust_files(&path));
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
    out
}

#[test]
fn group_imports_are_read() {
    let found = named_modules("use crate::{Error, store::Store};\nlet x = crate::flow::plan();");
    let expected: BTreeSet<String> = ["error", "store", "flow"].map(String::from).into();
    assert_eq!(found, expected);
}

/// A module inside a folder (`src/script/api/declare.rs` is `declare` of `script/api`) and the
/// siblings it names as `super::x` or `crate::folder::x`.
fn sibling_imports(src: &Path) -> BTreeMap<(String, String), BTreeSet<String>> {
    let mut out: BTreeMap<(String, String), BTreeSet<String>> = BTreeMap::new();
    for file in rust_files(src) {
        let rel = file
            .strip_prefix(src)
            .expect("under src")
            .with_extension("");
        let mut parts: Vec<String> = rel
            .iter()
            .map(|p| p.to_string_lossy().into_owned())
            .collect();
        if parts.last().is_some_and(|p| p == "mod") {
            parts.pop();
        }
        let Some(module) = parts.pop().filter(|_| !parts.is_empty()) else {
            continue;
        };
        let folder = parts.join("/");
        let text = std::fs::read_to_string(&file).expect("read");
        // Unit tests may reach anywhere.
        let code = text.split("#[cfg(test)]").next().unwrap_or_default();
        let full = format!("crate::{}::", parts.join("::"));
        let named = code
            .match_indices("super::")
            .map(|(i, m)| &code[i + m.len()..])
            .chain(code.match_indices(&full).map(|(i, m)| &code[i + m.len()..]));
        for rest in named {
            let name: String = rest
                .chars()
                .take_while(|c| c.is_alphanumeric() || *c == '_')
                .collect();
            let sibling = src.join(&folder).join(&name);
            let exists = sibling.with_extension("rs").is_file() || sibling.is_dir();
            if exists && name != module {
                out.entry((folder.clone(), module.clone()))
                    .or_default()
                    .insert(name);
            }
        }
    }
    out
}

/// Inside every folder too, modules import each other without a circle: a circle would make
/// the folder one module in all but name.
#[test]
fn modules_inside_a_folder_import_without_circles() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let edges = sibling_imports(&src);
    assert!(
        edges.len() >= 20,
        "found only {} modules with imports",
        edges.len()
    );
    let mut circles = Vec::new();
    for (folder, module) in edges.keys() {
        // A path from the module back to itself, found depth first.
        let mut stack = vec![(module.clone(), vec![module.clone()])];
        let mut seen = BTreeSet::new();
        while let Some((at, path)) = stack.pop() {
            for next in edges.get(&(folder.clone(), at)).into_iter().flatten() {
                if next == module {
                    circles.push(format!("src/{folder}: {} -> {module}", path.join(" -> ")));
                } else if seen.insert(next.clone()) {
                    let mut longer = path.clone();
                    longer.push(next.clone());
                    stack.push((next.clone(), longer));
                }
            }
        }
    }
    circles.sort();
    circles.dedup();
    assert!(
        circles.is_empty(),
        "circles of imports:\n{}",
        circles.join("\n")
    );
}
