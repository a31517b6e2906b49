//! The Dockerfile reference's own examples (frontend/dockerfile/docs/reference.md),
//! section by section, with what each reads. Inline `# ...` remarks of the reference are
//! left out: in a Dockerfile they would be arguments, not comments.

use super::tests::{case, check, with, Facts, Want::*};

#[test]
fn parser_directives_and_escape() {
    check(vec![
        case("escape backslash", "# escape=\\\nFROM scratch\nCOPY a /a\n", Paths(&["a"])),
        case(
            "windows paths with the backtick escape",
            "# escape=`\n\nFROM mcr.microsoft.com/windows/servercore\nCOPY testfile.txt c:\\\nRUN dir c:\\\n",
            Paths(&["testfile.txt"]),
        ),
        // Without the directive the trailing backslash joins the next line: the reference's
        // "surprising" case, where COPY gets more sources.
        case(
            "windows paths without the directive",
            "FROM mcr.microsoft.com/windows/servercore\nCOPY testfile.txt c:\\\nRUN dir c:\\\n",
            Paths(&["testfile.txt", "c:RUN", "dir"]),
        ),
        case("directive after a comment is a comment", "# About my dockerfile\n# escape=`\nFROM scratch\nCOPY a\\b /x\n", Paths(&["ab"])),
        case("directive with a continuation is not one", "# escape=` \\\nFROM scratch\nCOPY a /a\n", Err(1, "invalid escape token")),
        case("unknown directive ends the directives", "# unknowndirective=value\n# escape=`\nFROM scratch\nCOPY a\\b /x\n", Paths(&["ab"])),
        case("spacing and case of directives", "#\t  eScApE = `\nFROM scratch\nCOPY a\\b /x\n", Paths(&["a\\b"])),
        case("syntax directive", "# syntax=docker/dockerfile:1\nFROM scratch\nCOPY a /a\n", Paths(&["a"])),
    ]);
}

#[test]
fn environment_replacement() {
    check(vec![
        case(
            "the reference's ENV example",
            "FROM busybox\nENV FOO=/bar\nWORKDIR ${FOO}\nCOPY \\$FOO /quux\nADD $FOO/x /y\n",
            Paths(&["$FOO", "bar/x"]),
        ),
        case("ADD . $FOO reads everything", "FROM busybox\nENV FOO=/bar\nADD . $FOO\n", Whole("root of the context")),
        case(
            "values stay fixed within an instruction",
            "FROM busybox\nENV abc=hello\nENV abc=bye def=$abc\nENV ghi=$abc\nCOPY $def $ghi /x/\n",
            Paths(&["hello", "bye"]),
        ),
        case(
            "bash modifiers from the reference",
            "FROM scratch\nARG str=foobarbaz\nCOPY ${str#f*b} ${str##f*b} ${str%b*} ${str%%b*} ${str/ba/fo} ${str//ba/fo} /x/\n",
            Paths(&["arbaz", "az", "foobar", "foo", "fooforbaz", "fooforfoz"]),
        ),
        case("set and empty forms", "FROM scratch\nARG e=\nCOPY a${e:-w} b${e-w} c${e:+w} d${e+w} /x/\n", Paths(&["aw", "b", "c", "dw"])),
    ]);
}

#[test]
fn add_and_copy_sources() {
    check(vec![
        case("pattern matching", "FROM scratch\nADD hom* /mydir/\nADD hom?.txt /mydir/\nCOPY arr[[]0].txt /mydir/\n", Paths(&["hom*", "hom?.txt", "arr[[]0].txt"])),
        case("relative destination", "FROM scratch\nWORKDIR /usr/src/app\nCOPY test.txt relativeDir/\nADD test.txt /absoluteDir/\n", Paths(&["test.txt", "test.txt"])),
        case("local tar archive", "FROM scratch\nADD --unpack=false archive.tar.gz /x/\n", Paths(&["archive.tar.gz"])),
        case("URL", "FROM scratch\nADD https://example.com/foobar /\nADD --checksum=sha256:24454f830cdb571e2c4ad15481119c43b3cafd48dd869a9b2945d1036d1dc68d https://mirrors.edge.kernel.org/pub/linux/kernel/Historic/linux-0.01.tar.gz /\n", Paths(&[])),
        case("git over https", "FROM scratch\nADD https://github.com/user/repo.git /mydir/\nADD --keep-git-dir=true https://github.com/moby/buildkit.git#v0.10.1 /buildkit\n", Paths(&[])),
        case("git over ssh", "FROM alpine\nADD git@git.example.com:foo/bar.git /bar\n", Paths(&["git@git.example.com:foo/bar.git"])),
        case("chown and chmod", "FROM scratch\nCOPY --chown=55:mygroup files* /somedir/\nCOPY --chown=bin files* /somedir/\nCOPY --chmod=644 files* /somedir/\nADD --chmod=u=rwX,go=rX run.sh /\n", Paths(&["files*", "files*", "files*", "run.sh"])),
        case("link", "FROM alpine\nCOPY --link /foo /bar\n", Paths(&["foo"])),
        case(
            "copy from a build stage",
            "FROM alpine AS build\nCOPY . .\nRUN apk add clang\nRUN clang -o /hello hello.c\n\nFROM scratch\nCOPY --from=build /hello /\n",
            Whole("root of the context"),
        ),
        case("copy from an image", "FROM scratch\nCOPY --from=nginx:latest /etc/nginx/nginx.conf /nginx.conf\n", Paths(&[])),
        case("parents", "FROM scratch\nCOPY ./x/a.txt ./y/a.txt /no_parents/\nCOPY --parents ./x/a.txt ./y/a.txt /parents/\n", Paths(&["x/a.txt", "y/a.txt", "x/a.txt", "y/a.txt"])),
        case("parents with a pivot", "FROM scratch\nCOPY --parents ./x/./y/*.txt /parents/\nCOPY --parents ./src/**/*.txt /parents/\n", Paths(&["x/y/*.txt", "src/**/*.txt"])),
        case("exclude", "FROM scratch\nCOPY --exclude=*.txt hom* /mydir/\nCOPY --exclude=*.txt --exclude=*.md hom* /mydir/\n", Paths(&["hom*", "hom*"])),
    ]);
}

#[test]
fn run_examples() {
    check(vec![
        case("cache go packages", "FROM golang\nRUN --mount=type=cache,target=/root/.cache/go-build \\\n  go build ...\n", Paths(&[])),
        case(
            "cache apt packages",
            "FROM ubuntu\nRUN rm -f /etc/apt/apt.conf.d/docker-clean; echo 'Binary::apt::APT::Keep-Downloaded-Packages \"true\";' > /etc/apt/apt.conf.d/keep-cache\nRUN --mount=type=cache,target=/var/cache/apt,sharing=locked \\\n  --mount=type=cache,target=/var/lib/apt,sharing=locked \\\n  apt update && apt-get --no-install-recommends install -y gcc\n",
            Paths(&[]),
        ),
        case("secret as a file", "FROM python:3\nRUN pip install awscli\nRUN --mount=type=secret,id=aws,target=/root/.aws/credentials \\\n  aws s3 cp s3://... ...\n", Paths(&[])),
        case("secret as env", "FROM alpine\nRUN --mount=type=secret,id=API_KEY,env=API_KEY \\\n    some-command --token-from-env $API_KEY\n", Paths(&[])),
        case("ssh", "FROM alpine\nRUN apk add --no-cache openssh-client\nRUN mkdir -p -m 0700 ~/.ssh && ssh-keyscan gitlab.com >> ~/.ssh/known_hosts\nRUN --mount=type=ssh \\\n  ssh -q -T git@gitlab.com 2>&1 | tee /hello\n", Paths(&[])),
        case("network none", "FROM python:3.6\nADD mypackage.tgz wheels/\nRUN --network=none pip install --find-links wheels mypackage\n", Paths(&["mypackage.tgz"])),
        case("security insecure", "FROM ubuntu\nRUN --security=insecure cat /proc/self/status | grep CapEff\n", Paths(&[])),
        case("exec form", "FROM ubuntu\nRUN [\"/bin/bash\", \"-c\", \"echo hello\"]\nRUN [\"c:\\\\windows\\\\system32\\\\tasklist.exe\"]\n", Paths(&[])),
    ]);
}

#[test]
fn arg_examples() {
    check(vec![
        case("scope: not yet declared", "FROM busybox\nUSER ${username:-some_user}\nARG username\nUSER $username\nCOPY ${username:-none} /x\n", Whole("$username")),
        with("scope: declared and passed", "FROM busybox\nARG username\nCOPY ${username:-none} /x\n", Facts::new().arg("username", "what_user"), Paths(&["what_user"])),
        with("ENV overrides ARG", "FROM ubuntu\nARG CONT_IMG_VER\nENV CONT_IMG_VER=v1.0.0\nCOPY $CONT_IMG_VER /x\n", Facts::new().arg("CONT_IMG_VER", "v2.0.1"), Paths(&["v1.0.0"])),
        with("ENV from ARG", "FROM ubuntu\nARG CONT_IMG_VER\nENV CONT_IMG_VER=${CONT_IMG_VER:-v1.0.0}\nCOPY $CONT_IMG_VER /x\n", Facts::new().arg("CONT_IMG_VER", "v2.0.1"), Paths(&["v2.0.1"])),
        case("ENV from an ARG that may come from the image", "FROM ubuntu\nARG CONT_IMG_VER\nENV CONT_IMG_VER=${CONT_IMG_VER:-v1.0.0}\nCOPY $CONT_IMG_VER /x\n", Whole("$CONT_IMG_VER")),
        case("ARG and FROM", "ARG  CODE_VERSION=latest\nFROM base:${CODE_VERSION}\nCMD  /code/run-app\n\nFROM extras:${CODE_VERSION}\nCMD  /code/run-extras\n", Paths(&[])),
        case("ARG after FROM", "ARG VERSION=latest\nFROM busybox:$VERSION\nARG VERSION\nRUN echo $VERSION > image_version\nCOPY v$VERSION /x\n", Paths(&["vlatest"])),
        case("automatic platform ARGs", "FROM alpine\nARG TARGETPLATFORM\nRUN echo \"I'm building for $TARGETPLATFORM\"\nCOPY $TARGETPLATFORM /x\n", Paths(&["linux/arm64"])),
    ]);
    let a = Facts::new()
        .run("ARG  CODE_VERSION=latest\nFROM base:${CODE_VERSION}\nCMD  /code/run-app\n\nFROM extras:${CODE_VERSION}\nCMD  /code/run-extras\n")
        .unwrap();
    let refs: Vec<&str> = a.images.iter().map(|i| i.reference.as_str()).collect();
    assert_eq!(
        refs,
        vec!["extras:latest"],
        "only the target stage's base is used"
    );
}

#[test]
fn heredoc_examples() {
    check(vec![
        case("multi-line script", "# syntax=docker/dockerfile:1\nFROM debian\nRUN <<EOT bash\n  set -ex\n  apt-get update\n  apt-get install -y vim\nEOT\n", Paths(&[])),
        case("shebang", "FROM python:3.6\nRUN <<EOT\n#!/usr/bin/env python\nprint(\"hello world\")\nEOT\nCOPY x /x\n", Paths(&["x"])),
        case("two heredocs", "FROM alpine\nRUN <<FILE1 cat > file1 && <<FILE2 cat > file2\nI am\nfirst\nFILE1\nI am\nsecond\nFILE2\nCOPY after /a\n", Paths(&["after"])),
        case("inline file", "FROM alpine\nCOPY <<EOF greeting.txt\nhello world\nEOF\n", Paths(&[])),
        case("inline script with tabs", "FROM alpine\nARG FOO=bar\nCOPY <<-EOT /script.sh\n  echo \"hello ${FOO}\"\nEOT\nENTRYPOINT ash /script.sh\n", Paths(&[])),
        case("quoted word", "FROM alpine\nARG FOO=bar\nCOPY <<-\"EOT\" /script.sh\n  echo \"hello ${FOO}\"\nEOT\nENTRYPOINT ash /script.sh\n", Paths(&[])),
    ]);
}

#[test]
fn onbuild_example() {
    check(vec![
        case("ONBUILD in an image for others", "FROM python\nONBUILD ADD . /app/src\nONBUILD RUN /usr/local/bin/python-build --dir /app/src\n", Paths(&[])),
        case("ONBUILD triggers of a base stage", "FROM python AS base\nONBUILD ADD . /app/src\nFROM base\n", Whole("ONBUILD")),
    ]);
}
