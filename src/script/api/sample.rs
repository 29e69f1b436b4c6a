//! `stage.sample(name, #{ instance, table, ... })`: a table filled from another instance's
//! committed table, for mini and midi instances. `stdlib/weir/sample.rhai` wraps it in
//! functions named after the modes.

use std::sync::{Arc, Mutex};

use rhai::{Engine, Map, NativeCallContext};

use super::declare::{input_name, record};
use super::options::{common_opts, reject_unknown, take_str};
use super::recorder::{Recorder, RhaiResult, Stage, TableRef, rt};
use crate::names::{TableName, is_identifier};
use crate::script::decl::{SampleMode, SampleSpec, TaskKind};

const OPTIONS: &[&str] = &[
    "instance",
    "table",
    "head",
    "fraction",
    "seed",
    "key",
    "follow",
    "parent_key",
    "version",
    "description",
    "tags",
    "columns",
    "contract",
    "retries",
    "retry_delay",
    "cache",
];

pub fn register(engine: &mut Engine, recorder: Arc<Mutex<Recorder>>) {
    engine.register_fn(
        "sample",
        move |ctx: NativeCallContext, s: &mut Stage, name: &str, opts: Map| {
            declare(&recorder, &ctx, s, name, opts)
        },
    );
}

fn declare(
    recorder: &Arc<Mutex<Recorder>>,
    ctx: &NativeCallContext,
    stage: &Stage,
    name: &str,
    mut opts: Map,
) -> RhaiResult<TableRef> {
    let pos = ctx.call_position();
    let mut task_opts = common_opts(ctx, &mut opts)?;
    if task_opts.incremental {
        return Err(rt(
            "a sample is taken whole: `incremental` does not apply",
            pos,
        ));
    }
    let instance = take_str(&mut opts, "instance", pos)?.ok_or_else(|| {
        rt(
            "a sample needs `instance`: the instance to sample from",
            pos,
        )
    })?;
    if !is_identifier(&instance) {
        return Err(rt(format!("`{instance}` is not an instance name"), pos));
    }
    let table = match opts.remove("table") {
        Some(t) => input_name(t, pos)?,
        None => TableName::new(&stage.name, name),
    };
    let mode = mode(&mut opts, ctx)?;
    reject_unknown(&opts, OPTIONS, pos)?;
    let spec = SampleSpec {
        instance,
        table,
        mode,
    };
    task_opts.key_option("sample", spec.describe().into());
    record(
        recorder,
        ctx,
        stage,
        name,
        vec![name.to_string()],
        TaskKind::Sample(spec),
        task_opts,
    )
}

fn mode(opts: &mut Map, ctx: &NativeCallContext) -> RhaiResult<SampleMode> {
    let pos = ctx.call_position();
    let head = opts.remove("head");
    let fraction = opts.remove("fraction");
    let follow = opts.remove("follow");
    let key = take_str(opts, "key", pos)?;
    let modes = [head.is_some(), fraction.is_some(), follow.is_some()];
    if modes.iter().filter(|m| **m).count() != 1 {
        return Err(rt(
            "a sample takes exactly one of `head: N`, `fraction: F` (with `seed`, and `key` to sample by a column) or `follow: table(\"stage.parent\")` (with `key`)",
            pos,
        ));
    }
    if let Some(n) = head {
        let n = n
            .as_int()
            .ok()
            .filter(|n| *n >= 0)
            .ok_or_else(|| rt("`head` must be a number of rows, 0 or more", pos))?;
        if key.is_some() {
            return Err(rt("`key` does not apply to `head`", pos));
        }
        return Ok(SampleMode::Head(n as u64));
    }
    if let Some(f) = fraction {
        let fraction = f
            .as_float()
            .ok()
            .filter(|f| (0.0..=1.0).contains(f))
            .ok_or_else(|| rt("`fraction` must be a number between 0.0 and 1.0", pos))?;
        let seed = match opts.remove("seed") {
            None => 0,
            Some(s) => s
                .as_int()
                .map_err(|_| rt("`seed` must be an integer", pos))? as u64,
        };
        return Ok(SampleMode::Fraction {
            fraction,
            seed,
            key,
        });
    }
    let parent = input_name(follow.unwrap_or_default(), pos)?;
    let key = key.ok_or_else(|| {
        rt(
            "`follow` needs `key`: the column whose values must occur in the parent table",
            pos,
        )
    })?;
    let parent_key = take_str(opts, "parent_key", pos)?.unwrap_or_else(|| key.clone());
    Ok(SampleMode::Follow {
        key,
        parent,
        parent_key,
    })
}
