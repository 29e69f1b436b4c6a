//! The flow's UDFs: each checked against the script's functions, and keyed by its declaration
//! and code (with every script function it calls), so that editing one re-runs exactly the
//! tasks whose SQL calls it.

use std::collections::{BTreeMap, BTreeSet};

use super::{At, FlowError};
use crate::script::Script;
use crate::script::udf::UdfDecl;
use crate::store::cache_key::hash_text;

pub struct Udf {
    pub decl: UdfDecl,
    /// The arguments it takes from SQL: its parameters besides the closure's captured ones.
    pub arity: usize,
    /// blake3 of its declaration and normalized code: part of the key of every caller.
    pub key: String,
    /// Parameters and attrs its code reads, for the keys of its callers.
    pub params: BTreeMap<String, String>,
    /// Its code reads Rhai's clock (`timestamp()`): its callers are volatile, as if they
    /// called SQL's `now()`.
    pub volatile: bool,
}

/// The script's UDFs, or what is wrong with them, each said at its declaration.
pub fn build(script: &Script) -> (Vec<Udf>, Vec<FlowError>) {
    let mut udfs = Vec::new();
    let mut problems = Vec::new();
    for decl in &script.udfs {
        let invalid = |message: String| {
            let at = At::new(script.source_of(decl.origin), decl.origin);
            FlowError::Invalid {
                task: format!("udf `{}`", decl.name),
                message,
                location: at.location,
                src: at.src,
                span: at.span,
            }
        };
        let name = decl.func.fn_name();
        let (code, params) = match super::function_code(script, &decl.func) {
            Ok(found) => found,
            Err(message) => {
                problems.push(invalid(message));
                continue;
            }
        };
        let arity = script
            .functions
            .params(name)
            .len()
            .saturating_sub(decl.func.curry().len());
        if let Some(args) = decl.args.as_ref().filter(|a| a.len() != arity) {
            problems.push(invalid(format!(
                "`args` declares {}, but the function takes {arity}",
                crate::report::plural(args.len() as u64, "argument")
            )));
            continue;
        }
        let key = hash_text(&format!("{}\n{code}", decl.signature_text()));
        udfs.push(Udf {
            decl: decl.clone(),
            arity,
            volatile: super::calls(&code).contains("timestamp"),
            key,
            params,
        });
    }
    (udfs, problems)
}

/// The UDFs among `calls` (lower-case names the code calls), by name, with their keys.
pub fn called<'a>(udfs: &'a [Udf], calls: &BTreeSet<String>) -> impl Iterator<Item = &'a Udf> {
    udfs.iter().filter(move |u| calls.contains(&u.decl.name))
}
