//! `weir repl` driven through stdin, without a terminal: redefine, look, taint and promote.

use std::io::Write;
use std::process::Stdio;

use crate::common::{Project, Run};

pub fn repl(p: &Project, input: &str) -> Run {
    let mut child = p
        .command(&["repl", "pipeline.rhai"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn weir repl");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(input.as_bytes())
        .expect("write input");
    let out = child.wait_with_output().expect("repl output");
    Run {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

const REDEFINE: &str = r#"prep.sql("orders_clean", `
    SELECT o.order_id, o.customer_id, o.amount, c.segment
    FROM raw.orders o JOIN raw.customers c USING (customer_id)
    WHERE o.amount > 100`);
"#;

#[test]
fn a_redefined_task_is_tainted_until_promoted_and_a_run_rebuilds_it() {
    let p = Project::standard();
    p.run(&[]).ok();
    let input = format!(
        "status()\n{REDEFINE}status()\nevaluate(\"prep.orders_clean\", 2)\nrun(\"prep.orders_clean\")\n\
         diff(\"prep.orders_clean\")\nshow(\"prep.orders_clean\")\nsql(\"SELECT count(*) AS n FROM prep.orders_clean\")\n\
         promote(\"prep.orders_clean\")\nsql(\"SELECT count(*) AS m FROM prep.orders_clean\")\nshow(\"prep.nope\")\n:quit\n"
    );
    let out = repl(&p, &input).ok();
    let text = out.text();
    assert!(
        text.contains("tainted: marts.big_orders, marts.by_segment, prep.orders_clean"),
        "{text}"
    );
    assert!(
        text.lines()
            .any(|l| l.starts_with("prep.orders_clean") && l.ends_with("tainted  (not built yet)")),
        "{text}"
    );
    assert!(text.contains("orders_clean (not materialized):"), "{text}");
    assert!(
        text.contains("keep    stage prep as committed before"),
        "{text}"
    );
    assert!(
        text.contains("committed 5 rows, this session 2 rows"),
        "{text}"
    );
    // Before promote the committed table is the script's (5 rows); after, the session's (2).
    let n = text.split("| n ").nth(1).expect("count before promote");
    assert!(n.contains("| 5 "), "{text}");
    assert!(text.contains("promoted prep.orders_clean"), "{text}");
    let m = text.split("| m ").nth(1).expect("count after promote");
    assert!(m.contains("| 2 "), "{text}");
    assert!(
        text.contains("table `prep.nope` is not committed"),
        "errors do not end the session: {text}"
    );

    let status = p.weir(&["status"]).ok();
    assert!(
        status
            .stdout
            .lines()
            .any(|l| l.starts_with("prep.orders_clean") && l.contains("tainted")),
        "{}",
        status.text()
    );
    // The script's build is still stored: the run revives it instead of recomputing.
    p.run(&[]).ok();
    assert!(p.ran().is_empty(), "{:?}", p.ran());
    assert_eq!(p.query("SELECT count(*) FROM prep.orders_clean"), ["5"]);
    let status = p.weir(&["status"]).ok();
    assert!(!status.stdout.contains("tainted"), "{}", status.text());
}

#[test]
fn a_redefined_helper_taints_its_callers_only_and_reset_drops_it() {
    let p = Project::standard();
    p.run(&[]).ok();
    let input = "fn totals(t) {\n    t.aggregate([\"segment\"], [\"sum(amount) AS total\"])\n}\nrun()\nshow(\"marts.by_segment\")\n:reset\nstatus()\n:quit\n";
    let text = repl(&p, input).ok().stdout;
    assert!(text.contains("tainted: marts.by_segment (run"), "{text}");
    assert!(
        text.contains("| segment    | total |"),
        "the session's build: {text}"
    );
    assert!(text.contains("session code dropped"), "{text}");
    assert!(
        !text
            .split("session code dropped")
            .nth(1)
            .unwrap_or("")
            .contains("tainted"),
        "{text}"
    );
    assert_eq!(
        p.query("SELECT count(*) FROM marts.by_segment WHERE orders IS NOT NULL"),
        ["2"],
        "the committed table is the script's"
    );
}

#[test]
fn bad_input_in_the_repl_is_reported_and_the_session_goes_on() {
    let p = Project::standard();
    let input = "prep.sql(\"x\", \"SELEC oops\");\nrun(\"raw.orders\")\nnot_a_command()\n\
                 sql(\"SELECT ordr_id FROM raw.orders\")\n:quit\n";
    let out = repl(&p, input).ok();
    let text = out.text();
    assert!(
        text.contains("not found") && text.contains("did you mean `order_id`?"),
        "a query typed at the prompt is labelled, with a suggestion: {text}"
    );
    assert!(
        text.contains("prep.x"),
        "the SQL error names the task: {text}"
    );
    assert!(
        text.contains("1 ran"),
        "the next command still runs: {text}"
    );
    assert!(text.contains("error: "), "{text}");
}

/// `:reload` re-reads the script edited while the session is open, keeping the session's code.
#[test]
fn reload_reads_the_edited_script_and_keeps_the_session() {
    use std::io::{BufRead, BufReader};
    let p = Project::standard();
    p.run(&[]).ok();
    let mut child = p
        .command(&["repl", "pipeline.rhai"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn weir repl");
    let mut stdin = child.stdin.take().expect("stdin");
    let mut lines = BufReader::new(child.stdout.take().expect("stdout")).lines();
    let mut until = |needle: &str| -> String {
        let mut got = String::new();
        for line in lines.by_ref().map_while(Result::ok) {
            got.push_str(&line);
            got.push('\n');
            if line.contains(needle) {
                return got;
            }
        }
        panic!("the REPL ended before `{needle}`:\n{got}");
    };
    until("weir repl:");
    stdin
        .write_all(b"fn totals(t) { t.aggregate([\"segment\"], [\"count(*) AS n\"]) }\n")
        .expect("input");
    until("tainted: marts.by_segment");
    p.edit(
        "pipeline.rhai",
        "marts.sql(\"big_orders\"",
        "marts.sql(\"tiny\", `SELECT 1 AS one`);\nmarts.sql(\"big_orders\"",
    );
    stdin
        .write_all(b":reload\nstatus()\n:quit\n")
        .expect("input");
    let after = until("marts.tiny");
    assert!(after.contains("reloaded: 7 tasks"), "{after}");
    let rest: String = lines.map_while(Result::ok).collect::<Vec<_>>().join("\n");
    let status = format!("{after}{rest}");
    assert!(
        status
            .lines()
            .any(|l| l.starts_with("marts.by_segment") && l.contains("tainted")),
        "the session's helper is kept: {status}"
    );
    assert!(child.wait().expect("exit").success());
}
