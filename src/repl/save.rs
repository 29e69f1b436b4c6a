//! `:save`: the session's code written into the script, so that a fix made at the prompt is
//! what the next `weir run` runs. An entry that redefines one function of the script, or
//! declares again one task declared in the script, replaces it in place; any other entry is
//! appended. The changes are shown as a diff and written once confirmed (`:save!` does not ask).

use std::ops::Range;

use super::{Repl, input};
use crate::report::{out, print_error};
use crate::script::TaskDecl;
use crate::session::{Loaded, plan_all};
use crate::source::offset_of;
use crate::{Error, Result};

/// The declarations an entry can replace in place.
const DECLARE: &[&str] = &["sql", "sql_file", "load", "materialize", "sample"];

/// One change to the script's text: `range` replaced by `text`, or `text` appended.
#[derive(Debug, PartialEq)]
struct Edit {
    range: Option<Range<usize>>,
    text: String,
}

pub fn save(repl: &mut Repl, source: &mut input::Source, force: bool) {
    if repl.entries.is_empty() {
        return out("nothing to save: the session has no code of its own");
    }
    let path = repl.current.script.source.path.clone();
    let result = std::fs::read_to_string(&path)
        .map_err(|e| Error::usage(format!("cannot read {}: {e}", path.display()), ""))
        .and_then(|text| Ok((repl.target.load()?.script.tasks, text)));
    let (tasks, text) = match result {
        Ok(found) => found,
        Err(e) => return print_error(e),
    };
    let edits = plan(&text, &tasks, &repl.entries);
    let name = path.file_name().map_or_else(
        || path.display().to_string(),
        |n| n.to_string_lossy().into_owned(),
    );
    out(&diff(&name, &text, &edits));
    if !force && !source.confirm(&format!("write this into {name}?")) {
        return out("not saved: the session's code stays as it is");
    }
    let saved = apply(&text, edits);
    match write(repl, &path, &text, &saved) {
        Ok(n) => out(&format!(
            "saved {n} entr{} into {name}: the next run uses them",
            if n == 1 { "y" } else { "ies" }
        )),
        Err(e) => print_error(e),
    }
}

/// Write `saved` over the script and load it alone: the session is the script again. A
/// script that does not load so (a declaration appended that the script makes elsewhere)
/// is put back as it was, `text`, and the session keeps its code.
fn write(repl: &mut Repl, path: &std::path::Path, text: &str, saved: &str) -> Result<usize> {
    let put = |content: &str| {
        std::fs::write(path, content).map_err(|e| {
            Error::usage(
                format!("cannot write {}: {e}", path.display()),
                "check the file's permissions",
            )
        })
    };
    put(saved)?;
    let n = repl.entries.len();
    if let Err(e) = repl.load_with(Vec::new()) {
        put(text)?;
        out("not saved: the script with the session's code does not load; it is kept as it was");
        return Err(e);
    }
    repl.handle.block_on(untaint_saved(&repl.current))?;
    Ok(n)
}

/// Builds promoted from the session that the saved script now makes itself are the script's:
/// they are no longer tainted.
async fn untaint_saved(loaded: &Loaded) -> Result<()> {
    let planned = plan_all(loaded, None).await?;
    let same = (0..planned.flow.tasks.len())
        .filter(|&i| {
            planned.promoted(i)
                && planned
                    .committed(i)
                    .is_some_and(|b| b.key == planned.plan.steps[i].key)
        })
        .map(|i| planned.flow.tasks[i].id.to_string())
        .collect();
    Ok(loaded.store.untaint(&same).await?)
}

/// What each entry changes in `text`; a later entry replacing the same code wins.
fn plan(text: &str, tasks: &[TaskDecl], entries: &[String]) -> Vec<Edit> {
    let functions = function_ranges(text);
    let mut edits: Vec<Edit> = Vec::new();
    for entry in entries {
        let entry = entry.trim();
        let range = defined_function(entry)
            .and_then(|f| {
                functions
                    .iter()
                    .find(|(g, _)| *g == f)
                    .map(|(_, r)| r.clone())
            })
            .or_else(|| declaration_range(text, tasks, entry));
        let text = match &range {
            Some(_) => entry.trim_end_matches(';').trim_end().to_string(),
            None if entry.ends_with(';') || entry.ends_with('}') => entry.to_string(),
            None => format!("{entry};"),
        };
        if range.is_some() {
            edits.retain(|e| e.range != range);
        }
        edits.push(Edit { range, text });
    }
    edits
}

/// `text` with `edits` made.
fn apply(text: &str, edits: Vec<Edit>) -> String {
    let (mut replace, append): (Vec<Edit>, Vec<Edit>) =
        edits.into_iter().partition(|e| e.range.is_some());
    replace.sort_by_key(|e| std::cmp::Reverse(e.range.as_ref().map_or(0, |r| r.start)));
    let mut out = text.to_string();
    for e in replace {
        if let Some(r) = e.range {
            out.replace_range(r, &e.text);
        }
    }
    for e in append {
        if !out.ends_with('\n') {
            out.push('\n');
        }
        out.push('\n');
        out.push_str(&e.text);
        out.push('\n');
    }
    out
}

/// The changes as a diff: removed lines with `-`, added ones with `+`.
fn diff(name: &str, text: &str, edits: &[Edit]) -> String {
    let mut lines = Vec::new();
    for e in edits {
        match &e.range {
            Some(r) => {
                let line = text[..r.start].matches('\n').count() + 1;
                lines.push(format!("@@ {name}:{line} @@"));
                lines.extend(text[r.clone()].lines().map(|l| format!("-{l}")));
            }
            None => lines.push(format!("@@ {name}: at the end @@")),
        }
        lines.extend(e.text.lines().map(|l| format!("+{l}")));
    }
    lines.join("\n")
}

/// The name and arity of the function an entry defines, when the entry is just that.
fn defined_function(entry: &str) -> Option<(String, usize)> {
    let ast = rhai::Engine::new().compile(entry).ok()?;
    let mut defs = ast.iter_functions();
    let f = defs.next()?;
    let only = defs.next().is_none() && ast.statements().is_empty();
    only.then(|| (f.name.to_string(), f.params.len()))
}

/// Every function the script defines, as (name, arity) and where its text is: from `fn`
/// (or `private`) to its closing brace.
fn function_ranges(text: &str) -> Vec<((String, usize), Range<usize>)> {
    let Ok(ast) = rhai::Engine::new().compile(text) else {
        return Vec::new();
    };
    let offset =
        |p: rhai::Position| offset_of(text, p.line().unwrap_or(1), p.position().unwrap_or(1));
    let mut out = Vec::new();
    for f in ast.iter_fn_def() {
        let (start, end) = (f.body.start_position(), f.body.end_position());
        if start.is_none() || end.is_none() || f.name.starts_with("anon$") {
            continue;
        }
        let (open, close) = (offset(start), offset(end));
        let Some(mut from) = text.get(..open).and_then(|t| t.rfind("fn ")) else {
            continue;
        };
        if let Some(p) = text[..from].trim_end().strip_suffix("private") {
            from = p.len();
        }
        if close < text.len() && text[close..].starts_with('}') {
            out.push(((f.name.to_string(), f.params.len()), from..close + 1));
        }
    }
    out
}

/// Where the script declares what `entry` declares again (`prep.sql("x", ...)`): the call,
/// from its receiver to its closing parenthesis.
fn declaration_range(text: &str, tasks: &[TaskDecl], entry: &str) -> Option<Range<usize>> {
    let (call, name) = declaration(entry)?;
    tasks
        .iter()
        .filter(|t| t.name == name && t.origin.file == 0)
        .find_map(|t| {
            let at = offset_of(text, t.origin.line, t.origin.column.max(1));
            let line = text[..at].rfind('\n').map_or(0, |i| i + 1);
            let end = text[at..].find('\n').map_or(text.len(), |i| at + i);
            let start = line + text[line..end].find(&call)?;
            let close = matching_close(text, start + call.len() - 1)?;
            Some(start..close + 1)
        })
}

/// `prep.sql("x", ...)` as (`prep.sql(`, `x`), when the entry is that one call.
fn declaration(entry: &str) -> Option<(String, String)> {
    let entry = entry.trim().trim_end_matches(';').trim_end();
    let open = entry.find('(')?;
    let (receiver, method) = entry[..open].split_once('.')?;
    let ident = |s: &str| !s.is_empty() && s.chars().all(|c| c.is_alphanumeric() || c == '_');
    if !ident(receiver) || !DECLARE.contains(&method) {
        return None;
    }
    if matching_close(entry, open)? != entry.len() - 1 {
        return None;
    }
    let rest = entry[open + 1..].trim_start();
    let quote = rest.chars().next().filter(|c| *c == '"' || *c == '`')?;
    let name = rest[1..].split(quote).next()?;
    Some((entry[..=open].to_string(), name.to_string()))
}

/// The `)` closing the `(` at `open`, past strings and comments.
fn matching_close(text: &str, open: usize) -> Option<usize> {
    let bytes = text.as_bytes();
    let mut depth = 0usize;
    let mut i = open;
    while i < bytes.len() {
        match bytes[i] {
            b'(' | b'[' | b'{' => depth += 1,
            b')' | b']' | b'}' => {
                depth = depth.checked_sub(1)?;
                if depth == 0 {
                    return (bytes[i] == b')').then_some(i);
                }
            }
            q @ (b'"' | b'`' | b'\'') => {
                i += 1;
                while i < bytes.len() && bytes[i] != q {
                    i += if bytes[i] == b'\\' && q != b'`' { 2 } else { 1 };
                }
            }
            b'/' if bytes.get(i + 1) == Some(&b'/') => {
                i = text[i..].find('\n').map_or(bytes.len(), |n| i + n);
            }
            b'/' if bytes.get(i + 1) == Some(&b'*') => {
                i = text[i + 2..]
                    .find("*/")
                    .map_or(bytes.len(), |n| i + 2 + n + 1);
            }
            _ => {}
        }
        i += 1;
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    const SCRIPT: &str = "let prep = stage(\"prep\");\n// prep.sql(\"x\", `old`)\nprep.sql(\"x\", `SELECT \")\" AS a`);\n\nfn f(t) {\n    t\n}\n";

    #[test]
    fn a_function_typed_again_replaces_the_scripts() {
        let ranges = function_ranges(SCRIPT);
        assert_eq!(ranges.len(), 1);
        let edits = plan(SCRIPT, &[], &["fn f(t) { t.limit(1) }".into()]);
        let saved = apply(SCRIPT, edits);
        assert!(
            saved.ends_with("`);\n\nfn f(t) { t.limit(1) }\n"),
            "{saved}"
        );
    }

    #[test]
    fn a_declaration_is_found_by_its_call_and_the_rest_appended() {
        assert_eq!(
            declaration("prep.sql(\"x\", `SELECT 2`)"),
            Some(("prep.sql(".into(), "x".into()))
        );
        assert_eq!(declaration("prep.sql(\"x\", `a`); let y = 1"), None);
        let start = SCRIPT.find("prep.sql(\"x\", `SELECT").unwrap();
        let close = matching_close(SCRIPT, start + 8).unwrap();
        assert_eq!(&SCRIPT[close - 1..=close], "`)");
        let edits = vec![
            Edit {
                range: Some(start..close + 1),
                text: "prep.sql(\"x\", `SELECT 2`)".into(),
            },
            Edit {
                range: None,
                text: "let z = 1;".into(),
            },
        ];
        let saved = apply(SCRIPT, edits);
        assert!(saved.contains("// prep.sql(\"x\", `old`)\nprep.sql(\"x\", `SELECT 2`);\n"));
        assert!(saved.ends_with("}\n\nlet z = 1;\n"), "{saved}");
    }
}
