//! Command-line parameters (`--param name=value`), typed by what the value looks like.

use std::collections::BTreeMap;

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

/// Parameters given on the command line, sorted so they hash canonically.
#[derive(Debug, Clone, Default)]
pub struct Params(pub BTreeMap<String, ParamValue>);

impl Params {
    /// Parse `name=value` pairs; the error names the malformed one.
    pub fn parse(pairs: &[String]) -> Result<Self, String> {
        let mut map = BTreeMap::new();
        for pair in pairs {
            let (name, value) = pair
                .split_once('=')
                .filter(|(n, _)| !n.trim().is_empty())
                .ok_or_else(|| format!("`--param {pair}` is not of the form name=value"))?;
            map.insert(name.trim().to_string(), ParamValue::infer(value));
        }
        Ok(Params(map))
    }

    pub fn get(&self, name: &str) -> Option<&ParamValue> {
        self.0.get(name)
    }

    /// Every parameter as `name=value`, for a cache key (which masks secrets in them).
    pub fn canonical(&self) -> BTreeMap<String, String> {
        self.0
            .iter()
            .map(|(k, v)| (k.clone(), v.to_string()))
            .collect()
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
        assert_eq!(p.get("n"), Some(&ParamValue::Int(3)));
        assert_eq!(p.get("x"), Some(&ParamValue::Float(0.5)));
        assert_eq!(p.get("b"), Some(&ParamValue::Bool(true)));
        assert_eq!(p.get("s"), Some(&ParamValue::Str("abc".into())));
        assert!(Params::parse(&["novalue".into()]).is_err());
        assert!(Params::parse(&["=1".into()]).is_err());
    }
}
