//! Command-line parameters (`--param name=value`), typed by what the value looks like.

use std::collections::{BTreeMap, BTreeSet};

use crate::names::did_you_mean;

#[derive(Debug, Clone, PartialEq)]
pub enum ParamValue {
    Int(i64),
    Float(f64),
    Bool(bool),
    Str(String),
}

impl ParamValue {
    pub fn infer(raw: &str) -> Self {
        if let Ok(i) = raw.parse::<i64>() {
            ParamValue::Int(i)
        } else if let Ok(f) = raw.parse::<f64>() {
            ParamValue::Float(f)
        } else if let Ok(b) = raw.parse::<bool>() {
            ParamValue::Bool(b)
        } else {
            ParamValue::Str(raw.to_string())
        }
    }

    pub fn to_dynamic(&self) -> rhai::Dynamic {
        match self {
            ParamValue::Int(i) => (*i).into(),
            ParamValue::Float(f) => (*f).into(),
            ParamValue::Bool(b) => (*b).into(),
            ParamValue::Str(s) => s.clone().into(),
        }
    }
}

impl std::fmt::Display for ParamValue {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ParamValue::Int(i) => write!(f, "{i}"),
            ParamValue::Float(x) => write!(f, "{x:?}"),
            ParamValue::Bool(b) => write!(f, "{b}"),
            ParamValue::Str(s) => write!(f, "{s:?}"),
        }
    }
}

/// The type of a param, as its default gives it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Int,
    Float,
    Bool,
    Str,
}

impl Kind {
    /// The kind of a default value; `None` for values a param cannot be parsed into.
    pub fn of(value: &rhai::Dynamic) -> Option<Kind> {
        if value.is_int() {
            Some(Kind::Int)
        } else if value.is_float() {
            Some(Kind::Float)
        } else if value.is_bool() {
            Some(Kind::Bool)
        } else if value.is_string() {
            Some(Kind::Str)
        } else {
            None
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Kind::Int => "an int",
            Kind::Float => "a float",
            Kind::Bool => "a bool",
            Kind::Str => "a string",
        }
    }

    /// `raw` read as this kind; `None` when it is not one.
    fn parse(self, raw: &str) -> Option<ParamValue> {
        match self {
            Kind::Int => raw.trim().parse().ok().map(ParamValue::Int),
            Kind::Float => raw.trim().parse().ok().map(ParamValue::Float),
            Kind::Bool => raw.trim().parse().ok().map(ParamValue::Bool),
            Kind::Str => Some(ParamValue::Str(raw.to_string())),
        }
    }

    fn example(self) -> &'static str {
        match self {
            Kind::Int => "a whole number, e.g. 5",
            Kind::Float => "a number, e.g. 0.5",
            Kind::Bool => "true or false",
            Kind::Str => "any text",
        }
    }
}

/// Parameters given on the command line, as given, sorted so they hash canonically.
#[derive(Debug, Clone, Default)]
pub struct Params(BTreeMap<String, String>);

impl Params {
    /// Parse `name=value` pairs; the error names the malformed one.
    pub fn parse(pairs: &[String]) -> Result<Self, String> {
        let mut map = BTreeMap::new();
        for pair in pairs {
            let (name, value) = pair
                .split_once('=')
                .filter(|(n, _)| !n.trim().is_empty())
                .ok_or_else(|| format!("`--param {pair}` is not of the form name=value"))?;
            map.insert(name.trim().to_string(), value.to_string());
        }
        Ok(Params(map))
    }

    /// A param's value, typed by what its text looks like (a param without a default).
    pub fn get(&self, name: &str) -> Option<ParamValue> {
        self.0.get(name).map(|raw| ParamValue::infer(raw))
    }

    /// A param's value as `kind`; `Err` with a message when it is not one.
    pub fn get_as(&self, name: &str, kind: Kind) -> Option<Result<ParamValue, String>> {
        let raw = self.0.get(name)?;
        Some(kind.parse(raw).ok_or_else(|| {
            format!(
                "--param {name}={raw}: `{name}` is {}, and `{raw}` is not one (pass {})",
                kind.name(),
                kind.example()
            )
        }))
    }

    /// The given params among `names` (all of them for `None`) as `name=value`, for a cache
    /// key (which masks secrets in them).
    pub fn canonical(&self, names: Option<&BTreeSet<String>>) -> BTreeMap<String, String> {
        self.0
            .iter()
            .filter(|(k, _)| names.is_none_or(|n| n.contains(*k)))
            .map(|(k, raw)| (k.clone(), ParamValue::infer(raw).to_string()))
            .collect()
    }

    /// Every given param is one the script reads, with a value of the type of its default.
    pub fn check(&self, read: &Read) -> Result<(), (String, String)> {
        for (name, raw) in &self.0 {
            match read.names.get(name) {
                None if read.dynamic => {}
                None => {
                    let known = read.names.keys().map(String::as_str);
                    let help = did_you_mean(name, known, || match read.names.is_empty() {
                        true => "the script reads no param".to_string(),
                        false => {
                            let names: Vec<&str> = read.names.keys().map(String::as_str).collect();
                            format!("the script reads: {}", names.join(", "))
                        }
                    });
                    return Err((
                        format!("unknown param `{name}` (--param {name}={raw})"),
                        help,
                    ));
                }
                Some(Some(kind)) => {
                    if let Some(Err(message)) = self.get_as(name, *kind) {
                        let help = format!("its default in the script is {}", kind.name());
                        return Err((message, help));
                    }
                }
                Some(None) => {}
            }
        }
        Ok(())
    }
}

/// The params a script's code reads: every `param("name", ...)` call with a literal name,
/// with the type of its default when that is a literal. Task functions call `param` only when
/// they run, so this is read from the code, not from evaluating it.
#[derive(Debug, Default, Clone)]
pub struct Read {
    pub names: BTreeMap<String, Option<Kind>>,
    /// A `param` call whose name is not a literal: any name may be read.
    pub dynamic: bool,
}

impl Read {
    pub fn scan(code: &str) -> Read {
        let mut read = Read::default();
        read.add(code);
        read
    }

    pub fn add(&mut self, code: &str) {
        let mut from = 0;
        while let Some(i) = code[from..].find("param").map(|i| i + from) {
            from = i + "param".len();
            let before = code[..i].chars().next_back();
            if before.is_some_and(|c| c.is_alphanumeric() || c == '_') {
                continue;
            }
            let rest = code[from..].trim_start();
            let Some(args) = rest.strip_prefix('(') else {
                continue;
            };
            let args = args.trim_start();
            let Some((name, after)) = string_literal(args) else {
                self.dynamic = true;
                continue;
            };
            let after = after.trim_start();
            let kind = after
                .strip_prefix(',')
                .and_then(|d| literal_kind(d.trim_start()));
            let entry = self.names.entry(name).or_insert(kind);
            *entry = entry.or(kind);
        }
    }
}

/// A Rhai string literal at the start of `text` ("..." or `...` without `${`), and the rest.
fn string_literal(text: &str) -> Option<(String, &str)> {
    let quote = text.chars().next().filter(|c| *c == '"' || *c == '`')?;
    let body = &text[1..];
    let end = body.find(quote)?;
    let name = &body[..end];
    (!name.contains('\\') && !name.contains("${")).then(|| (name.to_string(), &body[end + 1..]))
}

/// The kind of a literal at the start of `text`: `3`, `-0.5`, `true`, `"a"`.
fn literal_kind(text: &str) -> Option<Kind> {
    let word: String = text
        .chars()
        .take_while(|c| c.is_alphanumeric() || matches!(c, '_' | '.' | '-'))
        .collect();
    match word.as_str() {
        "" if text.starts_with('"') || text.starts_with('`') => Some(Kind::Str),
        "true" | "false" => Some(Kind::Bool),
        w if w.replace('_', "").parse::<i64>().is_ok() => Some(Kind::Int),
        w if w.replace('_', "").parse::<f64>().is_ok() && w.contains(['.', 'e']) => {
            Some(Kind::Float)
        }
        _ => None,
    }
}

/// A TOML value (an attr from weir.toml) as the script sees it; dates become strings.
pub fn toml_to_dynamic(value: toml::Value) -> rhai::Dynamic {
    match value {
        toml::Value::String(s) => s.into(),
        toml::Value::Integer(i) => i.into(),
        toml::Value::Float(f) => f.into(),
        toml::Value::Boolean(b) => b.into(),
        toml::Value::Datetime(d) => d.to_string().into(),
        toml::Value::Array(items) => items
            .into_iter()
            .map(toml_to_dynamic)
            .collect::<rhai::Array>()
            .into(),
        toml::Value::Table(t) => t
            .into_iter()
            .map(|(k, v)| (k.into(), toml_to_dynamic(v)))
            .collect::<rhai::Map>()
            .into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_are_typed_by_their_text() {
        let p = Params::parse(&[
            "n=3".into(),
            "x=0.5".into(),
            "b=true".into(),
            "s=abc".into(),
        ])
        .unwrap();
        assert_eq!(p.get("n"), Some(ParamValue::Int(3)));
        assert_eq!(p.get("x"), Some(ParamValue::Float(0.5)));
        assert_eq!(p.get("b"), Some(ParamValue::Bool(true)));
        assert_eq!(p.get("s"), Some(ParamValue::Str("abc".into())));
        assert!(Params::parse(&["novalue".into()]).is_err());
        assert!(Params::parse(&["=1".into()]).is_err());
    }

    #[test]
    fn values_take_the_type_of_their_default() {
        let p = Params::parse(&["n=5".into(), "top=abc".into(), "x=2".into()]).unwrap();
        assert_eq!(
            p.get_as("n", Kind::Str),
            Some(Ok(ParamValue::Str("5".into())))
        );
        assert_eq!(p.get_as("x", Kind::Float), Some(Ok(ParamValue::Float(2.0))));
        let err = p.get_as("top", Kind::Int).unwrap().unwrap_err();
        assert!(err.contains("`top` is an int"), "{err}");
        assert_eq!(p.get_as("missing", Kind::Int), None);
    }

    #[test]
    fn the_params_code_reads_are_found_with_their_types() {
        let read = Read::scan(
            r#"fn f(t) { t.limit(param("top", 3)) }
               let day = param( `day`, "2024-01-01");
               let r = param("rate", 0.5) + param("on", true); let q = param("q");
               let sparam = 1; myparam("no", 1);"#,
        );
        let kinds: Vec<(&str, Option<Kind>)> =
            read.names.iter().map(|(k, v)| (k.as_str(), *v)).collect();
        assert_eq!(
            kinds,
            [
                ("day", Some(Kind::Str)),
                ("on", Some(Kind::Bool)),
                ("q", None),
                ("rate", Some(Kind::Float)),
                ("top", Some(Kind::Int)),
            ]
        );
        assert!(!read.dynamic);
        assert!(Read::scan("let n = \"x\"; param(n, 1)").dynamic);
    }

    #[test]
    fn unknown_and_mistyped_params_are_refused() {
        let read = Read::scan(r#"param("top", 3)"#);
        let typo = Params::parse(&["tpo=5".into()]).unwrap().check(&read);
        let (message, help) = typo.unwrap_err();
        assert!(message.contains("unknown param `tpo`"), "{message}");
        assert_eq!(help, "did you mean `top`?");
        let bad = Params::parse(&["top=abc".into()]).unwrap().check(&read);
        assert!(bad.unwrap_err().0.contains("is an int"));
        assert!(
            Params::parse(&["top=7".into()])
                .unwrap()
                .check(&read)
                .is_ok()
        );
    }
}
