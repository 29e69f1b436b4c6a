//! Limits on what a pipeline may ask for. Each ends in a diagnostic and an exit code, never
//! an abort.

use crate::common::Project;

/// A stage, table, intermediate or instance name longer than 63 characters is refused where it
/// is declared (exit 2 in the script and on the command line, a task failure for an
/// intermediate), with the limit and the name's length.
#[test]
fn long_names_are_refused_with_the_limit() {
    let long = "n".repeat(64);
    let p = Project::new();
    p.file(
        "pipeline.rhai",
        &format!("let s = stage(\"{long}\");\ns.sql(\"a\", \"SELECT 1 AS a\");\n"),
    );
    let run = p.run(&[]).fails_with(2);
    assert!(
        run.stderr.contains("pipeline.rhai:1:9: stage name `nnnnnnnnnnnnnnnnnnnnnnnn...` is 64 characters long; names are at most 63 characters"),
        "{}",
        run.stderr
    );

    let ok = "m".repeat(63);
    p.file(
        "pipeline.rhai",
        &format!("let s = stage(\"{ok}\");\ns.sql(\"{ok}\", \"SELECT 1 AS a\");\n"),
    );
    p.run(&[]).ok();

    let run = p.run(&["--instance", &long]).fails_with(2);
    assert!(
        run.stderr
            .contains("instance name `nnnnnnnnnnnnnnnnnnnnnnnn...` is 64 characters long"),
        "{}",
        run.stderr
    );

    p.file(
        "pipeline.rhai",
        &format!(
            "let s = stage(\"s\");\ns.sql(\"a\", \"SELECT 1 AS a\");\nfn f(t) {{ t.materialize(\"{long}\") }}\ns.materialize(\"b\", f, [table(\"s.a\")]);\n"
        ),
    );
    let run = p.run(&[]).fails_with(1);
    assert!(
        run.stderr
            .contains("table name `nnnnnnnnnnnnnnnnnnnnnnnn...` is 64 characters long"),
        "{}",
        run.stderr
    );
}
