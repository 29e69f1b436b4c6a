//! The normalized source of every script function, so a Rhai task's cache key covers its own
//! code and, transitively, the code of every script function it calls: editing a helper
//! invalidates its callers and nothing else. Comments and whitespace do not count.

use std::collections::{BTreeMap, BTreeSet};

use crate::source::offset_of;

#[derive(Debug, Default, Clone)]
pub struct FnSources {
    /// name -> normalized text of every definition with that name (overloads by arity)
    defs: BTreeMap<String, Vec<String>>,
    /// name -> parameter names of its first definition; a closure's captured variables
    /// come first, in the order of its curried values
    params: BTreeMap<String, Vec<String>>,
}

impl FnSources {
    pub fn new(ast: &rhai::AST, text: &str) -> Self {
        let mut defs: BTreeMap<String, Vec<String>> = BTreeMap::new();
        let mut names: BTreeMap<String, Vec<String>> = BTreeMap::new();
        for f in ast.iter_fn_def() {
            names
                .entry(f.name.to_string())
                .or_insert_with(|| f.params.iter().map(|p| p.to_string()).collect());
            let body = if f.body.end_position().is_none() {
                expression_body(text, f.body.start_position())
            } else {
                slice(text, f.body.start_position(), f.body.end_position())
            };
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
        Self {
            defs,
            params: names,
        }
    }

    /// Functions of `ast` (code typed into the REPL) replace those of the same name.
    pub fn overlay(&mut self, ast: &rhai::AST, text: &str) {
        let other = Self::new(ast, text);
        for (name, defs) in other.defs {
            self.defs.insert(name, defs);
        }
        self.params.extend(other.params);
    }

    /// The parameter names of `name`, captured variables of a closure first.
    pub fn params(&self, name: &str) -> &[String] {
        self.params.get(name).map_or(&[], Vec::as_slice)
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

impl FnClosure {
    /// The keys of `var` the code reads as `var.key`; `None` when it uses `var` otherwise
    /// (indexes it, passes it on), so that any key may matter.
    pub fn fields_read(&self, var: &str) -> Option<BTreeSet<String>> {
        let mut fields = BTreeSet::new();
        let mut rest = self.code.as_str();
        while let Some(i) = rest.find(var) {
            let before = self.code.len() - rest.len() + i;
            let prev = self.code[..before].chars().next_back();
            rest = &rest[i + var.len()..];
            if prev.is_some_and(|c| c.is_alphanumeric() || c == '_' || c == '.') {
                continue;
            }
            let mut next = rest.chars();
            match next.next() {
                Some(c) if c.is_alphanumeric() || c == '_' => continue,
                Some('.') => {
                    let field: String = next
                        .take_while(|c| c.is_alphanumeric() || *c == '_')
                        .collect();
                    fields.insert(field);
                }
                _ if self.is_parameter_list_at(before) => {}
                _ => return None,
            }
        }
        Some(fields)
    }

    /// Whether `at` is inside the `fn name(...)` header, where captured names are listed.
    fn is_parameter_list_at(&self, at: usize) -> bool {
        let line_start = self.code[..at].rfind('\n').map_or(0, |i| i + 1);
        let header_end = self.code[line_start..]
            .find(')')
            .map_or(line_start, |i| line_start + i);
        self.code[line_start..].starts_with("fn ") && at < header_end
    }
}

fn slice(text: &str, start: rhai::Position, end: rhai::Position) -> &str {
    let at = |p: rhai::Position| offset_of(text, p.line().unwrap_or(1), p.position().unwrap_or(1));
    let (a, b) = (at(start), at(end));
    // `end` points at the closing brace; include it.
    let b = (b + text[b..].chars().next().map_or(0, char::len_utf8)).min(text.len());
    if a <= b { &text[a..b] } else { "" }
}

/// The text of a closure without braces, `|t| expr`: Rhai keeps only where its expression
/// starts, not where it ends. Back up to the `|` closing the parameters, then read to the end of
/// the expression.
fn expression_body(text: &str, pos: rhai::Position) -> &str {
    if pos.is_none() {
        return "";
    }
    let at = offset_of(text, pos.line().unwrap_or(1), pos.position().unwrap_or(1));
    let start = text[..at].rfind('|').map_or(at, |i| i + 1);
    &text[start..expression_end(text, start)]
}

/// Where the expression starting at `from` ends: the first `,` `;` or unmatched closing
/// bracket outside strings, comments and brackets.
fn expression_end(text: &str, from: usize) -> usize {
    let bytes = text.as_bytes();
    let mut depth = 0usize;
    let mut i = from;
    while i < bytes.len() {
        match bytes[i] {
            b'"' | b'\'' | b'`' => i = string_end(text, i),
            b'/' if bytes.get(i + 1) == Some(&b'/') => {
                i = text[i..].find('\n').map_or(bytes.len(), |n| i + n);
            }
            b'(' | b'[' | b'{' => depth += 1,
            b')' | b']' | b'}' if depth == 0 => return i,
            b')' | b']' | b'}' => depth -= 1,
            b',' | b';' if depth == 0 => return i,
            _ => {}
        }
        i += 1;
    }
    bytes.len()
}

/// The index of the quote closing the string literal opened at `start`, with `${...}` of
/// template strings skipped as code.
fn string_end(text: &str, start: usize) -> usize {
    let bytes = text.as_bytes();
    let quote = bytes[start];
    let mut i = start + 1;
    while i < bytes.len() {
        match bytes[i] {
            b'\\' if quote != b'`' => i += 1,
            b'$' if quote == b'`' && bytes.get(i + 1) == Some(&b'{') => {
                i = expression_end(text, i + 2);
            }
            b if b == quote => return i,
            _ => {}
        }
        i += 1;
    }
    bytes.len()
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
    // Code inside `${...}` of a template string counts: for each one open, the brace depth
    // at which it closes and the string resumes.
    let mut templates: Vec<usize> = Vec::new();
    let mut depth = 0usize;
    let mut chars = code.chars().peekable();
    while let Some(c) = chars.next() {
        if let Some(q) = quote {
            if escaped {
                escaped = false;
            } else if c == '\\' && q != '`' {
                escaped = true;
            } else if q == '`' && c == '$' && chars.peek() == Some(&'{') {
                chars.next();
                templates.push(depth);
                depth += 1;
                quote = None;
            } else if c == q {
                quote = None;
            }
            continue;
        }
        if c.is_alphanumeric() || c == '_' {
            current.push(c);
            continue;
        }
        if !current.is_empty() {
            out.push(std::mem::take(&mut current));
        }
        match c {
            '"' | '`' | '\'' => quote = Some(c),
            '{' => depth += 1,
            '}' => {
                depth = depth.saturating_sub(1);
                if templates.last() == Some(&depth) {
                    templates.pop();
                    quote = Some('`');
                }
            }
            _ => {}
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

    #[test]
    fn expression_closures_are_whole() {
        let script = "call(|t| t.select(`n * ${param(\"f\", g(1, 2))} AS n`).limit(3), [1]);";
        let src = sources(script);
        let name = src.defs.keys().next().unwrap().clone();
        let c = src.closure(&name).unwrap();
        assert_eq!(
            c.code,
            "fn (t) t.select(`n * ${param(\"f\", g(1, 2))} AS n`).limit(3)"
        );
        assert!(c.idents.contains("param"), "{:?} in {}", c.idents, c.code);
    }

    #[test]
    fn fields_read_of_a_captured_map() {
        let script =
            "call(|t| t.limit(attrs.top_n + attrs.extra), [1]); call(|t| t.x(attrs), [1]);";
        let src = sources(script);
        let mut reads: Vec<_> = src
            .defs
            .keys()
            .map(|n| src.closure(n).unwrap().fields_read("attrs"))
            .collect();
        reads.sort();
        let both: BTreeSet<String> = ["extra".to_string(), "top_n".to_string()].into();
        assert_eq!(reads, vec![None, Some(both)]);
    }

    #[test]
    fn identifiers_inside_template_interpolations_count() {
        let ids = identifiers("t.select(`n * ${param(\"f\", {a: 1}.a)} AS n`) + `${x}` + `y`");
        assert!(ids.contains(&"param".to_string()), "{ids:?}");
        assert!(ids.contains(&"x".to_string()), "{ids:?}");
        assert!(!ids.contains(&"AS".to_string()), "{ids:?}");
        assert!(!ids.contains(&"y".to_string()), "{ids:?}");
    }

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
