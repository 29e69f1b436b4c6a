//! A task's cache key: a blake3 hash over a plain struct of everything that decides its
//! output, serialized canonically (ordered maps only, a format version first). The parts are
//! kept next to each build so `weir status` can say which of them changed.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// Bump when the meaning of any part, or how outputs are written, changes.
pub const FORMAT_VERSION: u32 = 1;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct KeyParts {
    pub format: u32,
    pub kind: String,
    /// blake3 of the normalized code: SQL through the parser, Rhai without comments and
    /// whitespace, including every script function it calls.
    pub code: String,
    pub options: BTreeMap<String, String>,
    /// input table -> the cache key of the build it reads
    pub inputs: BTreeMap<String, String>,
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

#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct CacheKey(pub String);

impl std::fmt::Display for CacheKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
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
        let bytes = serde_json::to_vec(self).unwrap_or_default();
        CacheKey(blake3::hash(&bytes).to_hex()[..32].to_string())
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
            options: BTreeMap::new(),
            inputs: BTreeMap::from([("raw.a".into(), "k1".into())]),
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
        input.inputs.insert("raw.a".into(), "k2".into());
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
}
