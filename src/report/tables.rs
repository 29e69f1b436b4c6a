//! Printing query results: a text table, CSV or JSON lines.

use datafusion::arrow::record_batch::RecordBatch;
use std::io::Write;

use datafusion::arrow::util::pretty::pretty_format_batches;

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum OutputFormat {
    Table,
    Csv,
    Json,
}

pub fn print_batches(batches: &[RecordBatch], format: OutputFormat) -> std::io::Result<()> {
    // Formatted whole, then redacted and written at once: a secret never straddles writes.
    let mut out: Vec<u8> = Vec::new();
    let arrow = |e: datafusion::arrow::error::ArrowError| {
        std::io::Error::other(format!("cannot format the result: {e}"))
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
            let mut w = datafusion::arrow::json::LineDelimitedWriter::new(&mut out);
            for b in batches {
                w.write(b).map_err(arrow)?;
            }
            w.finish().map_err(arrow)?;
        }
    }
    super::stdout_text(&out)?;
    Ok(())
}
