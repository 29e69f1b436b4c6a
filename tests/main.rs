//! weir's integration tests: one binary, every test driving the real `weir` executable over a
//! project in a temporary folder.

// Tests say what they measured on stderr, outside weir's printer.
#![allow(clippy::print_stdout, clippy::print_stderr)]

mod cases;
mod common;
