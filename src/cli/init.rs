//! `weir init`: a new project that runs as is, made from the quickstart example so the two
//! never drift apart.

use std::path::{Path, PathBuf};

use clap::Args;

use crate::report::print_init;
use crate::{Error, Result};

#[derive(Debug, Args)]
pub struct InitArgs {
    /// The project folder (created if missing).
    #[arg(default_value = ".")]
    pub dir: PathBuf,
}

const SCRIPT: &str = include_str!("../../examples/quickstart/pipeline.rhai");
const ORDERS: &str = include_str!("../../examples/quickstart/data/orders.csv");
const CUSTOMERS: &str = include_str!("../../examples/quickstart/data/customers.ndjson");

fn config(name: &str) -> String {
    format!(
        r#"# Settings for this project; every key is optional (docs/src/configuration.md).
name = "{name}"

[store]
# Where tables, manifests and run records go: a folder next to this file, or a file:// URL.
url = ".weir"

# Instances keep full / midi / mini data apart, each in its own part of the store, e.g.
#   [instances.mini]
#   attrs = {{ sample = 0.01 }}
# and then `weir run --instance mini`; the script reads `instance` and `attrs`.
"#
    )
}

pub fn init(args: InitArgs) -> Result<()> {
    let dir = &args.dir;
    let name = std::path::absolute(dir)
        .ok()
        .and_then(|d| d.file_name().map(|n| n.to_string_lossy().to_string()))
        .unwrap_or_else(|| "pipeline".into());
    let script = SCRIPT.replace("examples/quickstart/pipeline.rhai", "pipeline.rhai");
    let files: [(&str, String); 5] = [
        ("pipeline.rhai", script),
        ("data/orders.csv", ORDERS.to_string()),
        ("data/customers.ndjson", CUSTOMERS.to_string()),
        ("weir.toml", config(&name.replace(['"', '\\'], ""))),
        (".gitignore", ".weir/\n".to_string()),
    ];
    let existing: Vec<&str> = files
        .iter()
        .map(|(f, _)| *f)
        .filter(|f| dir.join(f).exists())
        .collect();
    if !existing.is_empty() {
        return Err(Error::usage(
            format!(
                "{} already has {}: weir init writes nothing over existing files",
                shown(dir),
                existing.join(", ")
            ),
            "run weir init in an empty folder, or name a new one: weir init my_pipeline",
        ));
    }
    for (file, text) in &files {
        let path = dir.join(file);
        let written = path
            .parent()
            .map_or(Ok(()), std::fs::create_dir_all)
            .and_then(|()| std::fs::write(&path, text));
        written.map_err(|e| {
            Error::usage(
                format!("cannot write {}: {e}", shown(&path)),
                "check that the folder can be written",
            )
        })?;
    }
    let names: Vec<&str> = files.iter().map(|(f, _)| *f).collect();
    let script = shown(&dir.join("pipeline.rhai"));
    print_init(&shown(dir), &names, &script)?;
    Ok(())
}

fn shown(path: &Path) -> String {
    let text = path.display().to_string();
    text.strip_prefix("./").unwrap_or(&text).to_string()
}
