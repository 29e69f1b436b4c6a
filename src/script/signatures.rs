//! weir's own functions and methods as a user writes them, to answer a call Rhai cannot match
//! ("Function not found: limit (Table, &str | ImmutableString | String)") with the calls that
//! exist (`t.limit(n: int)`) and the types the call gave, in weir's words.
//! A leaf: it imports nothing of weir.

/// Each name with the ways to call it.
const SIGNATURES: &[(&str, &[&str])] = &[
    // Declarations.
    (
        "stage",
        &[
            "stage(name: string)",
            "stage(name: string, opts: map)   (opts: tags)",
        ],
    ),
    (
        "load",
        &[
            "s.load(name: string, path: string)",
            "s.load(name: string, path: string, opts: map)",
        ],
    ),
    (
        "sql",
        &[
            "s.sql(name: string, sql: string)",
            "s.sql(name: string, sql: string, opts: map)",
            "t.sql(query: string)   (inside a task: the query names the table as {self})",
        ],
    ),
    (
        "sql_file",
        &[
            "s.sql_file(name: string, path: string)",
            "s.sql_file(name: string, path: string, opts: map)",
        ],
    ),
    (
        "materialize",
        &[
            "s.materialize(name: string, fn: function, inputs: array of table(\"stage.name\"))",
            "s.materialize(name: string, fn: function, inputs: array, opts: map)",
            "t.materialize(name: string)   (inside a task)",
        ],
    ),
    ("sample", &["s.sample(name: string, spec: map)"]),
    (
        "table",
        &[
            "table(name: string)   (\"stage.name\")",
            "table(rows: array of maps)",
            "table(columns: map of arrays)",
            "table(rows_or_columns, opts: map)",
        ],
    ),
    (
        "param",
        &[
            "param(name: string)",
            "param(name: string, default: int | float | bool | string)",
        ],
    ),
    (
        "expect",
        &[
            "expect(table: string, check: string)",
            "expect(table: string, check: string, opts: map)",
        ],
    ),
    (
        "udf",
        &[
            "udf(name: string, fn: function)",
            "udf(name: string, fn: function, opts: map)",
        ],
    ),
    ("today", &["today()"]),
    ("now_hour", &["now_hour()"]),
    ("file_hash", &["file_hash(path: string)"]),
    ("file_mtime", &["file_mtime(path: string)"]),
    ("http_etag", &["http_etag(url: string)"]),
    ("http_last_modified", &["http_last_modified(url: string)"]),
    ("etag", &["etag(url: string)"]),
    ("last_modified", &["last_modified(url: string)"]),
    // Table methods.
    ("filter", &["t.filter(predicate: string)"]),
    (
        "select",
        &[
            "t.select(exprs: array of strings)",
            "t.select(exprs: string)",
        ],
    ),
    (
        "with_column",
        &["t.with_column(name: string, expr: string)"],
    ),
    (
        "aggregate",
        &["t.aggregate(by: array of strings, aggregates: array of strings)"],
    ),
    (
        "sort",
        &[
            "t.sort(column: string)",
            "t.sort(column: string, ascending: bool)",
            "t.sort(order: array of strings)   ([\"a\", \"b DESC\"])",
        ],
    ),
    ("limit", &["t.limit(n: int)"]),
    ("distinct", &["t.distinct()"]),
    ("union", &["t.union(other: Table)"]),
    (
        "join",
        &[
            "t.join(other: Table, on: string | array of strings)",
            "t.join(other: Table, on: string | array of strings, how: string)   (inner, left, right, full)",
        ],
    ),
    ("count", &["t.count()"]),
    ("columns", &["t.columns()"]),
    ("schema", &["t.schema()"]),
    ("rows", &["t.rows()"]),
];

/// Rhai's types as a user knows them.
fn word(rhai_type: &str) -> &str {
    match rhai_type.trim() {
        "&str | ImmutableString | String" | "ImmutableString" | "String" | "&str" => "string",
        "i64" | "i32" | "INT" => "int",
        "f64" | "f32" | "FLOAT" => "float",
        "()" => "()",
        "rhai::Array" | "Array" | "array" => "array",
        "rhai::Map" | "Map" | "map" => "map",
        "Fn" | "FnPtr" | "rhai::FnPtr" => "function",
        "TableRef" => "table(\"stage.name\")",
        other => other,
    }
}

/// What to say of a call no function matches, from Rhai's `name (Type, Type)`; `None` for
/// functions that are not weir's.
pub fn explain(signature: &str) -> Option<String> {
    let (name, args) = signature.split_once(" (")?;
    let name = name.trim();
    let calls = SIGNATURES.iter().find(|(n, _)| *n == name)?.1;
    let args = args.strip_suffix(')').unwrap_or(args);
    let given: Vec<&str> = split_types(args).into_iter().map(word).collect();
    let hint = hint(name, &given);
    Some(format!(
        "no `{name}` takes ({}); it is called as: {}{hint}",
        given.join(", "),
        calls.join(" or ")
    ))
}

/// A word more for the mistakes seen most.
fn hint(name: &str, given: &[&str]) -> &'static str {
    let reference = given.contains(&"table(\"stage.name\")");
    match name {
        _ if reference => {
            "; table(\"stage.name\") outside a task names a table for a task's inputs, it is not a Table: pass it in the task's inputs and take it as a parameter of the function"
        }
        "limit" if given.get(1) == Some(&"string") => {
            "; a number given with --param is an int only if the param's default is one"
        }
        _ => "",
    }
}

/// Rhai's argument list, split at the commas between arguments (not those inside a type).
fn split_types(args: &str) -> Vec<&str> {
    let mut out = Vec::new();
    let (mut depth, mut start) = (0, 0);
    for (i, c) in args.char_indices() {
        match c {
            '<' | '(' | '[' => depth += 1,
            '>' | ')' | ']' => depth -= 1,
            ',' if depth == 0 => {
                out.push(args[start..i].trim());
                start = i + 1;
            }
            _ => {}
        }
    }
    if !args[start..].trim().is_empty() {
        out.push(args[start..].trim());
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_call_that_matches_nothing_lists_the_calls_that_exist() {
        let text = explain("limit (Table, &str | ImmutableString | String)").unwrap();
        assert!(
            text.starts_with("no `limit` takes (Table, string)"),
            "{text}"
        );
        assert!(text.contains("t.limit(n: int)"), "{text}");
        let load = explain("load (Stage, &str | ImmutableString | String, i64)").unwrap();
        assert!(load.contains("(Stage, string, int)"), "{load}");
        assert!(
            load.contains("s.load(name: string, path: string, opts: map)"),
            "{load}"
        );
        assert_eq!(explain("my_helper (i64)"), None);
        assert_eq!(split_types(""), Vec::<&str>::new());
    }
}
