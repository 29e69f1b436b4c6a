//! Loading a pipeline: the config and the chosen instance (read first, so a bad one stops a
//! command before it writes anything), the evaluated script, and the stores it uses.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use object_store::ObjectStore;
use url::Url;

use crate::config::EngineSettings;
use crate::config::{Config, Instance};
use crate::engine::Engine;
use crate::exec::ExecError;
use crate::script::{Context, Params, Script, TaskKind};
use crate::store::{Store, remote};
use crate::{Error, Result};

/// What a command names: the script and its parameters, and where its store is.
#[derive(Debug, Clone, Default)]
pub struct Target {
    pub script: PathBuf,
    /// `--param name=value`, as typed.
    pub params: Vec<String>,
    /// `--store`: a URL or a folder relative to where the command runs.
    pub store: Option<String>,
    /// `--instance`.
    pub instance: Option<String>,
    /// `--config`; default: weir.toml next to the script.
    pub config: Option<PathBuf>,
}

/// A pipeline ready to plan: the instance, the evaluated script, its store, and the stores of
/// the instances it samples from.
pub struct Loaded {
    pub instance: Instance,
    pub script: Script,
    pub store: Store,
    pub instances: BTreeMap<String, Store>,
    /// The object stores that loads read from (`s3://...`, `https://...`), by base URL.
    pub sources: Vec<(Url, Arc<dyn ObjectStore>)>,
    /// weir.toml's `name`, else the script's file name without `.rhai`: what owns the tables
    /// this flow commits, when several flows share a store.
    pub flow_name: String,
    /// The config file (read or, when there is none, where it would be) and its secrets file:
    /// `watch` re-runs when they change.
    pub config_files: Vec<PathBuf>,
}

impl Loaded {
    /// A DataFusion engine that can read everything this pipeline reads: its store, the
    /// stores of the instances it samples from, and its remote sources; with the instance's
    /// memory limit, or `memory_limit` (`--memory-limit`) over it.
    pub fn engine(&self, memory_limit: Option<u64>) -> Result<Engine> {
        let engine = engine(&self.store, &self.instance, memory_limit)?;
        for other in self.instances.values() {
            engine.register_store(&other.url, other.viewed());
        }
        for (url, objects) in &self.sources {
            engine.register_store(url, objects.clone());
        }
        Ok(engine)
    }
}

/// The engine of every command on `instance`'s `store`: its `[engine]` settings, with
/// `memory_limit` (`--memory-limit`) over its limit.
fn engine(store: &Store, instance: &Instance, memory_limit: Option<u64>) -> Result<Engine> {
    let settings = EngineSettings {
        memory_limit: memory_limit.or(instance.engine.memory_limit),
        heavy_input: number("WEIR_HEAVY_INPUT_MB")?.map(|mb| (mb * 1048576.0) as u64),
        // More seconds than a Duration holds is as good as never.
        stall: number("WEIR_STALL_SECS")?
            .map(|s| std::time::Duration::try_from_secs_f64(s).unwrap_or(std::time::Duration::MAX)),
        ..instance.engine.clone()
    };
    Ok(Engine::new(store, &settings).map_err(ExecError::Engine)?)
}

/// A number from environment variable `name`, when it is set.
fn number(name: &str) -> Result<Option<f64>> {
    let Ok(text) = std::env::var(name) else {
        return Ok(None);
    };
    match text.trim().parse::<f64>() {
        Ok(n) if n >= 0.0 && n.is_finite() => Ok(Some(n)),
        _ => Err(Error::usage(
            format!("{name}=`{text}` is not a number"),
            format!("e.g. {name}=64"),
        )),
    }
}

/// A time limit from environment variable `name`, in seconds (0: no limit); `None` when it is
/// not set (`default` applies).
fn seconds(name: &str, default: std::time::Duration) -> Result<Option<std::time::Duration>> {
    let Ok(text) = std::env::var(name) else {
        return Ok(None);
    };
    let secs = text.trim().parse::<f64>().ok();
    match secs.and_then(|s| std::time::Duration::try_from_secs_f64(s).ok()) {
        Some(limit) => Ok(Some(limit)),
        None => Err(Error::usage(
            format!("{name}=`{text}` is not a number of seconds"),
            format!(
                "e.g. {name}=120; 0 turns the limit off (default {} s)",
                default.as_secs()
            ),
        )),
    }
}

impl Target {
    /// The folder of the script, absolute: where its default store, config and relative paths live.
    pub fn dir(&self) -> PathBuf {
        let path = std::path::absolute(&self.script).unwrap_or_else(|_| self.script.clone());
        path.parent().map(Path::to_path_buf).unwrap_or_default()
    }

    /// The config file: `--config`, else weir.toml next to the script (which may not exist).
    pub fn config_path(&self) -> PathBuf {
        let path = match &self.config {
            Some(p) => p.clone(),
            None => self.dir().join(crate::config::FILE_NAME),
        };
        std::path::absolute(&path).unwrap_or(path)
    }

    /// Read the config, evaluate the script for the chosen instance and open its store.
    pub fn load(&self) -> Result<Loaded> {
        self.load_with(&[])
    }

    /// `load`, with the entries typed into the REPL evaluated after the script.
    pub fn load_with(&self, extra: &[String]) -> Result<Loaded> {
        let (config, instance) = self.instance(&self.dir())?;
        let params = Params::parse(&self.params)
            .map_err(|m| Error::usage(m, "e.g. --param day=2024-01-31"))?;
        let context = Context {
            params,
            instance: instance.name.clone(),
            attrs: instance.attrs.clone(),
            timeout: seconds("WEIR_SCRIPT_TIMEOUT", crate::script::DEFAULT_TIMEOUT)?,
            task_timeout: seconds("WEIR_TASK_TIMEOUT", crate::script::DEFAULT_TASK_TIMEOUT)?,
        };
        let script = crate::script::evaluate_with(&self.script, context, extra)?;
        let instances = self.sampled_instances(&config, &instance, &script)?;
        let store = self.open(&script.dir, &instance)?;
        let sources = sources(&script, &store, &instance)?;
        let stem = self
            .script
            .file_stem()
            .map(|s| s.to_string_lossy().to_string());
        let flow_name = config
            .name()
            .map(str::to_string)
            .or(stem)
            .unwrap_or_else(|| "pipeline".to_string());
        let config_files = std::iter::once(self.config_path())
            .chain(config.secrets_path())
            .collect();
        tracing::debug!(
            script = %script.source.path.display(),
            tasks = script.tasks.len(),
            instance = %instance.name,
            store = %store.display_url(),
            "loaded"
        );
        Ok(Loaded {
            instance,
            script,
            store,
            instances,
            sources,
            flow_name,
            config_files,
        })
    }

    /// The instances the config declares, without evaluating the script.
    pub fn instance_names(&self) -> Result<Vec<String>> {
        Ok(Config::load(&self.dir(), self.config.as_deref())?.instance_names())
    }

    /// The instance's store, without evaluating the script: for commands that only read it.
    pub fn store(&self) -> Result<Store> {
        let dir = self.dir();
        let (_, instance) = self.instance(&dir)?;
        self.open(&dir, &instance)
    }

    /// The instance's store and the engine to read it with, without evaluating the script.
    pub fn engine(&self, memory_limit: Option<u64>) -> Result<(Store, Engine)> {
        let dir = self.dir();
        let (_, instance) = self.instance(&dir)?;
        let store = self.open(&dir, &instance)?;
        let engine = engine(&store, &instance, memory_limit)?;
        Ok((store, engine))
    }

    fn instance(&self, script_dir: &Path) -> Result<(Config, Instance)> {
        let config = Config::load(script_dir, self.config.as_deref())?;
        let instance = config.instance(self.instance.as_deref())?;
        if !crate::names::is_identifier(&instance.name) {
            return Err(Error::usage(
                format!("instance name `{}` is not an identifier", instance.name),
                "use letters, digits and _",
            ));
        }
        crate::names::check_length("instance name", &instance.name)
            .map_err(|message| Error::usage(message, "use a shorter instance name"))?;
        Ok((config, instance))
    }

    /// `--store` (relative to where the command runs, like any path argument), else the
    /// instance's store from the config (relative to the config), else `.weir` next to the script.
    fn open(&self, script_dir: &Path, instance: &Instance) -> Result<Store> {
        let (spec, base) = match (&self.store, &instance.store) {
            (Some(spec), _) => (spec.clone(), PathBuf::from(".")),
            (None, Some((spec, base))) => (spec.clone(), base.clone()),
            (None, None) => (".weir".to_string(), script_dir.to_path_buf()),
        };
        let mut store = Store::open(&spec, &base, &instance.id, &instance.store_options)?;
        store.unlocked = std::env::var_os("WEIR_UNLOCKED").is_some_and(|v| v == "1");
        store.delta = instance.delta;
        Ok(store)
    }

    /// The stores of the instances the script's samples read from.
    fn sampled_instances(
        &self,
        config: &Config,
        instance: &Instance,
        script: &Script,
    ) -> Result<BTreeMap<String, Store>> {
        let mut instances = BTreeMap::new();
        for task in &script.tasks {
            let TaskKind::Sample(spec) = &task.kind else {
                continue;
            };
            if spec.instance == instance.name {
                return Err(Error::usage(
                    format!(
                        "{} samples from instance `{}`, the instance being run",
                        task.id(),
                        spec.instance
                    ),
                    "a sample reads another instance, e.g. `full` for mini; make the sample conditional on `instance` or attrs",
                ));
            }
            if !instances.contains_key(&spec.instance) {
                let source = config.instance(Some(&spec.instance))?;
                instances.insert(spec.instance.clone(), self.open(&script.dir, &source)?);
            }
        }
        Ok(instances)
    }
}

/// An object store for every remote location the script loads from (one per bucket or host),
/// built now so that a location no store can serve stops the command before anything runs.
/// A source on the store's own scheme is configured with the store's options too. A web
/// host's store reads the URLs with a query (signed URLs) as they are written.
fn sources(
    script: &Script,
    store: &Store,
    instance: &Instance,
) -> Result<Vec<(Url, Arc<dyn ObjectStore>)>> {
    let mut bases: BTreeMap<Url, Vec<Url>> = BTreeMap::new();
    for task in &script.tasks {
        let TaskKind::Load(spec) = &task.kind else {
            continue;
        };
        let Some(url) = spec.url() else {
            continue;
        };
        let base = remote::base_url(&url)?;
        if url.scheme() == "file" || base == store.url {
            continue;
        }
        bases.entry(base).or_default().push(url);
    }
    let mut out: Vec<(Url, Arc<dyn ObjectStore>)> = Vec::new();
    for (base, urls) in bases {
        let first = &urls[0];
        let built = match remote::Scheme::of(first) {
            Some(remote::Scheme::Http) => remote::http(first, &queried(&urls)?)?,
            _ => {
                let options = match first.scheme() == store.url.scheme() {
                    true => instance.store_options.clone(),
                    false => BTreeMap::new(),
                };
                remote::build(first, &options)?
            }
        };
        out.push((base, built));
    }
    Ok(out)
}

/// The URLs of `urls` with a query; one file asked for with two queries is refused, since a
/// read names the file by its path alone.
fn queried(urls: &[Url]) -> Result<Vec<Url>> {
    let mut by_path: BTreeMap<&str, &Url> = BTreeMap::new();
    for url in urls.iter().filter(|u| u.query().is_some()) {
        match by_path.insert(url.path(), url) {
            Some(other) if other.query() != url.query() => {
                return Err(Error::usage(
                    format!(
                        "two loads read {} with different queries: {other} and {url}",
                        url.path()
                    ),
                    "load each file with one URL",
                ));
            }
            _ => {}
        }
    }
    Ok(by_path.into_values().cloned().collect())
}
