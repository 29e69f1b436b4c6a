//! The Rhai engine weir evaluates scripts with: resource limits (and the evaluation's own, in
//! `limits`), no `eval`, modules confined to the project folder, and the weir API registered.

use std::collections::BTreeSet;
use std::path::{Component, Path, PathBuf};
use std::sync::{Arc, Mutex};

use rhai::module_resolvers::FileModuleResolver;
use rhai::{Engine, EvalAltResult, Module, ModuleResolver, Position, Shared};

use super::api;
use super::limits::Evaluation;
use super::params::Params;

/// The project modules a script imported, as files (`watch` re-runs when they change).
pub type Imports = Arc<Mutex<BTreeSet<PathBuf>>>;

pub fn build(
    dir: &Path,
    recorder: Arc<Mutex<api::recorder::Recorder>>,
    params: Params,
    evaluation: Evaluation,
    imports: Imports,
) -> Engine {
    let mut engine = Engine::new();
    // Limits keep a runaway script from hanging or exhausting memory; they are generous for
    // declarations and for the small eager work a task function does.
    engine.set_max_operations(200_000_000);
    engine.set_max_call_levels(64);
    engine.set_max_expr_depths(128, 64);
    // Sizes are checked by `limits`: Rhai's own checks make growing an array quadratic.
    evaluation.install(&mut engine);
    engine.set_max_modules(256);
    engine.disable_symbol("eval");
    engine.set_module_resolver(ProjectModules::new(dir, imports));

    api::register(&mut engine, recorder, params, dir);
    engine
}

/// `path` joined to the project folder, refused when it is absolute, climbs out with `..`, or
/// leads out through a symbolic link: a script may only pull code from its own project, so
/// what it runs is what is checked in.
pub fn project_path(root: &Path, path: &str) -> Result<PathBuf, String> {
    let escapes = Path::new(path)
        .components()
        .any(|c| !matches!(c, Component::Normal(_) | Component::CurDir));
    if escapes {
        return Err(format!(
            "`{path}` is outside the project {}: paths are relative to the script's folder and may not use `..` or be absolute",
            root.display()
        ));
    }
    let joined = root.join(path);
    confined(root, path, &joined)?;
    Ok(joined)
}

/// `file`, spelled inside `root`, is really there: its real path (every symbolic link on the
/// way resolved) is under the real project folder. A link within the project is fine; a file
/// that does not exist is left to the read, which says so.
fn confined(root: &Path, path: &str, file: &Path) -> Result<(), String> {
    let Ok(real) = file.canonicalize() else {
        return Ok(());
    };
    let real_root = root.canonicalize().unwrap_or_else(|_| root.to_path_buf());
    if real.starts_with(&real_root) {
        return Ok(());
    }
    Err(format!(
        "`{path}` is outside the project {}: through a symbolic link it is {}; link only to files inside the project",
        root.display(),
        real.display()
    ))
}

/// Modules bundled with weir, importable by name from any script.
const BUNDLED: &[(&str, &str)] = &[("weir/sample", include_str!("../../stdlib/weir/sample.rhai"))];

/// Resolves `import "weir/..."` to a bundled module and `import "x/y"` to
/// `<project>/x/y.rhai`, refusing paths that leave the project.
struct ProjectModules {
    root: PathBuf,
    files: FileModuleResolver,
    imported: Imports,
}

impl ProjectModules {
    fn new(root: &Path, imported: Imports) -> Self {
        let mut files = FileModuleResolver::new_with_path(root);
        files.enable_cache(false);
        Self {
            root: root.to_path_buf(),
            files,
            imported,
        }
    }
}

impl ModuleResolver for ProjectModules {
    fn resolve(
        &self,
        engine: &Engine,
        source: Option<&str>,
        path: &str,
        pos: Position,
    ) -> Result<Shared<Module>, Box<EvalAltResult>> {
        if let Some((_, text)) = BUNDLED.iter().find(|(name, _)| *name == path) {
            let mut ast = engine.compile(*text)?;
            ast.set_source(path);
            let module = Module::eval_ast_as_new(rhai::Scope::new(), &ast, engine)?;
            return Ok(module.into());
        }
        if path.starts_with("weir/") {
            let known: Vec<&str> = BUNDLED.iter().map(|(n, _)| *n).collect();
            return Err(EvalAltResult::ErrorRuntime(
                format!(
                    "weir bundles no module `{path}` (it has: {})",
                    known.join(", ")
                )
                .into(),
                pos,
            )
            .into());
        }
        // The file the resolver will read is `path` with the `.rhai` extension.
        let file = self.files.get_file_path(path, None);
        if let Err(msg) =
            project_path(&self.root, path).and_then(|_| confined(&self.root, path, &file))
        {
            return Err(EvalAltResult::ErrorRuntime(format!("module {msg}").into(), pos).into());
        }
        self.imported
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(file);
        self.files.resolve(engine, source, path, pos)
    }
}
