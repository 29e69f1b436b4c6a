//! What a script declares: tasks, their kind, inputs, options and where they were declared.

use crate::names::TableName;
use crate::source::Origin;
use std::collections::BTreeMap;

#[derive(Debug, Clone)]
pub struct TaskDecl {
    pub stage: String,
    pub name: String,
    /// Tables the task writes, in its stage; `[name]` unless the `outputs` option says otherwise.
    pub outputs: Vec<String>,
    pub kind: TaskKind,
    pub opts: TaskOpts,
    pub origin: Origin,
}

impl TaskDecl {
    pub fn id(&self) -> TableName {
        TableName::new(&self.stage, &self.name)
    }
}

#[derive(Debug, Clone)]
pub enum TaskKind {
    Load(LoadSpec),
    Sql {
        sql: String,
        /// The `.sql` file it was read from (`sql_file`), so errors can point into it.
        file: Option<std::path::PathBuf>,
        /// `statements: true`: views, then the query that is the table (`flow::statements`).
        statements: bool,
    },
    Rhai {
        func: rhai::FnPtr,
        inputs: Vec<TableName>,
    },
    /// Rows of another instance's committed table.
    Sample(SampleSpec),
}

impl TaskKind {
    pub fn label(&self) -> &'static str {
        match self {
            TaskKind::Load(_) => "load",
            TaskKind::Sql { .. } => "sql",
            TaskKind::Rhai { .. } => "rhai",
            TaskKind::Sample(_) => "sample",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FileFormat {
    Csv,
    Parquet,
    Json,
}

impl FileFormat {
    pub fn name(self) -> &'static str {
        match self {
            FileFormat::Csv => "csv",
            FileFormat::Parquet => "parquet",
            FileFormat::Json => "json",
        }
    }

    pub fn from_name(s: &str) -> Option<Self> {
        match s.to_ascii_lowercase().as_str() {
            "csv" | "tsv" => Some(FileFormat::Csv),
            "parquet" | "pq" => Some(FileFormat::Parquet),
            "json" | "ndjson" | "jsonl" => Some(FileFormat::Json),
            _ => None,
        }
    }

    /// Guess the format from a path's extension (the last one that is a known format).
    pub fn from_path(path: &str) -> Option<Self> {
        // A URL's query (`r.csv?sig=...`) is not part of the file's name.
        let path = match path.contains("://") {
            true => path.split(['?', '#']).next().unwrap_or(path),
            false => path,
        };
        let name = path.rsplit('/').next().unwrap_or(path);
        name.rsplit('.').find_map(Self::from_name)
    }

    pub fn extension(self) -> &'static str {
        match self {
            FileFormat::Csv => ".csv",
            FileFormat::Parquet => ".parquet",
            FileFormat::Json => ".json",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CsvOptions {
    pub delimiter: u8,
    pub header: bool,
    /// Column name -> arrow type name, replacing the inferred type.
    pub types: BTreeMap<String, String>,
}

impl Default for CsvOptions {
    fn default() -> Self {
        Self {
            delimiter: b',',
            header: true,
            types: BTreeMap::new(),
        }
    }
}

impl LoadSpec {
    /// The location as a URL, when it is one (`s3://`, `https://`, `file://`).
    pub fn url(&self) -> Option<url::Url> {
        self.location
            .contains("://")
            .then(|| url::Url::parse(&self.location).ok())
            .flatten()
    }
}

#[derive(Debug, Clone)]
pub struct LoadSpec {
    /// As written in the script: a path relative to the script, an absolute path or a URL.
    pub location: String,
    /// As DataFusion reads it: a relative path joined to the script's folder (resolved once,
    /// when the load is declared).
    pub resolved: String,
    pub format: FileFormat,
    pub csv: CsvOptions,
    /// `copy: false`: Parquet files are read where they are, pinned by their fingerprint,
    /// instead of copied into the store.
    pub in_place: bool,
    /// `strict: true`: files are fingerprinted by their content, not their size and time.
    pub strict: bool,
}

#[derive(Debug, Clone, Default)]
pub struct TaskOpts {
    pub version: Option<String>,
    pub description: Option<String>,
    /// `tags`, with its stage's: for `--select tag:NAME`. Not part of the key.
    pub tags: Vec<String>,
    /// `retries`: how many times a task that failed for a reason outside it (a store or a
    /// source, not its code or a check) runs again. Not part of the key.
    pub retries: u32,
    /// `retry_delay`: the wait before the first retry, doubled before each next one.
    pub retry_delay: Option<std::time::Duration>,
    /// `columns`: the output's columns, described, and with `contract: true` enforced.
    pub columns: Option<Vec<crate::script::contract::ContractColumn>>,
    pub contract: bool,
    /// Schema that unqualified table names in SQL resolve to (default: the task's own stage).
    pub default_stage: Option<String>,
    /// The token the task's `cache` closure returned: a new token means fresh input.
    pub cache: Option<String>,
    /// Every option that changes the data, rendered canonically for the cache key.
    pub keyed: BTreeMap<String, String>,
    /// Hive-style partition columns of the outputs.
    pub partition_by: Vec<String>,
    /// `incremental`: evaluated once per partition whose inputs changed (`exec::partitions`).
    pub incremental: bool,
    /// The `expect` option: checks of the outputs, as written, with their severity.
    pub expect: Vec<(String, crate::script::checks::Severity)>,
    /// `primary_key`: columns that are never null and together unique.
    pub primary_key: Vec<String>,
}

impl TaskOpts {
    /// Record an option that changes the data, for the cache key. Values are kept as JSON
    /// (object keys sorted), a format that does not change with weir's compiler or crates.
    pub fn key_option(&mut self, name: &str, value: serde_json::Value) {
        self.keyed.insert(name.to_string(), value.to_string());
    }
}

impl CsvOptions {
    /// The options as the cache key keeps them.
    pub fn keyed(&self) -> serde_json::Value {
        serde_json::json!({
            "delimiter": (self.delimiter as char).to_string(),
            "header": self.header,
            "types": self.types,
        })
    }
}

/// Which rows of another instance's committed table a sample keeps.
#[derive(Debug, Clone, PartialEq)]
pub struct SampleSpec {
    /// The instance sampled from, by its name in weir.toml.
    pub instance: String,
    pub table: TableName,
    pub mode: SampleMode,
}

#[derive(Debug, Clone, PartialEq)]
pub enum SampleMode {
    /// The first `n` rows, in the order they are stored.
    Head(u64),
    /// Each row (or, with `key`, each value of the key column) kept with probability
    /// `fraction`, decided by a hash with `seed`: the same seed keeps the same keys in every
    /// table, so samples by a shared key join up.
    Fraction {
        fraction: f64,
        seed: u64,
        key: Option<String>,
    },
    /// The rows whose `key` occurs in column `parent_key` of a local table (already sampled).
    Follow {
        key: String,
        parent: TableName,
        parent_key: String,
    },
}

impl SampleSpec {
    /// `instance:stage.table`: how the sampled table appears among a task's inputs.
    pub fn source_name(&self) -> String {
        format!("{}:{}", self.instance, self.table)
    }

    /// The spec in words, for the cache key and for messages.
    pub fn describe(&self) -> String {
        let how = match &self.mode {
            SampleMode::Head(n) => format!("head {n}"),
            SampleMode::Fraction {
                fraction,
                seed,
                key: None,
            } => format!("fraction {fraction} seed {seed}"),
            SampleMode::Fraction {
                fraction,
                seed,
                key: Some(k),
            } => format!("fraction {fraction} seed {seed} by key {k}"),
            SampleMode::Follow {
                key,
                parent,
                parent_key,
            } => format!("{key} in {parent}.{parent_key}"),
        };
        format!("{}:{} {how}", self.instance, self.table)
    }
}
