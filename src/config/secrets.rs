//! `${NAME}` interpolation from the environment and `${secrets.NAME}` from the secrets file,
//! and the redaction of every secret value from whatever weir prints or stores.

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::sync::RwLock;

/// Secret values seen in this process, longest first so a secret containing another is
/// replaced whole.
static SECRETS: RwLock<Vec<String>> = RwLock::new(Vec::new());

pub const MASK: &str = "***";

pub fn register(values: impl IntoIterator<Item = String>) {
    let mut all = SECRETS.write().unwrap_or_else(|p| p.into_inner());
    all.extend(values.into_iter().filter(|v| !v.is_empty()));
    all.sort_by_key(|v| std::cmp::Reverse(v.len()));
    all.dedup();
}

/// `text` with every registered secret replaced by `***`. Output, errors, logs and run records
/// pass through here, so a secret interpolated into a URL or an attr is never shown.
pub fn redact(text: &str) -> Cow<'_, str> {
    let all = SECRETS.read().unwrap_or_else(|p| p.into_inner());
    if !all.iter().any(|s| text.contains(s.as_str())) {
        return Cow::Borrowed(text);
    }
    let mut out = text.to_string();
    for s in all.iter() {
        out = out.replace(s.as_str(), MASK);
    }
    Cow::Owned(out)
}

/// `text` with every secret replaced by `***` and a hash of it: for what is stored (cache key
/// parts), where a changed secret must still change the key.
pub fn redact_keyed(text: &str) -> Cow<'_, str> {
    let all = SECRETS.read().unwrap_or_else(|p| p.into_inner());
    if !all.iter().any(|s| text.contains(s.as_str())) {
        return Cow::Borrowed(text);
    }
    let mut out = text.to_string();
    for s in all.iter() {
        let tag = format!("{MASK}{}", &blake3::hash(s.as_bytes()).to_hex()[..12]);
        out = out.replace(s.as_str(), &tag);
    }
    Cow::Owned(out)
}

/// A writer that redacts what passes through it. Each `write` is redacted on its own, so
/// callers hand it whole lines or whole documents, as tracing and weir's printers do.
pub struct Redacted<W>(pub W);

impl<W: std::io::Write> std::io::Write for Redacted<W> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        match std::str::from_utf8(buf) {
            Ok(text) => self.0.write_all(redact(text).as_bytes())?,
            Err(_) => self.0.write_all(buf)?,
        }
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.0.flush()
    }
}

/// What a `${...}` reference could not be resolved to.
#[derive(Debug, PartialEq)]
pub enum Missing {
    Env(String),
    Secret(String),
    Unclosed,
}

/// Replace `${NAME}` with the environment variable and `${secrets.NAME}` with the secret;
/// `$${` is a literal `${`.
pub fn interpolate(
    text: &str,
    env: &dyn Fn(&str) -> Option<String>,
    secrets: &BTreeMap<String, String>,
) -> Result<String, Missing> {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(i) = rest.find('$') {
        out.push_str(&rest[..i]);
        let after = &rest[i..];
        if let Some(tail) = after.strip_prefix("$${") {
            out.push_str("${");
            rest = tail;
        } else if let Some(tail) = after.strip_prefix("${") {
            let end = tail.find('}').ok_or(Missing::Unclosed)?;
            let name = tail[..end].trim();
            let value = match name.strip_prefix("secrets.") {
                Some(key) => secrets
                    .get(key)
                    .cloned()
                    .ok_or_else(|| Missing::Secret(key.to_string()))?,
                None => env(name).ok_or_else(|| Missing::Env(name.to_string()))?,
            };
            out.push_str(&value);
            rest = &tail[end + 1..];
        } else {
            out.push('$');
            rest = &after[1..];
        }
    }
    out.push_str(rest);
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(name: &str) -> Option<String> {
        (name == "HOME_DIR").then(|| "/home/ada".to_string())
    }

    #[test]
    fn references_resolve_from_env_and_secrets() {
        let secrets = BTreeMap::from([("pw".to_string(), "hunter2".to_string())]);
        let got = interpolate(
            "s3://${HOME_DIR}/x?p=${secrets.pw}&c=$5 $${lit}",
            &env,
            &secrets,
        );
        assert_eq!(got.unwrap(), "s3:///home/ada/x?p=hunter2&c=$5 ${lit}");
        assert_eq!(
            interpolate("${NOPE}", &env, &secrets),
            Err(Missing::Env("NOPE".into()))
        );
        assert_eq!(
            interpolate("${secrets.nope}", &env, &secrets),
            Err(Missing::Secret("nope".into()))
        );
        assert_eq!(
            interpolate("${open", &env, &secrets),
            Err(Missing::Unclosed)
        );
    }

    #[test]
    fn registered_secrets_are_masked() {
        register(["s3cr3t-value".to_string()]);
        assert_eq!(redact("url=x://u:s3cr3t-value@h"), "url=x://u:***@h");
        assert!(matches!(redact("nothing here"), Cow::Borrowed(_)));
    }
}
