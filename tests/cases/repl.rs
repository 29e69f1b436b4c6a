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
    assert!(
        text.contains("<repl>:1:1") && text.contains("not_a_command"),
        "an unknown function is labelled in what was typed: {text}"
    );
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

/// A syntax or runtime error in typed code points at what was typed, not at the script, and
/// an entry without a `;` does not break the next definition.
#[test]
fn typed_code_is_parsed_on_its_own_and_errors_point_at_it() {
    let p = Project::standard();
    let input = "let x = ;\nprep.sql(\"one\", `SELECT 1 AS one`); let z = nope();\n\
                 let n = 1 + 2\nprep.sql(\"two\", `SELECT 2 AS two`)\nprep.sql(\"three\", `SELECT 3 AS three`)\n\
                 prep.sql(\"four\", `SELECT 4 AS four`); let w = [1,\nnope2()];\n\
                 n * 2\n:quit!\n";
    let out = repl(&p, input).ok();
    let (stdout, stderr) = (&out.stdout, &out.stderr);
    assert!(
        stderr.contains("syntax error at <repl>:1:9"),
        "the syntax error is in the typed line: {stderr}"
    );
    assert!(
        stderr.contains("<repl>:1:") && stderr.contains("nope"),
        "the runtime error is in the typed entry: {stderr}"
    );
    assert!(
        stderr.contains("script error at <repl>:2:1: Function not found: nope2"),
        "an error in a later entry is labelled in that entry: {stderr}"
    );
    assert!(!stderr.contains("pipeline.rhai:"), "{stderr}");
    assert!(
        !stdout.contains("prep.one"),
        "an entry that failed is not kept: {stdout}"
    );
    assert!(stdout.contains("tainted: prep.two"), "{stdout}");
    assert!(
        stdout.contains("tainted: prep.three"),
        "a declaration without `;` does not break the next: {stdout}"
    );
    assert!(stdout.lines().any(|l| l == "6"), "values persist: {stdout}");
}

/// `sql` and `table` return Table values kept across prompts; methods and the script's task
/// functions work on them and a Table an entry ends with is shown.
#[test]
fn commands_return_tables_that_persist_across_prompts() {
    let p = Project::standard();
    p.run(&[]).ok();
    let input = "let t = sql(\"SELECT * FROM prep.orders_clean WHERE amount >= 100\")\nt.count()\n\
                 t.rows().len()\nlet c = table(\"prep.orders_clean\")\nby_segment(c)\n\
                 show(c.filter(\"amount > 200\"))\nshow(\"prep.orders_clean\", 1)\n:quit\n";
    let out = repl(&p, input).ok();
    let text = &out.stdout;
    assert_eq!(
        text.lines().filter(|l| *l == "2").count(),
        2,
        "count() and rows(): {text}"
    );
    assert!(
        text.contains("| segment    | total | orders |"),
        "a task function called on a table: {text}"
    );
    assert!(
        text.lines()
            .any(|l| l.starts_with("| 5 ") && l.contains("410")),
        "show(t): {text}"
    );
    assert!(
        out.stderr.is_empty() || !out.stderr.contains("error"),
        "{}",
        out.stderr
    );
}

/// `run(task, #{ inputs: ... })` builds a task from a given table without committing it;
/// `promote` commits it, tainted until a normal run rebuilds it from the script.
#[test]
fn a_task_runs_with_a_given_input_and_commits_only_when_promoted() {
    let p = Project::standard();
    p.run(&[]).ok();
    let input = "let t = sql(\"SELECT * FROM prep.orders_clean WHERE segment = 'smb'\")\n\
                 run(\"marts.big_orders\", #{ inputs: #{ \"prep.orders_clean\": t } })\n\
                 table(\"marts.big_orders\").count()\nshow(\"marts.big_orders\")\nsql(\"SELECT count(*) AS n FROM marts.big_orders\")\n\
                 run(\"marts.big_orders\", #{ inputs: #{ \"prep.nope\": t } })\nstatus()\n:quit\n";
    let out = repl(&p, input).ok();
    let text = out.text();
    assert!(
        text.contains("built marts.big_orders with prep.orders_clean given: 1 row, not committed"),
        "{text}"
    );
    assert!(
        out.stdout.lines().any(|l| l == "1"),
        "the session reads its build: {text}"
    );
    assert!(
        out.stdout
            .lines()
            .any(|l| l.starts_with("| 5 ") && l.contains("410"))
            && !out.stdout.lines().any(|l| l.contains("120")),
        "show(name) shows the session's build: {text}"
    );
    let n = text.split("| n ").nth(1).expect("committed count");
    assert!(
        n.contains("| 2 "),
        "the committed table is the script's: {text}"
    );
    assert!(
        text.contains("`prep.nope` is not an input of marts.big_orders"),
        "{text}"
    );
    assert!(
        out.stdout.lines().any(|l| l.starts_with("marts.big_orders")
            && l.contains("given  (built with given inputs in this session")),
        "{text}"
    );
    let status = p.weir(&["status"]).ok();
    assert!(!status.stdout.contains("tainted"), "{}", status.text());
    assert_eq!(p.query("SELECT count(*) FROM marts.big_orders"), ["2"]);

    let input = "let t = sql(\"SELECT * FROM prep.orders_clean WHERE segment = 'smb'\")\n\
                 run(\"marts.big_orders\", #{ inputs: #{ \"prep.orders_clean\": t } })\n\
                 promote(\"marts.big_orders\")\n:quit\n";
    let text = repl(&p, input).ok().text();
    assert!(text.contains("promoted marts.big_orders"), "{text}");
    let status = p.weir(&["status"]).ok();
    assert!(
        status
            .stdout
            .lines()
            .any(|l| l.starts_with("marts.big_orders") && l.contains("tainted")),
        "{}",
        status.text()
    );
    assert_eq!(p.query("SELECT count(*) FROM marts.big_orders"), ["1"]);
    p.run(&[]).ok();
    assert_eq!(p.query("SELECT count(*) FROM marts.big_orders"), ["2"]);
}

/// `:save` shows the diff, and once confirmed writes the redefinition in place of the
/// script's, so the next `weir run` keeps it.
#[test]
fn save_writes_the_session_code_into_the_script() {
    let p = Project::standard();
    p.run(&[]).ok();
    let redefine = REDEFINE.trim_end().trim_end_matches(';');
    let input = format!("{redefine}\nmarts.sql(\"one\", `SELECT 1 AS one`)\n:save\ny\n:quit\n");
    let out = repl(&p, &input).ok();
    let text = out.text();
    assert!(text.contains("-    WHERE o.amount > 0`)"), "{text}");
    assert!(text.contains("+    WHERE o.amount > 100`)"), "{text}");
    assert!(
        text.contains("+marts.sql(\"one\", `SELECT 1 AS one`);"),
        "{text}"
    );
    assert!(
        text.contains("saved 2 entries into pipeline.rhai"),
        "{text}"
    );
    assert!(
        !text.contains("warning:"),
        "saved code is not warned about: {text}"
    );
    let script = p.read("pipeline.rhai");
    assert!(script.contains("WHERE o.amount > 100`);"), "{script}");
    assert!(
        !script.contains("o.amount > 0`"),
        "replaced in place: {script}"
    );
    p.run(&[]).ok();
    assert_eq!(p.query("SELECT count(*) FROM prep.orders_clean"), ["2"]);
    assert_eq!(p.query("SELECT count(*) FROM marts.one"), ["1"]);
}

/// Declining `:save` leaves the script alone, and `:quit` warns about the session's code.
#[test]
fn quit_warns_about_code_that_is_not_saved() {
    let p = Project::standard();
    let before = p.read("pipeline.rhai");
    let out = repl(&p, &format!("{REDEFINE}:save\nn\n:quit\n")).ok();
    let text = out.text();
    assert!(text.contains("not saved"), "{text}");
    assert_eq!(p.read("pipeline.rhai"), before);
    assert!(
        out.stderr
            .contains("warning: 1 entry of this session's code is not in"),
        "{text}"
    );
}

/// An entry `:save` cannot place (a declaration made elsewhere than in place) is appended; when
/// the script then does not load, it is put back as it was and the session keeps its code.
#[test]
fn a_save_that_breaks_the_script_is_undone() {
    let p = Project::standard();
    let before = p.read("pipeline.rhai");
    let input =
        "let p2 = stage(\"prep\"); p2.sql(\"customer_count\", `SELECT 2 AS n`)\n:save!\n:quit\n";
    let out = repl(&p, input).ok();
    let text = out.text();
    assert!(
        text.contains("not saved: the script with the session's code does not load"),
        "{text}"
    );
    assert!(text.contains("declared twice"), "{text}");
    assert_eq!(p.read("pipeline.rhai"), before);
    assert!(
        out.stderr.contains("warning: 1 entry"),
        "the code is still the session's: {text}"
    );
}
