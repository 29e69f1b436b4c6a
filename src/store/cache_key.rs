//! A task's cache key: a blake3 hash over a plain struct of everything that decides its
//! output. The parts are kept next to each build so `weir status` can say which of them changed.
//!
//! The key hashes a canonical text of the parts, never a serializer's or `Debug`'s output, so
//! no crate or compiler upgrade can change it. The text is one line per part, in this order:
//!
//! ```text
//! weir cache key <format>
//! kind <kind>
//! code <code>
//! udf <name> <key>             for each UDF its SQL calls, by name
//! option <name> <value>        for each option, by name (values are JSON, object keys sorted)
//! input <name> <key>           for each input, by name
//! external <fingerprint>       if the task reads files
//! param <name> <value>         for each parameter read, by name
//! freshness <token>            if the task has a `cache` closure
//! volatile <calls and nonce>   if it calls impure functions without one
//! ```
//!
//! Fields are separated by a tab, and tabs, newlines and backslashes inside a field are
//! escaped, so two different sets of parts never give the same text. `FORMAT_VERSION` is part
//! of the text: changing this encoding, or what any part means, must bump it (a test pins the
//! key of a fixed set of parts).

use std::collections::BTreeMap;
use std::fmt::Write;

use serde::{Deserialize, Serialize};

/// Bump when the meaning of any part, how the key is computed, or how outputs are written
/// changes. 2: canonical text instead of JSON, options as JSON instead of `Debug` text.
pub const FORMAT_VERSION: u32 = 3;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct KeyParts {
    pub format: u32,
    pub kind: String,
    /// blake3 of the normalized code: SQL through the parser, Rhai without comments and
    /// whitespace, including every script function it calls.
    pub code: String,
    /// UDF its SQL calls -> blake3 of its declaration and code (with the script functions it
    /// calls); absent from keys of tasks calling none, so their keys stay as they were.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub udfs: BTreeMap<String, String>,
    pub options: BTreeMap<String, String>,
    /// input table -> the cache key of the build it reads (empty for a sampled table that
    /// its instance has not committed)
    pub inputs: BTreeMap<String, CacheKey>,
    /// blake3 of the external files' fingerprints (path, size, modified, etag)
    pub external: Option<String>,
    /// parameters the task reads, name -> value
    pub params: BTreeMap<String, String>,
    /// the token of the task's `cache` closure; absent from keys of tasks without one
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub freshness: Option<String>,
    /// For a task calling an impure function (now(), random()) without a `cache` option: the
    /// functions and a value new every time, so it re-runs every time.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub volatile: Option<String>,
}

/// 32 hex digits of blake3: a task's key, and the name of its builds' folder.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct CacheKey(String);

impl CacheKey {
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// A key as printed: 32 lowercase hex digits.
    pub fn parse(text: &str) -> Option<CacheKey> {
        let hex = text.len() == 32 && text.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'));
        hex.then(|| CacheKey(text.to_string()))
    }

    /// No key: a sampled table its instance has not committed.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The first digits, enough to tell keys apart on a screen.
    pub fn short(&self) -> &str {
        &self.0[..self.0.len().min(12)]
    }
}

impl AsRef<str> for CacheKey {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Display for CacheKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl PartialEq<str> for CacheKey {
    fn eq(&self, other: &str) -> bool {
        self.0 == other
    }
}

impl KeyParts {
    /// Whether the task reads something outside the store: files, or a `cache` token.
    pub fn has_fresh_input(&self) -> bool {
        self.external.is_some() || self.freshness.is_some() || self.volatile.is_some()
    }

    /// The impure functions a volatile task calls, without the value that makes it re-run.
    pub fn volatile_calls(&self) -> Option<&str> {
        self.volatile
            .as_deref()
            .map(|v| v.split(VOLATILE_AT).next().unwrap_or(v))
    }

    /// The outside inputs that differ from `old`'s, in words.
    pub fn fresh_input_changes(&self, old: &KeyParts) -> Vec<&'static str> {
        let mut out = Vec::new();
        if self.external != old.external {
            out.push("external file changed");
        }
        if self.freshness != old.freshness {
            out.push("cache token changed");
        }
        if self.volatile != old.volatile && self.volatile.is_some() {
            out.push("volatile");
        }
        out
    }

    pub fn key(&self) -> CacheKey {
        CacheKey(hash_text(&self.canonical()))
    }

    /// The text the key hashes (see the module's documentation).
    fn canonical(&self) -> String {
        let mut text = String::new();
        let mut line = |fields: &[&str]| {
            let escaped: Vec<String> = fields.iter().map(|f| escape(f)).collect();
            let _ = writeln!(text, "{}", escaped.join("\t"));
        };
        line(&["weir cache key", &self.format.to_string()]);
        line(&["kind", &self.kind]);
        line(&["code", &self.code]);
        for (name, key) in &self.udfs {
            line(&["udf", name, key]);
        }
        for (name, value) in &self.options {
            line(&["option", name, value]);
        }
        for (name, key) in &self.inputs {
            line(&["input", name, key.as_str()]);
        }
        if let Some(e) = &self.external {
            line(&["external", e]);
        }
        for (name, value) in &self.params {
            line(&["param", name, value]);
        }
        if let Some(f) = &self.freshness {
            line(&["freshness", f]);
        }
        if let Some(v) = &self.volatile {
            line(&["volatile", v]);
        }
        text
    }

    /// Why `self` differs from an earlier build's parts, in words a user acts on.
    pub fn changes_since(&self, old: &KeyParts) -> Vec<String> {
        let mut why = Vec::new();
        if self.format != old.format || self.kind != old.kind {
            why.push("task kind or weir's format changed".to_string());
        }
        if self.code != old.code {
            why.push("code changed".to_string());
        }
        for name in changed_keys(&self.udfs, &old.udfs) {
            why.push(format!("udf {name} changed"));
        }
        for name in changed_keys(&self.options, &old.options) {
            why.push(format!("option {name} changed"));
        }
        for (name, key) in &self.inputs {
            match old.inputs.get(name) {
                Some(k) if k == key => {}
                Some(_) => why.push(format!("input {name} changed")),
                None => why.push(format!("new input {name}")),
            }
        }
        for name in old.inputs.keys().filter(|n| !self.inputs.contains_key(*n)) {
            why.push(format!("input {name} removed"));
        }
        if self.external != old.external {
            why.push("external file changed".to_string());
        }
        for name in changed_keys(&self.params, &old.params) {
            why.push(format!("param {name} changed"));
        }
        if self.freshness != old.freshness {
            why.push("cache token changed".to_string());
        }
        if let Some(calls) = self.volatile_calls() {
            why.push(format!("volatile: calls {calls}"));
        }
        why
    }
}

/// The keys whose values differ between two maps, or that only one of them has, in order.
pub fn changed_keys<'a>(
    new: &'a BTreeMap<String, String>,
    old: &'a BTreeMap<String, String>,
) -> impl Iterator<Item = &'a String> + 'a {
    let keys: std::collections::BTreeSet<&String> = new.keys().chain(old.keys()).collect();
    keys.into_iter().filter(|k| new.get(*k) != old.get(*k))
}

/// Separates a volatile task's functions from the value that changes every run.
pub const VOLATILE_AT: &str = " @ ";

/// A field of the canonical text with its separators escaped.
fn escape(field: &str) -> String {
    field
        .replace('\\', "\\\\")
        .replace('\t', "\\t")
        .replace('\n', "\\n")
}

pub fn hash_text(text: &str) -> String {
    blake3::hash(text.as_bytes()).to_hex()[..32].to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parts() -> KeyParts {
        KeyParts {
            format: FORMAT_VERSION,
            kind: "sql".into(),
            code: hash_text("SELECT 1"),
            udfs: BTreeMap::new(),
            options: BTreeMap::new(),
            inputs: BTreeMap::from([("raw.a".into(), CacheKey("k1".into()))]),
            external: None,
            params: BTreeMap::new(),
            freshness: None,
            volatile: None,
        }
    }

    #[test]
    fn every_part_changes_the_key_and_is_named() {
        let base = parts();
        let mut code = parts();
        code.code = hash_text("SELECT 2");
        let mut input = parts();
        input.inputs.insert("raw.a".into(), CacheKey("k2".into()));
        let mut opt = parts();
        opt.options.insert("version".into(), "2".into());
        for (changed, why) in [
            (code, "code changed"),
            (input, "input raw.a changed"),
            (opt, "option version changed"),
        ] {
            assert_ne!(changed.key(), base.key());
            assert_eq!(changed.changes_since(&base), vec![why.to_string()]);
        }
        assert_eq!(parts().key(), base.key());
    }

    /// The key of fixed parts never changes unless `FORMAT_VERSION` does: a change to how
    /// keys are computed would otherwise rebuild every user's store without saying so.
    #[test]
    fn the_key_of_fixed_parts_is_pinned() {
        let mut p = parts();
        p.options
            .insert("csv".into(), r#"{"delimiter":",","header":true}"#.into());
        p.params.insert("day".into(), "2024-01-31".into());
        p.external = Some("fp\twith\ttabs".into());
        assert_eq!(
            FORMAT_VERSION, 3,
            "a new format needs a new pinned key below"
        );
        assert_eq!(p.key().as_str(), "923805a83c8d9aa72010f5960265e903");
    }

    #[test]
    fn separators_inside_fields_cannot_make_two_parts_one() {
        let mut a = parts();
        a.params.insert("a".into(), "b\tc".into());
        let mut b = parts();
        b.params.insert("a\tb".into(), "c".into());
        assert_ne!(a.key(), b.key());
    }
}
