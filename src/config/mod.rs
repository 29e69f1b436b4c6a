//! `weir.toml`: the project's store, its instances (full / midi / mini ...) with their attrs and
//! cache validation mode, `${ENV}` interpolation and a secrets file. Read before the script,
//! and checked whole, so a bad config fails before anything is written.

pub mod engine;
mod error;
pub mod hooks;
pub mod secrets;

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use serde::Deserialize;
use toml::Spanned;

pub use engine::{EngineSettings, EngineUrl, parse_size};
pub use error::ConfigError;
pub use hooks::Hooks;

use crate::source::SourceFile;

pub const FILE_NAME: &str = "weir.toml";
/// The base every instance extends.
pub const ANY: &str = "__any__";

/// How a run decides that external inputs are fresh (pipedag's cache validation modes).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "kebab-case")]
pub enum CacheMode {
    /// Keys include file fingerprints and `cache` tokens.
    #[default]
    Normal,
    /// Changed files and `cache` tokens do not make a task stale.
    IgnoreFreshInput,
    /// Every task with an external input (a load, a `cache` closure) runs.
    ForceFreshInput,
    /// Fail, naming each changed source, instead of building anything when a source changed.
    AssertNoFreshInput,
    /// Every task runs.
    ForceCacheInvalid,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawConfig {
    name: Option<String>,
    default_instance: Option<Spanned<String>>,
    secrets: Option<Spanned<String>>,
    store: Option<RawStore>,
    engine: Option<engine::RawEngine>,
    hooks: Option<hooks::RawHooks>,
    #[serde(default)]
    instances: BTreeMap<String, Spanned<RawInstance>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawStore {
    url: Option<Spanned<String>>,
    /// object_store config keys for the store's builder (`aws_endpoint`, ...).
    #[serde(default)]
    options: BTreeMap<String, Spanned<String>>,
    /// Keep a Delta Lake log beside each committed table (on unless false).
    delta: Option<bool>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawInstance {
    base: Option<Spanned<String>>,
    instance_id: Option<Spanned<String>>,
    store: Option<Spanned<String>>,
    attrs: Option<toml::Table>,
    cache_mode: Option<CacheMode>,
    engine: Option<engine::RawEngine>,
    hooks: Option<hooks::RawHooks>,
}

/// A project's configuration; empty when there is no `weir.toml`.
#[derive(Debug, Default)]
pub struct Config {
    file: Option<SourceFile>,
    dir: PathBuf,
    raw: RawConfig,
    secrets: BTreeMap<String, String>,
}

/// One instance, merged over its bases and interpolated.
#[derive(Debug, Clone)]
pub struct Instance {
    pub name: String,
    /// The folder of its data in the store; two instances never share one.
    pub id: String,
    pub attrs: toml::Table,
    pub cache_mode: CacheMode,
    /// Store URL or folder from the config, and the folder a relative one is relative to.
    pub store: Option<(String, PathBuf)>,
    /// `[store.options]`, interpolated: object_store config keys for the stores' builders.
    pub store_options: BTreeMap<String, String>,
    /// `[store] delta`: each committed table is also a Delta Lake table.
    pub delta: bool,
    /// `[engine]`, merged over the instance's bases.
    pub engine: EngineSettings,
    /// `[hooks]`, merged over the instance's bases.
    pub hooks: Hooks,
}

impl Config {
    /// `explicit` (`--config`), else `weir.toml` in the script's folder, else no config.
    pub fn load(script_dir: &Path, explicit: Option<&Path>) -> Result<Self, ConfigError> {
        let path = match explicit {
            Some(p) => p.to_path_buf(),
            None => {
                let p = script_dir.join(FILE_NAME);
                if !p.exists() {
                    return Ok(Config {
                        dir: script_dir.to_path_buf(),
                        ..Config::default()
                    });
                }
                p
            }
        };
        let text = std::fs::read_to_string(&path).map_err(|source| ConfigError::Read {
            path: path.clone(),
            source,
        })?;
        let file = SourceFile::new(&path, text);
        let raw: RawConfig = toml::from_str(&file.text).map_err(|e| {
            let span = e.span().unwrap_or(0..0);
            invalid(
                &file,
                span,
                e.message().trim_end().to_string(),
                help_for(e.message()),
            )
        })?;
        let dir = path.parent().map(Path::to_path_buf).unwrap_or_default();
        let mut config = Config {
            file: Some(file),
            dir,
            raw,
            secrets: BTreeMap::new(),
        };
        config.secrets = config.read_secrets()?;
        secrets::register(config.secrets.values().cloned());
        config.check()?;
        Ok(config)
    }

    pub fn path(&self) -> Option<&Path> {
        self.file.as_ref().map(|f| f.path.as_path())
    }

    /// The secrets file `secrets` names, relative to the config's folder.
    pub fn secrets_path(&self) -> Option<PathBuf> {
        self.raw
            .secrets
            .as_ref()
            .map(|rel| self.dir.join(rel.get_ref()))
    }

    pub fn name(&self) -> Option<&str> {
        self.raw.name.as_deref()
    }

    /// The instances weir.toml declares, sorted (none without instances).
    pub fn instance_names(&self) -> Vec<String> {
        self.declared().into_iter().map(str::to_string).collect()
    }

    /// The instance `requested` (`--instance`), else `default_instance`, else `default`.
    pub fn instance(&self, requested: Option<&str>) -> Result<Instance, ConfigError> {
        let name = requested
            .map(str::to_string)
            .or_else(|| {
                self.raw
                    .default_instance
                    .as_ref()
                    .map(|s| s.get_ref().clone())
            })
            .unwrap_or_else(|| "default".to_string());
        let declared = self.declared();
        if !declared.is_empty() && !declared.contains(name.as_str()) || name == ANY {
            return Err(ConfigError::UnknownInstance {
                name,
                path: self.path().map(Path::to_path_buf).unwrap_or_default(),
                known: declared.into_iter().collect::<Vec<_>>().join(", "),
            });
        }
        let merged = self.merged(&name);
        let text = |s: &Spanned<String>| self.interpolate(s);
        let id = match &merged.instance_id {
            Some(s) => text(s)?,
            None => name.clone(),
        };
        if !crate::names::is_identifier(&id) {
            let span = merged.instance_id.as_ref().map_or(0..0, |s| s.span());
            return Err(self.invalid(
                span,
                format!("instance_id `{id}` is not an identifier"),
                "use letters, digits and _: it names the instance's folder in the store",
            ));
        }
        let kind = match merged.instance_id {
            Some(_) => "instance_id",
            None => "instance name",
        };
        if let Err(message) = crate::names::check_length(kind, &id) {
            let span = merged.instance_id.as_ref().map_or(0..0, |s| s.span());
            return Err(self.invalid(
                span,
                message,
                "give the instance a shorter name, or a shorter instance_id",
            ));
        }
        let store = match merged.store.as_ref().or(self.store_url()) {
            Some(s) => Some((text(s)?, self.dir.clone())),
            None => None,
        };
        let mut attrs = merged.attrs.unwrap_or_default();
        self.interpolate_table(&mut attrs)?;
        Ok(Instance {
            name,
            id,
            attrs,
            cache_mode: merged.cache_mode.unwrap_or_default(),
            store,
            store_options: self.store_options()?,
            delta: self
                .raw
                .store
                .as_ref()
                .and_then(|s| s.delta)
                .unwrap_or(true),
            engine: self.engine(merged.engine.unwrap_or_default())?,
            hooks: self.hooks(merged.hooks.unwrap_or_default())?,
        })
    }

    /// `[hooks]` with an instance's own over it, checked.
    fn hooks(&self, instance: hooks::RawHooks) -> Result<Hooks, ConfigError> {
        let mut raw = self.raw.hooks.clone().unwrap_or_default();
        raw.merge(instance);
        let command = |s: &Option<Spanned<String>>| match s {
            None => Ok(None),
            Some(s) => hooks::command(s.get_ref()).map(Some).map_err(|message| {
                self.invalid(
                    s.span(),
                    message,
                    "e.g. on_failure = \"curl -sS --data-binary @- $WEBHOOK_URL\"",
                )
            }),
        };
        let timeout = match &raw.timeout {
            None => hooks::DEFAULT_TIMEOUT,
            Some(s) => hooks::timeout(s.get_ref())
                .map_err(|message| self.invalid(s.span(), message, "e.g. timeout = \"30s\""))?,
        };
        Ok(Hooks {
            on_success: command(&raw.on_success)?,
            on_failure: command(&raw.on_failure)?,
            timeout,
        })
    }

    /// `[engine]` with an instance's own over it, checked and interpolated.
    fn engine(&self, instance: engine::RawEngine) -> Result<EngineSettings, ConfigError> {
        let mut raw = self.raw.engine.clone().unwrap_or_default();
        raw.merge(instance);
        let memory_limit = match &raw.memory_limit {
            None => None,
            Some(s) => Some(parse_size(&self.interpolate(s)?).map_err(|message| {
                self.invalid(s.span(), message, "e.g. memory_limit = \"4GiB\"")
            })?),
        };
        let spill_dir = match &raw.spill_dir {
            None => None,
            Some(s) => Some(EngineSettings::spill_dir(&self.interpolate(s)?, &self.dir)),
        };
        let target_file_size = match &raw.target_file_size {
            None => None,
            Some(s) => Some(parse_size(&self.interpolate(s)?).map_err(|message| {
                self.invalid(s.span(), message, "e.g. target_file_size = \"256MiB\"")
            })?),
        };
        let compression = match &raw.compression {
            None => None,
            Some(s) => Some(EngineSettings::compression(&self.interpolate(s)?).map_err(
                |message| self.invalid(s.span(), message, "e.g. compression = \"lz4\""),
            )?),
        };
        let url = match &raw.url {
            None => None,
            Some(s) => Some(EngineUrl::parse(&self.interpolate(s)?).map_err(|message| {
                self.invalid(
                    s.span(),
                    message,
                    "e.g. url = \"ballista://scheduler:50050\"",
                )
            })?),
        };
        Ok(EngineSettings {
            memory_limit,
            spill_dir,
            target_file_size,
            compression,
            url,
            datafusion: self.datafusion_settings(&raw)?,
            heavy_input: None,
            stall: None,
        })
    }

    /// `[engine.datafusion]`, each setting checked against DataFusion's own.
    fn datafusion_settings(
        &self,
        raw: &engine::RawEngine,
    ) -> Result<BTreeMap<String, String>, ConfigError> {
        let mut out = BTreeMap::new();
        for (key, value) in raw.datafusion.iter().flatten() {
            let (key, value) =
                EngineSettings::datafusion(key.get_ref(), value.get_ref()).map_err(|message| {
                    self.invalid(
                        key.span().start..value.span().end,
                        message,
                        "e.g. [engine.datafusion] \"execution.parquet.pushdown_filters\" = true",
                    )
                })?;
            out.insert(key, value);
        }
        Ok(out)
    }

    /// `[store.options]`, interpolated; values of keys that hold credentials are masked in
    /// everything weir prints, like secrets.
    fn store_options(&self) -> Result<BTreeMap<String, String>, ConfigError> {
        let Some(store) = &self.raw.store else {
            return Ok(BTreeMap::new());
        };
        let mut out = BTreeMap::new();
        for (key, value) in &store.options {
            let value = self.interpolate(value)?;
            if secrets::is_credential(key) {
                secrets::register([value.clone()]);
            }
            out.insert(key.clone(), value);
        }
        Ok(out)
    }

    fn store_url(&self) -> Option<&Spanned<String>> {
        self.raw.store.as_ref().and_then(|s| s.url.as_ref())
    }

    /// Instances that can be selected (every table under `[instances]` but `__any__`).
    fn declared(&self) -> BTreeSet<&str> {
        self.raw
            .instances
            .keys()
            .map(String::as_str)
            .filter(|n| *n != ANY)
            .collect()
    }

    /// The chain of bases of `name`, root first: `__any__`, ..., `name`.
    fn chain<'a>(&'a self, name: &'a str) -> Result<Vec<&'a str>, ConfigError> {
        let mut chain = vec![name];
        let mut current = name;
        while current != ANY {
            let next = match self.raw.instances.get(current) {
                Some(i) => i.get_ref().base.as_ref(),
                None => None,
            };
            let next_name = next.map_or(ANY, |b| b.get_ref().as_str());
            if let Some(base) = next {
                if !self.raw.instances.contains_key(next_name) && next_name != ANY {
                    return Err(self.invalid(
                        base.span(),
                        format!("instance `{current}` extends `{next_name}`, which is not defined"),
                        &format!("define [instances.{next_name}] or fix the name"),
                    ));
                }
                if chain.contains(&next_name) {
                    chain.push(next_name);
                    let cycle: Vec<&str> = chain.iter().rev().copied().collect();
                    return Err(self.invalid(
                        base.span(),
                        format!("instance bases form a cycle: {}", cycle.join(" -> ")),
                        "every chain of bases must end at __any__",
                    ));
                }
            }
            chain.push(next_name);
            current = next_name;
        }
        chain.dedup();
        chain.reverse();
        Ok(chain)
    }

    /// `name` merged over its bases: scalar values of the instance win, attrs merge deeply.
    fn merged(&self, name: &str) -> RawInstance {
        let mut out = RawInstance::default();
        for link in self.chain(name).unwrap_or_default() {
            let Some(raw) = self.raw.instances.get(link) else {
                continue;
            };
            let raw = raw.get_ref().clone();
            out.instance_id = raw.instance_id.or(out.instance_id.take());
            out.store = raw.store.or(out.store.take());
            out.cache_mode = raw.cache_mode.or(out.cache_mode);
            if let Some(e) = raw.engine {
                out.engine.get_or_insert_with(Default::default).merge(e);
            }
            if let Some(h) = raw.hooks {
                out.hooks.get_or_insert_with(Default::default).merge(h);
            }
            if let Some(attrs) = raw.attrs {
                merge(out.attrs.get_or_insert_with(toml::Table::new), attrs);
            }
        }
        out
    }

    /// Every instance resolves, and no two share a folder of one store.
    fn check(&self) -> Result<(), ConfigError> {
        if let Some(any) = self.raw.instances.get(ANY)
            && let Some(id) = &any.get_ref().instance_id
        {
            return Err(self.invalid(
                id.span(),
                "`__any__` cannot set instance_id".into(),
                "every instance would share one folder; set instance_id per instance",
            ));
        }
        if let Some(d) = &self.raw.default_instance
            && !self.declared().contains(d.get_ref().as_str())
        {
            return Err(self.invalid(
                d.span(),
                format!("default_instance `{}` is not defined", d.get_ref()),
                &format!(
                    "instances: {}",
                    self.declared().into_iter().collect::<Vec<_>>().join(", ")
                ),
            ));
        }
        let mut seen: BTreeMap<(Option<String>, String), &str> = BTreeMap::new();
        for name in self.declared() {
            self.chain(name)?;
            let merged = self.merged(name);
            let id = merged
                .instance_id
                .as_ref()
                .map_or(name.to_string(), |s| s.get_ref().clone());
            let store = merged
                .store
                .or(self.store_url().cloned())
                .map(|s| s.into_inner());
            if let Some(other) = seen.insert((store, id.clone()), name) {
                let span = self.raw.instances[name].span();
                return Err(self.invalid(
                    span,
                    format!("instances `{other}` and `{name}` would share the folder `{id}` of one store"),
                    "give each instance its own instance_id or store",
                ));
            }
        }
        Ok(())
    }

    fn read_secrets(&self) -> Result<BTreeMap<String, String>, ConfigError> {
        let (Some(rel), Some(path)) = (&self.raw.secrets, self.secrets_path()) else {
            return Ok(BTreeMap::new());
        };
        let fail = |message: String| {
            self.invalid(
                rel.span(),
                message,
                "the secrets file is TOML: name = \"value\" per line, kept out of version control",
            )
        };
        let text = std::fs::read_to_string(&path)
            .map_err(|e| fail(format!("cannot read secrets file {}: {e}", path.display())))?;
        // The parser's message could quote a secret, so only its position is shown.
        let table: toml::Table = toml::from_str(&text).map_err(|e| {
            let at = e
                .span()
                .map(|s| crate::source::line_column(&text, s.start).0)
                .unwrap_or(0);
            fail(format!(
                "secrets file {} is not valid TOML (line {at})",
                path.display()
            ))
        })?;
        table
            .into_iter()
            .map(|(k, v)| match v {
                toml::Value::String(s) => Ok((k, s)),
                _ => Err(fail(format!(
                    "secret `{k}` in {} is not a string",
                    path.display()
                ))),
            })
            .collect()
    }

    fn interpolate(&self, s: &Spanned<String>) -> Result<String, ConfigError> {
        self.interpolate_str(s.get_ref(), Some(s.span()))
    }

    fn interpolate_str(
        &self,
        text: &str,
        span: Option<std::ops::Range<usize>>,
    ) -> Result<String, ConfigError> {
        let env = |name: &str| std::env::var(name).ok();
        secrets::interpolate(text, &env, &self.secrets).map_err(|missing| {
            let (needle, message, help) = match &missing {
                secrets::Missing::Env(v) => (
                    format!("${{{v}}}"),
                    format!("environment variable `{v}` is not set"),
                    format!("export {v}=... before running weir"),
                ),
                secrets::Missing::Secret(k) => (
                    format!("${{secrets.{k}}}"),
                    format!("secret `{k}` is not in the secrets file"),
                    "add it to the file named by `secrets` in weir.toml".to_string(),
                ),
                secrets::Missing::Unclosed => (
                    "${".to_string(),
                    "`${` without a closing `}`".to_string(),
                    "write ${NAME}, or $${ for a literal ${".to_string(),
                ),
            };
            let span = self
                .file
                .as_ref()
                .and_then(|f| f.text.find(&needle).map(|i| i..i + needle.len()))
                .or(span)
                .unwrap_or(0..0);
            self.invalid(span, message, &help)
        })
    }

    fn interpolate_table(&self, table: &mut toml::Table) -> Result<(), ConfigError> {
        for (_, value) in table.iter_mut() {
            self.interpolate_value(value)?;
        }
        Ok(())
    }

    fn interpolate_value(&self, value: &mut toml::Value) -> Result<(), ConfigError> {
        match value {
            toml::Value::String(s) => *s = self.interpolate_str(s, None)?,
            toml::Value::Array(items) => {
                for v in items {
                    self.interpolate_value(v)?;
                }
            }
            toml::Value::Table(t) => self.interpolate_table(t)?,
            _ => {}
        }
        Ok(())
    }

    fn invalid(&self, span: std::ops::Range<usize>, message: String, help: &str) -> ConfigError {
        match &self.file {
            Some(file) => invalid(file, span, message, help.to_string()),
            None => ConfigError::Invalid {
                message,
                location: FILE_NAME.into(),
                help: help.into(),
                src: miette::NamedSource::new(FILE_NAME, String::new()),
                span: (0, 0).into(),
            },
        }
    }
}

fn invalid(
    file: &SourceFile,
    span: std::ops::Range<usize>,
    message: String,
    help: String,
) -> ConfigError {
    let (line, column) = crate::source::line_column(&file.text, span.start);
    ConfigError::Invalid {
        message,
        location: format!("{}:{line}:{column}", file.name()),
        help,
        src: file.named(),
        span: (span.start, span.end.saturating_sub(span.start)).into(),
    }
}

fn help_for(message: &str) -> String {
    if message.contains("unknown field") {
        "known keys: name, default_instance, secrets, [store] url, delta, [store.options], [engine] memory_limit, spill_dir, target_file_size, compression, url, [engine.datafusion], [instances.NAME] base, instance_id, store, attrs, cache_mode, engine".into()
    } else if message.contains("unknown variant") {
        "cache_mode is one of normal, ignore-fresh-input, force-fresh-input, assert-no-fresh-input, force-cache-invalid".into()
    } else {
        "see docs/src/configuration.md (the book's Configuration chapter)".into()
    }
}

/// Deep merge of TOML tables: values of `over` win, tables merge key by key.
fn merge(base: &mut toml::Table, over: toml::Table) {
    for (k, v) in over {
        match (base.get_mut(&k), v) {
            (Some(toml::Value::Table(b)), toml::Value::Table(o)) => merge(b, o),
            (_, v) => {
                base.insert(k, v);
            }
        }
    }
}
