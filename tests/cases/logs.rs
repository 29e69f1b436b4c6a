//! Logs and verbose runs: `WEIR_LOG` is weir's own log, plain when piped; `-v` shows the SQL a
//! task runs and `-vv` the physical plan that wrote it.

use crate::common::Project;

/// `WEIR_LOG=debug` and `WEIR_LOG=weir=debug` are weir's own debug log (the lock, the plan,
/// store requests): piped, without colour codes and without third-party crates' lines, which
/// come only when named.
#[test]
fn weir_log_debug_is_weirs_own_log_in_plain_text() {
    let p = Project::standard();
    for spec in ["debug", "weir=debug"] {
        let out = p
            .command(&["run", "pipeline.rhai", "--force"])
            .env("WEIR_LOG", spec)
            .env_remove("NO_COLOR")
            .output()
            .expect("run weir");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(out.status.success(), "{err}");
        assert!(!err.contains('\x1b'), "no escape codes when piped: {err}");
        assert!(
            !err.contains("sqlparser"),
            "{spec}: weir's lines only: {err}"
        );
        for line in [
            "took the instance lock",
            "plan task=prep.orders_clean",
            "store request=",
        ] {
            assert!(err.contains(line), "{spec}: `{line}` in\n{err}");
        }
        assert!(
            err.lines()
                .filter(|l| l.contains("DEBUG"))
                .all(|l| l.contains(" weir::")),
            "{err}"
        );
    }
    let named = p.weir_env(
        &["run", "pipeline.rhai", "--force"],
        &[("WEIR_LOG", "debug,sqlparser=debug".to_string())],
    );
    assert!(
        named.stderr.contains("sqlparser"),
        "a crate named logs: {}",
        named.stderr
    );
}

/// A log filter that does not parse is said once, and the run goes on.
#[test]
fn a_bad_weir_log_is_reported_and_ignored() {
    let p = Project::standard();
    let out = p
        .weir_env(
            &["run", "pipeline.rhai"],
            &[("WEIR_LOG", "weir=loud".to_string())],
        )
        .ok();
    assert!(
        out.stderr
            .contains("WEIR_LOG=`weir=loud` is not a log filter"),
        "{}",
        out.stderr
    );
}

/// `weir run -v` shows each SQL task's query as the script made it (after `${...}`), `-vv`
/// also the physical plan each task ran.
#[test]
fn verbose_runs_show_the_sql_and_the_plan() {
    let p = Project::standard();
    p.edit(
        "pipeline.rhai",
        "WHERE o.amount > 0`",
        "WHERE o.amount > ${param(\"min\", 0)}`",
    );
    let v = p.run(&["-v", "-p", "min=50"]).ok();
    assert!(
        v.stderr.contains("  sql     prep.orders_clean\n"),
        "{}",
        v.stderr
    );
    assert!(
        v.stderr.contains("WHERE o.amount > 50\n"),
        "interpolated: {}",
        v.stderr
    );
    assert!(
        !v.stderr.contains("DataSinkExec"),
        "no plan with one -v: {}",
        v.stderr
    );
    let vv = p.run(&["-vv", "--force", "-s", "marts.by_segment"]).ok();
    assert!(
        vv.stderr.contains("  plan    marts.by_segment\n"),
        "{}",
        vv.stderr
    );
    assert!(vv.stderr.contains("DataSinkExec"), "{}", vv.stderr);
    assert!(vv.stderr.contains("AggregateExec"), "{}", vv.stderr);
}
