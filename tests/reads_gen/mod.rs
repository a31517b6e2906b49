//! Random Dockerfile + context cases for the reads oracle (tests/plan_buildkit_oracle.rs): every
//! file's content names its own path, so a file exported from a build tells which context path
//! the build read. Dockerfiles mix COPY/ADD of files, directories and wildcards, ARG
//! substitution (defaults, build args, global ARGs), multi-stage builds with a target,
//! RUN --mount=type=bind sources, JSON forms and ignored files; for engines whose frontend has
//! them (Docker 25+), also heredocs (COPY and RUN), `COPY --exclude` and a named local context
//! (`--build-context dep=DIR`, read by `COPY --from=dep` and `RUN --mount=from=dep`), whose
//! files' content names them as `@dep/PATH`.

#![allow(dead_code)]

use std::collections::BTreeMap;
use std::fs;
use std::os::unix::fs::symlink;
use std::path::{Path, PathBuf};

/// The busybox base image the RUN stages use (made by scripts/make-base-images.sh).
pub const BUSYBOX: &str = "imagebuild-base/busybox:latest";

/// splitmix64: tiny, seedable, good enough to drive a generator.
pub struct Rng(pub u64);

impl Rng {
    pub fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    pub fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
    pub fn chance(&mut self, percent: usize) -> bool {
        self.below(100) < percent
    }
    pub fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len())]
    }
}

/// One case: a context, a Dockerfile and the build inputs.
pub struct Case {
    pub id: usize,
    pub ctx: PathBuf,
    pub dockerfile: PathBuf,
    pub text: String,
    pub build_args: BTreeMap<String, String>,
    pub target: Option<String>,
    pub ignore: String,
    /// Paths that exist (files and dirs), relative.
    pub paths: Vec<String>,
    /// The named local context the Dockerfile may read, when the case has one.
    pub named: Option<NamedCase>,
}

/// A named local context of a case (`--build-context NAME=DIR`), with its own `.dockerignore`.
pub struct NamedCase {
    /// The name the Dockerfile uses (`COPY --from=NAME`).
    pub name: String,
    /// Its directory, outside the main context.
    pub dir: PathBuf,
    /// Paths that exist in it (files and dirs), relative.
    pub paths: Vec<String>,
}

/// The name of the generated named context.
pub const NAMED: &str = "dep";

impl NamedCase {
    /// How a file of this context names itself after [`MARK`]: `@NAME/PATH`.
    pub fn label(&self, rel: &str) -> String {
        format!("@{}/{rel}", self.name)
    }
}

/// The marker that starts every generated file's content.
pub const MARK: &str = "path:";

const DIRS: &[&str] = &[
    "a",
    "b",
    "src",
    "src/pkg",
    "src/pkg/sub",
    "lib",
    "a/deep",
    "a.d",
];
const FILES: &[&str] = &[
    "f1.txt", "f2.py", "g.txt", ".hidden", "data.bin", "x.md", "y.log", "a1", "b2",
];

/// Writes `root/rel`, its content naming it as `{label_prefix}{rel}`.
fn write_file(root: &Path, rel: &str, label_prefix: &str, rng: &mut Rng) {
    let p = root.join(rel);
    fs::create_dir_all(p.parent().unwrap()).unwrap();
    let pad = "z".repeat(rng.below(40));
    fs::write(p, format!("{MARK}{label_prefix}{rel}\n{pad}")).unwrap();
}

fn gen_tree(rng: &mut Rng, root: &Path, label_prefix: &str) -> Vec<String> {
    let mut paths = Vec::new();
    for f in FILES {
        if rng.chance(70) {
            write_file(root, f, label_prefix, rng);
            paths.push(f.to_string());
        }
    }
    for d in DIRS {
        if !rng.chance(75) {
            continue;
        }
        fs::create_dir_all(root.join(d)).unwrap();
        paths.push(d.to_string());
        for f in FILES {
            if rng.chance(40) {
                let rel = format!("{d}/{f}");
                write_file(root, &rel, label_prefix, rng);
                paths.push(rel);
            }
        }
    }
    // Symlinks inside the context: to a file, to a directory, dangling.
    let links = [
        ("link_file", "f1.txt"),
        ("link_dir", "src"),
        ("a/up", "../lib"),
        ("dangling", "nowhere"),
    ];
    for (name, target) in links {
        let parent = root.join(name);
        if rng.chance(35) && parent.parent().is_some_and(Path::exists) {
            let _ = symlink(target, &parent);
            paths.push(name.to_string());
        }
    }
    paths.sort();
    paths
}

fn gen_ignore(rng: &mut Rng, paths: &[String]) -> String {
    let mut lines = Vec::new();
    for _ in 0..rng.below(4) {
        let line = match rng.below(6) {
            0 => "*.log".to_string(),
            1 => "**/*.md".to_string(),
            2 if !paths.is_empty() => paths[rng.below(paths.len())].clone(),
            3 => "src/pkg/sub".to_string(),
            4 => "!src/pkg/sub/f1.txt".to_string(),
            _ => "a/deep".to_string(),
        };
        lines.push(line);
    }
    lines.join("\n") + "\n"
}

/// A source path an instruction reads: mostly existing paths, sometimes wildcards or
/// ARG-substituted, rarely missing.
fn gen_source(rng: &mut Rng, paths: &[String]) -> String {
    let has = |p: &str| paths.iter().any(|x| x == p);
    let special: Vec<&str> = [
        ("*.txt", true),
        ("src/*", has("src")),
        ("a/*.py", has("a")),
        ("?1.txt", true),
        ("[ab]/f*", has("a") && has("b")),
        ("${DIR}/f1.txt", true),
        ("$DIR", true),
        ("link_dir/pkg", has("link_dir") && has("src/pkg")),
        ("a/up/f2.py", has("a/up") && has("lib/f2.py")),
        ("link_file", has("link_file")),
        ("missing.txt", rng.chance(10)),
    ]
    .into_iter()
    .filter(|(_, ok)| *ok)
    .map(|(p, _)| p)
    .collect();
    if !paths.is_empty() && (special.is_empty() || rng.chance(55)) {
        let p = paths[rng.below(paths.len())].clone();
        return match rng.below(10) {
            0 | 1 => format!("{p}/"),
            2 => format!("./{p}"),
            _ => p,
        };
    }
    if special.is_empty() {
        return "f1.txt".into();
    }
    special[rng.below(special.len())].to_string()
}

/// An instruction only a current frontend parses (BuildKit 0.10+ heredocs, 0.13+ `--exclude`).
fn gen_modern(rng: &mut Rng, paths: &[String], n: usize) -> String {
    match rng.below(3) {
        // Heredoc content never names a context path: it must add nothing to the reads.
        0 => format!("COPY <<EOF /out/{n}/heredoc\nfrom a heredoc\nEOF\n"),
        1 => format!("RUN <<EOF\nmkdir -p /out/{n}\necho run > /out/{n}/run\nEOF\n"),
        _ => {
            let src = gen_source(rng, paths);
            let pattern = *rng.pick(&["*.txt", "**/*.py", "sub", "f1.txt"]);
            format!("COPY --exclude={pattern} {src} /out/{n}/\n")
        }
    }
}

/// An instruction reading the named context: `COPY --from=NAME` or a bind mount from it.
fn gen_named_read(rng: &mut Rng, named: &NamedCase, n: usize) -> String {
    let name = &named.name;
    let src = if rng.chance(8) {
        ".".to_string()
    } else {
        gen_source(rng, &named.paths)
    };
    if rng.chance(30) {
        return format!(
            "RUN --mount=type=bind,from={name},source={src},target=/m mkdir -p /out/{n} && cp -r /m/. /out/{n}/ 2>/dev/null || cp /m /out/{n}/ || true\n"
        );
    }
    format!("COPY --from={name} {src} /out/{n}/\n")
}

fn gen_dockerfile(
    rng: &mut Rng,
    paths: &[String],
    modern: bool,
    named: Option<&NamedCase>,
) -> (String, BTreeMap<String, String>, Option<String>) {
    let mut text = String::new();
    let mut args = BTreeMap::new();
    if rng.chance(40) {
        text.push_str("ARG DIR=src\n");
    }
    let stages = 1 + rng.below(3);
    let mut n = 0;
    let mut names = Vec::new();
    for s in 0..stages {
        let name = format!("s{s}");
        text.push_str(&format!("FROM {BUSYBOX} AS {name}\nRUN mkdir -p /out\n"));
        if rng.chance(60) {
            let default = *rng.pick(&["a", "b", "src", "lib"]);
            text.push_str(&format!("ARG DIR={default}\n"));
        } else if rng.chance(50) {
            text.push_str("ARG DIR\n");
        }
        for _ in 0..1 + rng.below(3) {
            n += 1;
            if let Some(named) = named.filter(|_| rng.chance(35)) {
                text.push_str(&gen_named_read(rng, named, n));
                continue;
            }
            if modern && rng.chance(20) {
                text.push_str(&gen_modern(rng, paths, n));
                continue;
            }
            let src = gen_source(rng, paths);
            let line = match rng.below(6) {
                0 => format!("COPY [\"{src}\", \"/out/{n}/\"]\n"),
                1 => format!("ADD {src} /out/{n}/\n"),
                2 => format!(
                    "RUN --mount=type=bind,source={src},target=/m mkdir -p /out/{n} && cp -r /m/. /out/{n}/ 2>/dev/null || cp /m /out/{n}/ || true\n"
                ),
                3 => {
                    let other = gen_source(rng, paths);
                    format!("COPY {src} {other} /out/{n}/\n")
                }
                _ => format!("COPY {src} /out/{n}/\n"),
            };
            text.push_str(&line);
        }
        if let Some(prev) = names.last() {
            if rng.chance(50) {
                text.push_str(&format!("COPY --from={prev} /out /out\n"));
            }
        }
        names.push(name);
    }
    // The exported stage: scratch, holding what the chosen stage produced.
    let target_stage = names[rng.below(names.len())].clone();
    text.push_str(&format!(
        "FROM scratch AS export\nCOPY --from={target_stage} /out /out\n"
    ));
    if rng.chance(30) {
        text.push_str("FROM scratch AS unreachable\nCOPY . /all/\n");
    }
    let target = Some("export".to_string());
    if rng.chance(30) {
        args.insert(
            "DIR".to_string(),
            rng.pick(&["a", "b", "src/pkg", "lib"]).to_string(),
        );
    }
    (text, args, target)
}

/// Generates case `id` under `base` with instructions every engine parses.
pub fn gen_case(rng: &mut Rng, id: usize, base: &Path) -> Case {
    gen_case_with(rng, id, base, false)
}

/// A named context for case `id` (on modern frontends, in about a third of the cases).
fn gen_named(rng: &mut Rng, id: usize, base: &Path, modern: bool) -> Option<NamedCase> {
    if !modern || !rng.chance(35) {
        return None;
    }
    let dir = base.join(format!("named{id}"));
    fs::create_dir_all(&dir).unwrap();
    let paths = gen_tree(rng, &dir, &format!("@{NAMED}/"));
    fs::write(dir.join(".dockerignore"), gen_ignore(rng, &paths)).unwrap();
    Some(NamedCase {
        name: NAMED.to_string(),
        dir,
        paths,
    })
}

/// Generates case `id` under `base`; `modern` adds heredocs, `COPY --exclude` and a named
/// local context.
pub fn gen_case_with(rng: &mut Rng, id: usize, base: &Path, modern: bool) -> Case {
    let ctx = base.join(format!("ctx{id}"));
    fs::create_dir_all(&ctx).unwrap();
    let paths = gen_tree(rng, &ctx, "");
    let ignore = gen_ignore(rng, &paths);
    fs::write(ctx.join(".dockerignore"), &ignore).unwrap();
    let named = gen_named(rng, id, base, modern);
    let (text, build_args, target) = gen_dockerfile(rng, &paths, modern, named.as_ref());
    let dockerfile = if rng.chance(30) {
        let outside = base.join(format!("df{id}"));
        fs::create_dir_all(&outside).unwrap();
        outside.join("Dockerfile")
    } else {
        ctx.join("Dockerfile")
    };
    fs::write(&dockerfile, &text).unwrap();
    Case {
        id,
        ctx,
        dockerfile,
        text,
        build_args,
        target,
        ignore,
        paths,
        named,
    }
}
