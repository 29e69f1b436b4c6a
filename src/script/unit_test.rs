//! `test("stage.table", #{ given, expect, params })`: a unit test of one task on rows it is
//! given, declared in the script or in `tests/*.rhai` beside it (`weir test` runs them).

use std::collections::BTreeMap;

use crate::source::Origin;

#[derive(Debug, Clone)]
pub struct TestDecl {
    /// The table of the task under test, as written.
    pub task: String,
    /// `name`, else the task and the test's line.
    pub name: String,
    /// Each input's rows, by table name as written.
    pub given: Vec<(String, rhai::Array)>,
    pub expect: Expect,
    /// `params`: the script is evaluated with these for the test, over `--param`.
    pub params: BTreeMap<String, String>,
    pub origin: Origin,
}

#[derive(Debug, Clone)]
pub enum Expect {
    /// The rows the task must produce, in any order, compared on their columns.
    Rows(rhai::Array),
    /// A data check the result must pass (`row_count > 0`, `unique(id)`).
    Check(String),
    /// A function of the result's rows (an array of maps) that returns true.
    Function(rhai::FnPtr),
}

impl TestDecl {
    /// What the test is, for its key: its rows, expectation and params as written.
    pub fn fingerprint(&self) -> String {
        let expect = match &self.expect {
            Expect::Rows(rows) => format!("rows {rows:?}"),
            Expect::Check(c) => format!("check {c}"),
            Expect::Function(f) => format!("fn {}", f.fn_name()),
        };
        format!(
            "{} | {:?} | {expect} | {:?}",
            self.task, self.given, self.params
        )
    }
}
