//! `weir test`: each unit test (`test(...)` in the script or `tests/*.rhai`) runs its task on
//! the rows it gives, in a scratch store of its own that is removed afterwards, and compares
//! the result with what it expects. The keys of passed tests are kept in the instance's store
//! (`tests.json`), so an unchanged test is not run again unless `--all`.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Instant;

use datafusion::common::TableReference;

use super::unit_compare as compare;
use super::{Loaded, Target, plan_all};
use crate::engine::Scratch;
use crate::flow::select::{Selection, select};
use crate::names::TableName;
use crate::report::{TestOutcome as Outcome, TestResult};
use crate::script::unit_test::{Expect, TestDecl};
use crate::store::runs::new_run_id;
use crate::{Error, Result};

/// Run the tests of the tasks `selection` selects; `all` runs the unchanged ones too.
pub async fn run(target: &Target, selection: &Selection, all: bool) -> Result<Vec<TestResult>> {
    let scratch = Scratch::create(&std::env::temp_dir(), "test")
        .map_err(|e| Error::usage(format!("cannot make a scratch folder: {e}"), "check TMPDIR"))?;
    let files = test_files(&target.dir())?;
    let real = target.store()?;
    let mut scratch_target = target.clone();
    scratch_target.store = Some(scratch.path().display().to_string());
    let loaded = scratch_target.load_with(&files)?;
    let planned = plan_all(&loaded, None).await?;
    let chosen = select(&planned.flow, selection)?;
    let record = real.layout.passed_tests();
    // A cache: one that cannot be read starts again.
    let mut passed: BTreeSet<String> = real
        .get_json(&record)
        .await
        .ok()
        .flatten()
        .unwrap_or_default();
    let mut results = Vec::new();
    for test in loaded.script.tests.clone() {
        let (index, _) = crate::session::find(&planned.flow, &test.task)?;
        if !chosen.contains(&index) {
            continue;
        }
        let key = test_key(&planned.flow.tasks[index], &test);
        let started = Instant::now();
        let outcome = if !all && passed.contains(&key) {
            Outcome::Unchanged
        } else {
            match one(&scratch_target, &loaded, &files, &test).await {
                Ok(None) => {
                    passed.insert(key);
                    Outcome::Passed
                }
                Ok(Some(why)) => Outcome::Failed(why),
                Err(e) => Outcome::Failed(e.to_string()),
            }
        };
        results.push(TestResult {
            name: test.name.clone(),
            task: planned.flow.tasks[index].id.to_string(),
            outcome,
            took: started.elapsed(),
        });
    }
    real.put_json(&record, &passed).await?;
    Ok(results)
}

/// `tests/*.rhai` beside the script, in name order, evaluated after it.
fn test_files(dir: &std::path::Path) -> Result<Vec<String>> {
    let Ok(entries) = std::fs::read_dir(dir.join("tests")) else {
        return Ok(Vec::new());
    };
    let mut paths: Vec<_> = entries
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|e| e == "rhai"))
        .collect();
    paths.sort();
    paths
        .iter()
        .map(|p| {
            std::fs::read_to_string(p).map_err(|e| {
                Error::usage(
                    format!("cannot read {}: {e}", p.display()),
                    "check the file",
                )
            })
        })
        .collect()
}

/// What a test's outcome depends on: its task's code, options and UDFs, and the test as
/// written. Not the inputs' builds: the test gives them.
fn test_key(task: &crate::flow::Task, test: &TestDecl) -> String {
    let text = format!(
        "{} | {:?} | {:?} | {:?} | {}",
        task.code,
        task.decl.opts.keyed,
        task.udfs,
        task.params,
        test.fingerprint()
    );
    crate::store::cache_key::hash_text(&text)
}

/// Run one test: `None` when it passed, else what differed.
async fn one(
    target: &Target,
    loaded: &Loaded,
    files: &[String],
    test: &TestDecl,
) -> Result<Option<String>> {
    // A test's params change what the script declares: evaluate it again with them.
    let reloaded;
    let loaded = match test.params.is_empty() {
        true => loaded,
        false => {
            let mut t = target.clone();
            t.params
                .extend(test.params.iter().map(|(k, v)| format!("{k}={v}")));
            reloaded = t.load_with(files)?;
            &reloaded
        }
    };
    let mut planned = plan_all(loaded, None).await?;
    let (index, output) = crate::session::find(&planned.flow, &test.task)?;
    let task = &planned.flow.tasks[index];
    let id = task.id.to_string();
    let inputs = task.inputs.clone();
    let mut given: BTreeMap<TableName, rhai::Array> = BTreeMap::new();
    for (name, rows) in &test.given {
        match inputs
            .iter()
            .find(|i| i.to_string().eq_ignore_ascii_case(name))
        {
            Some(input) => {
                given.insert(input.clone(), rows.clone());
            }
            None => return Ok(Some(format!("`{name}` is not an input of {id}"))),
        }
    }
    if let Some(missing) = inputs.iter().find(|i| !given.contains_key(*i)) {
        return Ok(Some(format!(
            "input {missing} of {id} is not given: a test gives every input its rows"
        )));
    }
    let run_id = new_run_id();
    let engine = loaded.engine(None)?;
    let builds = write_given(loaded, &engine, given, &run_id).await?;
    planned.plan.steps[index].given(&builds);
    let table = output.unwrap_or_else(|| task.decl.outputs[0].clone());
    let stage = task.decl.stage.clone();
    let shared = super::shared(
        loaded,
        planned.flow,
        planned.plan.steps,
        engine.clone(),
        &run_id,
        false,
        Default::default(),
    );
    let outputs = match crate::exec::run_task(shared, index, builds).await {
        Ok(outputs) => outputs,
        Err(e) => return Ok(Some(format!("the task failed: {}", e.brief()))),
    };
    let Some(build) = outputs.iter().find(|b| b.table == table) else {
        return Ok(Some(format!("the task wrote no table {stage}.{table}")));
    };
    let ctx = engine.context(Some(&stage), [stage.as_str()], None);
    let result = read(&ctx, loaded, build).await?;
    Ok(match &test.expect {
        Expect::Rows(rows) => compare::rows(rows.clone(), &result),
        Expect::Check(text) => {
            compare::check(&ctx, &TableName::new(&stage, &table), text, &result).await
        }
        Expect::Function(f) => compare::function(&loaded.script, f, &result),
    })
}

/// Each input's given rows as a build of its own in the scratch store.
async fn write_given(
    loaded: &Loaded,
    engine: &crate::engine::Engine,
    given: BTreeMap<TableName, rhai::Array>,
    run_id: &str,
) -> Result<Vec<(TableName, crate::store::TableBuild)>> {
    let mut builds = Vec::new();
    for (input, rows) in given {
        let batch = crate::script::api::data::rows_batch(rows).map_err(|e| {
            Error::usage(
                format!("the rows given for {input}: {e}"),
                "give an array of maps with one type per column",
            )
        })?;
        let df = engine
            .context(None, [input.stage.as_str()], None)
            .read_batch(batch)
            .map_err(|e| Error::usage(e.to_string(), "check the given rows"))?;
        let build = crate::exec::write_given(&loaded.store, &loaded.flow_name, &input, df, run_id)
            .await
            .map_err(|error| Error::TaskFailed {
                task: format!("{input} (given)"),
                error,
            })?;
        builds.push((input, build));
    }
    Ok(builds)
}

/// The rows of `build`, registered in `ctx` under its table's name (a check queries it so).
async fn read(
    ctx: &datafusion::prelude::SessionContext,
    loaded: &Loaded,
    build: &crate::store::TableBuild,
) -> Result<Vec<datafusion::arrow::array::RecordBatch>> {
    let name = TableReference::partial(build.stage.as_str(), build.table.as_str());
    let failed = |e: datafusion::error::DataFusionError| {
        Error::usage(
            format!("cannot read the test's result: {e}"),
            "this is a bug in weir",
        )
    };
    crate::engine::register_build(ctx, &loaded.store, name.clone(), build)
        .await
        .map_err(failed)?;
    ctx.table(name)
        .await
        .map_err(failed)?
        .collect()
        .await
        .map_err(failed)
}
