//! weir's integration tests: one binary, every test driving the real `weir` executable over a
//! project in a temporary folder.

mod cases;
mod common;
