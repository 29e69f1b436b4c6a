//! What a script declares: tasks, their kind, inputs, options and where they were declared.

use std::collections::BTreeMap;
use std::fmt;

use crate::source::Origin;

/// A table address, `stage.table`.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct TableName {
    pub stage: String,
    pub table: String,
}

impl TableName {
    pub fn new(stage: impl Into<String>, table: impl Into<String>) -> Self {
        Self {
            stage: stage.into(),
            table: table.into(),
        }
    }

    /// Parse `stage.table`; both parts must be plain identifiers.
    pub fn parse(s: &str) -> Option<Self> {
        let (stage, table) = s.split_once('.')?;
        (is_identifier(stage) && is_identifier(table)).then(|| Self::new(stage, table))
    }
}

impl fmt::Display for TableName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}", self.stage, self.table)
    }
}

/// Stage and table names become SQL schemas, tables and folder names: keep them simple.
pub fn is_identifier(s: &str) -> bool {
    let mut chars = s.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

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

#[derive(Debug, Clone)]
pub struct LoadSpec {
    /// As written in the script: a path relative to the script, an absolute path or a URL.
    pub location: String,
    pub format: FileFormat,
    pub csv: CsvOptions,
}

#[derive(Debug, Clone, Default)]
pub struct TaskOpts {
    pub version: Option<String>,
    pub description: Option<String>,
    /// Schema that unqualified table names in SQL resolve to (default: the task's own stage).
    pub default_stage: Option<String>,
    /// The token the task's `cache` closure returned: a new token means fresh input.
    pub cache: Option<String>,
    /// Every option that changes the data, rendered canonically for the cache key.
    pub keyed: BTreeMap<String, String>,
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
