//! `RUN --mount=...` values: CSV fields read twice, as the frontend does: once when the
//! file is parsed (only `from`, to find stage dependencies) and once per build with every
//! value expanded (type, source, ...).

use super::error::Msg;

/// Mount types BuildKit knows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum MountType {
    /// A directory of the context or of another stage/image.
    Bind,
    /// A persistent cache directory (empty unless `from` is given).
    Cache,
    /// An empty in-memory directory.
    Tmpfs,
    /// A build secret.
    Secret,
    /// An SSH agent socket.
    Ssh,
}

impl MountType {
    fn parse(v: &str) -> Msg<MountType> {
        Ok(match v.to_ascii_lowercase().as_str() {
            "bind" => MountType::Bind,
            "cache" => MountType::Cache,
            "tmpfs" => MountType::Tmpfs,
            "secret" => MountType::Secret,
            "ssh" => MountType::Ssh,
            _ => {
                return Err(format!(
                    "unsupported mount type {v:?}; use bind, cache, tmpfs, secret or ssh"
                ))
            }
        })
    }

    fn name(self) -> &'static str {
        match self {
            MountType::Bind => "bind",
            MountType::Cache => "cache",
            MountType::Tmpfs => "tmpfs",
            MountType::Secret => "secret",
            MountType::Ssh => "ssh",
        }
    }
}

/// A mount as a build sees it; `None` where the value depends on an unknown variable.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Mount {
    /// The mount type (bind when not given).
    pub typ: Option<MountType>,
    /// `from=`: a stage, image or named context; "" for none.
    pub from: Option<String>,
    /// `source=` ("" when not given: the root of the source).
    pub source: Option<String>,
    /// `target=`.
    pub target: Option<String>,
}

/// The CSV fields of a mount value (go-csvvalue's rules: quotes, doubled quotes, no bare
/// quotes inside unquoted fields).
pub(crate) fn csv_fields(line: &str) -> Msg<Vec<String>> {
    let line = line
        .strip_suffix("\r\n")
        .or_else(|| line.strip_suffix('\n'))
        .unwrap_or(line);
    if line.is_empty() {
        return Err(
            "failed to parse csv mounts: EOF; give the mount as type=...,target=...".into(),
        );
    }
    let bad = |what: &str| format!("failed to parse csv mounts: {what}");
    let mut out = Vec::new();
    let mut rest = line;
    loop {
        if !rest.starts_with('"') {
            let (field, tail) = match rest.find(',') {
                Some(i) => (&rest[..i], Some(&rest[i + 1..])),
                None => (rest, None),
            };
            if field.contains('"') {
                return Err(bad("bare \" in non-quoted-field"));
            }
            out.push(field.to_string());
            match tail {
                Some(t) => rest = t,
                None => return Ok(out),
            }
            continue;
        }
        rest = &rest[1..];
        let mut field = String::new();
        loop {
            let Some(i) = rest.find('"') else {
                return Err(bad("extraneous or missing \" in quoted-field"));
            };
            field.push_str(&rest[..i]);
            rest = &rest[i + 1..];
            if let Some(t) = rest.strip_prefix('"') {
                field.push('"');
                rest = t;
            } else if let Some(t) = rest.strip_prefix(',') {
                out.push(field);
                rest = t;
                break;
            } else if rest.is_empty() {
                out.push(field);
                return Ok(out);
            } else {
                return Err(bad("extraneous or missing \" in quoted-field"));
            }
        }
    }
}

/// Parse-time reading: the `from` value, which may not use variables.
pub(crate) fn parse_from(raw: &str) -> Msg<String> {
    let mut from = String::new();
    for field in csv_fields(raw)? {
        let Some((key, value)) = field.split_once('=') else {
            continue;
        };
        if key.eq_ignore_ascii_case("from") {
            if let Some(i) = value.find('$') {
                if i != value.len() - 1 {
                    return Err(
                        "'from' doesn't support variable expansion, define alias stage instead"
                            .into(),
                    );
                }
            }
            from = value.to_string();
        }
    }
    Ok(from)
}

/// Build-time reading with `expand` applied to every value (`Ok(None)` = unknown value).
pub(crate) fn parse_mount(
    raw: &str,
    expand: &mut dyn FnMut(&str) -> Msg<Option<String>>,
) -> Msg<Mount> {
    let mut st = State {
        m: Mount {
            typ: Some(MountType::Bind),
            from: Some(String::new()),
            source: Some(String::new()),
            target: Some(String::new()),
        },
        has_file_info: false,
        sharing: false,
        id: Some(String::new()),
    };
    for field in csv_fields(raw)? {
        match field.split_once('=') {
            None => st.bare_key(&field)?,
            Some((key, value)) => {
                let v = expand(value)?;
                st.key_value(&key.to_ascii_lowercase(), &field, v)?;
            }
        }
    }
    st.check()?;
    Ok(st.m)
}

struct State {
    m: Mount,
    has_file_info: bool,
    sharing: bool,
    id: Option<String>,
}

impl State {
    fn bare_key(&mut self, field: &str) -> Msg<()> {
        match field.to_ascii_lowercase().as_str() {
            "readonly" | "ro" | "readwrite" | "rw" => Ok(()),
            "required" => self.require_secret_or_ssh("required"),
            _ => Err(format!("invalid field '{field}' must be a key=value pair")),
        }
    }

    fn require_secret_or_ssh(&self, key: &str) -> Msg<()> {
        match self.m.typ {
            Some(MountType::Secret | MountType::Ssh) | None => Ok(()),
            Some(t) => Err(format!(
                "unexpected key '{key}' for mount type '{}'",
                t.name()
            )),
        }
    }

    fn key_value(&mut self, key: &str, field: &str, v: Option<String>) -> Msg<()> {
        let bad = |v: &str| format!("invalid value for {key}: {v}");
        match key {
            "type" => self.m.typ = v.as_deref().map(MountType::parse).transpose()?,
            "from" => self.m.from = v,
            "source" | "src" => self.m.source = v,
            "target" | "dst" | "destination" => self.m.target = v,
            "readonly" | "ro" | "readwrite" | "rw" => {
                if let Some(v) = v.as_deref() {
                    go_bool(v).ok_or_else(|| bad(v))?;
                }
            }
            "required" => {
                self.require_secret_or_ssh(key)?;
                if let Some(v) = v.as_deref() {
                    go_bool(v).ok_or_else(|| bad(v))?;
                }
            }
            "size" => match self.m.typ {
                Some(MountType::Tmpfs) | None => {
                    if let Some(v) = v.as_deref() {
                        ram_in_bytes(v).ok_or_else(|| bad(v))?;
                    }
                }
                Some(t) => {
                    return Err(format!(
                        "unexpected key '{key}' for mount type '{}'",
                        t.name()
                    ))
                }
            },
            "id" => self.id = v,
            "sharing" => {
                self.sharing = true;
                if let Some(v) = v.as_deref() {
                    if !matches!(
                        v.to_ascii_lowercase().as_str(),
                        "shared" | "private" | "locked"
                    ) {
                        return Err(format!(
                            "unsupported sharing value {v:?}; use shared, private or locked"
                        ));
                    }
                }
            }
            "mode" | "uid" | "gid" => {
                self.has_file_info = true;
                let radix = if key == "mode" { 8 } else { 10 };
                if let Some(v) = v.as_deref() {
                    if !is_uint32(v, radix) {
                        return Err(format!("invalid value {v} for {key}"));
                    }
                }
            }
            "env" => {}
            _ => {
                return Err(format!(
                    "unexpected key '{key}' in '{field}'; known keys are type, from, source, \
                     target, readonly, id, sharing, required, size, mode, uid, gid, env"
                ))
            }
        }
        Ok(())
    }

    fn check(&self) -> Msg<()> {
        let Some(t) = self.m.typ else {
            return Ok(());
        };
        let file_info = matches!(t, MountType::Secret | MountType::Ssh | MountType::Cache);
        if self.has_file_info && !file_info {
            return Err(format!(
                "mode, uid and gid are not allowed for {:?} type mounts",
                t.name()
            ));
        }
        if t == MountType::Secret {
            if matches!(self.m.from.as_deref(), Some(f) if !f.is_empty()) {
                return Err("secret mount should not have a from".into());
            }
            if self.sharing {
                return Err("secret mount should not define sharing".into());
            }
            let empty = |v: &Option<String>| v.as_deref() == Some("");
            if empty(&self.m.source) && empty(&self.m.target) && empty(&self.id) {
                return Err("invalid secret mount. one of source, target required".into());
            }
            let set = |v: &Option<String>| matches!(v.as_deref(), Some(s) if !s.is_empty());
            if set(&self.m.source) && set(&self.id) {
                return Err("both source and id can't be set".into());
            }
        }
        if self.sharing && t != MountType::Cache {
            return Err(format!("invalid cache sharing set for {} mount", t.name()));
        }
        Ok(())
    }
}

/// Go's `strconv.ParseBool`.
fn go_bool(v: &str) -> Option<bool> {
    match v {
        "1" | "t" | "T" | "TRUE" | "true" | "True" => Some(true),
        "0" | "f" | "F" | "FALSE" | "false" | "False" => Some(false),
        _ => None,
    }
}

/// Go's `strconv.ParseUint(v, radix, 32)` succeeds (no sign allowed).
fn is_uint32(v: &str, radix: u32) -> bool {
    !v.starts_with('+') && u32::from_str_radix(v, radix).is_ok()
}

/// go-units' `RAMInBytes` validity: a number, optional space, optional k/m/g/t/p[i][b] or b.
fn ram_in_bytes(s: &str) -> Option<i64> {
    let sep = s.rfind(|c: char| c.is_ascii_digit() || c == '.' || c == ' ')?;
    let (num, sfx) = if s.as_bytes()[sep] == b' ' {
        (&s[..sep], &s[sep + 1..])
    } else {
        (&s[..=sep], &s[sep + 1..])
    };
    let size: f64 = num.parse().ok()?;
    if size < 0.0 {
        return None;
    }
    let sfx = sfx.to_ascii_lowercase();
    let mul: f64 = match sfx.as_bytes() {
        [] | [b'b'] => 1.0,
        [u, rest @ ..] => {
            let m = match u {
                b'k' => 1024f64,
                b'm' => 1024f64.powi(2),
                b'g' => 1024f64.powi(3),
                b't' => 1024f64.powi(4),
                b'p' => 1024f64.powi(5),
                _ => return None,
            };
            if !matches!(rest, [] | [b'b'] | [b'i', b'b']) {
                return None;
            }
            m
        }
    };
    Some((size * mul) as i64)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lit(v: &str) -> Msg<Option<String>> {
        Ok(Some(v.to_string()))
    }

    #[test]
    fn csv_rules() {
        assert_eq!(csv_fields("a=1,b=2").unwrap(), ["a=1", "b=2"]);
        assert_eq!(csv_fields("\"a=1,2\",b").unwrap(), ["a=1,2", "b"]);
        assert_eq!(csv_fields("\"x\"\"y\"").unwrap(), ["x\"y"]);
        assert_eq!(csv_fields("a,").unwrap(), ["a", ""]);
        assert!(csv_fields("").is_err());
        assert!(csv_fields("a\"b").is_err());
        assert!(csv_fields("\"ab").is_err());
        assert!(csv_fields("\"a\"b").is_err());
    }

    #[test]
    fn from_at_parse_time() {
        assert_eq!(
            parse_from("type=cache,from=build,target=/x").unwrap(),
            "build"
        );
        assert_eq!(parse_from("target=/x").unwrap(), "");
        assert!(parse_from("from=$STAGE").is_err());
        assert_eq!(parse_from("from=odd$").unwrap(), "odd$");
    }

    #[test]
    fn full_reading() {
        let m = parse_mount("target=/src", &mut lit).unwrap();
        assert_eq!(m.typ, Some(MountType::Bind));
        assert_eq!(m.source.as_deref(), Some(""));
        let m = parse_mount(
            "type=cache,target=/root/.cache,sharing=locked,mode=0755",
            &mut lit,
        )
        .unwrap();
        assert_eq!(m.typ, Some(MountType::Cache));
        for bad in [
            "type=volume,target=/x",
            "type=secret,from=x,id=a",
            "type=secret",
            "type=secret,source=a,id=b",
            "type=bind,target=/x,mode=0700",
            "type=bind,target=/x,sharing=shared",
            "type=bind,required",
            "type=bind,size=10m",
            "type=tmpfs,size=ten",
            "target=/x,ro=maybe",
            "target=/x,colour=blue",
            "target",
        ] {
            assert!(parse_mount(bad, &mut lit).is_err(), "{bad}");
        }
        assert!(parse_mount("type=tmpfs,target=/t,size=64MiB", &mut lit).is_ok());
        assert!(parse_mount("type=ssh,required", &mut lit).is_ok());
    }
}
