//! `weir test`'s report: a line per test with what differed, and the counts; or JUnit XML.

use std::io::Write;

/// One unit test's result.
pub struct TestResult {
    pub name: String,
    /// The task's id.
    pub task: String,
    pub outcome: TestOutcome,
    pub took: std::time::Duration,
}

pub enum TestOutcome {
    Passed,
    /// What differed, or what went wrong.
    Failed(String),
    /// Passed before with the same task code and test, and not run again.
    Unchanged,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum TestFormat {
    Text,
    Junit,
}

pub fn print_tests(results: &[TestResult], format: TestFormat) -> std::io::Result<()> {
    let text = match format {
        TestFormat::Text => text(results)?,
        TestFormat::Junit => junit(results)?,
    };
    super::stdout_text(&text)
}

fn text(results: &[TestResult]) -> std::io::Result<Vec<u8>> {
    let mut out = Vec::new();
    let (mut passed, mut failed, mut unchanged) = (0, 0, 0);
    for r in results {
        match &r.outcome {
            TestOutcome::Passed => {
                passed += 1;
                writeln!(out, "  pass       {}  {}", r.name, super::secs(r.took))?;
            }
            TestOutcome::Unchanged => {
                unchanged += 1;
                writeln!(out, "  unchanged  {}", r.name)?;
            }
            TestOutcome::Failed(why) => {
                failed += 1;
                writeln!(out, "  FAIL       {}", r.name)?;
                for line in why.lines() {
                    writeln!(out, "      {line}")?;
                }
            }
        }
    }
    writeln!(
        out,
        "{}: {passed} passed, {failed} failed, {unchanged} unchanged",
        super::plural(results.len() as u64, "test")
    )?;
    Ok(out)
}

fn junit(results: &[TestResult]) -> std::io::Result<Vec<u8>> {
    let mut out = Vec::new();
    let failures = results
        .iter()
        .filter(|r| matches!(r.outcome, TestOutcome::Failed(_)))
        .count();
    let skipped = results
        .iter()
        .filter(|r| matches!(r.outcome, TestOutcome::Unchanged))
        .count();
    let time: f64 = results.iter().map(|r| r.took.as_secs_f64()).sum();
    writeln!(out, r#"<?xml version="1.0" encoding="UTF-8"?>"#)?;
    writeln!(
        out,
        r#"<testsuite name="weir" tests="{}" failures="{failures}" skipped="{skipped}" time="{time:.3}">"#,
        results.len()
    )?;
    for r in results {
        let head = format!(
            r#"  <testcase classname="{}" name="{}" time="{:.3}""#,
            xml(&r.task),
            xml(&r.name),
            r.took.as_secs_f64()
        );
        match &r.outcome {
            TestOutcome::Passed => writeln!(out, "{head}/>")?,
            TestOutcome::Unchanged => writeln!(
                out,
                "{head}><skipped message=\"unchanged since it passed\"/></testcase>"
            )?,
            TestOutcome::Failed(why) => {
                let first = why.lines().next().unwrap_or_default();
                writeln!(
                    out,
                    "{head}><failure message=\"{}\">{}</failure></testcase>",
                    xml(first),
                    xml(why)
                )?;
            }
        }
    }
    writeln!(out, "</testsuite>")?;
    Ok(out)
}

fn xml(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}
