//! weir.toml: instances kept apart, `__any__` merged in, attrs and params in the script and in
//! cache keys, secrets never shown, and bad configs stopped before anything is written.

use crate::common::{Project, set};

const CONFIG: &str = r#"
name = "demo"
default_instance = "one"

[instances.__any__]
attrs = { label = "base", nested = { x = 1, y = 2 }, top = 2 }

[instances.one]
attrs = { nested = { y = 3 } }

[instances.two]
instance_id = "second"
attrs = { label = "two", top = 1 }
"#;

const SCRIPT: &str = r#"
let raw = stage("raw");
raw.sql("facts", `SELECT '${instance}' AS inst, '${attrs.label}' AS label,
                         ${attrs.nested.x} AS x, ${attrs.nested.y} AS y`);
raw.sql("numbers", "SELECT value AS n FROM generate_series(1, 5)");
let marts = stage("marts");
marts.materialize("top", |t| t.sort("n", false).limit(attrs.top), [table("raw.numbers")]);
marts.materialize("scaled", |t| t.select(`n * ${param("factor", 1)} AS n`), [table("raw.numbers")]);
"#;

fn project() -> Project {
    let p = Project::new();
    p.file("weir.toml", CONFIG).file("pipeline.rhai", SCRIPT);
    p
}

/// Each instance sees its merged attrs and writes only under its own id.
#[test]
fn instances_are_isolated_and_merge_any() {
    let p = project();
    p.run(&[]).ok();
    assert_eq!(
        p.query_in("one", "SELECT inst, label, x, y FROM raw.facts"),
        ["one,base,1,3"],
        "one: __any__'s label and x, its own y"
    );
    let one_files = p.files_under(".weir/one");
    p.run(&["--instance", "two"]).ok();
    assert_eq!(
        p.query_in("two", "SELECT inst, label, x, y FROM raw.facts"),
        ["two,two,1,2"]
    );
    assert!(
        p.path(".weir/second/manifests/raw.json").exists(),
        "instance_id names the folder"
    );
    assert!(!p.path(".weir/two").exists());
    assert_eq!(
        p.files_under(".weir/one"),
        one_files,
        "running two touched nothing of one"
    );
    assert_eq!(p.query_in("one", "SELECT count(*) FROM marts.top"), ["2"]);
    assert_eq!(p.query_in("two", "SELECT count(*) FROM marts.top"), ["1"]);

    let status = p
        .weir(&["status", "pipeline.rhai", "--instance", "two"])
        .ok();
    assert!(!status.stdout.contains("stale"), "{}", status.text());
}

/// A changed attr re-runs the tasks that read it, a changed param the tasks that read it.
#[test]
fn attrs_and_params_are_part_of_the_key() {
    let p = project();
    p.run(&[]).ok();
    p.edit("weir.toml", "top = 2", "top = 4");
    p.run(&[]).ok();
    assert_eq!(p.ran_in("one"), set(&["marts.top"]));
    assert_eq!(p.query_in("one", "SELECT count(*) FROM marts.top"), ["4"]);

    p.run(&["--param", "factor=10"]).ok();
    assert_eq!(p.ran_in("one"), set(&["marts.scaled"]));
    assert_eq!(p.query_in("one", "SELECT max(n) FROM marts.scaled"), ["50"]);
    p.run(&["--param", "factor=10"]).ok();
    assert!(p.ran_in("one").is_empty());

    // The attr a SQL task interpolates changes its text, hence its key.
    p.edit("weir.toml", "nested = { y = 3 }", "nested = { y = 30 }");
    p.run(&[]).ok();
    assert_eq!(p.ran_in("one"), set(&["raw.facts"]));
}

/// Values from the secrets file never show: not in output, errors, status, logs or records.
#[test]
fn secrets_never_appear() {
    const SECRET: &str = "s3cr3t-Zq81";
    let p = Project::new();
    p.file(
        "weir.toml",
        r#"
secrets = "secrets.toml"
[instances.__any__]
attrs = { token = "${secrets.token}", user = "ada" }
[instances.dev]
"#,
    )
    .file("secrets.toml", &format!("token = \"{SECRET}\"\n"))
    .file(
        "pipeline.rhai",
        r#"
print(`connecting with ${attrs.token}`);
let raw = stage("raw");
raw.sql("creds", `SELECT '${attrs.user}' AS user, '${attrs.token}' AS token`);
raw.materialize("tok", |t| t.select(`'${attrs.token}' AS again`), [table("raw.creds")]);
stage("later").sql("broken", `SELECT * FROM raw.creds WHERE token = '${attrs.token}' AND nope = 1`);
"#,
    );
    let mut outputs = Vec::new();
    let mut cmd = p.command(&["run", "pipeline.rhai", "--instance", "dev"]);
    cmd.env("WEIR_LOG", "debug");
    let out = cmd.output().expect("run weir");
    assert_eq!(out.status.code(), Some(1), "the broken task fails the run");
    outputs.push(String::from_utf8_lossy(&out.stdout).into_owned());
    outputs.push(String::from_utf8_lossy(&out.stderr).into_owned());
    assert!(outputs[1].contains("connecting with ***"), "{}", outputs[1]);
    for args in [
        vec!["status", "pipeline.rhai", "--instance", "dev", "-v"],
        vec!["show", "raw.creds", "--instance", "dev"],
        vec![
            "sql",
            "SELECT * FROM raw.tok",
            "--instance",
            "dev",
            "--format",
            "json",
        ],
        vec![
            "run",
            "pipeline.rhai",
            "--instance",
            "dev",
            "--select",
            "later.broken",
        ],
    ] {
        outputs.push(p.weir(&args).text());
    }
    assert!(
        outputs[3].contains("***"),
        "the value is shown masked: {}",
        outputs[3]
    );
    for (i, text) in outputs.iter().enumerate() {
        assert!(
            !text.contains(SECRET),
            "output {i} shows the secret:\n{text}"
        );
    }
    for file in p.files_under(".weir") {
        if file.extension().is_some_and(|e| e == "json") {
            let text = std::fs::read_to_string(&file).expect("read");
            assert!(
                !text.contains(SECRET),
                "{} holds the secret",
                file.display()
            );
        }
    }
    // A changed secret still changes the key of the tasks that read it.
    p.file("secrets.toml", "token = \"another-one-77\"\n");
    p.run(&["--instance", "dev", "--select", "raw.creds+"])
        .fails_with(1);
    let ran = p.ran_in("dev");
    assert!(
        ran.contains("raw.creds") && ran.contains("raw.tok"),
        "{ran:?}"
    );
}

/// Each bad config stops weir with exit 2 at the line and key, before anything is written.
#[test]
fn bad_configs_point_at_the_key_and_write_nothing() {
    let cases: &[(&str, &[&str], &[&str])] = &[
        (
            "nmae = \"x\"\n",
            &[],
            &["weir.toml:1:1", "unknown field `nmae`"],
        ),
        (
            "[instances.a]\nattrs = 5\n",
            &[],
            &["weir.toml:2:9", "expected a map"],
        ),
        (
            "[instances.a]\nbase = \"zz\"\n",
            &["--instance", "a"],
            &["weir.toml:2:8", "`zz`, which is not defined"],
        ),
        (
            "[instances.a]\nbase = \"b\"\n[instances.b]\nbase = \"a\"\n",
            &["--instance", "a"],
            &["cycle: a -> b -> a"],
        ),
        (
            "[store]\nurl = \"${WEIR_TEST_NOT_SET}/x\"\n",
            &[],
            &["weir.toml:2:8", "WEIR_TEST_NOT_SET"],
        ),
        (
            "[instances.a]\ncache_mode = \"sometimes\"\n",
            &[],
            &["weir.toml:2:14", "unknown variant `sometimes`"],
        ),
        (
            "[instances.a]\n[instances.b]\n",
            &["--instance", "c"],
            &["instance `c`", "a, b"],
        ),
        (
            "[instances.__any__]\ninstance_id = \"x\"\n",
            &[],
            &["weir.toml:2", "instance_id"],
        ),
        (
            "[instances.a]\ninstance_id = \"same\"\n[instances.b]\ninstance_id = \"same\"\n",
            &[],
            &["weir.toml:3", "share the folder `same`"],
        ),
        ("secrets = \"missing.toml\"\n", &[], &["missing.toml"]),
    ];
    for (config, args, expected) in cases {
        let p = Project::new();
        p.file("weir.toml", config).file(
            "pipeline.rhai",
            "stage(\"raw\").sql(\"a\", \"SELECT 1 AS x\");",
        );
        let run = p.run(args).fails_with(2);
        for e in *expected {
            assert!(
                run.stderr.contains(e),
                "config {config:?}: expected `{e}` in:\n{}",
                run.stderr
            );
        }
        assert!(
            !p.path(".weir").exists(),
            "config {config:?} wrote to the store"
        );
    }
}

/// A project module chosen by an attr swaps the loaders (Hamilton's modules as interfaces);
/// a problem in a module's declaration points into the module.
#[test]
fn project_modules_swap_loaders() {
    let p = Project::new();
    p.file(
        "weir.toml",
        r#"
[instances.local]
attrs = { loaders = "loaders/local" }
[instances.synthetic]
attrs = { loaders = "loaders/synthetic" }
"#,
    )
    .file("data/orders.csv", "order_id,amount\n1,10\n2,20\n")
    .file(
        "loaders/local.rhai",
        "fn orders(raw) {\n    raw.load(\"orders\", \"data/orders.csv\")\n}\n",
    )
    .file(
        "loaders/synthetic.rhai",
        "fn orders(raw) {\n    raw.sql(\"orders\", \"SELECT value AS order_id, value * 10 AS amount FROM generate_series(1, 5)\")\n}\n",
    )
    .file(
        "pipeline.rhai",
        r#"
import attrs.loaders as loaders;
loaders::orders(stage("raw"));
stage("prep").sql("total", "SELECT sum(amount) AS total FROM raw.orders");
"#,
    );
    p.run(&["--instance", "local"]).ok();
    p.run(&["--instance", "synthetic"]).ok();
    assert_eq!(p.query_in("local", "SELECT total FROM prep.total"), ["30"]);
    assert_eq!(
        p.query_in("synthetic", "SELECT total FROM prep.total"),
        ["150"]
    );

    p.edit(
        "loaders/local.rhai",
        "raw.load(\"orders\"",
        "raw.load(\"orders\", \"x.csv\");\n    raw.load(\"orders\"",
    );
    let run = p.run(&["--instance", "local"]).fails_with(2);
    assert!(
        run.stderr
            .contains("loaders/local.rhai:3:9: table `raw.orders` is declared twice"),
        "{}",
        run.stderr
    );
}

/// Four ways a secret used to leak: as a `cache` token or `version` value (stored in build
/// records and manifests), escaped (a quote, backslash or tab, in JSON records and debug
/// text), cut (a long value shortened before it was masked), and as an unsalted hash that
/// lets a weak secret be guessed. None of them shows the secret now.
#[test]
fn secrets_stay_masked_as_tokens_escaped_long_and_hashed() {
    // A quote, a backslash, a tab, and long enough to be cut in `why` and `status -v`.
    const SECRET: &str = "q\"uo\\te\tTAB-0123456789-abcdefghij-klmnopqrstuvwxyz-0123456789";
    let p = Project::new();
    p.file(
        "weir.toml",
        "secrets = \"secrets.toml\"\n[instances.__any__]\nattrs = { token = \"${secrets.token}\" }\n[instances.dev]\n",
    )
    .file(
        "secrets.toml",
        &format!("token = {}\n", toml_string(SECRET)),
    )
    .file(
        "pipeline.rhai",
        r#"
let raw = stage("raw");
raw.sql("a", `SELECT 1 AS x`, #{ cache: || attrs.token, version: attrs.token });
raw.materialize("b", |t| t.select(["x"]), [table("raw.a")], #{ version: attrs.token });
"#,
    );
    p.weir(&["run", "pipeline.rhai", "--instance", "dev"]).ok();
    let mut texts = vec![
        p.weir(&["status", "pipeline.rhai", "--instance", "dev", "-v"])
            .text(),
        p.weir(&["why", "raw.a", "pipeline.rhai", "--instance", "dev"])
            .text(),
        p.weir(&[
            "log",
            "last",
            "pipeline.rhai",
            "--instance",
            "dev",
            "--events",
        ])
        .text(),
    ];
    for file in p.files_under(".weir") {
        texts.push(std::fs::read_to_string(&file).unwrap_or_default());
    }
    let escaped = serde_json::Value::String(SECRET.into()).to_string();
    let pieces = [
        SECRET,
        &escaped[1..escaped.len() - 1],
        &format!("{SECRET:?}")[1..SECRET.len()],
        &SECRET[..24],
        "0123456789-abcdefghij",
    ];
    for text in &texts {
        for piece in pieces {
            assert!(!text.contains(piece), "`{piece}` shows in:\n{text}");
        }
    }
    // The stored stand-in is keyed by the store's salt, not a plain hash of the secret.
    let plain = blake3::hash(SECRET.as_bytes()).to_hex()[..12].to_string();
    assert!(
        texts.iter().all(|t| !t.contains(&plain)),
        "an unsalted hash is stored"
    );
    assert!(p.path(".weir/dev/salt").is_file());
}

/// A TOML basic string: JSON's escapes (`\"`, `\\`, `\t`, `\uXXXX`) are TOML's too.
fn toml_string(s: &str) -> String {
    serde_json::Value::String(s.to_string()).to_string()
}
