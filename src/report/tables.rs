//! Printing query results: a text table, CSV or JSON lines.

use datafusion::arrow::record_batch::RecordBatch;
use datafusion::arrow::util::pretty::pretty_format_batches;

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum OutputFormat {
    Table,
    Csv,
    Json,
}

pub fn print_batches(batches: &[RecordBatch], format: OutputFormat) -> Result<(), crate::Error> {
    let mut out = std::io::stdout().lock();
    let arrow = |e: datafusion::arrow::error::ArrowError| crate::Error::Query {
        message: "cannot format the result".into(),
        cause: e.into(),
    };
    match format {
        OutputFormat::Table => {
            use std::io::Write;
            writeln!(out, "{}", pretty_format_batches(batches).map_err(arrow)?)?;
        }
        OutputFormat::Csv => {
            let mut w = datafusion::arrow::csv::Writer::new(out);
            for b in batches {
                w.write(b).map_err(arrow)?;
            }
        }
        OutputFormat::Json => {
            let mut w = datafusion::arrow::json::LineDelimitedWriter::new(out);
            for b in batches {
                w.write(b).map_err(arrow)?;
            }
            w.finish().map_err(arrow)?;
        }
    }
    Ok(())
}
