//! `weir repl`: the loaded pipeline at a prompt. Commands are Rhai calls (`run("prep.x")`,
//! `show(...)`, `sql(...)`, ...); anything else that declares tasks or defines functions is
//! added to the session's code, evaluated after the script. Tasks whose key differs from the
//! script's are tainted: they build into the store but their stages are not committed until
//! `promote`. Every run goes through `session::run`.

mod commands;
mod input;

use std::collections::BTreeSet;
use std::sync::{Arc, Mutex};

use tokio_util::sync::CancellationToken;

use crate::report::{note, out, print_error};
use crate::session::{Loaded, RunOptions, Target, plan_all};
use crate::{Error, Result};

pub use commands::COMMANDS;

pub struct Repl {
    /// The script and store; loaded again with the session's code after the script.
    target: Target,
    /// Code typed into the session, evaluated after the script.
    extra: String,
    current: Loaded,
    /// Tasks whose key differs from the script's alone.
    tainted: BTreeSet<String>,
    opts: RunOptions,
    handle: tokio::runtime::Handle,
    /// The token of what runs now, for Ctrl-C.
    running: Arc<Mutex<Option<CancellationToken>>>,
    names: input::Names,
}

/// Run the REPL until `:quit` or end of input.
pub async fn repl(target: Target, opts: RunOptions) -> Result<()> {
    let current = target.load()?;
    let running: Arc<Mutex<Option<CancellationToken>>> = Arc::default();
    let on_ctrl_c = running.clone();
    tokio::spawn(async move {
        while tokio::signal::ctrl_c().await.is_ok() {
            let token = on_ctrl_c.lock().unwrap_or_else(|p| p.into_inner()).take();
            if let Some(t) = token {
                t.cancel();
            }
        }
    });
    let repl = Repl {
        target,
        extra: String::new(),
        current,
        tainted: BTreeSet::new(),
        opts,
        handle: tokio::runtime::Handle::current(),
        running,
        names: input::Names::default(),
    };
    tokio::task::spawn_blocking(move || prompt_loop(repl))
        .await
        .map_err(|e| Error::usage(format!("the REPL stopped: {e}"), "please report this"))
}

fn prompt_loop(mut repl: Repl) {
    repl.refresh();
    let mut source = input::Source::new(repl.names.clone());
    out(&format!(
        "weir repl: {} tasks; help() lists the commands, :quit leaves",
        repl.current_tasks()
    ));
    let repl = Arc::new(Mutex::new(repl));
    let engine = commands::engine(repl.clone());
    let mut scope = rhai::Scope::new();
    loop {
        let text = match source.read() {
            input::Entry::Text(t) => t,
            input::Entry::Interrupted => continue,
            input::Entry::Eof => return,
        };
        let entry = text.trim();
        match entry {
            "" => {}
            ":quit" | ":q" | ":exit" => return,
            ":help" => commands::help(),
            ":reload" => lock(&repl).reload(),
            ":reset" => lock(&repl).reset(),
            _ if is_definition(entry) => lock(&repl).define(entry),
            _ => match engine.eval_with_scope::<rhai::Dynamic>(&mut scope, entry) {
                Ok(v) if v.is_unit() => {}
                Ok(v) => out(&v.to_string()),
                Err(e) => note(&format!("error: {}", crate::script::runtime_message(&e))),
            },
        }
    }
}

fn lock(repl: &Arc<Mutex<Repl>>) -> std::sync::MutexGuard<'_, Repl> {
    repl.lock().unwrap_or_else(|p| p.into_inner())
}

/// Code that declares tasks or defines functions extends the session; the rest is a command.
fn is_definition(entry: &str) -> bool {
    const DECLARE: &[&str] = &[".sql(", ".sql_file(", ".load(", ".materialize(", ".sample("];
    entry.starts_with("fn ")
        || entry.starts_with("let ")
        || entry.starts_with("import ")
        || DECLARE.iter().any(|d| entry.contains(d))
}

impl Repl {
    fn current_tasks(&self) -> usize {
        self.current.script.tasks.len()
    }

    /// Run `fut` so that Ctrl-C cancels it (through `cancel`) rather than the REPL.
    fn block<T>(&self, fut: impl FnOnce(CancellationToken) -> T) -> T {
        let token = CancellationToken::new();
        *self.running.lock().unwrap_or_else(|p| p.into_inner()) = Some(token.clone());
        let out = fut(token);
        self.running
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .take();
        out
    }

    /// Evaluate the script with `extra`; on success it becomes the session's code.
    fn load_with(&mut self, extra: String) -> Result<()> {
        let loaded = self.target.load_with(&extra)?;
        // Problems that show only in the DAG (SQL, unknown tables, cycles) reject it too.
        crate::flow::Flow::build(&loaded.script)?;
        self.current = loaded;
        self.extra = extra;
        self.refresh();
        Ok(())
    }

    fn define(&mut self, entry: &str) {
        let extra = format!("{}\n{entry}", self.extra);
        let before = self.tainted.clone();
        match self.load_with(extra) {
            Ok(()) => {
                let new: Vec<&String> = self.tainted.difference(&before).collect();
                if new.is_empty() {
                    out("ok");
                } else {
                    let list: Vec<&str> = new.iter().map(|s| s.as_str()).collect();
                    out(&format!(
                        "tainted: {} (run them to look; promote to commit)",
                        list.join(", ")
                    ));
                }
            }
            Err(e) => print_error(e),
        }
    }

    fn reload(&mut self) {
        match self.load_with(self.extra.clone()) {
            Ok(()) => out(&format!("reloaded: {} tasks", self.current_tasks())),
            Err(e) => print_error(e),
        }
    }

    fn reset(&mut self) {
        match self.load_with(String::new()) {
            Ok(()) => out("session code dropped: the script alone"),
            Err(e) => print_error(e),
        }
    }

    /// Recompute which tasks are tainted and the names offered for completion.
    fn refresh(&mut self) {
        let mut names: Vec<String> = COMMANDS.iter().map(|c| format!("{c}(")).collect();
        for t in &self.current.script.tasks {
            names.push(t.id().to_string());
            names.extend(t.outputs.iter().map(|o| format!("{}.{o}", t.stage)));
        }
        names.sort();
        names.dedup();
        *self.names.0.lock().unwrap_or_else(|p| p.into_inner()) = names;
        self.tainted = if self.extra.is_empty() {
            BTreeSet::new()
        } else {
            match self.handle.block_on(self.taint_against_script()) {
                Ok(t) => t,
                Err(e) => {
                    print_error(e);
                    BTreeSet::new()
                }
            }
        };
    }

    async fn taint_against_script(&self) -> Result<BTreeSet<String>> {
        let keys = |planned: crate::session::Planned| {
            planned
                .flow
                .tasks
                .iter()
                .zip(&planned.plan.steps)
                .map(|(t, s)| (t.id.to_string(), s.key.clone()))
                .collect::<std::collections::BTreeMap<_, _>>()
        };
        let base = keys(plan_all(&self.target.load()?, None).await?);
        let current = keys(plan_all(&self.current, None).await?);
        Ok(current
            .into_iter()
            .filter(|(id, key)| base.get(id) != Some(key))
            .map(|(id, _)| id)
            .collect())
    }

    /// Stages holding a tainted task: runs in the session do not commit them.
    fn held_stages(&self) -> BTreeSet<String> {
        self.current
            .script
            .tasks
            .iter()
            .filter(|t| self.tainted.contains(&t.id().to_string()))
            .map(|t| t.stage.clone())
            .collect()
    }
}
