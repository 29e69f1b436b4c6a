//! `[hooks]` in weir.toml (and per instance): commands run after `weir run`, `on_success` when
//! it succeeded and `on_failure` when it did not, each within `timeout`.

use std::time::Duration;

use serde::Deserialize;
use toml::Spanned;

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawHooks {
    pub on_success: Option<Spanned<String>>,
    pub on_failure: Option<Spanned<String>>,
    pub timeout: Option<Spanned<String>>,
}

impl RawHooks {
    /// `over`'s hooks where it has them, else these.
    pub fn merge(&mut self, over: RawHooks) {
        self.on_success = over.on_success.or(self.on_success.take());
        self.on_failure = over.on_failure.or(self.on_failure.take());
        self.timeout = over.timeout.or(self.timeout.take());
    }
}

/// An instance's hooks, resolved. The commands are kept as written: `sh -c` expands their
/// variables (`$WEIR_RUN_ID`), not weir's `${...}` interpolation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Hooks {
    pub on_success: Option<String>,
    pub on_failure: Option<String>,
    /// How long a hook may run before it is stopped.
    pub timeout: Duration,
}

impl Default for Hooks {
    fn default() -> Self {
        Self {
            on_success: None,
            on_failure: None,
            timeout: DEFAULT_TIMEOUT,
        }
    }
}

/// Long enough for a webhook or a mail, short enough that a hung one does not hold a
/// scheduler's job.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(60);
const MAX_TIMEOUT: Duration = Duration::from_secs(3600);

/// A hook's `timeout`: a duration from 1 s to 1 h.
pub(super) fn timeout(text: &str) -> Result<Duration, String> {
    match humantime::parse_duration(text.trim()) {
        Ok(d) if d >= Duration::from_secs(1) && d <= MAX_TIMEOUT => Ok(d),
        _ => Err(format!(
            "`{text}` is not a hook timeout: a duration from 1s to 1h"
        )),
    }
}

/// A hook's command: not empty.
pub(super) fn command(text: &str) -> Result<String, String> {
    match text.trim().is_empty() {
        true => Err("a hook's command is empty".to_string()),
        false => Ok(text.to_string()),
    }
}
