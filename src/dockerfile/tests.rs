//! Table-driven cases for the analysis rules (one row per rule), plus focused checks of
//! the fields the hash engine relies on. Helpers here are shared with the other test files.

use std::collections::{BTreeMap, BTreeSet};

use super::*;

/// Build facts for tests, with owned storage.
pub(super) struct Facts {
    pub args: BTreeMap<String, String>,
    pub target: Option<String>,
    pub named: BTreeSet<String>,
    pub platform: String,
    pub build_platform: String,
}

impl Facts {
    pub(super) fn new() -> Facts {
        Facts {
            args: BTreeMap::new(),
            target: None,
            named: BTreeSet::new(),
            platform: "linux/arm64".into(),
            build_platform: "linux/amd64".into(),
        }
    }

    pub(super) fn arg(mut self, k: &str, v: &str) -> Facts {
        self.args.insert(k.into(), v.into());
        self
    }

    pub(super) fn target(mut self, t: &str) -> Facts {
        self.target = Some(t.into());
        self
    }

    pub(super) fn named(mut self, n: &str) -> Facts {
        self.named.insert(n.into());
        self
    }

    pub(super) fn run(&self, df: &str) -> Result<Analysis, DockerfileError> {
        analyze(
            df.as_bytes(),
            &BuildFacts {
                build_args: &self.args,
                target: self.target.as_deref(),
                platform: &self.platform,
                build_platform: &self.build_platform,
                named_contexts: &self.named,
            },
        )
    }
}

/// Main-context paths, or `None` when the whole context is read.
pub(super) fn paths(r: &Reads) -> Option<Vec<String>> {
    match r {
        Reads::Paths(p) => Some(p.iter().map(|s| s.path.clone()).collect()),
        Reads::Whole(_) => None,
    }
}

/// The reasons of a whole read (empty when paths).
pub(super) fn reasons(r: &Reads) -> Vec<String> {
    match r {
        Reads::Whole(w) => w.iter().map(|w| w.why.clone()).collect(),
        Reads::Paths(_) => Vec::new(),
    }
}

pub(super) enum Want {
    /// Exactly these main-context paths, in order.
    Paths(&'static [&'static str]),
    /// The whole main context, with a reason containing this text.
    Whole(&'static str),
    /// An error on this line whose message contains this text.
    Err(usize, &'static str),
}

pub(super) struct Case {
    pub name: &'static str,
    pub df: &'static str,
    pub facts: Facts,
    pub want: Want,
}

pub(super) fn case(name: &'static str, df: &'static str, want: Want) -> Case {
    Case {
        name,
        df,
        facts: Facts::new(),
        want,
    }
}

pub(super) fn with(name: &'static str, df: &'static str, facts: Facts, want: Want) -> Case {
    Case {
        name,
        df,
        facts,
        want,
    }
}

pub(super) fn check(cases: Vec<Case>) {
    let mut failures = Vec::new();
    for c in cases {
        let got = c.facts.run(c.df);
        let ok = match (&c.want, &got) {
            (Want::Paths(want), Ok(a)) => {
                paths(&a.main) == Some(want.iter().map(|s| s.to_string()).collect())
            }
            (Want::Whole(why), Ok(a)) => reasons(&a.main).iter().any(|r| r.contains(why)),
            (Want::Err(line, msg), std::result::Result::Err(e)) => {
                e.line == *line && e.message.contains(msg)
            }
            _ => false,
        };
        if !ok {
            failures.push(format!("{}: got {:#?}", c.name, got));
        }
    }
    assert!(
        failures.is_empty(),
        "{} failing case(s):\n{}",
        failures.len(),
        failures.join("\n\n")
    );
}

use Want::{Err, Paths, Whole};

#[test]
fn sources_and_paths() {
    check(vec![
        case(
            "plain copy",
            "FROM scratch\nCOPY a.txt /x\n",
            Paths(&["a.txt"]),
        ),
        case(
            "cleaned, one entry per instruction",
            "FROM scratch\nCOPY ./src/../lib/ b lib /dst/\nCOPY lib /y\n",
            Paths(&["lib", "b", "lib"]),
        ),
        case(
            "absolute and parent paths stay inside",
            "FROM scratch\nCOPY /abs/f ../up /d/\n",
            Paths(&["abs/f", "up"]),
        ),
        case(
            "copy dot",
            "FROM scratch\nCOPY . /app\n",
            Whole("root of the context"),
        ),
        case(
            "copy slash",
            "FROM scratch\nCOPY / /app\n",
            Whole("root of the context"),
        ),
        case(
            "parent of root",
            "FROM scratch\nCOPY a/../.. /app\n",
            Whole("root of the context"),
        ),
        case(
            "wildcards kept",
            "FROM scratch\nCOPY *.txt src/?.go /d/\n",
            Paths(&["*.txt", "src/?.go"]),
        ),
        case(
            "JSON form",
            "FROM scratch\nCOPY [\"a b.txt\", \"c\", \"/dst/\"]\n",
            Paths(&["a b.txt", "c"]),
        ),
        case(
            "JSON form expands",
            "FROM scratch\nARG F=x\nCOPY [\"$F\", \"/d\"]\n",
            Paths(&["x"]),
        ),
        case(
            "unterminated JSON is shell form and fails",
            "FROM scratch\nCOPY [\"a b\", \"/c\"\n",
            Err(2, "double-quote"),
        ),
        case(
            "unterminated JSON with balanced quotes is a path",
            "FROM scratch\nCOPY [\"a\", \"/b\"\n",
            Paths(&["[a,"]),
        ),
        case(
            "lowercase instructions",
            "from scratch\ncopy a /b\n",
            Paths(&["a"]),
        ),
        case(
            "ADD URL is downloaded",
            "FROM scratch\nADD https://example.com/a.tgz /x\nADD local.tgz /y\n",
            Paths(&["local.tgz"]),
        ),
        case(
            "ADD git URL over https",
            "FROM scratch\nADD https://github.com/moby/buildkit.git /src\n",
            Paths(&[]),
        ),
        case(
            "ADD scp-style git",
            "FROM scratch\nADD git@github.com:moby/buildkit.git /src\n",
            Paths(&["git@github.com:moby/buildkit.git"]),
        ),
        case(
            "COPY of a URL fails",
            "FROM scratch\nCOPY https://example.com/a /x\n",
            Err(2, "URL"),
        ),
        case(
            "COPY --parents",
            "FROM scratch\nCOPY --parents ./x/./y/*.txt /p/\n",
            Paths(&["x/y/*.txt"]),
        ),
        case(
            "backslash is an escape",
            "FROM scratch\nCOPY dir\\file /x\n",
            Paths(&["dirfile"]),
        ),
        case(
            "backslash with backtick escape",
            "# escape=`\nFROM scratch\nCOPY dir\\file /x\n",
            Paths(&["dir\\file"]),
        ),
        case(
            "empty source is the root",
            "FROM scratch\nARG E=\nCOPY $E /x\n",
            Whole("root of the context"),
        ),
        case("no sources read", "FROM scratch\nRUN echo hi\n", Paths(&[])),
    ]);
}

#[test]
fn lines_comments_and_heredocs() {
    check(vec![
        case(
            "continuation with comments and blank lines",
            "FROM scratch\nCOPY a \\\n# comment inside\n     b \\\n\n     c /dst/\n",
            Paths(&["a", "b", "c"]),
        ),
        case(
            "backtick continuation",
            "# escape=`\nFROM scratch\nCOPY a `\n     b c:\\dst\\\n",
            Paths(&["a", "b"]),
        ),
        case(
            "comment lines are not instructions",
            "# hello\nFROM scratch\n  # indented\nCOPY a /a\n",
            Paths(&["a"]),
        ),
        case(
            "COPY heredoc is not a path",
            "FROM scratch\nCOPY <<EOF /etc/x\nhello\nEOF\nCOPY real.txt /y\n",
            Paths(&["real.txt"]),
        ),
        case(
            "heredoc next to a path",
            "FROM scratch\nCOPY <<EOF real /d/\nx\nEOF\n",
            Paths(&["real"]),
        ),
        case(
            "several heredocs on one line",
            "FROM scratch\nCOPY <<A <<B /dst/\nCOPY a\nA\nCOPY b\nB\nCOPY after /z\n",
            Paths(&["after"]),
        ),
        case(
            "tab stripping terminator",
            "FROM scratch\nRUN <<-EOT\n\techo hi\n\tEOT\nCOPY x /x\n",
            Paths(&["x"]),
        ),
        case(
            "tab-indented terminator without dash",
            "FROM scratch\nRUN <<EOT\n\techo hi\n\tEOT\n",
            Err(2, "unterminated heredoc"),
        ),
        case(
            "quoted delimiter",
            "FROM scratch\nRUN <<'EOF'\ncat $HOME\nEOF\nCOPY <<\"X\" /x\n$Y\nX\nCOPY y /y\n",
            Paths(&["y"]),
        ),
        case(
            "heredoc as destination",
            "FROM scratch\nCOPY a <<EOF\nx\nEOF\n",
            Err(2, "heredoc as a destination"),
        ),
        case(
            "JSON COPY does not open heredocs",
            "FROM scratch\nCOPY [\"<<EOF\", \"/x\"]\nCOPY z /z\n",
            Paths(&["z"]),
        ),
    ]);
}

#[test]
fn args_env_and_scopes() {
    check(vec![
        case(
            "global ARG is unset in a scratch stage",
            "ARG DIR=src\nFROM scratch\nCOPY $DIR/a /x\n",
            Paths(&["a"]),
        ),
        case(
            "global ARG alone copies the root",
            "ARG DIR=src\nFROM scratch\nCOPY $DIR /x\n",
            Whole("root of the context"),
        ),
        case(
            "global ARG on an image base is unknown",
            "ARG DIR=src\nFROM alpine\nCOPY $DIR /x\n",
            Whole("$DIR"),
        ),
        case(
            "redeclared ARG takes the global default",
            "ARG DIR=src\nFROM alpine\nARG DIR\nCOPY $DIR /x\n",
            Paths(&["src"]),
        ),
        with(
            "build arg overrides a global default",
            "ARG DIR=src\nFROM alpine\nARG DIR\nCOPY $DIR /x\n",
            Facts::new().arg("DIR", "lib"),
            Paths(&["lib"]),
        ),
        with(
            "build arg overrides a stage default",
            "FROM alpine\nARG DIR=src\nCOPY $DIR /x\n",
            Facts::new().arg("DIR", "lib"),
            Paths(&["lib"]),
        ),
        with(
            "build arg without ARG is not visible",
            "FROM scratch\nCOPY x$DIR /x\n",
            Facts::new().arg("DIR", "lib"),
            Paths(&["x"]),
        ),
        case(
            "ARG without value on an image is unknown",
            "FROM alpine\nARG DIR\nCOPY $DIR /x\n",
            Whole("$DIR"),
        ),
        case(
            "ARG without value on scratch is unset",
            "FROM scratch\nARG DIR\nCOPY ${DIR:-dflt} /x\n",
            Paths(&["dflt"]),
        ),
        case(
            "ENV sets a known value",
            "FROM alpine\nENV D=lib\nCOPY $D ${D}2 /x\n",
            Paths(&["lib", "lib2"]),
        ),
        case(
            "ENV old form",
            "FROM alpine\nENV D lib dir\nCOPY \"$D\" /x\n",
            Paths(&["lib dir"]),
        ),
        case(
            "ENV uses the previous values",
            "FROM scratch\nENV A=1\nENV A=2 B=$A\nCOPY $B /x\n",
            Paths(&["1"]),
        ),
        case(
            "ENV with an unknown name makes earlier values unknown",
            "FROM alpine\nENV A=1\nENV $K=v\nCOPY $A /x\n",
            Whole("$A"),
        ),
        case(
            "values set after an unknown name are known",
            "FROM alpine\nENV $K=v\nENV A=1\nCOPY $A /x\n",
            Paths(&["1"]),
        ),
        case(
            "ARG inherited by a child stage",
            "FROM scratch AS base\nARG D=lib\nFROM base\nCOPY $D /x\n",
            Paths(&["lib"]),
        ),
        case(
            "ARG not seen by an unrelated stage",
            "FROM scratch AS one\nARG D=lib\nFROM scratch\nCOPY x$D /x\n",
            Paths(&["x"]),
        ),
        case(
            "PATH is set on scratch",
            "FROM scratch\nCOPY ${PATH:+p} /x\n",
            Paths(&["p"]),
        ),
        case(
            "modifiers",
            "FROM scratch\nARG F=app.tar.gz\nCOPY ${F%%.*} ${F#*.} ${F/app/web} /x/\n",
            Paths(&["app", "tar.gz", "web.tar.gz"]),
        ),
        case(
            "bad substitution fails",
            "FROM scratch\nCOPY ${X /x\n",
            Err(2, "missing '}'"),
        ),
        case(
            "unknown variable in a modifier default",
            "FROM alpine\nCOPY ${NOPE:-a} /x\n",
            Whole("$NOPE"),
        ),
        case(
            "variable in --from fails",
            "FROM scratch\nARG S=x\nCOPY --from=$S /a /b\n",
            Err(3, "not supported for --from"),
        ),
        case(
            "ARG key=value chain differs in the old frontend",
            "FROM scratch\nARG A=1 B=$A\nCOPY x$B /x\n",
            Whole("$B"),
        ),
        case(
            "ARG chain across instructions is fine",
            "FROM scratch\nARG A=1\nARG B=$A\nCOPY x$B /x\n",
            Paths(&["x1"]),
        ),
        case(
            "escaped dollar is literal",
            "FROM scratch\nENV FOO=/bar\nCOPY \\$FOO /quux\n",
            Paths(&["$FOO"]),
        ),
    ]);
}

#[test]
fn platform_args() {
    let df = "FROM --platform=$BUILDPLATFORM scratch AS b\nARG TARGETARCH TARGETPLATFORM\nCOPY bin-$TARGETARCH ${TARGETPLATFORM} /x/\n";
    check(vec![
        case("redeclared automatic args", df, Paths(&["bin-arm64", "linux/arm64"])),
        with("automatic args follow the platform", df, {
            let mut f = Facts::new();
            f.platform = "linux/arm/v7".into();
            f
        }, Paths(&["bin-arm", "linux/arm/v7"])),
        case("not redeclared: unset on scratch", "FROM scratch\nCOPY bin-$TARGETARCH /x\n", Paths(&["bin-"])),
        with("automatic args can be overridden", df, Facts::new().arg("TARGETARCH", "riscv64"), Paths(&["bin-riscv64", "linux/arm64"])),
        case("global platform args expand FROM", "FROM scratch AS build-arm64\nCOPY a /a\nFROM scratch AS build-amd64\nCOPY b /b\nFROM build-$TARGETARCH\n", Paths(&["a"])),
        // v0.8 has no TARGETSTAGE: there the ARG is unset and the COPY takes the root.
        case("TARGETSTAGE differs between frontends", "FROM scratch AS final\nARG TARGETSTAGE\nCOPY $TARGETSTAGE /x\n", Whole("$TARGETSTAGE")),
        case("TARGETPLATFORM the same in both", "FROM scratch AS final\nARG TARGETOS\nCOPY $TARGETOS /x\n", Paths(&["linux"])),
    ]);
}

#[test]
fn stages_targets_and_from() {
    let two = "FROM scratch AS unused\nCOPY secret /s\nFROM scratch\nCOPY app /app\n";
    check(vec![
        case("unreachable stage ignored", two, Paths(&["app"])),
        with("target selects a stage", two, Facts::new().target("unused"), Paths(&["secret"])),
        with("target is case-insensitive", two, Facts::new().target("UNUSED"), Paths(&["secret"])),
        with("unknown target", two, Facts::new().target("nope"), Err(0, "could not be found")),
        case(
            "--from by name, case-insensitive, and by index",
            "FROM scratch AS Build\nCOPY b /b\nFROM scratch AS other\nCOPY o /o\nFROM scratch\nCOPY --from=BUILD /b /b\nCOPY --from=1 /o /o\nCOPY c /c\n",
            Paths(&["b", "o", "c"]),
        ),
        case("base stage is reachable", "FROM scratch AS base\nCOPY base.txt /\nFROM base\nCOPY top.txt /\n", Paths(&["base.txt", "top.txt"])),
        case("FROM a stage name is case-sensitive", "FROM scratch AS base\nCOPY b /\nFROM Base\n", Err(3, "failed to parse stage name")),
        with("FROM a later stage is an image", "FROM scratch AS a\nCOPY a /a\nFROM b AS c\nFROM scratch AS b\nCOPY b /b\n", Facts::new().target("c"), Paths(&[])),
        case("copy from an image", "FROM scratch\nCOPY --from=alpine:3 /etc/os-release /x\nCOPY y /y\n", Paths(&["y"])),
        case("index counts --from images too", "FROM scratch\nCOPY --from=alpine /a /a\nCOPY --from=1 /b /b\nCOPY c /c\n", Paths(&["c"])),
        case("invalid stage index", "FROM scratch\nCOPY --from=3 /a /a\n", Err(2, "invalid stage index 3")),
        case("copy from a later stage", "FROM scratch AS a\nCOPY --from=b /x /x\nFROM scratch AS b\nCOPY y /y\nFROM a\n", Err(2, "defined before")),
        case("circular dependency", "FROM scratch AS a\nCOPY --from=a /x /x\n", Err(1, "circular dependency")),
        case("bad image names fail even when unreachable", "FROM Alpine AS x\nFROM scratch\nCOPY a /a\n", Err(1, "failed to parse stage name")),
        case("--from=scratch", "FROM scratch\nCOPY --from=scratch / /\nCOPY a /a\n", Paths(&["a"])),
        case("--from= means the context", "FROM scratch\nCOPY --from= a /a\n", Paths(&["a"])),
    ]);
}

#[test]
fn run_mounts() {
    check(vec![
        case("bind without source binds the root", "FROM alpine\nRUN --mount=type=bind,target=/src make\n", Whole("binds the root")),
        case("bind is the default type", "FROM alpine\nRUN --mount=target=/src,source=src make\n", Paths(&["src"])),
        case("bind source", "FROM alpine\nRUN --mount=type=bind,source=go.sum,target=/x go mod download\n", Paths(&["go.sum"])),
        case("bind from a stage", "FROM scratch AS b\nCOPY b /b\nFROM alpine\nRUN --mount=type=bind,from=b,target=/b ls\n", Paths(&["b"])),
        case("bind from an image", "FROM alpine\nRUN --mount=from=busybox,target=/b ls\n", Paths(&[])),
        case("cache without from", "FROM alpine\nRUN --mount=type=cache,target=/root/.cache go build\n", Paths(&[])),
        case("cache from a stage", "FROM scratch AS s\nCOPY s /s\nFROM alpine\nRUN --mount=type=cache,from=s,target=/c ls\n", Paths(&["s"])),
        case("tmpfs without from", "FROM alpine\nRUN --mount=type=tmpfs,target=/t ls\n", Whole("tmpfs")),
        case("tmpfs with from reads nothing from the context", "FROM scratch AS s\nFROM alpine\nRUN --mount=type=tmpfs,from=s,target=/t ls\n", Paths(&[])),
        // The frontend makes every mount's `from` a dependency, whatever the mount type.
        case("ssh with from still makes the stage reachable", "FROM scratch AS s\nCOPY s /s\nFROM alpine\nRUN --mount=type=ssh,from=s ls\n", Paths(&["s"])),
        case("secret and ssh", "FROM alpine\nRUN --mount=type=secret,id=npm,target=/n --mount=type=ssh ls\n", Paths(&[])),
        case("mount values are expanded", "FROM alpine\nARG S=src\nRUN --mount=source=$S,target=/s ls\n", Paths(&["src", "$S"])),
        case("unknown mount source", "FROM alpine\nRUN --mount=source=$S,target=/s ls\n", Whole("$S")),
        case("unknown mount type", "FROM alpine\nRUN --mount=type=$T,source=a,target=/s ls\n", Whole("type")),
        case("mount from a variable fails", "FROM alpine\nRUN --mount=from=$X,target=/s ls\n", Err(2, "doesn't support variable expansion")),
        case("bad mount type", "FROM alpine\nRUN --mount=type=volume,target=/s ls\n", Err(2, "unsupported mount type")),
        case("mount target /", "FROM alpine\nRUN --mount=type=bind,source=a,target=/ ls\n", Err(2, "invalid mount target")),
        case("secret with from", "FROM alpine\nRUN --mount=type=secret,id=a,from=x ls\n", Err(2, "secret mount should not have a from")),
        case("bad mount csv", "FROM alpine\nRUN --mount=target=/a\\\"b ls\n", Err(2, "csv")),
        case("network and security", "FROM alpine\nRUN --network=none --security=sandbox ls\n", Paths(&[])),
        case("bad network", "FROM alpine\nRUN --network=bridge ls\n", Err(2, "network")),
        case("mount in an unreachable stage is not checked", "FROM alpine AS x\nRUN --mount=type=nope ls\nFROM scratch\n", Paths(&[])),
    ]);
}

#[test]
fn whole_context_rules() {
    check(vec![
        case(
            "ONBUILD in the base stage",
            "FROM scratch AS base\nONBUILD COPY . /app\nFROM base\n",
            Whole("ONBUILD"),
        ),
        case(
            "ONBUILD in the final stage only",
            "FROM scratch\nONBUILD COPY . /app\nCOPY a /a\n",
            Paths(&["a"]),
        ),
        case(
            "ONBUILD of an unreachable base",
            "FROM scratch AS base\nONBUILD COPY . /\nFROM base AS x\nFROM scratch\nCOPY a /a\n",
            Paths(&["a"]),
        ),
        case(
            "foreign syntax",
            "# syntax=example.com/frontend:2\nFROM scratch\nCOPY a /a\n",
            Whole("not the Dockerfile 1.x frontend"),
        ),
        case(
            "foreign syntax tolerates anything",
            "# syntax=example.com/frontend:2\nhello world\n",
            Whole("not the Dockerfile 1.x frontend"),
        ),
        case(
            "dockerfile 1 syntax",
            "# syntax=docker/dockerfile:1\nFROM scratch\nCOPY a /a\n",
            Paths(&["a"]),
        ),
        with(
            "BUILDKIT_SYNTAX build arg",
            "FROM scratch\nCOPY a /a\n",
            Facts::new().arg("BUILDKIT_SYNTAX", "x/y:1"),
            Whole("not the Dockerfile 1.x frontend"),
        ),
    ]);
}

#[test]
fn buildkit_failures() {
    check(vec![
        case(
            "unknown instruction",
            "FROM scratch\nCOPPY a /a\n",
            Err(2, "unknown instruction: COPPY"),
        ),
        case(
            "only comments",
            "# nothing\n# here\n",
            Err(0, "no instructions"),
        ),
        case("empty file", "", Err(0, "cannot be empty")),
        case(
            "unknown flag",
            "FROM scratch\nCOPY --form=x a /a\n",
            Err(2, "unknown flag: --form"),
        ),
        case(
            "flag without value",
            "FROM scratch\nCOPY --from a /a\n",
            Err(2, "missing a value"),
        ),
        case(
            "blank base name",
            "FROM $NOPE\n",
            Err(1, "should not be blank"),
        ),
        case(
            "bad stage name",
            "FROM scratch AS 1st\n",
            Err(1, "invalid name for build stage"),
        ),
        case("FROM arity", "FROM a b\n", Err(1, "one or three arguments")),
        case(
            "instruction before FROM",
            "COPY a /a\nFROM scratch\n",
            Err(1, "no build stage"),
        ),
        case("only ARGs", "ARG A=1\n", Err(0, "no stages")),
        case(
            "COPY without destination",
            "FROM scratch\nCOPY a\n",
            Err(2, "at least two arguments"),
        ),
        case(
            "ENV without value",
            "FROM scratch\nENV A\n",
            Err(2, "two arguments"),
        ),
        case(
            "SHELL must be JSON",
            "FROM scratch\nSHELL /bin/sh -c\n",
            Err(2, "JSON form"),
        ),
        case(
            "ONBUILD FROM",
            "FROM scratch\nONBUILD FROM x\n",
            Err(2, "isn't allowed as an ONBUILD trigger"),
        ),
        case(
            "HEALTHCHECK bad interval",
            "FROM scratch\nHEALTHCHECK --interval=5 CMD true\n",
            Err(2, "invalid duration"),
        ),
        case(
            "bad platform",
            "FROM --platform=linux/*/x scratch\n",
            Err(1, "invalid platform"),
        ),
        case(
            "expansion errors in WORKDIR count",
            "FROM scratch\nWORKDIR ${X\n",
            Err(2, "missing '}'"),
        ),
        case(
            "ADD checksum of a local file",
            "FROM scratch\nADD --checksum=sha256:aaaa a /a\n",
            Err(2, "checksum requires HTTP(S) or Git"),
        ),
        case(
            "ADD checksum of a URL",
            "FROM scratch\nADD --checksum=sha256:aaaa https://x/a /a\n",
            Paths(&[]),
        ),
        case(
            "STOPSIGNAL ignores flags",
            "FROM scratch\nSTOPSIGNAL --x SIGTERM\nCOPY a /a\n",
            Paths(&["a"]),
        ),
        case(
            "unknown instruction in an unreachable stage still fails",
            "FROM scratch AS x\nFOO bar\nFROM scratch\n",
            Err(2, "unknown instruction"),
        ),
    ]);
}

#[test]
fn source_path_fields() {
    let a = Facts::new()
        .run("FROM scratch\nCOPY --exclude=*.md --exclude=$X \\\n  docs/ *.txt /d/\nADD pkg.tgz /p\nRUN --mount=source=lock,target=/l ls\n")
        .unwrap();
    let Reads::Paths(p) = &a.main else {
        panic!("{a:?}")
    };
    assert_eq!(p.len(), 4);
    assert_eq!(p[0].path, "docs");
    assert_eq!(
        p[0].excludes,
        vec!["*.md", "$X"],
        "BuildKit does not expand --exclude"
    );
    assert_eq!(p[0].kind, SourceKind::Copy);
    assert_eq!(p[0].line, 2);
    assert_eq!(p[0].instruction, "COPY --exclude=*.md --exclude=$X \\");
    assert!(p[0].must_exist);
    assert!(!p[1].must_exist, "wildcards may match nothing");
    assert_eq!((p[2].kind, p[2].line), (SourceKind::Add, 4));
    assert_eq!(
        (p[3].kind, p[3].path.as_str()),
        (SourceKind::BindMount, "lock")
    );
    let a = Facts::new()
        .run("FROM scratch\nADD git@github.com:a/b.git /s\n")
        .unwrap();
    let Reads::Paths(p) = &a.main else { panic!() };
    assert!(
        !p[0].must_exist,
        "only the old frontend reads it, as a path"
    );
    let long = format!("FROM scratch\nCOPY {} /x\n", "a".repeat(200));
    let a = Facts::new().run(&long).unwrap();
    let Reads::Paths(p) = &a.main else { panic!() };
    assert!(p[0].instruction.chars().count() <= 120);
}

#[test]
fn whole_reasons_name_the_line() {
    let a = Facts::new()
        .run("FROM alpine\nWORKDIR /app\nCOPY . .\n")
        .unwrap();
    let Reads::Whole(w) = &a.main else {
        panic!("{a:?}")
    };
    assert_eq!(w.len(), 1);
    assert_eq!((w[0].line, w[0].instruction.as_str()), (3, "COPY . ."));
}

#[test]
fn named_contexts() {
    let f = || Facts::new().named("deps").named("alpine").named("base:1");
    let a = f()
        .run("FROM scratch\nCOPY --from=deps lib /lib\nRUN --mount=from=deps,source=cache,target=/c ls\nCOPY app /app\n")
        .unwrap();
    assert_eq!(paths(&a.main), Some(vec!["app".to_string()]));
    assert_eq!(
        paths(&a.named["deps"]),
        Some(vec!["lib".to_string(), "cache".to_string()])
    );
    assert!(
        a.images.is_empty(),
        "a named context is not an image: {:?}",
        a.images
    );
    // FROM a named context: the whole context is the base.
    let a = f().run("FROM alpine\nCOPY a /a\n").unwrap();
    assert!(reasons(&a.named["alpine"])[0].contains("FROM uses the named context"));
    assert!(a.images.is_empty());
    let a = f().run("FROM docker.io/library/alpine:latest\n").unwrap();
    assert!(matches!(a.named["alpine"], Reads::Whole(_)));
    let a = f().run("FROM base:1\n").unwrap();
    assert!(matches!(a.named["base:1"], Reads::Whole(_)));
    // A stage named like a named context is replaced by it: its instructions do not run.
    let a = f()
        .run("FROM alpine:3 AS deps\nCOPY never /n\nFROM scratch\nCOPY --from=deps /x /x\n")
        .unwrap();
    assert_eq!(paths(&a.main), Some(vec![]));
    assert_eq!(paths(&a.named["deps"]), Some(vec!["x".to_string()]));
    assert!(a.images.is_empty());
    // Unread named contexts are not listed.
    let a = f().run("FROM scratch\nCOPY a /a\n").unwrap();
    assert!(a.named.is_empty());
    // A named context for the platform.
    let a = Facts::new()
        .named("deps::linux/arm64")
        .run("FROM scratch\nCOPY --from=deps x /x\n")
        .unwrap();
    assert_eq!(
        paths(&a.named["deps::linux/arm64"]),
        Some(vec!["x".to_string()])
    );
    // ONBUILD and foreign frontends make every named context whole.
    let a = f()
        .run("FROM scratch AS b\nONBUILD RUN x\nFROM b\n")
        .unwrap();
    assert_eq!(a.named.len(), 3);
    assert!(a.named.values().all(|r| matches!(r, Reads::Whole(_))));
}

#[test]
fn images_of_reachable_stages() {
    let df = "ARG V=3.11\nFROM --platform=$BUILDPLATFORM python:$V AS build\nCOPY --from=ghcr.io/x/tool:1 /t /t\nRUN --mount=from=busybox,target=/b true\nFROM scratch AS unused\nFROM imagebuild-base/busybox\nCOPY --from=build /a /a\n";
    let a = Facts::new().run(df).unwrap();
    let got: Vec<_> = a
        .images
        .iter()
        .map(|i| {
            (
                i.reference.as_str(),
                i.normalized.as_str(),
                i.platform.as_deref(),
                i.line,
                i.kind,
            )
        })
        .collect();
    assert_eq!(
        got,
        vec![
            (
                "python:3.11",
                "docker.io/library/python:3.11",
                Some("linux/amd64"),
                2,
                ImageUseKind::From
            ),
            (
                "ghcr.io/x/tool:1",
                "ghcr.io/x/tool:1",
                None,
                3,
                ImageUseKind::CopyFrom
            ),
            (
                "busybox",
                "docker.io/library/busybox:latest",
                None,
                4,
                ImageUseKind::MountFrom
            ),
            (
                "imagebuild-base/busybox",
                "docker.io/imagebuild-base/busybox:latest",
                None,
                6,
                ImageUseKind::From
            ),
        ]
    );
    assert_eq!(a.syntax, None);
    let a = Facts::new()
        .run("# syntax=docker/dockerfile:1.7\nFROM alpine AS x\nFROM scratch\n")
        .unwrap();
    assert_eq!(a.syntax.as_deref(), Some("docker/dockerfile:1.7"));
    assert!(
        a.images.is_empty(),
        "unreachable stage's image: {:?}",
        a.images
    );
}

#[test]
fn bad_build_facts() {
    let mut f = Facts::new();
    f.platform = "not a platform".into();
    let e = f.run("FROM scratch\n").unwrap_err();
    assert_eq!(e.line, 0);
    assert!(e.message.contains("platform"));
}
