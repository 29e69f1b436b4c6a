//! Every `rhai` snippet in the README runs. By default a snippet is appended to the
//! quickstart's pipeline and run in a copy of the quickstart; an HTML comment just before the
//! block says otherwise: `<!-- runs alone in examples/NAME -->` runs the snippet as the whole
//! script of a copy of that example, and `, instance X after Y` runs instance Y first and then
//! the snippet as instance X.

use std::path::Path;

use crate::common::Project;

struct Snippet {
    line: usize,
    code: String,
    example: String,
    alone: bool,
    instances: Option<(String, String)>,
}

fn snippets(readme: &str) -> Vec<Snippet> {
    let mut out = Vec::new();
    let lines: Vec<&str> = readme.lines().collect();
    let mut i = 0;
    while i < lines.len() {
        if lines[i].trim() != "```rhai" {
            i += 1;
            continue;
        }
        let directive = lines[..i]
            .iter()
            .rev()
            .find(|l| !l.trim().is_empty())
            .and_then(|l| l.trim().strip_prefix("<!-- runs "))
            .and_then(|l| l.strip_suffix("-->"))
            .unwrap_or("")
            .trim();
        let start = i + 1;
        let end = start
            + lines[start..]
                .iter()
                .position(|l| l.trim() == "```")
                .expect("closed block");
        out.push(parse(directive, start, lines[start..end].join("\n")));
        i = end + 1;
    }
    out
}

fn parse(directive: &str, line: usize, code: String) -> Snippet {
    let (place, instances) = match directive.split_once(", instance ") {
        Some((place, inst)) => {
            let (x, y) = inst.split_once(" after ").expect("instance X after Y");
            (place, Some((x.to_string(), y.to_string())))
        }
        None => (directive, None),
    };
    let alone = place.starts_with("alone");
    let example = place
        .rsplit_once("in examples/")
        .map_or("quickstart", |(_, e)| e)
        .to_string();
    Snippet {
        line,
        code,
        example,
        alone,
        instances,
    }
}

#[test]
fn every_readme_snippet_runs() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let readme = std::fs::read_to_string(root.join("README.md")).expect("README");
    let all = snippets(&readme);
    assert!(all.len() >= 4, "found {} snippets", all.len());
    for s in all {
        let p = Project::example(&s.example);
        let script = if s.alone {
            s.code.clone()
        } else {
            format!("{}\n{}\n", p.read("pipeline.rhai"), s.code)
        };
        if let Some((_, first)) = &s.instances {
            p.run(&["--instance", first]).ok();
        }
        p.file("pipeline.rhai", &script);
        let extra: Vec<&str> = match &s.instances {
            Some((x, _)) => vec!["--instance", x.as_str()],
            None => Vec::new(),
        };
        let run = p.run(&extra);
        assert_eq!(
            run.code,
            0,
            "the README's snippet at line {} does not run:\n{}\n{}",
            s.line,
            s.code,
            run.text()
        );
    }
}
