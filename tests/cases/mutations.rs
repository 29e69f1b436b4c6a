//! No input makes weir panic, and a bad input loses nothing already committed. The
//! quickstart's script, its two data files and a weir.toml are mutated at random (seeded, so a
//! failure reproduces: the message prints the mutated text) and run through the real binary.

use std::collections::BTreeMap;

use crate::common::Project;

/// splitmix64: a fixed sequence for a seed.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
}

/// Fragments that tend to break each kind of file in interesting ways.
const FRAGMENTS: &[&str] = &[
    "(",
    ")",
    "\"",
    "`",
    "{",
    "}",
    ";",
    ",",
    "#{",
    "[",
    "]",
    "|",
    "\n",
    "é",
    "${",
    "::",
    "/*",
    "SELECT",
    "FROM",
    "raw.orders",
    "prep.nope",
    "0",
    "-1",
    "1e999",
    "let x = ",
    "fn f(",
    "=",
    "\"\"",
    "[[",
    "null",
    "\t",
    "\\",
];

/// One random edit: delete a span, insert a fragment, duplicate or drop a line, or truncate.
fn mutate(text: &str, rng: &mut Rng) -> String {
    let chars: Vec<char> = text.chars().collect();
    let at = rng.below(chars.len() + 1);
    let lines: Vec<&str> = text.lines().collect();
    match rng.below(5) {
        0 => {
            let end = (at + 1 + rng.below(20)).min(chars.len());
            chars[..at].iter().chain(&chars[end..]).collect()
        }
        1 => {
            let fragment = FRAGMENTS[rng.below(FRAGMENTS.len())];
            let head: String = chars[..at].iter().collect();
            let tail: String = chars[at..].iter().collect();
            format!("{head}{fragment}{tail}")
        }
        2 if !lines.is_empty() => {
            let i = rng.below(lines.len());
            let mut out = lines.clone();
            out.insert(i, lines[i]);
            out.join("\n")
        }
        3 if !lines.is_empty() => {
            let i = rng.below(lines.len());
            let mut out = lines.clone();
            out.remove(i);
            out.join("\n")
        }
        _ => chars[..at].iter().collect(),
    }
}

/// Every manifest and the data files it lists, as they stand.
fn committed(p: &Project) -> BTreeMap<String, String> {
    let dir = p.instance_dir_of("dev").join("manifests");
    let mut out = BTreeMap::new();
    for entry in std::fs::read_dir(&dir).into_iter().flatten().flatten() {
        let text = std::fs::read_to_string(entry.path()).unwrap_or_default();
        out.insert(entry.file_name().to_string_lossy().to_string(), text);
    }
    out
}

/// Each manifest parses and every file it lists is there.
fn intact(p: &Project, manifests: &BTreeMap<String, String>) -> Result<(), String> {
    for (name, text) in manifests {
        let m: serde_json::Value =
            serde_json::from_str(text).map_err(|e| format!("manifest {name}: {e}"))?;
        let tables = m["tables"].as_object().cloned().unwrap_or_default();
        for (table, t) in tables {
            for f in t["files"].as_array().cloned().unwrap_or_default() {
                let f = f.as_str().unwrap_or_default();
                if !p.instance_dir_of("dev").join(f).is_file() {
                    return Err(format!("{name}: {table} lost its file {f}"));
                }
            }
        }
    }
    Ok(())
}

/// Mutate `file` of the quickstart `rounds` times, running weir each time.
fn fuzz(file: &str, seed: u64, rounds: usize) -> Vec<String> {
    let p = Project::example("quickstart");
    p.file(
        "weir.toml",
        "name = \"shop\"\ndefault_instance = \"dev\"\n\n[store]\nurl = \".weir\"\n\n\
         [instances.__any__]\nattrs = { top = 3, region = \"eu\" }\n\n\
         [instances.dev]\ncache_mode = \"normal\"\nattrs = { top = 5 }\n",
    );
    p.run(&[]).ok();
    let original = p.read(file);
    let mut rng = Rng(seed);
    let mut failures = Vec::new();
    let mut codes = [0usize; 3];
    for round in 0..rounds {
        let mut text = original.clone();
        for _ in 0..1 + rng.below(3) {
            text = mutate(&text, &mut rng);
        }
        p.file(file, &text);
        let before = committed(&p);
        let run = p.run(&[]);
        let output = run.text();
        if let Some(n) = usize::try_from(run.code)
            .ok()
            .and_then(|c| codes.get_mut(c))
        {
            *n += 1;
        }
        let problem = if output.contains("panicked") || output.contains("RUST_BACKTRACE") {
            Some("panicked".to_string())
        } else if ![0, 1, 2].contains(&run.code) {
            Some(format!("exit code {}", run.code))
        } else if run.code == 2 && committed(&p) != before {
            Some("a usage or script error changed what is committed".to_string())
        } else {
            intact(&p, &committed(&p)).err()
        };
        if let Some(problem) = problem {
            failures.push(format!(
                "{file} round {round} (seed {seed}): {problem}\n--- input\n{text}\n--- output\n{output}"
            ));
        }
    }
    // Mutations that all fail alike, or all pass, test nothing.
    if rounds >= 20 && codes.iter().filter(|&&n| n > 0).count() < 2 {
        failures.push(format!(
            "{file}: exit codes 0/1/2 were {codes:?}: the mutations are too tame"
        ));
    }
    eprintln!("{file}: exit codes 0/1/2 {codes:?} in {rounds} rounds");
    // The original input still runs after all that.
    p.file(file, &original);
    let last = p.run(&[]);
    if last.code != 0 {
        failures.push(format!(
            "{file}: the original no longer runs:\n{}",
            last.text()
        ));
    }
    failures
}

/// `WEIR_MUTATIONS=N` runs N times as many rounds (and other seeds), to hunt further.
#[test]
fn mutated_scripts_configs_and_data_never_panic_or_lose_commits() {
    let scale: usize = std::env::var("WEIR_MUTATIONS")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(1);
    let targets: [(&str, u64, usize); 4] = [
        ("pipeline.rhai", 11, 60),
        ("data/orders.csv", 23, 30),
        ("data/customers.ndjson", 37, 30),
        ("weir.toml", 41, 30),
    ];
    let failures: Vec<String> = std::thread::scope(|scope| {
        let workers: Vec<_> = targets
            .iter()
            .map(|&(file, seed, rounds)| {
                scope.spawn(move || fuzz(file, seed * scale as u64, rounds * scale))
            })
            .collect();
        workers
            .into_iter()
            .flat_map(|w| w.join().unwrap_or_default())
            .collect()
    });
    assert!(
        failures.is_empty(),
        "{} mutated inputs went wrong:\n\n{}",
        failures.len(),
        failures.join("\n\n")
    );
}
