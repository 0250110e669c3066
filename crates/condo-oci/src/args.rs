//! A small command-line parser with runc's conventions: `--flag value`, `--flag=value`,
//! single-dash long names (`-bundle`), short aliases, and repeated flags.

use anyhow::{bail, Result};

/// One flag a command accepts.
pub struct Flag {
    /// Long name without dashes.
    pub long: &'static str,
    /// Short alias.
    pub short: Option<char>,
    /// Takes a value.
    pub value: bool,
}

/// Shorthand for a flag with a value.
pub const fn val(long: &'static str, short: Option<char>) -> Flag {
    Flag {
        long,
        short,
        value: true,
    }
}

/// Shorthand for a boolean flag.
pub const fn bool_(long: &'static str, short: Option<char>) -> Flag {
    Flag {
        long,
        short,
        value: false,
    }
}

/// Parsed arguments of one command.
#[derive(Default, Debug)]
pub struct Parsed {
    flags: Vec<(&'static str, String)>,
    /// Positional arguments.
    pub pos: Vec<String>,
}

impl Parsed {
    /// The last value given for `long`.
    pub fn get(&self, long: &str) -> Option<&str> {
        self.flags
            .iter()
            .rev()
            .find(|(k, _)| *k == long)
            .map(|(_, v)| v.as_str())
    }

    /// Every value given for `long`, in order.
    pub fn all(&self, long: &str) -> Vec<String> {
        self.flags
            .iter()
            .filter(|(k, _)| *k == long)
            .map(|(_, v)| v.clone())
            .collect()
    }

    /// Whether a boolean flag is set (`--x`, `--x=true`).
    pub fn has(&self, long: &str) -> bool {
        self.get(long).is_some_and(|v| v != "false")
    }

    /// A numeric flag.
    pub fn num<T: std::str::FromStr>(&self, long: &str) -> Result<Option<T>> {
        match self.get(long) {
            None => Ok(None),
            Some(v) => match v.parse() {
                Ok(n) => Ok(Some(n)),
                Err(_) => bail!("invalid value {v:?} for --{long}"),
            },
        }
    }
}

/// Parses `args` against `spec`. With `stop_at_positional`, everything from the first
/// positional on is positional (for commands that run a program).
pub fn parse(args: &[String], spec: &[Flag], stop_at_positional: bool) -> Result<Parsed> {
    let mut p = Parsed::default();
    let mut i = 0;
    while i < args.len() {
        let a = &args[i];
        i += 1;
        if a == "--" {
            p.pos.extend(args[i..].iter().cloned());
            break;
        }
        if !a.starts_with('-') || a == "-" || (stop_at_positional && !p.pos.is_empty()) {
            p.pos.push(a.clone());
            continue;
        }
        let body = a.trim_start_matches('-');
        let (name, inline) = match body.split_once('=') {
            Some((n, v)) => (n, Some(v.to_string())),
            None => (body, None),
        };
        let flag = spec.iter().find(|f| {
            f.long == name || (name.chars().count() == 1 && f.short == name.chars().next())
        });
        let Some(flag) = flag else {
            // Clustered short booleans such as -dt.
            if !a.starts_with("--") && inline.is_none() && name.len() > 1 {
                let all: Option<Vec<&Flag>> = name
                    .chars()
                    .map(|c| spec.iter().find(|f| f.short == Some(c) && !f.value))
                    .collect();
                if let Some(fs) = all {
                    for f in fs {
                        p.flags.push((f.long, "true".into()));
                    }
                    continue;
                }
            }
            bail!("flag provided but not defined: {a}");
        };
        let value = if flag.value {
            match inline {
                Some(v) => v,
                None => {
                    if i >= args.len() {
                        bail!("flag needs an argument: {a}");
                    }
                    i += 1;
                    args[i - 1].clone()
                }
            }
        } else {
            inline.unwrap_or_else(|| "true".into())
        };
        p.flags.push((flag.long, value));
    }
    Ok(p)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(v: &[&str]) -> Vec<String> {
        v.iter().map(|x| x.to_string()).collect()
    }

    #[test]
    fn both_forms_and_aliases() {
        let spec = [
            val("bundle", Some('b')),
            bool_("detach", Some('d')),
            bool_("tty", Some('t')),
        ];
        let p = parse(&s(&["--bundle=/x", "-dt", "id"]), &spec, false).unwrap();
        assert_eq!(p.get("bundle"), Some("/x"));
        assert!(p.has("detach") && p.has("tty"));
        assert_eq!(p.pos, vec!["id"]);
        let p = parse(&s(&["-b", "/y", "-bundle", "/z", "id"]), &spec, false).unwrap();
        assert_eq!(p.get("bundle"), Some("/z"));
        assert!(parse(&s(&["--nope"]), &spec, false).is_err());
        assert!(parse(&s(&["--bundle"]), &spec, false).is_err());
    }

    #[test]
    fn stops_at_program() {
        let spec = [bool_("tty", Some('t'))];
        let p = parse(&s(&["-t", "id", "sh", "-c", "x"]), &spec, true).unwrap();
        assert_eq!(p.pos, vec!["id", "sh", "-c", "x"]);
    }
}
