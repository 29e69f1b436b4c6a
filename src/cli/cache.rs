//! `weir cache list` and `weir cache gc`: what the store holds for an instance, and deleting
//! the builds nothing needs. Builds are content-addressed and never overwritten, so every code
//! change leaves the previous outputs behind (that is what makes going back instant); gc is
//! how a user takes the space back.

use std::collections::BTreeSet;
use std::time::Duration;

use clap::{Args, Subcommand};

use super::{ScriptArgs, StoreArgs, load};
use crate::report::human_bytes;
use crate::session::plan_all;
use crate::store::inventory::{Standing, StoredBuild, standing};
use crate::{Error, Result};

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
    /// Say what would be deleted, delete nothing.
    #[arg(long)]
    pub dry_run: bool,
    /// Seconds to wait for a run of the same instance to finish.
    #[arg(long, default_value_t = 600)]
    pub lock_timeout: u64,
}

pub async fn cache(args: CacheArgs) -> Result<()> {
    match args.command {
        CacheCommand::List(a) => list(a).await,
        CacheCommand::Gc(a) => gc(a).await,
    }
}

/// Each build with how it stands, from the committed manifests and the script's plan.
async fn inventory(loaded: &crate::session::Loaded) -> Result<Vec<(StoredBuild, Standing)>> {
    let (_, plan) = plan_all(loaded).await?;
    let current: BTreeSet<String> = plan.steps.iter().map(|s| s.key.0.clone()).collect();
    // Every committed manifest, not only the plan's: a stage the script no longer declares
    // is still committed, and readers still read it.
    let committed: BTreeSet<String> = loaded
        .store
        .read_manifests()
        .await?
        .values()
        .flat_map(|m| m.tables.values().map(|b| b.key.clone()))
        .collect();
    let builds = loaded.store.stored_builds().await?;
    let rated = builds
        .into_iter()
        .map(|b| {
            let s = standing(&b, &committed, &current);
            (b, s)
        })
        .collect();
    Ok(rated)
}

async fn list(args: ListArgs) -> Result<()> {
    let loaded = load(&args.script, &args.store)?;
    let builds = inventory(&loaded).await?;
    let width = builds
        .iter()
        .map(|(b, _)| b.stage.len() + b.table.len() + 1)
        .max()
        .unwrap_or(0);
    let now = chrono::Utc::now();
    for (b, s) in &builds {
        println!(
            "{:<width$}  {}  {:<10}  {:>9}  {}",
            format!("{}.{}", b.stage, b.table),
            short(&b.key),
            s.label(),
            human_bytes(b.bytes),
            age(now - b.modified),
        );
    }
    for s in [
        Standing::Committed,
        Standing::Current,
        Standing::Old,
        Standing::Incomplete,
    ] {
        let (n, bytes) = builds
            .iter()
            .filter(|(_, st)| *st == s)
            .fold((0, 0), |(n, bytes), (b, _)| (n + 1, bytes + b.bytes));
        if n > 0 {
            println!("{}: {n} builds, {}", s.label(), human_bytes(bytes));
        }
    }
    if builds.is_empty() {
        println!("nothing is stored for this instance yet");
    }
    Ok(())
}

async fn gc(args: GcArgs) -> Result<()> {
    let loaded = load(&args.script, &args.store)?;
    let store = &loaded.store;
    // Under the lock, from looking to deleting: a run must not commit or write a build that
    // this has already judged old.
    let lock = super::command_lock(store, "gc", args.lock_timeout).await?;
    let builds = match inventory(&loaded).await {
        Ok(b) => b,
        Err(e) => {
            lock.release().await?;
            return Err(e);
        }
    };
    let now = chrono::Utc::now();
    let doomed: Vec<&StoredBuild> = builds
        .iter()
        .filter(|(b, s)| match s {
            Standing::Committed | Standing::Current => false,
            Standing::Incomplete => true,
            Standing::Old => args
                .older_than
                .is_none_or(|keep| (now - b.modified).to_std().unwrap_or_default() >= keep),
        })
        .map(|(b, _)| b)
        .collect();
    let verb = if args.dry_run {
        "would delete"
    } else {
        "delete"
    };
    let mut freed = 0;
    let mut result = Ok(());
    for b in &doomed {
        println!(
            "{verb}  {}.{}  {}  {}",
            b.stage,
            b.table,
            short(&b.key),
            human_bytes(b.bytes)
        );
        if !args.dry_run
            && let Err(e) = store.delete_prefix(&b.prefix).await
        {
            result = Err(Error::from(e));
            break;
        }
        freed += b.bytes;
    }
    lock.release().await?;
    result?;
    let kept = builds.len() - doomed.len();
    let done = if args.dry_run { "would free" } else { "freed" };
    println!(
        "{done} {} in {} builds; kept {kept} (committed, current{})",
        human_bytes(freed),
        doomed.len(),
        if args.older_than.is_some() {
            ", recent"
        } else {
            ""
        }
    );
    Ok(())
}

fn short(key: &str) -> &str {
    &key[..key.len().min(12)]
}

fn age(d: chrono::TimeDelta) -> String {
    let s = d.num_seconds().max(0);
    match s {
        0..60 => format!("{s} s ago"),
        60..3600 => format!("{} min ago", s / 60),
        3600..86400 => format!("{} h ago", s / 3600),
        _ => format!("{} d ago", s / 86400),
    }
}

/// `30s`, `30m`, `12h`, `7d`.
fn parse_age(text: &str) -> std::result::Result<Duration, String> {
    let text = text.trim();
    let split = text
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(text.len());
    let (n, unit) = text.split_at(split);
    let n: u64 = n
        .parse()
        .map_err(|_| format!("`{text}` is not an age like 30m, 12h or 7d"))?;
    let secs = match unit {
        "s" => 1,
        "m" => 60,
        "h" => 3600,
        "d" => 86400,
        _ => return Err(format!("`{text}` is not an age like 30m, 12h or 7d")),
    };
    Ok(Duration::from_secs(n * secs))
}
