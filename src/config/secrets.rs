//! `${NAME}` interpolation from the environment and `${secrets.NAME}` from the secrets file,
//! and the redaction of every secret value from whatever weir prints or stores.

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::sync::RwLock;

/// Secret values seen in this process, each with the forms it takes once escaped (inside a
/// JSON string, in Rust's debug text, in SQL) or folded to lower case, longest first so a
/// secret containing another is replaced whole.
static SECRETS: RwLock<Vec<Secret>> = RwLock::new(Vec::new());

struct Secret {
    value: String,
    /// The value and its escaped forms, longest first.
    forms: Vec<String>,
}

pub const MASK: &str = "***";

pub fn register(values: impl IntoIterator<Item = String>) {
    let mut all = SECRETS.write().unwrap_or_else(|p| p.into_inner());
    for value in values.into_iter().filter(|v| !v.is_empty()) {
        if all.iter().any(|s| s.value == value) {
            continue;
        }
        let quoted = |q: String| q[1..q.len() - 1].to_string();
        // As written, and as it reappears: escaped in JSON and Rust's debug text, quoted in
        // SQL (a `'` or `"` doubled), and folded to lower case as SQL folds an identifier.
        let mut forms = vec![
            value.clone(),
            quoted(serde_json::Value::String(value.clone()).to_string()),
            quoted(format!("{value:?}")),
            value.replace('\'', "''"),
            value.replace('"', "\"\""),
        ];
        let lower: Vec<String> = forms.iter().map(|f| f.to_lowercase()).collect();
        forms.extend(lower);
        forms.sort_by_key(|f| std::cmp::Reverse(f.len()));
        forms.dedup();
        all.push(Secret { value, forms });
    }
    all.sort_by_key(|s| std::cmp::Reverse(s.value.len()));
}

/// Whether a store option or environment variable holds a credential, by its name
/// (`aws_secret_access_key`, `AZURE_STORAGE_ACCOUNT_KEY`, `google_service_account_key`, a
/// token, a SAS): its value is masked like a secret.
pub fn is_credential(name: &str) -> bool {
    let name = name.to_ascii_lowercase();
    [
        "secret",
        "token",
        "password",
        "sas",
        "account_key",
        "service_account_key",
        "bearer",
    ]
    .iter()
    .any(|part| name.contains(part))
}

/// The credentials in the environment that object stores read, registered as secrets so
/// that no error or log shows them.
pub fn register_environment() {
    let found = std::env::vars().filter(|(name, value)| {
        let cloud = ["AWS_", "AZURE_", "GOOGLE_"]
            .iter()
            .any(|p| name.starts_with(p));
        cloud && is_credential(name) && !value.is_empty()
    });
    register(found.map(|(_, value)| value));
}

/// Whether any secret is registered: only then does anything need masking or a salt.
pub fn any() -> bool {
    !SECRETS.read().unwrap_or_else(|p| p.into_inner()).is_empty()
}

/// `text` with every registered secret, escaped or not, replaced by `***`. Output, errors,
/// logs and run records pass through here, so a secret interpolated into a URL or an attr is
/// never shown.
pub fn redact(text: &str) -> Cow<'_, str> {
    replace(text, |_| MASK.to_string())
}

/// `text` with every secret replaced by `***` and a hash of it keyed by `salt` (the store's
/// own random salt): for what is stored (cache key parts), where a changed secret must still
/// change the key, and a stored hash must not let a weak secret be guessed offline.
pub fn redact_keyed<'a>(text: &'a str, salt: &[u8; 32]) -> Cow<'a, str> {
    replace(text, |secret| {
        let hash = blake3::keyed_hash(salt, secret.as_bytes());
        format!("{MASK}{}", &hash.to_hex()[..12])
    })
}

fn replace<'a>(text: &'a str, mask: impl Fn(&str) -> String) -> Cow<'a, str> {
    let all = SECRETS.read().unwrap_or_else(|p| p.into_inner());
    let found = |s: &Secret| s.forms.iter().any(|f| text.contains(f.as_str()));
    if !all.iter().any(found) {
        return Cow::Borrowed(text);
    }
    let mut out = text.to_string();
    for s in all.iter() {
        let masked = mask(&s.value);
        for form in &s.forms {
            out = out.replace(form.as_str(), &masked);
        }
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

    /// A secret with a quote, a backslash or a tab is masked in JSON and debug text too, where
    /// it appears escaped.
    #[test]
    fn escaped_secrets_are_masked() {
        let secret = "pa\"ss\\w\trd";
        register([secret.to_string()]);
        let json = serde_json::json!({ "token": secret }).to_string();
        assert_eq!(redact(&json), r#"{"token":"***"}"#);
        assert_eq!(redact(&format!("{:?}", secret)), "\"***\"");
        assert_eq!(redact(secret), "***");
    }

    /// A secret is masked as SQL shows it too: folded to lower case as an identifier, and with
    /// its quotes doubled inside an SQL string.
    #[test]
    fn secrets_are_masked_as_sql_shows_them() {
        register(["It's-Sql-S3cret".to_string()]);
        assert_eq!(
            redact("table 'it's-sql-s3cret' not found"),
            "table '***' not found"
        );
        assert_eq!(
            redact("SELECT 'It''s-Sql-S3cret' AS x"),
            "SELECT '***' AS x"
        );
        assert_eq!(redact("select 'it''s-sql-s3cret'"), "select '***'");
    }

    /// The hash kept in place of a secret depends on the store's salt.
    #[test]
    fn keyed_masks_depend_on_the_salt() {
        register(["another-secret".to_string()]);
        let a = redact_keyed("x=another-secret", &[1; 32]).into_owned();
        let b = redact_keyed("x=another-secret", &[2; 32]).into_owned();
        assert!(a.starts_with("x=***") && b.starts_with("x=***"), "{a} {b}");
        assert_ne!(a, b);
        assert!(!a.contains("another-secret"));
    }
}
