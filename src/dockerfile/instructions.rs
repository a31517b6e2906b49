//! Nodes to typed instructions grouped in stages, with each instruction's argument and
//! flag checks (BuildKit's `instructions` package). Values are still unexpanded here.

use super::error::{at, DockerfileError, Msg};
use super::flags::{self, Kind};
use super::health;
use super::lexer::{is_heredoc, Parsed};
use super::mount;
use super::nodes::Node;
use super::text::summary;

/// Where an instruction is, for messages and results.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Meta {
    /// 1-based first line.
    pub line: usize,
    /// First line as written, trimmed and bounded.
    pub instruction: String,
}

/// COPY.
#[derive(Debug, Clone)]
pub(crate) struct Copy {
    /// Sources that are paths (heredoc sources removed), unexpanded.
    pub sources: Vec<String>,
    /// Destination, unexpanded.
    pub dest: String,
    /// `--from`, "" for the build context.
    pub from: String,
    /// `--chown`, `--chmod` (expanded only to find syntax errors).
    pub owner_mode: Vec<String>,
    /// `--exclude` patterns (not expanded by BuildKit).
    pub excludes: Vec<String>,
}

/// ADD.
#[derive(Debug, Clone)]
pub(crate) struct Add {
    /// Sources that are not heredocs, unexpanded.
    pub sources: Vec<String>,
    /// Destination, unexpanded.
    pub dest: String,
    /// `--chown`, `--chmod`, `--checksum` (in that order).
    pub owner_mode: Vec<String>,
    /// `--exclude` patterns.
    pub excludes: Vec<String>,
}

/// One `--mount` of a RUN.
#[derive(Debug, Clone)]
pub(crate) struct RunMount {
    /// The flag value, unexpanded.
    pub raw: String,
    /// `from=` as read at parse time (what stage dependencies are built from).
    pub from: String,
}

/// ARG names with their optional raw defaults.
pub(crate) type ArgList = Vec<(String, Option<String>)>;

/// An instruction inside a stage.
#[derive(Debug, Clone)]
pub(crate) enum Cmd {
    /// COPY.
    Copy(Copy),
    /// ADD.
    Add(Add),
    /// RUN with its mounts.
    Run(Vec<RunMount>),
    /// ENV pairs, unexpanded.
    Env(Vec<(String, String)>),
    /// ARG names with optional raw defaults.
    Arg(ArgList),
    /// ONBUILD (any trigger).
    Onbuild,
    /// Instructions whose words are expanded at build time (WORKDIR, USER, VOLUME,
    /// STOPSIGNAL, EXPOSE, LABEL keys and values): only syntax errors matter.
    Expands(Vec<String>),
    /// Anything else (CMD, ENTRYPOINT, SHELL, HEALTHCHECK, MAINTAINER).
    Other,
}

/// A typed instruction.
#[derive(Debug, Clone)]
pub(crate) struct Command {
    /// Location.
    pub meta: Meta,
    /// What it is.
    pub cmd: Cmd,
}

/// A FROM and the instructions after it.
#[derive(Debug, Clone)]
pub(crate) struct StageDef {
    /// Base name, unexpanded.
    pub base: String,
    /// `AS` name, lowercased.
    pub name: Option<String>,
    /// `--platform`, unexpanded ("" when not given).
    pub platform: String,
    /// Location of the FROM.
    pub meta: Meta,
    /// Instructions of the stage.
    pub commands: Vec<Command>,
}

/// The typed file.
#[derive(Debug)]
pub(crate) struct File {
    /// ARGs before the first FROM, in order.
    pub meta_args: Vec<(Meta, ArgList)>,
    /// Stages in order.
    pub stages: Vec<StageDef>,
    /// Escape character of the file.
    pub escape: char,
}

/// Types every instruction and groups them into stages.
pub(crate) fn build(parsed: Parsed) -> Result<File, DockerfileError> {
    let mut file = File {
        meta_args: Vec::new(),
        stages: Vec::new(),
        escape: parsed.escape,
    };
    for node in &parsed.nodes {
        let meta = Meta {
            line: node.start_line,
            instruction: summary(node.first_line.trim_start_matches('\u{feff}')),
        };
        let typed = at(meta.line, instruction(node))?;
        match typed {
            Typed::From(mut st) => {
                st.meta = meta;
                file.stages.push(st);
            }
            Typed::Cmd(Cmd::Arg(args)) if file.stages.is_empty() => {
                file.meta_args.push((meta, args))
            }
            Typed::Cmd(cmd) => match file.stages.last_mut() {
                Some(st) => st.commands.push(Command { meta, cmd }),
                None => {
                    return Err(DockerfileError::new(
                        meta.line,
                        format!(
                            "no build stage in current context: {} comes before the first FROM; \
                             start the file with FROM (only ARG may come before it)",
                            node.cmd.to_ascii_uppercase()
                        ),
                    ))
                }
            },
        }
    }
    Ok(file)
}

enum Typed {
    From(StageDef),
    Cmd(Cmd),
}

const ALL: &[&str] = &[
    "add",
    "arg",
    "cmd",
    "copy",
    "entrypoint",
    "env",
    "expose",
    "from",
    "healthcheck",
    "label",
    "maintainer",
    "onbuild",
    "run",
    "shell",
    "stopsignal",
    "user",
    "volume",
    "workdir",
];

fn no_flags(name: &str, node: &Node) -> Msg<()> {
    flags::parse(name, &node.flags, &[]).map(|_| ())
}

fn exactly_one(name: &str, node: &Node) -> Msg<String> {
    match node.args.as_slice() {
        [one] => Ok(one.clone()),
        _ => Err(format!("{name} requires exactly one argument")),
    }
}

fn at_least_one(name: &str, node: &Node) -> Msg<()> {
    if node.args.is_empty() {
        return Err(format!("{name} requires at least one argument"));
    }
    Ok(())
}

fn instruction(node: &Node) -> Msg<Typed> {
    let lower = node.cmd.to_ascii_lowercase();
    let upper = node.cmd.to_ascii_uppercase();
    let cmd = match lower.as_str() {
        "from" => return from(node).map(Typed::From),
        "copy" => Cmd::Copy(copy(node)?),
        "add" => Cmd::Add(add(node)?),
        "run" => Cmd::Run(run(node)?),
        "env" | "label" => {
            no_flags(&upper, node)?;
            let pairs = key_values(&upper, &node.args)?;
            if lower == "env" {
                Cmd::Env(pairs)
            } else {
                Cmd::Expands(pairs.into_iter().flat_map(|(k, v)| [k, v]).collect())
            }
        }
        "arg" => Cmd::Arg(arg(node)?),
        "maintainer" => {
            exactly_one(&upper, node)?;
            no_flags(&upper, node)?;
            Cmd::Other
        }
        "workdir" | "user" => {
            let v = exactly_one(&upper, node)?;
            no_flags(&upper, node)?;
            Cmd::Expands(vec![v])
        }
        "stopsignal" => Cmd::Expands(vec![exactly_one(&upper, node)?]),
        "volume" => {
            at_least_one(&upper, node)?;
            no_flags(&upper, node)?;
            if node.args.iter().any(|v| v.trim().is_empty()) {
                return Err("VOLUME specified can not be an empty string".into());
            }
            Cmd::Expands(node.args.iter().map(|v| v.trim().to_string()).collect())
        }
        "expose" => {
            at_least_one(&upper, node)?;
            no_flags(&upper, node)?;
            Cmd::Expands(node.args.clone())
        }
        "cmd" | "entrypoint" => {
            no_flags(&upper, node)?;
            Cmd::Other
        }
        "shell" => {
            no_flags(&upper, node)?;
            if node.args.is_empty() {
                return Err("SHELL requires at least one argument".into());
            }
            if !node.json {
                return Err("SHELL requires the arguments to be in JSON form, e.g. SHELL [\"/bin/sh\", \"-c\"]".into());
            }
            Cmd::Other
        }
        "healthcheck" => {
            health::check(node)?;
            Cmd::Other
        }
        "onbuild" => {
            onbuild(node)?;
            Cmd::Onbuild
        }
        _ => return Err(unknown_instruction(&node.cmd)),
    };
    Ok(Typed::Cmd(cmd))
}

fn unknown_instruction(cmd: &str) -> String {
    let lower = cmd.to_ascii_lowercase();
    let close = ALL
        .iter()
        .map(|k| (edit_distance(&lower, k), *k))
        .filter(|(d, _)| *d <= 2)
        .min();
    match close {
        Some((_, k)) => format!(
            "unknown instruction: {cmd} (did you mean {}?)",
            k.to_ascii_uppercase()
        ),
        None => format!(
            "unknown instruction: {cmd}; instructions are ADD, ARG, CMD, COPY, ENTRYPOINT, ENV, \
             EXPOSE, FROM, HEALTHCHECK, LABEL, MAINTAINER, ONBUILD, RUN, SHELL, STOPSIGNAL, USER, \
             VOLUME, WORKDIR"
        ),
    }
}

fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut cur = vec![i + 1];
        for (j, cb) in b.iter().enumerate() {
            let sub = prev[j] + usize::from(ca != *cb);
            cur.push(sub.min(prev[j + 1] + 1).min(cur[j] + 1));
        }
        prev = cur;
    }
    prev[b.len()]
}

fn from(node: &Node) -> Msg<StageDef> {
    let name = match node.args.as_slice() {
        [_] => None,
        [_, as_kw, name] if as_kw.eq_ignore_ascii_case("as") => {
            let lower = name.to_lowercase();
            let mut chars = lower.chars();
            let ok = chars.next().is_some_and(|c| c.is_ascii_lowercase())
                && chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || "-_.".contains(c));
            if !ok {
                return Err(format!(
                    "invalid name for build stage: {name:?}, name can't start with a number or contain symbols"
                ));
            }
            Some(lower)
        }
        _ => {
            return Err(
                "FROM requires either one or three arguments: FROM <image> [AS <name>]".into(),
            )
        }
    };
    let f = flags::parse("FROM", &node.flags, &[("platform", Kind::Str)])?;
    Ok(StageDef {
        base: node.args[0].clone(),
        name,
        platform: f.string_or_empty("platform"),
        meta: Meta {
            line: 0,
            instruction: String::new(),
        },
        commands: Vec::new(),
    })
}

/// Splits COPY/ADD arguments into path sources and the destination.
fn sources_and_dest(name: &str, node: &Node) -> Msg<(Vec<String>, String)> {
    let (dest, srcs) = node.args.split_last().expect("checked by the caller");
    if is_heredoc(dest) {
        return Err(format!("{name} cannot accept a heredoc as a destination"));
    }
    let paths = srcs.iter().filter(|s| !is_heredoc(s)).cloned().collect();
    Ok((paths, dest.clone()))
}

fn need_dest(name: &str, node: &Node) -> Msg<()> {
    if node.args.len() < 2 {
        return Err(format!(
            "{name} requires at least two arguments, but only one was provided. Destination could not be determined"
        ));
    }
    Ok(())
}

fn copy(node: &Node) -> Msg<Copy> {
    need_dest("COPY", node)?;
    let defs = [
        ("chown", Kind::Str),
        ("from", Kind::Str),
        ("chmod", Kind::Str),
        ("link", Kind::Bool),
        ("exclude", Kind::Strs),
        ("parents", Kind::Bool),
    ];
    let f = flags::parse("COPY", &node.flags, &defs)?;
    let (sources, dest) = sources_and_dest("COPY", node)?;
    Ok(Copy {
        sources,
        dest,
        from: f.string_or_empty("from"),
        owner_mode: vec![f.string_or_empty("chown"), f.string_or_empty("chmod")],
        excludes: f.strings("exclude").to_vec(),
    })
}

fn add(node: &Node) -> Msg<Add> {
    need_dest("ADD", node)?;
    let defs = [
        ("chown", Kind::Str),
        ("chmod", Kind::Str),
        ("link", Kind::Bool),
        ("keep-git-dir", Kind::Bool),
        ("checksum", Kind::Str),
        ("unpack", Kind::Bool),
        ("exclude", Kind::Strs),
    ];
    let f = flags::parse("ADD", &node.flags, &defs)?;
    let (sources, dest) = sources_and_dest("ADD", node)?;
    Ok(Add {
        sources,
        dest,
        owner_mode: vec![
            f.string_or_empty("chown"),
            f.string_or_empty("chmod"),
            f.string_or_empty("checksum"),
        ],
        excludes: f.strings("exclude").to_vec(),
    })
}

fn run(node: &Node) -> Msg<Vec<RunMount>> {
    let defs = [
        ("mount", Kind::Strs),
        ("network", Kind::Str),
        ("security", Kind::Str),
        ("device", Kind::Strs),
    ];
    let f = flags::parse("RUN", &node.flags, &defs)?;
    // Same order as the frontend's hooks (device, mount, network, security).
    for d in f.strings("device") {
        device(d)?;
    }
    let mut mounts = Vec::new();
    for raw in f.strings("mount") {
        let from = mount::parse_from(raw)?;
        mounts.push(RunMount {
            raw: raw.clone(),
            from,
        });
    }
    let network = f.string("network").unwrap_or("default");
    if !matches!(network, "default" | "none" | "host") {
        return Err(format!(
            "invalid network mode {network:?}; use default, none or host"
        ));
    }
    let security = f.string("security").unwrap_or("sandbox");
    if !matches!(security, "insecure" | "sandbox") {
        return Err(format!(
            "security {security:?} is not valid; use sandbox or insecure"
        ));
    }
    Ok(mounts)
}

/// `--device` values: `name[,required[=bool]]` in CSV.
fn device(raw: &str) -> Msg<()> {
    let mut named = false;
    for field in mount::csv_fields(raw).map_err(|e| e.replace("csv mounts", "csv devices"))? {
        let (key, value) = match field.split_once('=') {
            Some((k, v)) => (k.to_ascii_lowercase(), Some(v)),
            None => (field.to_ascii_lowercase(), None),
        };
        match (key.as_str(), value) {
            ("required", None) => {}
            ("required", Some(v)) => {
                if !matches!(
                    v,
                    "1" | "t"
                        | "T"
                        | "TRUE"
                        | "true"
                        | "True"
                        | "0"
                        | "f"
                        | "F"
                        | "FALSE"
                        | "false"
                        | "False"
                ) {
                    return Err(format!("invalid value for required: {v}"));
                }
            }
            ("name", Some(_)) if named => return Err("device name already set".into()),
            ("name", Some(_)) => named = true,
            _ if !named => named = true,
            (_, None) => return Err(format!("invalid field '{field}' must be a key=value pair")),
            _ => return Err(format!("unexpected key '{key}' in '{field}'")),
        }
    }
    Ok(())
}

fn key_values(name: &str, args: &[String]) -> Msg<Vec<(String, String)>> {
    if args.is_empty() {
        return Err(format!("{name} requires at least one argument"));
    }
    let mut out = Vec::new();
    for kv in args.chunks(3) {
        let [k, v, _] = kv else {
            return Err(format!("Bad input to {name}, too many arguments"));
        };
        if k.is_empty() {
            return Err(format!("{name} names can not be blank"));
        }
        out.push((k.clone(), v.clone()));
    }
    Ok(out)
}

fn arg(node: &Node) -> Msg<ArgList> {
    if node.args.is_empty() {
        return Err("ARG requires at least one argument".into());
    }
    let mut out = Vec::new();
    for a in &node.args {
        match a.split_once('=') {
            Some(("", _)) => return Err("ARG names can not be blank".into()),
            Some((k, v)) => out.push((k.to_string(), Some(v.to_string()))),
            None => out.push((a.clone(), None)),
        }
    }
    Ok(out)
}

fn onbuild(node: &Node) -> Msg<()> {
    let Some(trigger) = node.args.first() else {
        return Err("ONBUILD requires at least one argument".into());
    };
    no_flags("ONBUILD", node)?;
    match trigger.trim().to_ascii_uppercase().as_str() {
        "ONBUILD" => Err("Chaining ONBUILD via `ONBUILD ONBUILD` isn't allowed".into()),
        t @ ("MAINTAINER" | "FROM") => Err(format!("{t} isn't allowed as an ONBUILD trigger")),
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn suggestions_for_typos() {
        assert!(unknown_instruction("FORM").contains("did you mean FROM"));
        assert!(unknown_instruction("copyy").contains("COPY"));
        assert!(unknown_instruction("XYZZYQ").contains("instructions are"));
    }

    #[test]
    fn devices() {
        assert!(device("nvidia.com/gpu=all").is_ok());
        assert!(device("name=x,required").is_ok());
        assert!(device("x,required=maybe").is_err());
    }
}
