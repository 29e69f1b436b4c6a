//! Every `rhai`, `toml` and `sh` block of the README and of the book (docs/src) runs, each in
//! a fresh copy of examples/quickstart (with the repository's `examples/` inside it) unless an
//! HTML comment on the line before the block says otherwise; and every link between them leads
//! to a file and a heading that exist. `text` blocks are output and are not run.
//!
//! The comment's directives, separated by commas: `alone in examples/NAME` (a rhai block is the
//! whole script of a copy of that example; otherwise it is appended to the quickstart's),
//! `continues` (run in the previous block's project, after it), `instance X after Y` (run
//! instance Y first, then the block as X), `exits N` (the exit code it must end with),
//! `with s3` (an S3-compatible server runs, its AWS_* variables set, bucket `lake` made),
//! `first: COMMAND` (a shell command run in the project before the block: data an example
//! generates) and
//! `not run: why` (for a block of builds and installs only). A toml block is the project's
//! weir.toml; rhai and toml blocks are checked by `weir run`. An sh block runs as one `sh -e`
//! script with the test build as `weir`; `cargo run --release --` is `weir`, and the lines that
//! build or install (`cargo`, `pip`, `npm`, `apt-get`, `RUSTFLAGS=`, `bash .ci/run`, and with an
//! S3 server `s3s-fs`, `export AWS_`, `mkdir -p /tmp/s3`) are not run.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use crate::common::servers::S3;
use crate::common::{Project, Run};

#[derive(Debug, Clone, Copy, PartialEq)]
enum Lang {
    Rhai,
    Toml,
    Sh,
}

#[derive(Debug, Default)]
struct Directive {
    example: Option<String>,
    alone: bool,
    continues: bool,
    instances: Option<(String, String)>,
    exits: i32,
    s3: bool,
    first: Option<String>,
    not_run: Option<String>,
}

struct Block {
    line: usize,
    lang: Lang,
    code: String,
    directive: Directive,
}

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// The README and every chapter of the book.
fn documents() -> Vec<PathBuf> {
    let mut files = vec![root().join("README.md")];
    let mut chapters: Vec<PathBuf> = std::fs::read_dir(root().join("docs/src"))
        .expect("docs/src")
        .map(|e| e.expect("entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == "md"))
        .collect();
    chapters.sort();
    files.extend(chapters);
    files
}

fn directive(comment: &str) -> Directive {
    let mut d = Directive::default();
    let text = comment.trim();
    if let Some(why) = text.strip_prefix("not run:") {
        d.not_run = Some(why.trim().to_string());
        return d;
    }
    for part in text.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        if let Some(example) = part.strip_prefix("alone in examples/") {
            d.alone = true;
            d.example = Some(example.to_string());
        } else if let Some(example) = part.strip_prefix("in examples/") {
            d.example = Some(example.to_string());
        } else if part == "continues" {
            d.continues = true;
        } else if let Some(inst) = part.strip_prefix("instance ") {
            let (x, y) = inst.split_once(" after ").expect("instance X after Y");
            d.instances = Some((x.to_string(), y.to_string()));
        } else if let Some(code) = part.strip_prefix("exits ") {
            d.exits = code.parse().expect("exits N");
        } else if part == "with s3" {
            d.s3 = true;
        } else if let Some(command) = part.strip_prefix("first:") {
            d.first = Some(command.trim().to_string());
        } else {
            panic!("unknown directive `{part}` in `<!-- {comment} -->`");
        }
    }
    d
}

fn blocks(text: &str) -> Vec<Block> {
    let lines: Vec<&str> = text.lines().collect();
    let mut out = Vec::new();
    let mut i = 0;
    while i < lines.len() {
        let fence = lines[i].trim();
        let lang = match fence {
            "```rhai" => Some(Lang::Rhai),
            "```toml" => Some(Lang::Toml),
            "```sh" | "```bash" | "```shell" => Some(Lang::Sh),
            _ => None,
        };
        if !fence.starts_with("```") {
            i += 1;
            continue;
        }
        let start = i + 1;
        let end = start
            + lines[start..]
                .iter()
                .position(|l| l.trim() == "```")
                .unwrap_or_else(|| panic!("the block at line {start} is not closed"));
        if let Some(lang) = lang {
            let comment = lines[..i]
                .iter()
                .rev()
                .find(|l| !l.trim().is_empty())
                .and_then(|l| l.trim().strip_prefix("<!--"))
                .and_then(|l| l.strip_suffix("-->"))
                .unwrap_or("");
            out.push(Block {
                line: start,
                lang,
                code: lines[start..end].join("\n"),
                directive: directive(comment),
            });
        }
        i = end + 1;
    }
    out
}

/// A line of an sh block that builds or installs, which the test does not run.
fn builds(line: &str, s3: bool) -> bool {
    let builds = [
        "cargo ",
        "pip ",
        "npm ",
        "apt-get ",
        "RUSTFLAGS=",
        "bash .ci/run",
    ];
    let servers = ["s3s-fs ", "export AWS_", "mkdir -p /tmp/s3"];
    builds.iter().any(|b| line.starts_with(b))
        || (s3 && servers.iter().any(|b| line.starts_with(b)))
}

/// The sh block as the test runs it: `cargo run --release --` as `weir`, builds left out (with
/// the lines they continue onto).
fn script(code: &str, s3: bool) -> String {
    let mut out = Vec::new();
    let mut skipping = false;
    for line in code.lines() {
        let trimmed = line.trim();
        let dropped = skipping || trimmed.starts_with('#');
        let line = line.replacen("cargo run --release --", "weir", 1);
        let dropped = dropped || builds(line.trim(), s3);
        skipping = dropped && trimmed.ends_with('\\');
        if !dropped {
            out.push(line);
        }
    }
    out.join("\n")
}

fn copy_examples(p: &Project) {
    let dir = p.path("examples");
    for e in std::fs::read_dir(root().join("examples")).expect("examples") {
        let from = e.expect("entry").path();
        let to = dir.join(from.file_name().expect("name"));
        std::fs::create_dir_all(&to).expect("mkdir");
        crate::common::copy_dir(&from, &to);
    }
}

/// A folder with `weir` in it, the test build, for sh blocks' PATH.
fn bin_dir() -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("bin dir");
    std::os::unix::fs::symlink(crate::common::weir_bin(), dir.path().join("weir")).expect("link");
    dir
}

struct Context {
    project: Option<Project>,
    s3: Option<S3>,
    bin: tempfile::TempDir,
}

impl Context {
    fn env(&self) -> Vec<(&'static str, String)> {
        let path = format!(
            "{}:{}",
            self.bin.path().display(),
            std::env::var("PATH").unwrap_or_default()
        );
        let mut env = vec![("PATH", path)];
        if let Some(s3) = &self.s3 {
            env.extend(s3.env());
        }
        env
    }
}

fn run_block(cx: &mut Context, b: &Block) -> Result<(), String> {
    let d = &b.directive;
    if let Some(why) = &d.not_run {
        let runnable = script(&b.code, d.s3);
        return match b.lang == Lang::Sh && runnable.trim().is_empty() && !why.is_empty() {
            true => Ok(()),
            false => Err(format!(
                "`not run: {why}` is only for sh blocks of builds and installs; this block runs:\n{runnable}"
            )),
        };
    }
    if d.s3 && cx.s3.is_none() {
        let s3 = S3::start();
        s3.bucket("lake");
        cx.s3 = Some(s3);
    }
    if !d.continues || cx.project.is_none() {
        let p = Project::example(d.example.as_deref().unwrap_or("quickstart"));
        copy_examples(&p);
        cx.project = Some(p);
    }
    let env = cx.env();
    let p = cx.project.as_ref().expect("a project");
    if let Some(first) = &d.first {
        let out = p.shell(first).output().map_err(|e| e.to_string())?;
        if !out.status.success() {
            return Err(format!(
                "`{first}` failed:\n{}",
                String::from_utf8_lossy(&out.stderr)
            ));
        }
    }
    let instance: Vec<&str> = match &d.instances {
        Some((x, first)) => {
            p.weir_env(&["run", "pipeline.rhai", "--instance", first], &env)
                .ok();
            vec!["--instance", x.as_str()]
        }
        None => Vec::new(),
    };
    let run: Run = match b.lang {
        Lang::Rhai => {
            let script = match d.alone {
                true => b.code.clone(),
                false => format!("{}\n{}\n", p.read("pipeline.rhai"), b.code),
            };
            p.file("pipeline.rhai", &script);
            let mut args = vec!["run", "pipeline.rhai"];
            args.extend(&instance);
            p.weir_env(&args, &env)
        }
        Lang::Toml => {
            p.file("weir.toml", &b.code);
            let mut args = vec!["run", "pipeline.rhai"];
            args.extend(&instance);
            p.weir_env(&args, &env)
        }
        Lang::Sh => {
            let mut cmd = p.shell(&format!("set -e\n{}", script(&b.code, d.s3)));
            for (k, v) in &env {
                cmd.env(k, v);
            }
            let out = cmd.output().map_err(|e| e.to_string())?;
            Run {
                code: out.status.code().unwrap_or(-1),
                stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
                stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
            }
        }
    };
    if run.code != d.exits || run.text().contains("panicked") {
        return Err(format!(
            "exit {} (expected {}):\n{}\n---\n{}",
            run.code,
            d.exits,
            b.code,
            run.text()
        ));
    }
    Ok(())
}

/// Every code block of the README and the book runs as the documents say it does.
#[test]
fn every_code_block_of_the_readme_and_the_book_runs() {
    let files = documents();
    assert!(files.len() >= 10, "the book has {} files", files.len());
    let work: Vec<(PathBuf, Vec<Block>)> = files
        .into_iter()
        .map(|f| {
            let text = std::fs::read_to_string(&f).expect("read");
            let b = blocks(&text);
            (f, b)
        })
        .collect();
    let total: usize = work.iter().map(|(_, b)| b.len()).sum();
    assert!(total >= 40, "only {total} code blocks");
    // One thread a document: blocks that continue each other stay in order.
    let failures: Vec<String> = std::thread::scope(|scope| {
        let workers: Vec<_> = work
            .chunks(work.len().div_ceil(4))
            .map(|part| {
                scope.spawn(move || {
                    let mut failed = Vec::new();
                    for (file, blocks) in part {
                        let mut cx = Context {
                            project: None,
                            s3: None,
                            bin: bin_dir(),
                        };
                        let name = file
                            .strip_prefix(root())
                            .unwrap_or(file)
                            .display()
                            .to_string();
                        for b in blocks {
                            if let Err(e) = run_block(&mut cx, b) {
                                failed.push(format!("{name}:{}: {e}", b.line));
                            }
                        }
                    }
                    failed
                })
            })
            .collect();
        workers
            .into_iter()
            .flat_map(|w| {
                w.join()
                    .unwrap_or_else(|_| vec!["a worker panicked".into()])
            })
            .collect()
    });
    assert!(
        failures.is_empty(),
        "{} of {total} blocks failed:\n\n{}",
        failures.len(),
        failures.join("\n\n")
    );
}

/// A heading's anchor as mdBook makes it: lower case, spaces to `-`, other punctuation gone.
fn anchor(heading: &str) -> String {
    heading
        .trim()
        .to_lowercase()
        .chars()
        .filter_map(|c| match c {
            ' ' => Some('-'),
            c if c.is_alphanumeric() || c == '-' || c == '_' => Some(c),
            _ => None,
        })
        .collect()
}

fn anchors(text: &str) -> BTreeSet<String> {
    let mut fenced = false;
    let mut out = BTreeSet::new();
    for line in text.lines() {
        if line.trim_start().starts_with("```") {
            fenced = !fenced;
        }
        if !fenced && line.starts_with('#') {
            out.insert(anchor(line.trim_start_matches('#')));
        }
    }
    out
}

/// The targets of markdown links `[text](target)` outside code, that are not web addresses.
fn links(text: &str) -> Vec<String> {
    let mut fenced = false;
    let mut out = Vec::new();
    for line in text.lines() {
        if line.trim_start().starts_with("```") {
            fenced = !fenced;
            continue;
        }
        if fenced {
            continue;
        }
        let mut rest = line;
        while let Some(i) = rest.find("](") {
            rest = &rest[i + 2..];
            let Some(end) = rest.find(')') else { break };
            let target = &rest[..end];
            if !target.contains("://") && !target.starts_with("mailto:") && !target.contains(' ') {
                out.push(target.to_string());
            }
            rest = &rest[end..];
        }
    }
    out
}

/// Every link of the README and the book leads to a file that exists and, with an anchor, to
/// a heading in it.
#[test]
fn every_link_of_the_readme_and_the_book_leads_somewhere() {
    let mut broken = Vec::new();
    for file in documents() {
        let text = std::fs::read_to_string(&file).expect("read");
        let dir = file.parent().expect("folder");
        for target in links(&text) {
            let (path, hash) = match target.split_once('#') {
                Some((p, h)) => (p, Some(h)),
                None => (target.as_str(), None),
            };
            let to: PathBuf = if path.is_empty() {
                file.clone()
            } else {
                dir.join(path)
            };
            let name = file
                .strip_prefix(root())
                .unwrap_or(&file)
                .display()
                .to_string();
            if !Path::new(&to).exists() {
                broken.push(format!("{name}: `{target}`: no such file"));
                continue;
            }
            if let Some(hash) = hash
                && to.extension().is_some_and(|e| e == "md")
            {
                let headings = anchors(&std::fs::read_to_string(&to).expect("read"));
                if !headings.contains(hash) {
                    broken.push(format!("{name}: `{target}`: no such heading"));
                }
            }
        }
    }
    assert!(broken.is_empty(), "broken links:\n{}", broken.join("\n"));
}

/// The README stays a front page: what weir is, set-up, quickstart, concepts, commands, links.
#[test]
fn the_readme_is_short() {
    let readme = std::fs::read_to_string(root().join("README.md")).expect("README");
    let lines = readme.lines().count();
    assert!(
        lines < 250,
        "README.md has {lines} lines; the rest belongs in docs/"
    );
}
