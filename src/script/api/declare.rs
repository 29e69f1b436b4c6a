//! `stage(name)`, `table("stage.name")`, `param(name, default)` and the task declarations on a
//! stage: `load`, `sql`, `sql_file` and `materialize`. Each records a `TaskDecl` with its call
//! position.

use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use rhai::{Array, Dynamic, Engine, FnPtr, Map, NativeCallContext, Position};

use super::fail;
use super::options::{common_opts, reject_unknown, tags, take_str};
use super::recorder::{Recorder, RhaiResult, Stage, TableRef, lock, rt};
use crate::names::{TableName, check_length, is_identifier};
use crate::script::checks::{CheckDecl, Severity};
use crate::script::decl::{CsvOptions, FileFormat, LoadSpec, TaskDecl, TaskKind, TaskOpts};
use crate::script::params::{Kind, Params};
use crate::source::Origin;

pub fn register(engine: &mut Engine, recorder: Arc<Mutex<Recorder>>, params: Params) {
    engine
        .register_type_with_name::<Stage>("Stage")
        .register_get("name", |s: &mut Stage| s.name.clone())
        .register_fn("to_string", |s: &mut Stage| format!("stage({})", s.name))
        .register_type_with_name::<TableRef>("TableRef")
        .register_get("name", |t: &mut TableRef| t.0.to_string())
        .register_fn("to_string", |t: &mut TableRef| t.0.to_string());

    engine.register_fn(
        "stage",
        |ctx: NativeCallContext, name: &str| -> RhaiResult<Stage> {
            declare_stage(&ctx, name, Map::new())
        },
    );
    engine.register_fn(
        "stage",
        |ctx: NativeCallContext, name: &str, opts: Map| -> RhaiResult<Stage> {
            declare_stage(&ctx, name, opts)
        },
    );
    engine.register_fn(
        "table",
        |ctx: NativeCallContext, name: &str| -> RhaiResult<Dynamic> {
            match TableName::parse(name) {
                // Inside a running task, the input of that name.
                Some(t) => match super::table::current() {
                    Some(cx) => cx.input(&t, ctx.call_position()).map(Dynamic::from),
                    None => Ok(Dynamic::from(TableRef(t))),
                },
                None => fail(
                    format!("`{name}` is not a table name of the form stage.table"),
                    ctx.call_position(),
                ),
            }
        },
    );

    // The script's own statements are done: what follows was typed into the REPL.
    let r = recorder.clone();
    engine.register_fn("__weir_repl_code", move || lock(&r).in_repl = true);
    let p = params.clone();
    // A given value takes the type of the default (`--param n=5` is a string for a string
    // default); one that is not of it fails at the call (the command line refused it first).
    engine.register_fn(
        "param",
        move |ctx: NativeCallContext, name: &str, default: Dynamic| -> RhaiResult<Dynamic> {
            let value = match Kind::of(&default) {
                Some(kind) => p.get_as(name, kind),
                None => p.get(name).map(Ok),
            };
            match value {
                None => Ok(default),
                Some(Ok(v)) => Ok(v.to_dynamic()),
                Some(Err(message)) => fail(message, ctx.call_position()),
            }
        },
    );
    engine.register_fn("param", move |ctx: NativeCallContext, name: &str| -> RhaiResult<Dynamic> {
        match params.get(name) {
            Some(v) => Ok(v.to_dynamic()),
            None => fail(format!("parameter `{name}` is not set: pass --param {name}=VALUE or give a default, param(\"{name}\", value)"), ctx.call_position()),
        }
    });

    register_load(engine, recorder.clone());
    register_sql(engine, recorder.clone());
    register_sql_file(engine, recorder.clone());
    register_materialize(engine, recorder.clone());
}

/// `stage(name)`, or `stage(name, #{ tags })`: the tags go to every task declared on it.
fn declare_stage(ctx: &NativeCallContext, name: &str, mut opts: Map) -> RhaiResult<Stage> {
    let pos = ctx.call_position();
    if !is_identifier(name) {
        return fail(
            format!("stage name `{name}` must be an identifier (letters, digits, _)"),
            pos,
        );
    }
    check_length("stage name", name).map_err(|m| rt(m, pos))?;
    if name.eq_ignore_ascii_case(crate::names::HISTORY_SCHEMA) {
        return fail(
            format!(
                "stage name `{name}` is taken: `weir.runs`, `weir.tasks`, `weir.checks` and `weir.commits` are the run history"
            ),
            pos,
        );
    }
    let tags = match opts.remove("tags") {
        Some(v) => tags(v, pos)?,
        None => Vec::new(),
    };
    reject_unknown(&opts, &["tags"], pos)?;
    Ok(Stage {
        name: name.to_string(),
        tags,
    })
}

fn register_load(engine: &mut Engine, recorder: Arc<Mutex<Recorder>>) {
    let r = recorder.clone();
    engine.register_fn(
        "load",
        move |ctx: NativeCallContext, s: &mut Stage, name: &str, location: &str| {
            declare_load(&r, &ctx, s, name, location, Map::new())
        },
    );
    engine.register_fn(
        "load",
        move |ctx: NativeCallContext, s: &mut Stage, name: &str, location: &str, opts: Map| {
            declare_load(&recorder, &ctx, s, name, location, opts)
        },
    );
}

fn register_sql(engine: &mut Engine, recorder: Arc<Mutex<Recorder>>) {
    let r = recorder.clone();
    engine.register_fn(
        "sql",
        move |ctx: NativeCallContext, s: &mut Stage, name: &str, sql: &str| {
            declare_sql(&r, &ctx, s, name, sql, Map::new())
        },
    );
    engine.register_fn(
        "sql",
        move |ctx: NativeCallContext, s: &mut Stage, name: &str, sql: &str, opts: Map| {
            declare_sql(&recorder, &ctx, s, name, sql, opts)
        },
    );
}

/// `s.sql_file(name, "queries/q01.sql", opts)`: SQL kept in its own file, read when the script is
/// evaluated; the file's text is the task's code, so editing it re-runs the task.
fn register_sql_file(engine: &mut Engine, recorder: Arc<Mutex<Recorder>>) {
    let r = recorder.clone();
    engine.register_fn(
        "sql_file",
        move |ctx: NativeCallContext, s: &mut Stage, name: &str, path: &str| {
            let (sql, file) = read_sql_file(&r, &ctx, path)?;
            declare_sql(&r, &ctx, s, name, &sql, Map::new()).map(|t| set_sql_file(&r, t, file))
        },
    );
    engine.register_fn(
        "sql_file",
        move |ctx: NativeCallContext, s: &mut Stage, name: &str, path: &str, opts: Map| {
            let (sql, file) = read_sql_file(&recorder, &ctx, path)?;
            declare_sql(&recorder, &ctx, s, name, &sql, opts)
                .map(|t| set_sql_file(&recorder, t, file))
        },
    );
}

fn read_sql_file(
    recorder: &Arc<Mutex<Recorder>>,
    ctx: &NativeCallContext,
    path: &str,
) -> RhaiResult<(String, PathBuf)> {
    let pos = ctx.call_position();
    let dir = lock(recorder).dir.clone();
    let file = crate::script::engine::project_path(&dir, path).map_err(|m| rt(m, pos))?;
    match std::fs::read_to_string(&file) {
        Ok(sql) => Ok((sql, file)),
        Err(e) => fail(format!("cannot read SQL file `{path}`: {e}"), pos),
    }
}

/// The task just declared read its SQL from `file`.
fn set_sql_file(recorder: &Arc<Mutex<Recorder>>, t: TableRef, file: PathBuf) -> TableRef {
    if let Some(TaskDecl {
        kind: TaskKind::Sql { file: f, .. },
        ..
    }) = lock(recorder).tasks.last_mut()
    {
        *f = Some(file);
    }
    t
}

fn register_materialize(engine: &mut Engine, recorder: Arc<Mutex<Recorder>>) {
    let r = recorder.clone();
    engine.register_fn(
        "materialize",
        move |ctx: NativeCallContext, s: &mut Stage, name: &str, f: FnPtr, inputs: Array| {
            declare_materialize(&r, &ctx, s, name, f, inputs, Map::new())
        },
    );
    let r = recorder.clone();
    engine.register_fn(
        "materialize",
        move |ctx: NativeCallContext,
              s: &mut Stage,
              name: &str,
              f: FnPtr,
              inputs: Array,
              opts: Map| { declare_materialize(&r, &ctx, s, name, f, inputs, opts) },
    );
    // A function given by name: `materialize("x", "my_fn", [...])`.
    engine.register_fn(
        "materialize",
        move |ctx: NativeCallContext, s: &mut Stage, name: &str, f: &str, inputs: Array| {
            let f = FnPtr::new(f).map_err(|_| format!("`{f}` is not a function name"))?;
            declare_materialize(&recorder, &ctx, s, name, f, inputs, Map::new())
        },
    );
}

fn declare_load(
    recorder: &Arc<Mutex<Recorder>>,
    ctx: &NativeCallContext,
    stage: &Stage,
    name: &str,
    location: &str,
    mut opts: Map,
) -> RhaiResult<TableRef> {
    let pos = ctx.call_position();
    loadable(location, pos)?;
    let format = match take_str(&mut opts, "format", pos)? {
        Some(f) => FileFormat::from_name(&f).ok_or_else(|| {
            rt(format!("unknown format `{f}`: use csv, parquet or json (newline-delimited)"), pos)
        })?,
        None => FileFormat::from_path(location).ok_or_else(|| {
            rt(format!("cannot tell the format of `{location}` from its extension: add #{{ format: \"csv\" }} (csv, parquet or json)"), pos)
        })?,
    };
    let csv = csv_options(&mut opts, location, pos)?;
    if format != FileFormat::Csv && csv != CsvOptions::default() {
        return fail(
            "`delimiter`, `header` and `schema` apply to CSV files only",
            pos,
        );
    }
    let in_place = !flag(&mut opts, "copy", pos)?.unwrap_or(true);
    if in_place && format != FileFormat::Parquet {
        return fail(
            "`copy: false` keeps Parquet files in place; CSV and JSON files are always copied into the store",
            pos,
        );
    }
    let strict = flag(&mut opts, "strict", pos)?.unwrap_or(false);
    let mut task_opts = common_opts(ctx, &mut opts)?;
    if in_place && !task_opts.partition_by.is_empty() {
        return fail(
            "`partition_by` writes a copy: it does not go with `copy: false`",
            pos,
        );
    }
    reject_unknown(
        &opts,
        &[
            "format",
            "delimiter",
            "header",
            "schema",
            "version",
            "description",
            "tags",
            "columns",
            "contract",
            "retries",
            "retry_delay",
            "cache",
            "partition_by",
            "incremental",
            "copy",
            "strict",
            "expect",
            "primary_key",
        ],
        pos,
    )?;
    task_opts.key_option("format", format.name().into());
    task_opts.key_option("csv", csv.keyed());
    // Only when set, so the keys of copied loads stay as they were.
    if in_place {
        task_opts.key_option("copy", false.into());
    }
    if strict {
        task_opts.key_option("strict", true.into());
    }
    let dir = lock(recorder).dir.clone();
    let spec = LoadSpec {
        location: location.to_string(),
        resolved: crate::store::sources::resolve(location, &dir),
        format,
        csv,
        in_place,
        strict,
    };
    record(
        recorder,
        ctx,
        stage,
        name,
        vec![name.to_string()],
        TaskKind::Load(spec),
        task_opts,
    )
}

/// A location a load can read: a path, or a URL of a scheme weir has a store for.
fn loadable(location: &str, pos: Position) -> RhaiResult<()> {
    if !location.contains("://") {
        return Ok(());
    }
    let url = url::Url::parse(location).ok();
    let scheme = url.as_ref().and_then(crate::store::remote::Scheme::of);
    if scheme.is_none() || url.is_some_and(|u| u.scheme() != "file" && u.host_str().is_none()) {
        return fail(
            format!(
                "`{location}` is not a location weir can load from: use a path, or a URL with {}",
                crate::store::remote::SCHEMES
            ),
            pos,
        );
    }
    Ok(())
}

/// Option `key` as a bool, if given.
fn flag(opts: &mut Map, key: &str, pos: Position) -> RhaiResult<Option<bool>> {
    match opts.remove(key) {
        None => Ok(None),
        Some(v) => v
            .as_bool()
            .map(Some)
            .map_err(|_| rt(format!("`{key}` must be true or false"), pos)),
    }
}

/// A CSV load's options: `delimiter` (a tab for `.tsv` files), `header` and `schema`.
fn csv_options(opts: &mut Map, location: &str, pos: Position) -> RhaiResult<CsvOptions> {
    let mut csv = CsvOptions::default();
    if let Some(d) = take_str(opts, "delimiter", pos)? {
        csv.delimiter = match d.as_bytes() {
            [b] if d.is_ascii() => *b,
            _ if d == "\\t" => b'\t',
            _ => {
                return fail(
                    format!("delimiter must be one ASCII character, not `{d}`"),
                    pos,
                );
            }
        };
    } else if location.ends_with(".tsv") {
        csv.delimiter = b'\t';
    }
    if let Some(header) = flag(opts, "header", pos)? {
        csv.header = header;
    }
    if let Some(schema) = opts.remove("schema") {
        let map = schema.try_cast::<Map>().ok_or_else(|| {
            rt(
                "`schema` must be a map of column name to type, e.g. #{ id: \"Int64\" }",
                pos,
            )
        })?;
        for (col, ty) in map {
            let ty = ty.to_string();
            if ty
                .parse::<datafusion::arrow::datatypes::DataType>()
                .is_err()
            {
                return fail(
                    format!(
                        "`{ty}` for column `{col}` is not an Arrow type (e.g. Int64, Float64, Utf8, Date32, Decimal128(12, 2))"
                    ),
                    pos,
                );
            }
            csv.types.insert(col.to_string(), ty);
        }
    }
    Ok(csv)
}

fn declare_sql(
    recorder: &Arc<Mutex<Recorder>>,
    ctx: &NativeCallContext,
    stage: &Stage,
    name: &str,
    sql: &str,
    mut opts: Map,
) -> RhaiResult<TableRef> {
    let pos = ctx.call_position();
    let mut task_opts = common_opts(ctx, &mut opts)?;
    if let Some(s) = take_str(&mut opts, "default_stage", pos)? {
        if !is_identifier(&s) {
            return fail(format!("default_stage `{s}` is not a stage name"), pos);
        }
        task_opts.key_option("default_stage", s.clone().into());
        task_opts.default_stage = Some(s);
    }
    let statements = match opts.remove("statements") {
        None => false,
        Some(s) => s
            .as_bool()
            .map_err(|_| rt("`statements` must be true or false", pos))?,
    };
    // Only when set, so the keys of one-query tasks stay as they were.
    if statements {
        task_opts.key_option("statements", true.into());
    }
    reject_unknown(
        &opts,
        &[
            "default_stage",
            "statements",
            "version",
            "description",
            "tags",
            "columns",
            "contract",
            "retries",
            "retry_delay",
            "cache",
            "partition_by",
            "incremental",
            "expect",
            "primary_key",
        ],
        pos,
    )?;
    let kind = TaskKind::Sql {
        sql: sql.to_string(),
        file: None,
        statements,
    };
    record(
        recorder,
        ctx,
        stage,
        name,
        vec![name.to_string()],
        kind,
        task_opts,
    )
}

fn declare_materialize(
    recorder: &Arc<Mutex<Recorder>>,
    ctx: &NativeCallContext,
    stage: &Stage,
    name: &str,
    func: FnPtr,
    inputs: Array,
    mut opts: Map,
) -> RhaiResult<Dynamic> {
    let pos = ctx.call_position();
    let mut names = Vec::with_capacity(inputs.len());
    for input in inputs {
        names.push(input_name(input, pos)?);
    }
    let mut task_opts = common_opts(ctx, &mut opts)?;
    let outputs = match opts.remove("outputs") {
        None => vec![name.to_string()],
        Some(list) => {
            let list = list
                .try_cast::<Array>()
                .ok_or_else(|| rt("`outputs` must be an array of table names", pos))?;
            let outs: Vec<String> = list.into_iter().map(|d| d.to_string()).collect();
            if outs.is_empty() {
                return fail("`outputs` must name at least one table", pos);
            }
            task_opts.key_option("outputs", outs.clone().into());
            outs
        }
    };
    reject_unknown(
        &opts,
        &[
            "outputs",
            "version",
            "description",
            "tags",
            "columns",
            "contract",
            "retries",
            "retry_delay",
            "cache",
            "partition_by",
            "incremental",
            "expect",
            "primary_key",
        ],
        pos,
    )?;
    let many = outputs.len() > 1 || outputs[0] != name;
    let kind = TaskKind::Rhai {
        func,
        inputs: names,
    };
    let first = record(recorder, ctx, stage, name, outputs.clone(), kind, task_opts)?;
    if !many {
        return Ok(Dynamic::from(first));
    }
    let refs: Map = outputs
        .into_iter()
        .map(|o| {
            (
                o.clone().into(),
                Dynamic::from(TableRef(TableName::new(&stage.name, o))),
            )
        })
        .collect();
    Ok(refs.into())
}

pub(super) fn input_name(input: Dynamic, pos: Position) -> RhaiResult<TableName> {
    if let Some(t) = input.clone().try_cast::<TableRef>() {
        return Ok(t.0);
    }
    if let Ok(s) = input.clone().into_string() {
        return TableName::parse(&s).ok_or_else(|| {
            rt(
                format!("input `{s}` is not a table name of the form stage.table"),
                pos,
            )
        });
    }
    fail(
        format!(
            "an input must be table(\"stage.name\") or a \"stage.name\" string, not {}",
            input.type_name()
        ),
        pos,
    )
}

pub(super) fn record(
    recorder: &Arc<Mutex<Recorder>>,
    ctx: &NativeCallContext,
    stage: &Stage,
    name: &str,
    outputs: Vec<String>,
    kind: TaskKind,
    opts: TaskOpts,
) -> RhaiResult<TableRef> {
    let pos = ctx.call_position();
    for n in std::iter::once(name).chain(outputs.iter().map(String::as_str)) {
        if !is_identifier(n) {
            return fail(
                format!("table name `{n}` must be an identifier (letters, digits, _)"),
                pos,
            );
        }
        check_length("table name", n).map_err(|m| rt(m, pos))?;
    }
    let mut r = lock(recorder);
    if r.closed {
        return fail(
            "tasks are declared at the top level of the script, not while a task runs",
            pos,
        );
    }
    let first = TableName::new(&stage.name, &outputs[0]);
    let origin = r.origin(ctx);
    // In the REPL a declaration typed again replaces the script's, and the checks declared
    // with it (its `expect` option, its primary key); `expect(...)` calls of its tables stay.
    if r.in_repl_code(ctx) {
        let same = |t: &TaskDecl| t.stage == stage.name && t.name == name;
        let replaced: Vec<Origin> = r
            .tasks
            .iter()
            .filter(|t| same(t))
            .map(|t| t.origin)
            .collect();
        r.tasks.retain(|t| !same(t));
        r.checks.retain(|c| {
            let own = c.table.stage == stage.name && outputs.contains(&c.table.table);
            !(own && replaced.contains(&c.origin))
        });
        r.contracts.retain(|c| {
            let own = c.table.stage == stage.name && outputs.contains(&c.table.table);
            !(own && replaced.contains(&c.origin))
        });
    }
    if let Some(columns) = opts.columns.clone() {
        if outputs.len() > 1 {
            return fail(
                "`columns` describes one table: for a task with several outputs, give each its contract(\"stage.table\", #{ ... })",
                pos,
            );
        }
        let decl = crate::script::contract::ContractDecl {
            table: first.clone(),
            columns,
            enforced: opts.contract,
            origin,
        };
        super::contracts::push(&mut r, decl);
    }
    // The task's own checks: its `expect` option and its primary key.
    for output in &outputs {
        let table = TableName::new(&stage.name, output);
        for (text, severity) in &opts.expect {
            let kind = super::checks::parse_at(text, pos)?;
            r.checks.push(CheckDecl {
                table: table.clone(),
                text: text.clone(),
                kind,
                severity: *severity,
                origin,
            });
        }
        for kind in super::checks::primary_key(&opts.primary_key) {
            r.checks.push(CheckDecl {
                table: table.clone(),
                text: kind.0,
                kind: kind.1,
                severity: Severity::Error,
                origin,
            });
        }
    }
    let mut opts = opts;
    for tag in &stage.tags {
        if !opts.tags.contains(tag) {
            opts.tags.push(tag.clone());
        }
    }
    r.tasks.push(TaskDecl {
        stage: stage.name.clone(),
        name: name.to_string(),
        outputs,
        kind,
        opts,
        origin,
    });
    Ok(TableRef(first))
}
