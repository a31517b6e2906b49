//! Instruction flags (`--from=x`, `--link`): which ones an instruction accepts and the
//! frontend's rules for their values.

use std::collections::BTreeMap;

use super::error::Msg;

/// How a flag takes its value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    /// `--x`, `--x=true`, `--x=false`.
    Bool,
    /// `--x=value`, once.
    Str,
    /// `--x=value`, any number of times.
    Strs,
}

/// Parsed flag values.
#[derive(Debug, Default)]
pub(crate) struct Flags {
    values: BTreeMap<String, Vec<String>>,
}

impl Flags {
    /// The value of a string flag, if given.
    pub(crate) fn string(&self, name: &str) -> Option<&str> {
        self.values
            .get(name)
            .and_then(|v| v.last())
            .map(String::as_str)
    }

    /// A string flag's value, or "" when not given.
    pub(crate) fn string_or_empty(&self, name: &str) -> String {
        self.string(name).unwrap_or_default().to_string()
    }

    /// All values of a repeatable flag.
    pub(crate) fn strings(&self, name: &str) -> &[String] {
        self.values.get(name).map_or(&[], Vec::as_slice)
    }
}

/// Checks `args` against the flags `instruction` accepts.
pub(crate) fn parse(instruction: &str, args: &[String], defs: &[(&str, Kind)]) -> Msg<Flags> {
    let mut flags = Flags::default();
    for a in args {
        if a == "--" {
            return Ok(flags);
        }
        let Some(body) = a.strip_prefix("--") else {
            return Err(format!("arg should start with -- : {a}"));
        };
        let (name, value) = match body.split_once('=') {
            Some((n, v)) => (n, Some(v)),
            None => (body, None),
        };
        let flag_name = format!("--{name}");
        let Some(&(_, kind)) = defs.iter().find(|(n, _)| *n == name) else {
            return Err(unknown(instruction, &flag_name, defs));
        };
        if flags.values.contains_key(name) && kind != Kind::Strs {
            return Err(format!(
                "duplicate flag specified: {flag_name}; give it once"
            ));
        }
        let v = match (kind, value) {
            (Kind::Bool, Some("")) => return Err(missing(&flag_name)),
            (Kind::Bool, v) => match v.map(str::to_ascii_lowercase).as_deref() {
                None | Some("true") => "true".to_string(),
                Some("false") => "false".to_string(),
                Some(_) => {
                    return Err(format!(
                        "expecting boolean value for flag {flag_name}, not: {}; use true or false",
                        value.unwrap_or_default()
                    ))
                }
            },
            (_, None) => return Err(missing(&flag_name)),
            (_, Some(v)) => v.to_string(),
        };
        flags.values.entry(name.to_string()).or_default().push(v);
    }
    Ok(flags)
}

fn missing(flag: &str) -> String {
    format!("missing a value on flag: {flag}; write {flag}=<value>")
}

fn unknown(instruction: &str, flag: &str, defs: &[(&str, Kind)]) -> String {
    if defs.is_empty() {
        return format!("unknown flag: {flag}; {instruction} takes no flags");
    }
    let known: Vec<String> = defs.iter().map(|(n, _)| format!("--{n}")).collect();
    format!(
        "unknown flag: {flag}; {instruction} accepts {}",
        known.join(", ")
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    const COPY: &[(&str, Kind)] = &[
        ("from", Kind::Str),
        ("link", Kind::Bool),
        ("exclude", Kind::Strs),
    ];

    fn p(args: &[&str]) -> Msg<Flags> {
        let args: Vec<String> = args.iter().map(|s| s.to_string()).collect();
        parse("COPY", &args, COPY)
    }

    #[test]
    fn values_and_kinds() {
        let f = p(&["--from=build", "--link", "--exclude=a", "--exclude=b"]).unwrap();
        assert_eq!(f.string("from"), Some("build"));
        assert_eq!(f.string("link"), Some("true"));
        assert_eq!(f.strings("exclude"), ["a", "b"]);
        assert_eq!(p(&["--link=FALSE"]).unwrap().string("link"), Some("false"));
        assert_eq!(p(&["--from="]).unwrap().string("from"), Some(""));
    }

    #[test]
    fn malformed_flags_fail() {
        for bad in [
            &["--form=x"][..],
            &["--from"],
            &["--from=a", "--from=b"],
            &["--link="],
            &["--link=yes"],
            &["--exclude"],
        ] {
            assert!(p(bad).is_err(), "{bad:?}");
        }
        assert!(p(&["--form=x"]).unwrap_err().contains("--from"));
    }
}
