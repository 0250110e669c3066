//! Parameters: their declarations, checking the values an instance is given, and rendering
//! `{{ name }}` placeholders.

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// A reason parameter values were refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ParamError {
    /// A value was given for a parameter the template does not declare.
    #[error("unknown parameter {name:?} (the template declares: {known})")]
    Unknown {
        /// The name given.
        name: String,
        /// The declared names.
        known: String,
    },
    /// A required parameter has no value.
    #[error("missing required parameter {0:?}")]
    Missing(String),
    /// A value does not fit the parameter's type.
    #[error("parameter {name:?}: {reason}")]
    Invalid {
        /// The parameter.
        name: String,
        /// Why.
        reason: String,
    },
    /// A placeholder names no parameter.
    #[error("{{{{ {0} }}}} is not a parameter")]
    Undefined(String),
}

/// The type of a parameter.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ParamType {
    /// Any text on one line (the default).
    #[default]
    String,
    /// A signed integer.
    Int,
    /// `true` or `false` (also yes/no, on/off, 1/0).
    Bool,
    /// Text that is always secret.
    Password,
}

/// A checked parameter declaration, as kept in the template metadata.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ParamDef {
    /// Its type.
    #[serde(rename = "type")]
    pub kind: ParamType,
    /// The normalised default value.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub default: Option<String>,
    /// Whether a value must be given.
    pub required: bool,
    /// Whether the value is hidden from listings.
    pub secret: bool,
    /// What it is for.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub description: String,
}

/// Whether `s` is a parameter name: a lowercase letter or `_`, then letters, digits, `_`.
pub fn is_ident(s: &str) -> bool {
    let mut b = s.bytes();
    matches!(b.next(), Some(c) if c.is_ascii_lowercase() || c == b'_')
        && b.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == b'_')
        && s.len() <= 64
}

/// Checks a declaration from the file and normalises its default.
pub(crate) fn check_def(name: &str, p: &crate::model::RawParam) -> Result<ParamDef, String> {
    if !is_ident(name) {
        return Err("names are lowercase letters, digits and '_', starting with a letter".into());
    }
    if p.required && p.default.is_some() {
        return Err("a required parameter cannot have a default".into());
    }
    let default = match &p.default {
        None => None,
        Some(v) => {
            let text = match (v, p.kind) {
                (toml::Value::String(s), _) => s.clone(),
                (toml::Value::Integer(i), ParamType::Int) => i.to_string(),
                (toml::Value::Boolean(b), ParamType::Bool) => b.to_string(),
                (other, kind) => {
                    let want = format!("{kind:?}").to_lowercase();
                    return Err(format!("default is a {}, not a {want}", other.type_str()));
                }
            };
            Some(normalise(p.kind, &text).map_err(|r| format!("default: {r}"))?)
        }
    };
    Ok(ParamDef {
        kind: p.kind,
        default,
        required: p.required,
        secret: p.secret || p.kind == ParamType::Password,
        description: p.description.clone(),
    })
}

/// The canonical text of a value of type `kind`, or why it is not one.
pub fn normalise(kind: ParamType, v: &str) -> Result<String, String> {
    if v.contains(['\n', '\r', '\0']) {
        return Err("values are one line".into());
    }
    match kind {
        ParamType::String | ParamType::Password => Ok(v.into()),
        ParamType::Int => v
            .trim()
            .parse::<i64>()
            .map(|i| i.to_string())
            .map_err(|_| format!("{v:?} is not an integer")),
        ParamType::Bool => match v.trim().to_ascii_lowercase().as_str() {
            "true" | "yes" | "on" | "1" => Ok("true".into()),
            "false" | "no" | "off" | "0" => Ok("false".into()),
            _ => Err(format!("{v:?} is not true or false")),
        },
    }
}

/// Checks the values given for an instance against the declarations and fills in defaults;
/// every declared parameter has a value in the result except optional ones without default,
/// which are the empty string.
pub fn resolve(
    defs: &BTreeMap<String, ParamDef>,
    given: &BTreeMap<String, String>,
) -> Result<BTreeMap<String, String>, ParamError> {
    for n in given.keys() {
        if !defs.contains_key(n) {
            let known: Vec<&str> = defs.keys().map(String::as_str).collect();
            return Err(ParamError::Unknown {
                name: n.clone(),
                known: if known.is_empty() {
                    "none".into()
                } else {
                    known.join(", ")
                },
            });
        }
    }
    let mut out = BTreeMap::new();
    for (n, d) in defs {
        let v = match (given.get(n), &d.default) {
            (Some(v), _) => normalise(d.kind, v).map_err(|reason| ParamError::Invalid {
                name: n.clone(),
                reason,
            })?,
            (None, Some(v)) => v.clone(),
            (None, None) if d.required => return Err(ParamError::Missing(n.clone())),
            (None, None) => String::new(),
        };
        out.insert(n.clone(), v);
    }
    Ok(out)
}

/// The names used by `{{ name }}` placeholders in `text`, in order of appearance.
pub fn placeholders(text: &str) -> Vec<String> {
    // The same scan as `render`, so what is checked is exactly what will be replaced.
    let mut out: Vec<String> = Vec::new();
    let mut rest = text;
    while let Some(i) = rest.find("{{") {
        let after = &rest[i + 2..];
        match after.find("}}") {
            Some(j) if is_ident(after[..j].trim()) => {
                let name = after[..j].trim();
                if !out.iter().any(|n| n == name) {
                    out.push(name.to_string());
                }
                rest = &after[j + 2..];
            }
            Some(_) => rest = after,
            None => break,
        }
    }
    out
}

/// Replaces every `{{ name }}` in `text` with its value; `{{` not followed by a name and `}}`
/// stays as written.
pub fn render(text: &str, values: &BTreeMap<String, String>) -> Result<String, ParamError> {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(i) = rest.find("{{") {
        out.push_str(&rest[..i]);
        let after = &rest[i + 2..];
        match after.find("}}") {
            Some(j) if is_ident(after[..j].trim()) => {
                let name = after[..j].trim();
                let v = values
                    .get(name)
                    .ok_or_else(|| ParamError::Undefined(name.into()))?;
                out.push_str(v);
                rest = &after[j + 2..];
            }
            _ => {
                out.push_str("{{");
                rest = after;
            }
        }
    }
    out.push_str(rest);
    Ok(out)
}

/// Quotes `v` for a POSIX shell (`'…'`).
pub fn shell_quote(v: &str) -> String {
    format!("'{}'", v.replace('\'', "'\\''"))
}

/// Reads what a parameters file holds: `KEY=VALUE` lines with each value as [`shell_quote`]
/// wrote it (a value may span lines), and `#` comments.
pub fn parse_env_file(text: &str) -> Result<BTreeMap<String, String>, String> {
    let mut out = BTreeMap::new();
    let mut rest = text;
    while !rest.is_empty() {
        if rest.starts_with('#') || rest.starts_with('\n') {
            rest = rest.split_once('\n').map_or("", |(_, r)| r);
            continue;
        }
        let (key, after) = rest
            .split_once("='")
            .ok_or_else(|| format!("not KEY='VALUE': {}", rest.lines().next().unwrap_or("")))?;
        let mut value = String::new();
        let mut tail = after;
        loop {
            let (part, more) = tail
                .split_once('\'')
                .ok_or_else(|| format!("{key}: the quoted value does not end"))?;
            value.push_str(part);
            match more.strip_prefix("\\''") {
                Some(m) => {
                    value.push('\'');
                    tail = m;
                }
                None => {
                    tail = more;
                    break;
                }
            }
        }
        out.insert(key.to_string(), value);
        rest = tail.strip_prefix('\n').unwrap_or(tail);
    }
    Ok(out)
}

/// Parses a size such as `512M`, `2G`, `1048576` into bytes.
pub fn parse_size(s: &str) -> Result<u64, String> {
    let t = s.trim();
    let (num, mult) = match t.char_indices().find(|(_, c)| !c.is_ascii_digit()) {
        None => (t, 1u64),
        Some((i, _)) => {
            let m = match t[i..].to_ascii_uppercase().trim_end_matches(['B', 'I']) {
                "K" => 1 << 10,
                "M" => 1 << 20,
                "G" => 1 << 30,
                "T" => 1 << 40,
                "" => 1,
                _ => return Err(format!("{s:?} is not a size (use K, M, G or T)")),
            };
            (&t[..i], m)
        }
    };
    num.parse::<u64>()
        .ok()
        .and_then(|n| n.checked_mul(mult))
        .ok_or_else(|| format!("{s:?} is not a size"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn def(kind: ParamType, default: Option<&str>, required: bool) -> ParamDef {
        ParamDef {
            kind,
            default: default.map(Into::into),
            required,
            secret: false,
            description: String::new(),
        }
    }

    #[test]
    fn resolve_checks_types_required_and_unknown() {
        let mut defs = BTreeMap::new();
        defs.insert("port".into(), def(ParamType::Int, Some("80"), false));
        defs.insert("site".into(), def(ParamType::String, None, true));
        defs.insert("debug".into(), def(ParamType::Bool, Some("false"), false));
        let mut given = BTreeMap::new();
        assert_eq!(
            resolve(&defs, &given).unwrap_err(),
            ParamError::Missing("site".into())
        );
        given.insert("site".into(), "Acme".into());
        given.insert("debug".into(), "YES".into());
        let v = resolve(&defs, &given).unwrap();
        assert_eq!(v["port"], "80");
        assert_eq!(v["debug"], "true");
        given.insert("port".into(), "eighty".into());
        let e = resolve(&defs, &given).unwrap_err().to_string();
        assert!(e.contains("port") && e.contains("not an integer"), "{e}");
        given.remove("port");
        given.insert("colour".into(), "red".into());
        let e = resolve(&defs, &given).unwrap_err().to_string();
        assert!(e.contains("unknown parameter \"colour\""), "{e}");
    }

    #[test]
    fn render_replaces_names_and_keeps_other_braces() {
        let mut v = BTreeMap::new();
        v.insert("name".to_string(), "Acme".to_string());
        assert_eq!(
            render("hi {{ name }}, {{name}}! {{ 1+1 }} {{", &v).unwrap(),
            "hi Acme, Acme! {{ 1+1 }} {{"
        );
        assert_eq!(
            render("{{ other }}", &v).unwrap_err(),
            ParamError::Undefined("other".into())
        );
        assert_eq!(placeholders("{{ a }} {{b}} {{ a }}"), vec!["a", "b"]);
    }

    #[test]
    fn sizes_and_quotes() {
        assert_eq!(parse_size("512M").unwrap(), 512 << 20);
        assert_eq!(parse_size("2GiB").unwrap(), 2 << 30);
        assert!(parse_size("lots").is_err());
        assert_eq!(shell_quote("it's"), "'it'\\''s'");
    }
}

#[cfg(test)]
mod scan_tests {
    use super::*;

    #[test]
    fn placeholders_and_render_agree_on_nested_braces() {
        let text = "{{ {{y}} }}";
        assert_eq!(placeholders(text), vec!["y".to_string()]);
        let mut v = BTreeMap::new();
        v.insert("y".to_string(), "1".to_string());
        assert_eq!(render(text, &v).unwrap(), "{{ 1 }}");
    }

    #[test]
    fn parameters_files_read_back() {
        let mut v = BTreeMap::new();
        v.insert("a".to_string(), "it's \"quoted\"".to_string());
        v.insert("b".to_string(), "two\nlines ''".to_string());
        v.insert("c".to_string(), String::new());
        let mut text = String::from("# written by Condo\n");
        for (k, x) in &v {
            text.push_str(&format!("{k}={}\n", shell_quote(x)));
        }
        assert_eq!(parse_env_file(&text).unwrap(), v);
        assert!(parse_env_file("a='open\n").is_err());
        assert!(parse_env_file("a=bare\n").is_err());
    }
}
