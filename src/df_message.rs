//! DataFusion's error messages, said once and in one line: the root cause without the context
//! layers that repeat it, without its category prefix, and with "did you mean" for a column.
//! A leaf: it imports nothing of weir, so every module may use it.

use datafusion::error::DataFusionError;

use crate::names::closest;

/// DataFusion wraps causes in context layers that each repeat the cause; show it once.
pub fn root_message(e: &DataFusionError) -> String {
    e.find_root().strip_backtrace()
}

/// A query the user got wrong (it does not parse or plan), rather than one that failed.
pub fn is_plan_error(e: &DataFusionError) -> bool {
    use DataFusionError as D;
    matches!(e.find_root(), D::Plan(_) | D::SQL(..) | D::SchemaError(..))
}

/// What a DataFusion error says in one line, without its category prefix, and a help line
/// ("did you mean" for a misspelled column) where one helps.
pub fn explain(e: &DataFusionError) -> (String, Option<String>) {
    let message = root_message(e);
    let (headline, suggestion) = match message.split_once("\nDid you mean") {
        Some((head, rest)) => (head.to_string(), Some(format!("did you mean{rest}"))),
        None => (message.clone(), None),
    };
    let headline = headline.lines().next().unwrap_or_default();
    let headline = headline.split(". Did you mean").next().unwrap_or(headline);
    let headline = ["Schema error: ", "Error during planning: "]
        .iter()
        .fold(headline, |h, p| h.trim_start_matches(p))
        .trim_end_matches('.')
        .to_string();
    (headline, suggestion.or_else(|| column_suggestion(e)))
}

/// The closest existing column to one DataFusion could not find.
fn column_suggestion(e: &DataFusionError) -> Option<String> {
    use datafusion::common::SchemaError;
    let DataFusionError::SchemaError(schema_error, _) = e.find_root() else {
        return None;
    };
    let SchemaError::FieldNotFound {
        field,
        valid_fields,
    } = schema_error.as_ref()
    else {
        return None;
    };
    let names: Vec<&str> = valid_fields.iter().map(|c| c.name.as_str()).collect();
    let list = names.join(", ");
    match closest(&field.name, names.iter().copied(), 0.7) {
        Some(c) => Some(format!("did you mean `{c}`? columns: {list}")),
        None => Some(format!("columns: {list}")),
    }
}
