//! Explaining a cache key: its parts (kind, code, options, inputs, external files, params,
//! cache token) next to the committed build's, with each changed part marked and shown as
//! old -> new. Used by `weir why` and `weir status -v`.

use std::collections::{BTreeMap, BTreeSet};
use std::io::Write;

use crate::store::{Column, KeyParts};

/// Values longer than this are cut: a part is explained by which one changed, not by a dump.
const SHORT: usize = 48;

/// One part of a key, as it is now and as the committed build had it.
pub struct Part {
    pub name: String,
    pub now: String,
    /// The committed build's value, when there is a committed build.
    pub then: Option<String>,
    /// Why an input's key moved, in words (the producing task's own reasons).
    pub note: Option<String>,
}

impl Part {
    pub fn changed(&self) -> bool {
        self.then.as_ref().is_some_and(|t| *t != self.now)
    }
}

/// The parts of `now`, compared with `then` (the committed build's parts, if any); `notes`
/// say why an input's key changed, by input name.
pub fn key_parts(
    now: &KeyParts,
    then: Option<&KeyParts>,
    notes: &BTreeMap<String, String>,
) -> Vec<Part> {
    let mut out = Vec::new();
    let mut push = |name: String, now: String, then: Option<String>| {
        out.push(Part {
            note: None,
            name,
            now,
            then,
        })
    };
    push(
        "kind".into(),
        now.kind.clone(),
        then.map(|t| t.kind.clone()),
    );
    push(
        "format".into(),
        now.format.to_string(),
        then.map(|t| t.format.to_string()),
    );
    push(
        "code".into(),
        short_hash(&now.code),
        then.map(|t| short_hash(&t.code)),
    );
    // Only for tasks calling UDFs, whose keys hold them.
    if !now.udfs.is_empty() || then.is_some_and(|t| !t.udfs.is_empty()) {
        map_parts(
            &mut push,
            ("udf", "(not called)"),
            &now.udfs,
            then.map(|t| &t.udfs),
            short_hash,
        );
    }
    map_parts(
        &mut push,
        ("option", "(none)"),
        &now.options,
        then.map(|t| &t.options),
        |v| cut(&option_text(v)),
    );
    map_parts(
        &mut push,
        ("input", "(none)"),
        &now.inputs,
        then.map(|t| &t.inputs),
        input_key,
    );
    let external = |p: &KeyParts| p.external.as_deref().map_or("(none)".into(), short_hash);
    push("external files".into(), external(now), then.map(external));
    // A param not given on the command line is not in the key: the script's default holds.
    map_parts(
        &mut push,
        ("param", "(not given)"),
        &now.params,
        then.map(|t| &t.params),
        cut,
    );
    let token = |p: &KeyParts| p.freshness.as_deref().map_or("(none)".into(), cut);
    push("cache token".into(), token(now), then.map(token));
    // Shown only for a volatile task: its calls and the value that is new every run.
    if now.volatile.is_some() {
        let volatile = |p: &KeyParts| match (&p.volatile, p.volatile_calls()) {
            (Some(v), Some(calls)) => {
                format!(
                    "{calls} #{}",
                    short_hash(&crate::store::cache_key::hash_text(v))
                )
            }
            _ => "(none)".to_string(),
        };
        push("volatile".into(), volatile(now), then.map(volatile));
    }
    // The format only matters the day it changes.
    out.retain(|p| p.name != "format" || p.changed());
    for p in &mut out {
        if let Some(input) = p.name.strip_prefix("input ") {
            p.note = notes.get(input).cloned().filter(|_| p.changed());
        }
    }
    out
}

/// One part per key of either map: `label key`, valued through `show`, or `absent`.
fn map_parts<V: AsRef<str>>(
    push: &mut impl FnMut(String, String, Option<String>),
    (label, absent): (&str, &str),
    now: &BTreeMap<String, V>,
    then: Option<&BTreeMap<String, V>>,
    show: impl Fn(&str) -> String,
) {
    let none = BTreeMap::new();
    let keys: BTreeSet<&String> = now.keys().chain(then.unwrap_or(&none).keys()).collect();
    let value = |m: &BTreeMap<String, V>, k: &str| {
        m.get(k).map_or(absent.to_string(), |v| show(v.as_ref()))
    };
    for k in keys {
        push(
            format!("{label} {k}"),
            value(now, k),
            then.map(|t| value(t, k)),
        );
    }
}

/// An input's key, short; empty when the input has never been built.
fn input_key(k: &str) -> String {
    if k.is_empty() {
        "(not built)".into()
    } else {
        short_hash(k)
    }
}

fn short_hash(h: &str) -> String {
    h.chars().take(12).collect()
}

/// An option as the script wrote it: options are kept as JSON, and a string is shown bare.
fn option_text(json: &str) -> String {
    match serde_json::from_str::<serde_json::Value>(json) {
        Ok(serde_json::Value::String(s)) => s,
        _ => json.to_string(),
    }
}

/// A value on one line, at most `SHORT` characters; masked first, so a cut never leaves part
/// of a secret that would no longer be recognized.
fn cut(v: &str) -> String {
    let one_line = crate::config::secrets::redact(v).replace('\n', " ");
    if one_line.chars().count() <= SHORT {
        one_line
    } else {
        let head: String = one_line.chars().take(SHORT - 3).collect();
        format!("{head}...")
    }
}

/// The parts as aligned lines, a changed part marked `*` and shown as `old -> new`.
pub fn part_lines(parts: &[Part], indent: &str) -> Vec<String> {
    let width = parts.iter().map(|p| p.name.len()).max().unwrap_or(0);
    parts
        .iter()
        .map(|p| {
            let mark = if p.changed() { '*' } else { ' ' };
            let value = match &p.then {
                Some(then) if p.changed() => format!("{then} -> {}", p.now),
                _ => p.now.clone(),
            };
            let note = p
                .note
                .as_ref()
                .map(|n| format!("  ({n})"))
                .unwrap_or_default();
            format!("{indent}{mark} {:<width$}  {value}{note}", p.name)
        })
        .collect()
}

/// What `weir why` prints about one task.
pub struct Why {
    /// `prep.orders_clean`, or `marts.split (outputs a, b)`
    pub task: String,
    /// fresh, stale, never built, ...
    pub state: String,
    pub reasons: Vec<String>,
    pub key: String,
    /// The committed build's key and the run that built it.
    pub committed: Option<(String, String)>,
    pub parts: Vec<Part>,
}

pub fn print_why(w: &Why) -> std::io::Result<()> {
    let mut text = Vec::new();
    let out = &mut text;
    match w.reasons.as_slice() {
        [] => writeln!(out, "{}: {}", w.task, w.state)?,
        why => writeln!(out, "{}: {} ({})", w.task, w.state, why.join(", "))?,
    }
    match &w.committed {
        Some((key, run)) if *key == w.key => {
            writeln!(out, "key {}, the committed build's (run {run})", w.key)?
        }
        Some((key, run)) => writeln!(out, "key {}, committed {key} (run {run})", w.key)?,
        None => writeln!(out, "key {}, nothing committed to compare with", w.key)?,
    }
    for line in part_lines(&w.parts, "  ") {
        writeln!(out, "{line}")?;
    }
    let changed: Vec<&str> = w
        .parts
        .iter()
        .filter(|p| p.changed())
        .map(|p| p.name.as_str())
        .collect();
    if !changed.is_empty() {
        writeln!(
            out,
            "changed since the committed build (*): {}",
            changed.join(", ")
        )?;
    }
    super::stdout_text(&text)
}

/// Columns added, removed or retyped, in words: `+email Utf8, -name, amount Int64 -> Float64`.
pub fn schema_change(old: &[Column], new: &[Column]) -> String {
    let find = |cols: &[Column], name: &str| cols.iter().find(|c| c.name == name).cloned();
    let mut parts = Vec::new();
    for c in new {
        match find(old, &c.name) {
            None => parts.push(format!("+{} {}", c.name, c.data_type)),
            Some(o) if o.data_type != c.data_type => {
                parts.push(format!("{} {} -> {}", c.name, o.data_type, c.data_type))
            }
            Some(_) => {}
        }
    }
    for c in old.iter().filter(|c| find(new, &c.name).is_none()) {
        parts.push(format!("-{}", c.name));
    }
    parts.join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::CacheKey;

    fn key(digit: &str) -> CacheKey {
        CacheKey::parse(&digit.repeat(32)).expect("a key")
    }

    fn parts() -> KeyParts {
        KeyParts {
            format: 1,
            kind: "rhai".into(),
            code: "c".repeat(32),
            udfs: BTreeMap::new(),
            options: BTreeMap::from([("version".into(), "1".into())]),
            inputs: BTreeMap::from([("raw.a".into(), key("a"))]),
            external: None,
            params: BTreeMap::from([("top".into(), "3".into())]),
            freshness: None,
            volatile: None,
        }
    }

    #[test]
    fn changed_parts_are_named_with_old_and_new_values() {
        let old = parts();
        let mut now = parts();
        now.params.insert("top".into(), "5".into());
        now.inputs.insert("raw.a".into(), key("b"));
        let notes = BTreeMap::from([("raw.a".to_string(), "raw.a: code changed".to_string())]);
        let parts = key_parts(&now, Some(&old), &notes);
        let changed: Vec<&str> = parts
            .iter()
            .filter(|p| p.changed())
            .map(|p| p.name.as_str())
            .collect();
        assert_eq!(changed, ["input raw.a", "param top"]);
        let lines = part_lines(&parts, "");
        assert!(
            lines
                .iter()
                .any(|l| l.starts_with("* param top") && l.ends_with("3 -> 5")),
            "{lines:?}"
        );
        assert!(
            lines
                .iter()
                .any(|l| l.contains("aaaaaaaaaaaa -> bbbbbbbbbbbb  (raw.a: code changed)")),
            "{lines:?}"
        );
        assert!(!lines.iter().any(|l| l.contains("format")));
    }
}
