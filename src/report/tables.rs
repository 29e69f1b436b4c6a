//! Printing query results: a text table, CSV or JSON. An empty result still shows its columns.

use std::io::Write;

use datafusion::arrow::datatypes::SchemaRef;
use datafusion::arrow::record_batch::RecordBatch;
use datafusion::arrow::util::pretty::pretty_format_batches;

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum OutputFormat {
    Table,
    Csv,
    /// A JSON array of one object per row.
    Json,
}

/// A query's result: its columns, and its rows in batches (maybe none).
pub struct Rows {
    pub schema: SchemaRef,
    pub batches: Vec<RecordBatch>,
}

/// Rows as a small text table (for a diagnostic).
pub fn format_rows(rows: &Rows) -> String {
    let empty = [RecordBatch::new_empty(rows.schema.clone())];
    let batches = match rows.batches.is_empty() {
        true => &empty[..],
        false => &rows.batches[..],
    };
    pretty_format_batches(batches).map_or_else(|e| e.to_string(), |t| t.to_string())
}

pub fn print_batches(rows: &Rows, format: OutputFormat) -> std::io::Result<()> {
    // Formatted whole, then redacted and written at once: a secret never straddles writes.
    let mut out: Vec<u8> = Vec::new();
    let arrow = |e: datafusion::arrow::error::ArrowError| {
        std::io::Error::other(format!("cannot format the result: {e}"))
    };
    // With no rows the writers would print nothing at all; an empty batch keeps the header.
    let empty = [RecordBatch::new_empty(rows.schema.clone())];
    let batches = match rows.batches.iter().all(|b| b.num_rows() == 0) {
        true => &empty[..],
        false => &rows.batches[..],
    };
    match format {
        OutputFormat::Table => {
            writeln!(out, "{}", pretty_format_batches(batches).map_err(arrow)?)?;
        }
        OutputFormat::Csv => {
            let mut w = datafusion::arrow::csv::Writer::new(&mut out);
            for b in batches {
                w.write(b).map_err(arrow)?;
            }
        }
        OutputFormat::Json => {
            let mut w = datafusion::arrow::json::ArrayWriter::new(&mut out);
            for b in batches {
                w.write(b).map_err(arrow)?;
            }
            w.finish().map_err(arrow)?;
            if out.is_empty() {
                out.extend_from_slice(b"[]");
            }
            out.push(b'\n');
        }
    }
    super::stdout_text(&out)
}

/// A committed table's columns (with its primary key) and the data checks its build passed.
pub fn print_schema(build: &crate::store::TableBuild) -> std::io::Result<()> {
    let mut out = Vec::new();
    let width = build.schema.iter().map(|c| c.name.len()).max().unwrap_or(0);
    for c in &build.schema {
        let null = if c.nullable { "" } else { " not null" };
        let key = if build.primary_key.contains(&c.name) {
            "  primary key"
        } else {
            ""
        };
        let about = match build.descriptions.get(&c.name) {
            Some(d) => format!("  -- {d}"),
            None => String::new(),
        };
        writeln!(out, "{:<width$}  {}{null}{key}{about}", c.name, c.data_type)?;
    }
    for c in &build.partition_by {
        writeln!(out, "{:<width$}  {}  partition", c.name, c.data_type)?;
    }
    for check in build.checks.values() {
        let result = match check.offending {
            0 => "passed".to_string(),
            n => format!("warned: {}", super::plural(n, "offending row")),
        };
        writeln!(out, "check `{}` {result}", check.check)?;
    }
    super::stdout_text(&out)
}
