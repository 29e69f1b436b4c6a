//! `weir test [SCRIPT] [-s SEL] [--all] [--format junit]`: run the unit tests of tasks (see
//! `session::unit_tests`).

use clap::Args;

use super::{ScriptArgs, SelectArgs, StoreArgs, target};
use crate::report::{TestFormat, TestOutcome as Outcome, print_tests};
use crate::session::unit_tests::run;
use crate::{Error, Result};

#[derive(Debug, Args)]
pub struct TestArgs {
    #[command(flatten)]
    pub script: ScriptArgs,
    #[command(flatten)]
    pub store: StoreArgs,
    /// Only the tests of these tasks.
    #[command(flatten)]
    pub select: SelectArgs,
    /// Run every test, also those that passed before with the same task code and test.
    #[arg(long)]
    pub all: bool,
    /// text (the default), or junit: JUnit XML on stdout, for CI.
    #[arg(long, short = 'f', value_enum, default_value = "text")]
    pub format: TestFormat,
}

pub async fn test(args: TestArgs) -> Result<()> {
    let target = target(&args.script, &args.store);
    let results = run(&target, &args.select.selection(), args.all).await?;
    print_tests(&results, args.format)?;
    let failed = results
        .iter()
        .filter(|r| matches!(r.outcome, Outcome::Failed(_)))
        .count();
    match failed {
        0 => Ok(()),
        _ => Err(Error::TestsFailed {
            failed,
            total: results.len(),
        }),
    }
}
