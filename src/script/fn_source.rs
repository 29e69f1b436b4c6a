//! The normalized source of every script function, so a Rhai task's cache key covers its own
//! code and, transitively, the code of every script function it calls: editing a helper
//! invalidates its callers and nothing else. Comments and whitespace do not count.

use std::collections::{BTreeMap, BTreeSet};

use crate::source::offset_of;

#[derive(Debug, Default, Clone)]
pub struct FnSources {
    /// name -> normalized text of every definition with that name (overloads by arity)
    defs: BTreeMap<String, Vec<String>>,
}

impl FnSources {
    pub fn new(ast: &rhai::AST, text: &str) -> Self {
        let mut defs: BTreeMap<String, Vec<String>> = BTreeMap::new();
        for f in ast.iter_fn_def() {
            let body = slice(text, f.body.start_position(), f.body.end_position());
            let params = f
                .params
                .iter()
                .map(|p| p.as_str())
                .collect::<Vec<_>>()
                .join(",");
            // Closures are named `anon$<hash>` with a hash seeded per process: leave it out.
            let shown = if f.name.starts_with("anon$") {
                ""
            } else {
                f.name.as_str()
            };
            let def = format!("fn {shown}({params}) {}", normalize(body));
            defs.entry(f.name.to_string()).or_default().push(def);
        }
        for list in defs.values_mut() {
            list.sort();
        }
        Self { defs }
    }

    /// The code of `name` and of every script function it mentions, transitively, in a
    /// canonical order; `None` when no script function has that name.
    pub fn closure(&self, name: &str) -> Option<FnClosure> {
        self.defs.get(name)?;
        let mut seen = BTreeSet::new();
        let mut todo = vec![name.to_string()];
        let mut idents = BTreeSet::new();
        while let Some(n) = todo.pop() {
            if !seen.insert(n.clone()) {
                continue;
            }
            for def in self.defs.get(&n).into_iter().flatten() {
                for ident in identifiers(def) {
                    if self.defs.contains_key(&ident) && !seen.contains(&ident) {
                        todo.push(ident.clone());
                    }
                    idents.insert(ident);
                }
            }
        }
        let code = seen
            .iter()
            .flat_map(|n| self.defs[n].iter().cloned())
            .collect::<Vec<_>>()
            .join("\n");
        Some(FnClosure { code, idents })
    }
}

/// A function together with everything it calls.
pub struct FnClosure {
    pub code: String,
    /// Every identifier in that code, to see whether it reads e.g. `param`.
    pub idents: BTreeSet<String>,
}

fn slice(text: &str, start: rhai::Position, end: rhai::Position) -> &str {
    let at = |p: rhai::Position| offset_of(text, p.line().unwrap_or(1), p.position().unwrap_or(1));
    let (a, b) = (at(start), at(end));
    // `end` points at the closing brace; include it.
    let b = (b + text[b..].chars().next().map_or(0, char::len_utf8)).min(text.len());
    if a <= b { &text[a..b] } else { "" }
}

/// Drop comments and collapse whitespace outside string literals.
pub fn normalize(code: &str) -> String {
    let mut out = String::with_capacity(code.len());
    let mut chars = code.chars().peekable();
    let mut pending_space = false;
    while let Some(c) = chars.next() {
        match c {
            '/' if chars.peek() == Some(&'/') => {
                for c in chars.by_ref() {
                    if c == '\n' {
                        break;
                    }
                }
                pending_space = true;
            }
            '/' if chars.peek() == Some(&'*') => {
                chars.next();
                let mut prev = ' ';
                for c in chars.by_ref() {
                    if prev == '*' && c == '/' {
                        break;
                    }
                    prev = c;
                }
                pending_space = true;
            }
            c if c.is_whitespace() => pending_space = true,
            '"' | '`' | '\'' => {
                flush_space(&mut out, &mut pending_space);
                out.push(c);
                let quote = c;
                let mut escaped = false;
                for c in chars.by_ref() {
                    out.push(c);
                    if escaped {
                        escaped = false;
                    } else if c == '\\' && quote != '`' {
                        escaped = true;
                    } else if c == quote {
                        break;
                    }
                }
            }
            c => {
                flush_space(&mut out, &mut pending_space);
                out.push(c);
            }
        }
    }
    out
}

fn flush_space(out: &mut String, pending: &mut bool) {
    if *pending && !out.is_empty() {
        out.push(' ');
    }
    *pending = false;
}

/// Identifiers outside string literals.
fn identifiers(code: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut current = String::new();
    let mut quote: Option<char> = None;
    let mut escaped = false;
    for c in code.chars() {
        if let Some(q) = quote {
            if escaped {
                escaped = false;
            } else if c == '\\' && q != '`' {
                escaped = true;
            } else if c == q {
                quote = None;
            }
            continue;
        }
        if c.is_alphanumeric() || c == '_' || c == '$' {
            current.push(c);
            continue;
        }
        if !current.is_empty() {
            out.push(std::mem::take(&mut current));
        }
        if matches!(c, '"' | '`' | '\'') {
            quote = Some(c);
        }
    }
    if !current.is_empty() {
        out.push(current);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sources(script: &str) -> FnSources {
        let engine = rhai::Engine::new();
        FnSources::new(&engine.compile(script).unwrap(), script)
    }

    #[test]
    fn comments_and_whitespace_do_not_count() {
        let a = sources("fn f(x) { x + 1 }");
        let b = sources("// note\nfn f(x) {\n    x  +  1 // add one\n}");
        assert_eq!(a.closure("f").unwrap().code, b.closure("f").unwrap().code);
        let c = sources("fn f(x) { x + 2 }");
        assert_ne!(a.closure("f").unwrap().code, c.closure("f").unwrap().code);
    }

    #[test]
    fn helpers_are_included_transitively_and_strings_are_kept() {
        let s =
            sources("fn a(t) { b(t) } fn b(t) { c(t) + \"b( // x\" } fn c(t) { t } fn d() { 1 }");
        let code = s.closure("a").unwrap().code;
        assert!(code.contains("fn c(t)"), "{code}");
        assert!(code.contains("\"b( // x\""), "{code}");
        assert!(!code.contains("fn d()"), "{code}");
        assert!(s.closure("nope").is_none());
    }
}
