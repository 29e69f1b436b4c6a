//! What users see of runs: run history and logs, why a task is stale, the graph, and the
//! progress output; secrets kept out of all of it.

use serde_json::Value;

use crate::common::{Project, Run};

/// `weir runs` lists runs newest first with their counts, and `weir log` shows one run's
/// tasks, with the failed task's error; ids are found by `last` or a unique prefix.
#[test]
fn runs_and_log_show_each_run_and_its_tasks() {
    let p = Project::standard();
    p.run(&[]).ok();
    p.edit("pipeline.rhai", "WHERE amount >= 100", "WHERE nope >= 100");
    p.run(&[]).fails_with(1);

    let runs = p.weir(&["runs", "pipeline.rhai"]).ok();
    let lines: Vec<&str> = runs.stdout.lines().collect();
    assert_eq!(lines.len(), 3, "{}", runs.stdout);
    let cols = |l: &str| l.split_whitespace().map(str::to_string).collect::<Vec<_>>();
    let (newest, oldest) = (cols(lines[1]), cols(lines[2]));
    assert!(newest[0] > oldest[0], "newest first:\n{}", runs.stdout);
    // run, date, time, took (2 words), result, ran, cached, failed, skipped
    assert_eq!(
        newest[5..],
        ["failed", "0", "5", "1", "0"],
        "{}",
        runs.stdout
    );
    assert_eq!(oldest[5..], ["ok", "6", "0", "0", "0"], "{}", runs.stdout);

    let log = p.weir(&["log", "last"]).ok();
    assert!(
        log.stdout
            .starts_with(&format!("run {}  failed", newest[0])),
        "{}",
        log.stdout
    );
    let task_line = |name: &str| {
        log.stdout
            .lines()
            .find(|l| l.trim_start().starts_with(name))
            .unwrap_or_else(|| panic!("no {name} in\n{}", log.stdout))
            .to_string()
    };
    assert!(task_line("marts.big_orders").contains("failed"));
    assert!(task_line("raw.orders").contains("cached"));
    assert!(task_line("prep.orders_clean").contains("  5  "), "rows");
    assert!(
        log.stdout.contains("nope"),
        "the error is shown:\n{}",
        log.stdout
    );
    assert!(log.stdout.contains("marts NOT committed"), "{}", log.stdout);

    let by_prefix = p
        .weir(&["log", &oldest[0][..oldest[0].len() - 2], "pipeline.rhai"])
        .ok();
    assert!(
        by_prefix
            .stdout
            .starts_with(&format!("run {}  ok", oldest[0]))
    );
    assert!(
        by_prefix.stdout.contains("(never built)"),
        "why each task ran"
    );
    let unknown = p.weir(&["log", "nosuchrun"]).fails_with(2);
    assert!(unknown.stderr.contains("weir runs"), "{}", unknown.stderr);
    let ambiguous = p.weir(&["log", "2"]).fails_with(2);
    assert!(
        ambiguous.stderr.contains("start of 2 run ids"),
        "{}",
        ambiguous.stderr
    );
}

/// The run record has every field the log shows, and every event of the run is one JSON line
/// in `<run_id>.log.jsonl` beside it.
#[test]
fn run_records_and_json_logs_hold_every_event() {
    let p = Project::standard();
    p.edit("pipeline.rhai", "WHERE amount >= 100", "WHERE nope >= 100");
    p.run(&[]).fails_with(1);
    let record = p.last_record();
    for field in [
        "run_id",
        "instance",
        "started_at",
        "ended_at",
        "duration_ms",
    ] {
        assert!(!record[field].is_null(), "record lacks {field}: {record}");
    }
    let failed = task_record(&record, "marts.big_orders");
    assert_eq!(failed["status"], "failed");
    assert!(failed["error"].as_str().unwrap().contains("nope"));
    let ran = task_record(&record, "prep.orders_clean");
    assert_eq!(
        (ran["stage"].as_str(), ran["rows"].as_u64()),
        (Some("prep"), Some(5))
    );
    assert!(ran["bytes"].as_u64().unwrap() > 0 && ran["key"].as_str().unwrap().len() == 32);

    let id = record["run_id"].as_str().unwrap();
    let events = log_events(&p, id);
    let has = |event: &str, key: &str, value: &str| {
        events
            .iter()
            .any(|e| e["event"] == event && e[key] == value)
    };
    assert!(has("task_started", "task", "raw.orders"));
    assert!(has("task_done", "task", "prep.orders_clean"));
    assert!(has("task_failed", "task", "marts.big_orders"));
    assert!(has("stage_committed", "stage", "prep"));
    assert!(has("stage_not_committed", "stage", "marts"));
    assert!(events.iter().all(|e| e["ts"].is_string() && e["run"] == id));
    assert_eq!(events.last().unwrap()["event"], "run_finished");

    p.edit("pipeline.rhai", "WHERE nope >= 100", "WHERE amount >= 100");
    p.run(&[]).ok();
    let id = p.last_record()["run_id"].as_str().unwrap().to_string();
    let events = log_events(&p, &id);
    assert!(
        events
            .iter()
            .any(|e| e["event"] == "task_cached" && e["task"] == "raw.orders")
    );
}

fn task_record<'a>(record: &'a Value, task: &str) -> &'a Value {
    record["tasks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["task"] == task)
        .unwrap_or_else(|| panic!("no {task} in {record}"))
}

fn log_events(p: &Project, run_id: &str) -> Vec<Value> {
    let path = p
        .instance_dir()
        .join("runs")
        .join(format!("{run_id}.log.jsonl"));
    std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
        .collect()
}

/// Without a terminal, events are plain lines; --quiet prints only the summary and --verbose
/// adds cached tasks.
#[test]
fn quiet_and_verbose_runs() {
    let p = Project::standard();
    let cold = p.run(&["--quiet"]).ok();
    assert_eq!(cold.stderr, "", "quiet says nothing while it runs");
    assert!(cold.stdout.contains("6 tasks: 6 ran"), "{}", cold.stdout);
    let again = p.run(&["--verbose"]).ok();
    assert!(
        again.stderr.contains("  cached  raw.orders"),
        "{}",
        again.stderr
    );
    let normal = p.run(&["--force"]).ok();
    assert!(
        normal.stderr.contains("  start   raw.orders (forced)"),
        "{}",
        normal.stderr
    );
    assert!(
        !normal.stderr.contains('\x1b'),
        "no terminal codes: {}",
        normal.stderr
    );
    assert!(!normal.stderr.contains("cached"), "{}", normal.stderr);
}

/// On a terminal (a pseudo-terminal made by `script`), the live display draws done / total and
/// diagnostics are in colour; with NO_COLOR the same run is plain ASCII throughout.
#[test]
fn a_terminal_gets_the_live_display_and_no_color_makes_it_plain() {
    let p = Project::standard();
    p.edit("pipeline.rhai", "o.amount,", "o.amont,");
    let on_tty = |env: &str| {
        let command = format!("{env} '{}' run pipeline.rhai", crate::common::weir_bin());
        let out = p
            .shell(&format!("script -qec \"{command}\" /dev/null"))
            .env_remove("NO_COLOR")
            .env("TERM", "xterm")
            .output()
            .expect("script(1) runs");
        String::from_utf8_lossy(&out.stdout).to_string()
    };
    let color = on_tty("");
    assert!(
        color.contains("[00:00:0"),
        "the live display's clock: {color}"
    );
    assert!(color.contains("\x1b[31m"), "colour on a terminal: {color}");
    assert!(color.contains("did you mean"), "{color}");

    let plain = on_tty("NO_COLOR=1");
    assert!(plain.contains("did you mean"), "{plain}");
    assert!(
        !plain.contains("\x1b[3"),
        "no colour with NO_COLOR: {plain}"
    );
    assert!(plain.is_ascii(), "no unicode with NO_COLOR: {plain}");
}

const WHY_SCRIPT: &str = r#"
let raw = stage("raw");
raw.load("orders", "data/orders.csv");
raw.sql("one", "SELECT 1 AS x", #{ version: "1" });
let marts = stage("marts");
marts.materialize("top", |t| t.sort("amount", false).limit(param("top", 2)), [table("raw.orders")]);
"#;

/// `weir why` names the changed file, input, option and param, with old -> new values.
#[test]
fn why_names_what_changed() {
    let p = Project::standard();
    p.file("pipeline.rhai", WHY_SCRIPT);
    p.run(&["-p", "top=3"]).ok();
    let fresh = why(&p, &["marts.top", "-p", "top=3"]);
    assert!(fresh.starts_with("marts.top: fresh"), "{fresh}");
    assert!(!fresh.contains("* "), "{fresh}");

    let top = why(&p, &["marts.top", "-p", "top=5"]);
    assert!(
        top.starts_with("marts.top: stale (param top changed)"),
        "{top}"
    );
    assert!(changed_line(&top, "param top").ends_with("3 -> 5"), "{top}");

    p.file(
        "data/orders.csv",
        &format!("{}7,1,700\n", crate::common::ORDERS),
    );
    let top = why(&p, &["marts.top", "-p", "top=3"]);
    let input = changed_line(&top, "input raw.orders");
    assert!(input.contains(" -> "), "{top}");
    assert!(
        input.ends_with("(raw.orders: external file changed)"),
        "{top}"
    );
    let orders = why(&p, &["raw.orders"]);
    assert!(
        changed_line(&orders, "external files").contains(" -> "),
        "{orders}"
    );

    p.edit("pipeline.rhai", r#"version: "1""#, r#"version: "2""#);
    let one = why(&p, &["raw.one"]);
    assert!(
        one.starts_with("raw.one: stale (option version changed)"),
        "{one}"
    );
    assert!(
        changed_line(&one, "option version").ends_with("1 -> 2"),
        "{one}"
    );
    assert!(one.contains("changed since the committed build (*): option version"));

    let status = p
        .weir(&["status", "pipeline.rhai", "-v", "-p", "top=3"])
        .ok();
    assert!(status.stdout.contains("raw.one"), "{}", status.stdout);
    changed_line(&status.stdout, "option version");
    changed_line(&status.stdout, "input raw.orders");

    let unknown = p.weir(&["why", "marts.tpo"]).fails_with(2);
    assert!(
        unknown.stderr.contains("did you mean `marts.top`?"),
        "{}",
        unknown.stderr
    );
}

fn why(p: &Project, args: &[&str]) -> String {
    let mut all = vec!["why"];
    all.extend_from_slice(args);
    p.weir(&all).ok().stdout
}

/// The line of a part marked changed (`* name  old -> new`).
#[track_caller]
fn changed_line(text: &str, part: &str) -> String {
    text.lines()
        .map(str::trim_start)
        .find(|l| l.strip_prefix("* ").is_some_and(|r| r.starts_with(part)))
        .unwrap_or_else(|| panic!("`{part}` not marked changed in\n{text}"))
        .to_string()
}

/// A project whose tasks are fresh, stale, failed and never built, for the graph.
fn graph_project() -> Project {
    let p = Project::standard();
    p.run(&[]).ok();
    p.edit("pipeline.rhai", "WHERE amount >= 100", "WHERE nope >= 100");
    p.edit("pipeline.rhai", "count(*) AS n", "count(*) AS customers");
    p.run(&[]).fails_with(1);
    p.edit("pipeline.rhai", "count(*) AS customers", "count(*) AS n");
    p.file(
        "pipeline.rhai",
        &format!(
            "{}marts.sql(\"extra\", `SELECT * FROM prep.customer_count`);\n",
            p.read("pipeline.rhai")
        ),
    );
    p.edit("pipeline.rhai", "WHERE o.amount > 0", "WHERE o.amount > 1");
    p
}

/// Mermaid and DOT have a cluster per stage, a node per task with its state's class, and an
/// edge per input.
#[test]
fn graph_as_mermaid_and_dot() {
    let p = graph_project();
    let mermaid = p
        .weir(&["graph", "pipeline.rhai", "--format", "mermaid"])
        .ok()
        .stdout;
    for line in [
        "flowchart LR",
        "  subgraph stage_0[\"raw\"]",
        "  subgraph stage_2[\"marts\"]",
        "    raw__orders[\"orders\"]:::fresh",
        "    prep__orders_clean[\"orders_clean\"]:::stale",
        "    marts__big_orders[\"big_orders\"]:::failed",
        "    marts__extra[\"extra\"]:::never",
        "  raw__customers --> prep__orders_clean",
        "  prep__customer_count --> marts__extra",
    ] {
        assert!(
            mermaid.lines().any(|l| l == line),
            "no `{line}` in\n{mermaid}"
        );
    }
    assert_eq!(mermaid.matches(" --> ").count(), 6, "{mermaid}");
    assert!(mermaid.contains("classDef failed "), "{mermaid}");

    let dot = p.weir(&["graph", "pipeline.rhai", "-f", "dot"]).ok().stdout;
    assert!(
        dot.starts_with("digraph weir {") && dot.ends_with("}\n"),
        "{dot}"
    );
    assert_eq!(dot.matches("subgraph cluster_").count(), 3, "{dot}");
    assert!(dot.contains("label=\"prep\";"), "{dot}");
    assert!(dot.contains("\"marts.big_orders\" [label=\"big_orders\", class=\"failed\""));
    assert!(dot.contains("\"raw.orders\" [label=\"orders\", class=\"fresh\""));
    assert!(
        dot.contains("  \"prep.orders_clean\" -> \"marts.by_segment\";\n"),
        "{dot}"
    );
}

/// SVG is well-formed XML with one node per task, written to --output.
#[test]
fn graph_as_svg() {
    let p = graph_project();
    let run = p.weir(&[
        "graph",
        "pipeline.rhai",
        "--format",
        "svg",
        "--output",
        "flow.svg",
    ]);
    assert_eq!(run.ok().stdout, "");
    let svg = p.read("flow.svg");
    assert_well_formed(&svg);
    assert!(
        svg.starts_with("<svg xmlns=\"http://www.w3.org/2000/svg\""),
        "{svg}"
    );
    assert_eq!(svg.matches("<g class=\"node ").count(), 7, "{svg}");
    assert_eq!(svg.matches("<g class=\"cluster\"").count(), 3);
    assert_eq!(svg.matches("<path class=\"edge\"").count(), 6);
    for (id, state) in [
        ("raw.orders", "fresh"),
        ("marts.big_orders", "failed"),
        ("marts.extra", "never"),
    ] {
        assert!(
            svg.contains(&format!("<g class=\"node {state}\" id=\"node-{id}\">")),
            "{id} {state}"
        );
    }
}

/// Tags nest and close, attributes are quoted, `&` starts an entity, and one element is the root.
#[track_caller]
fn assert_well_formed(xml: &str) {
    let mut stack: Vec<String> = Vec::new();
    let mut roots = 0;
    let mut rest = xml;
    while let Some(open) = rest.find('<') {
        check_text(&rest[..open]);
        let close = open + rest[open..].find('>').expect("a tag is closed");
        let tag = &rest[open + 1..close];
        rest = &rest[close + 1..];
        if let Some(name) = tag.strip_prefix('/') {
            assert_eq!(stack.pop().as_deref(), Some(name), "closing tag </{name}>");
            continue;
        }
        let body = tag.strip_suffix('/').unwrap_or(tag);
        let (name, attrs) = body.split_once(' ').unwrap_or((body, ""));
        assert!(
            !name.is_empty() && name.chars().all(|c| c.is_ascii_alphanumeric()),
            "<{tag}>"
        );
        check_attributes(attrs);
        if stack.is_empty() {
            roots += 1;
        }
        if !tag.ends_with('/') {
            stack.push(name.to_string());
        }
    }
    check_text(rest);
    assert!(stack.is_empty(), "unclosed: {stack:?}");
    assert_eq!(roots, 1);
}

#[track_caller]
fn check_attributes(mut attrs: &str) {
    loop {
        attrs = attrs.trim_start();
        if attrs.is_empty() {
            return;
        }
        let (name, after) = attrs.split_once("=\"").expect("name=\"value\"");
        assert!(
            name.chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == ':'),
            "{name}"
        );
        let end = after.find('"').expect("closing quote");
        check_text(&after[..end]);
        attrs = &after[end + 1..];
    }
}

#[track_caller]
fn check_text(text: &str) {
    assert!(!text.contains('<'), "{text}");
    for (i, _) in text.match_indices('&') {
        let entity = &text[i..];
        assert!(
            ["&amp;", "&lt;", "&gt;", "&quot;", "&apos;"]
                .iter()
                .any(|e| entity.starts_with(e)),
            "bare & in {text}"
        );
    }
}

/// Secrets never reach run records, run logs, or what runs, log, why and graph print: not as
/// written, not folded to lower case as an SQL identifier, not with a quote doubled in SQL.
#[test]
fn secrets_stay_out_of_logs() {
    const SECRET: &str = "s3cr3t-Lg42";
    const IDENT: &str = "Col_Secret_77";
    const QUOTED: &str = "it's-S3cret";
    let p = Project::new();
    p.file(
        "weir.toml",
        "secrets = \"secrets.toml\"\n[instances.__any__]\nattrs = { token = \"${secrets.token}\", ident = \"${secrets.ident}\", quoted = \"${secrets.quoted}\" }\n[instances.dev]\n",
    )
    .file(
        "secrets.toml",
        &format!("token = \"{SECRET}\"\nident = \"{IDENT}\"\nquoted = \"{QUOTED}\"\n"),
    )
    .file(
        "pipeline.rhai",
        r#"
let raw = stage("raw");
raw.sql("creds", `SELECT '${attrs.token}' AS token`);
raw.sql("fails", `SELECT CAST('${attrs.token}' AS INT) AS n`);
raw.sql("as_column", `SELECT ${attrs.ident} FROM raw.creds`);
let q = attrs.quoted; q.replace("'", "''");
raw.sql("quoted", `SELECT CAST('${q}' AS INT) AS n`);
"#,
    );
    let run = p
        .weir(&["run", "pipeline.rhai", "--instance", "dev", "-v"])
        .fails_with(1);
    let mut outputs = vec![run.text()];
    for args in [
        vec!["runs", "pipeline.rhai", "--instance", "dev"],
        vec!["log", "last", "--instance", "dev", "--events"],
        vec!["why", "raw.fails", "--instance", "dev"],
        vec!["status", "pipeline.rhai", "-v", "--instance", "dev"],
        vec!["graph", "pipeline.rhai", "--instance", "dev", "-f", "dot"],
    ] {
        let out: Run = p.weir(&args);
        assert!(out.code == 0, "{args:?}:\n{}", out.text());
        outputs.push(out.text());
    }
    assert!(
        outputs[2].contains("Cannot cast string '***'"),
        "the failure is logged, masked:\n{}",
        outputs[2]
    );
    let forms = [
        SECRET.to_string(),
        SECRET.to_lowercase(),
        IDENT.to_lowercase(),
        QUOTED.replace('\'', "''"),
    ];
    for text in &outputs {
        for form in &forms {
            assert!(!text.contains(form.as_str()), "{form} shown:\n{text}");
        }
    }
    let files = p.files_under(".weir/dev/runs");
    assert!(
        files
            .iter()
            .any(|f| f.to_string_lossy().ends_with(".log.jsonl"))
    );
    for file in files {
        let text = std::fs::read_to_string(&file).unwrap();
        for form in &forms {
            assert!(
                !text.contains(form.as_str()),
                "{} holds the secret as {form}",
                file.display()
            );
        }
    }
}
