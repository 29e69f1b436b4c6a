//! `weir repl`: the loaded pipeline at a prompt. Commands are Rhai calls (`run("prep.x")`,
//! `show(...)`, `sql(...)`, ...) whose values persist in the session's scope (`values`);
//! entries that declare tasks or define functions are added to the session's code, evaluated
//! after the script, and `:save` writes them into it (`save`). Tasks whose key differs from
//! the script's are tainted: they build into the store but their stages are not committed
//! until `promote`. Every run goes through `session::run`.

mod commands;
mod input;
mod save;
mod values;

use std::collections::BTreeSet;
use std::sync::{Arc, Mutex};

use tokio_util::sync::CancellationToken;

use crate::report::{note, out, plural, print_error};
use crate::session::{Loaded, RunOptions, Target, plan_all};
use crate::{Error, Result};

pub use commands::COMMANDS;

pub struct Repl {
    /// The script and store; loaded again with the session's code after the script.
    target: Target,
    /// Entries typed into the session that declare or define, evaluated after the script,
    /// each a unit of its own; only those that loaded are kept.
    entries: Vec<String>,
    current: Loaded,
    /// Tasks whose key differs from the script's alone.
    tainted: BTreeSet<String>,
    opts: RunOptions,
    handle: tokio::runtime::Handle,
    /// The token of what runs now, for Ctrl-C.
    running: Arc<Mutex<Option<CancellationToken>>>,
    names: input::Names,
    /// The context Table values at the prompt are read in, made on first use and dropped
    /// when what is committed or the session's code changes.
    cx: Option<values::SessionCx>,
    /// Builds of tasks run with inputs given at the prompt, by task: never committed unless
    /// promoted.
    given: std::collections::BTreeMap<String, Vec<crate::store::TableBuild>>,
    /// `as_of(run)`: reads see the tables as committed at the end of that run.
    as_of: Option<String>,
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
        entries: Vec::new(),
        current,
        tainted: BTreeSet::new(),
        opts,
        handle: tokio::runtime::Handle::current(),
        running,
        names: input::Names::default(),
        cx: None,
        given: Default::default(),
        as_of: None,
    };
    tokio::task::spawn_blocking(move || prompt_loop(repl))
        .await
        .map_err(|e| Error::usage(format!("the REPL stopped: {e}"), "please report this"))
}

fn prompt_loop(mut repl: Repl) {
    repl.refresh();
    let mut source = input::Source::new(repl.names.clone());
    out(&format!(
        "weir repl: {}; help() lists the commands, :quit leaves",
        plural(repl.current_tasks() as u64, "task")
    ));
    let (dir, params) = (
        repl.current.script.dir.clone(),
        repl.current.script.params.clone(),
    );
    let repl = Arc::new(Mutex::new(repl));
    let engine = commands::engine(repl.clone(), &dir, params);
    let mut scope = rhai::Scope::new();
    let mut warned = false;
    loop {
        let text = match source.read() {
            input::Entry::Text(t) => t,
            input::Entry::Interrupted => continue,
            input::Entry::Eof => {
                lock(&repl).warn_unsaved();
                return;
            }
        };
        let entry = text.trim();
        match entry {
            "" => {}
            ":quit" | ":q" | ":exit" => {
                // On a terminal the first `:quit` with unsaved code only warns.
                if lock(&repl).warn_unsaved() && source.is_terminal() && !warned {
                    warned = true;
                    continue;
                }
                return;
            }
            ":quit!" | ":q!" => return,
            ":help" => commands::help(),
            ":reload" => lock(&repl).reload(),
            ":reset" => lock(&repl).reset(),
            ":save" => save::save(&mut lock(&repl), &mut source, false),
            ":save!" => save::save(&mut lock(&repl), &mut source, true),
            _ if is_definition(entry, &scope) => lock(&repl).define(entry),
            _ => values::eval(&repl, &engine, &mut scope, entry),
        }
    }
}

fn lock(repl: &Arc<Mutex<Repl>>) -> std::sync::MutexGuard<'_, Repl> {
    repl.lock().unwrap_or_else(|p| p.into_inner())
}

/// Code that declares tasks or defines functions extends the session; the rest is a command,
/// whose values stay in the session's scope. A declaration is a call like `prep.sql(` on a
/// name that is not a value of the session (`t.sql("... {self}")` on a Table is a command).
fn is_definition(entry: &str, scope: &rhai::Scope) -> bool {
    const DECLARE: &[&str] = &[".sql(", ".sql_file(", ".load(", ".materialize(", ".sample("];
    if entry.starts_with("fn ")
        || entry.starts_with("private fn ")
        || entry.starts_with("import ")
        || entry.contains("stage(")
        || entry.contains("\nfn ")
    {
        return true;
    }
    DECLARE.iter().any(|d| {
        entry.match_indices(d).any(|(at, _)| {
            let before = &entry[..at];
            let start = before
                .rfind(|c: char| !(c.is_alphanumeric() || c == '_'))
                .map_or(0, |i| i + 1);
            let receiver = &before[start..];
            !receiver.is_empty()
                && !receiver.starts_with(|c: char| c.is_ascii_digit())
                && !scope.contains(receiver)
        })
    })
}

/// What completion offers: the REPL's functions as they are called, and task and table names.
pub(crate) fn completion_names(tasks: &[crate::script::TaskDecl]) -> Vec<String> {
    let mut names: Vec<String> = COMMANDS.iter().map(|c| format!("{c}(")).collect();
    for t in tasks {
        names.push(t.id().to_string());
        names.extend(t.outputs.iter().map(|o| format!("{}.{o}", t.stage)));
    }
    names.sort();
    names.dedup();
    names
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

    /// Evaluate the script with `entries`; on success they become the session's code.
    fn load_with(&mut self, entries: Vec<String>) -> Result<()> {
        let loaded = self.target.load_with(&entries)?;
        // Problems that show only in the DAG (SQL, unknown tables, cycles) reject it too.
        crate::flow::Flow::build(&loaded.script)?;
        self.current = loaded;
        self.entries = entries;
        self.cx = None;
        self.refresh();
        Ok(())
    }

    fn define(&mut self, entry: &str) {
        let mut entries = self.entries.clone();
        entries.push(entry.to_string());
        let before = self.tainted.clone();
        match self.load_with(entries) {
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
        match self.load_with(self.entries.clone()) {
            Ok(()) => out(&format!(
                "reloaded: {}",
                plural(self.current_tasks() as u64, "task")
            )),
            Err(e) => print_error(e),
        }
    }

    fn reset(&mut self) {
        match self.load_with(Vec::new()) {
            Ok(()) => out("session code dropped: the script alone"),
            Err(e) => print_error(e),
        }
    }

    /// Say so when the session has code the script does not: it is lost on leaving unless
    /// `:save` writes it into the script. Whether it warned.
    fn warn_unsaved(&self) -> bool {
        if self.entries.is_empty() {
            return false;
        }
        let n = self.entries.len();
        let (what, are) = if n == 1 {
            ("entry", "is")
        } else {
            ("entries", "are")
        };
        note(&format!(
            "warning: {n} {what} of this session's code {are} not in {} (a normal run uses the script's version): :save writes them there",
            self.target.script.display()
        ));
        true
    }

    /// Recompute which tasks are tainted and the names offered for completion.
    fn refresh(&mut self) {
        let names = completion_names(&self.current.script.tasks);
        *self.names.0.lock().unwrap_or_else(|p| p.into_inner()) = names;
        self.tainted = if self.entries.is_empty() {
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
