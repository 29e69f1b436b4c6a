//! `weir cache list` and `weir cache gc`: what the store holds for an instance, and deleting
//! the builds nothing needs. Builds are content-addressed and never overwritten, so every code
//! change leaves the previous outputs behind (that is what makes going back instant); gc is
//! how a user takes the space back.

use std::time::Duration;

use clap::{Args, Subcommand};

use super::{ScriptArgs, StoreArgs, target};
use crate::Result;
use crate::report::{Printer, Verbosity, print_cache_list, print_gc_deleting, print_gc_summary};
use crate::session::{GcOptions, gc, inventory};

#[derive(Debug, Args)]
pub struct CacheArgs {
    #[command(subcommand)]
    pub command: CacheCommand,
}

#[derive(Debug, Subcommand)]
pub enum CacheCommand {
    /// Every stored build: committed, current (what a run would reuse), old or incomplete.
    List(ListArgs),
    /// Delete the builds neither committed nor current (and unfinished ones).
    Gc(GcArgs),
}

#[derive(Debug, Args)]
pub struct ListArgs {
    #[command(flatten)]
    pub script: ScriptArgs,
    #[command(flatten)]
    pub store: StoreArgs,
}

#[derive(Debug, Args)]
pub struct GcArgs {
    #[command(flatten)]
    pub script: ScriptArgs,
    #[command(flatten)]
    pub store: StoreArgs,
    /// Keep old builds younger than this (`30m`, `12h`, `7d`): going back to recent code
    /// then still revives them.
    #[arg(long, value_name = "AGE", value_parser = parse_age)]
    pub older_than: Option<Duration>,
    /// Keep the builds the last N runs committed, so that `--as-of` and `weir rollback` can go
    /// back that far (0: only what is committed now).
    #[arg(long, value_name = "N", default_value_t = crate::session::KEEP_RUNS)]
    pub keep_runs: usize,
    /// Say what would be deleted, delete nothing.
    #[arg(long)]
    pub dry_run: bool,
    /// Seconds to wait for a run of the same instance to finish.
    #[arg(long, default_value_t = 600)]
    pub lock_timeout: u64,
}

pub async fn cache(args: CacheArgs) -> Result<()> {
    match args.command {
        CacheCommand::List(a) => {
            let loaded = target(&a.script, &a.store).load()?;
            print_cache_list(&inventory(&loaded, crate::session::KEEP_RUNS).await?)?;
        }
        CacheCommand::Gc(a) => {
            let loaded = target(&a.script, &a.store).load()?;
            let opts = GcOptions {
                older_than: a.older_than,
                keep_runs: a.keep_runs,
                dry_run: a.dry_run,
                lock_timeout: Duration::from_secs(a.lock_timeout),
            };
            let printer = Printer::new("gc", Verbosity::Normal);
            let collected = gc(
                &loaded,
                &opts,
                |h| printer.waiting_for_lock(h),
                |b| print_gc_deleting(b, a.dry_run),
            )
            .await?;
            print_gc_summary(
                &collected.deleted,
                collected.kept,
                &collected.leftovers,
                (a.dry_run, a.older_than.is_some()),
            )?;
        }
    }
    Ok(())
}

/// `30s`, `30m`, `12h`, `7d`, `2weeks` (humantime's reading).
fn parse_age(text: &str) -> std::result::Result<Duration, String> {
    humantime::parse_duration(text.trim())
        .map_err(|_| format!("`{}` is not an age like 30m, 12h or 7d", text.trim()))
}
