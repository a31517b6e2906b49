//! Random build contexts with random .dockerignore files, shared by the
//! oracle tests (Docker engine and current BuildKit's fsutil).

#![allow(dead_code)]

use std::fs;
use std::os::unix::fs::{symlink, PermissionsExt};
use std::path::{Path, PathBuf};

/// The Dockerfile every case builds: copies the whole context.
pub const DOCKERFILE: &str = "FROM scratch\nCOPY . /ctx/\n";

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

const NAMES: &[&str] = &[
    "a",
    "b",
    "c",
    "ab",
    "keep",
    "src",
    "build",
    "node_modules",
    "x.txt",
    "y.log",
    "z.md",
    ".hidden",
    "a+b",
    "p(1)",
    "lib",
    "deep",
    "README.md",
    "main.go",
    "Dockerfile",
];

/// One generated case: where the context and Dockerfile live, and the ignore text.
pub struct Case {
    pub id: usize,
    pub ctx: PathBuf,
    pub dockerfile: PathBuf,
    pub ignore: String,
    pub description: String,
}

fn gen_dir(rng: &mut Rng, root: &Path, rel: &str, depth: usize, made: &mut Vec<(String, bool)>) {
    let count = if depth == 0 {
        3 + rng.below(5)
    } else {
        rng.below(5)
    };
    let mut used = Vec::new();
    for _ in 0..count {
        let name = *rng.pick(NAMES);
        if used.contains(&name) || (depth == 0 && (name == "Dockerfile" || name == ".dockerignore"))
        {
            continue;
        }
        used.push(name);
        let path = if rel.is_empty() {
            name.to_string()
        } else {
            format!("{rel}/{name}")
        };
        let abs = root.join(&path);
        let roll = rng.below(100);
        if roll < 52 {
            let len = rng.below(48);
            let body: Vec<u8> = (0..len).map(|_| rng.next() as u8).collect();
            fs::write(&abs, body).unwrap();
            if rng.chance(20) {
                fs::set_permissions(&abs, fs::Permissions::from_mode(0o755)).unwrap();
            }
            made.push((path, false));
        } else if roll < 90 && depth < 4 {
            fs::create_dir(&abs).unwrap();
            made.push((path.clone(), true));
            gen_dir(rng, root, &path, depth + 1, made);
        } else {
            let target = *rng.pick(&["a", "../a", "/etc/hostname", "nowhere", "src/x.txt", "."]);
            symlink(target, &abs).unwrap();
            made.push((path, false));
        }
    }
}

/// A pattern derived from a real path so that it matches something often.
fn gen_pattern(rng: &mut Rng, made: &[(String, bool)]) -> String {
    let base = if made.is_empty() || rng.chance(12) {
        rng.pick(&[
            "*",
            "**",
            "*.txt",
            "**/*.log",
            "**/keep",
            "*/b",
            "?",
            "[ab]",
            "a*",
            "Dockerfile",
            ".dockerignore",
            ".*",
        ])
        .to_string()
    } else {
        made[rng.below(made.len())].0.clone()
    };
    let mut parts: Vec<String> = base.split('/').map(String::from).collect();
    if parts.len() > 1 && rng.chance(30) {
        parts.truncate(1 + rng.below(parts.len() - 1));
    }
    for part in parts.iter_mut() {
        match rng.below(14) {
            0 => *part = "*".into(),
            1 if !part.is_empty() => {
                let mut chars: Vec<char> = part.chars().collect();
                let i = rng.below(chars.len());
                chars[i] = '?';
                *part = chars.into_iter().collect();
            }
            2 => *part = format!("{}*", part.chars().next().unwrap_or('a')),
            3 if part.len() > 1 => *part = format!("[{}x]{}", &part[..1], &part[1..]),
            4 => *part = "**".into(),
            _ => {}
        }
    }
    let mut p = parts.join("/");
    match rng.below(12) {
        0 => p = format!("**/{p}"),
        1 => p.push_str("/**"),
        2 => p.push('/'),
        3 => p = format!("/{p}"),
        4 => p = format!("./{p}"),
        5 => {
            p = format!(
                "{p}/../{}",
                made.first().map(|m| m.0.as_str()).unwrap_or("a")
            )
        }
        6 => p.push_str("/*"),
        _ => {}
    }
    if rng.chance(30) {
        p = if rng.chance(50) {
            format!("!{p}")
        } else {
            format!("! {p}")
        };
    }
    if rng.chance(8) {
        p = format!("  {p}\t");
    }
    p
}

pub fn gen_case(rng: &mut Rng, id: usize, base: &Path) -> Case {
    let ctx = base.join(format!("ctx{id}"));
    fs::create_dir_all(&ctx).unwrap();
    let mut made = Vec::new();
    gen_dir(rng, &ctx, "", 0, &mut made);
    let dockerfile = match rng.below(10) {
        0..=6 => ctx.join("Dockerfile"),
        7 => {
            let sub = ctx.join("sub");
            if !sub.exists() {
                fs::create_dir(&sub).unwrap();
                made.push(("sub".into(), true));
            }
            made.push(("sub/app.Dockerfile".into(), false));
            sub.join("app.Dockerfile")
        }
        _ => {
            let outside = base.join(format!("df{id}"));
            fs::create_dir_all(&outside).unwrap();
            outside.join("Dockerfile")
        }
    };
    fs::write(&dockerfile, DOCKERFILE).unwrap();
    if dockerfile.parent() == Some(ctx.as_path()) {
        made.push(("Dockerfile".into(), false));
    }
    made.push((".dockerignore".into(), false));
    let mut lines = Vec::new();
    if rng.chance(92) {
        for _ in 0..1 + rng.below(7) {
            match rng.below(30) {
                0 => lines.push("# a comment".to_string()),
                1 => lines.push(String::new()),
                _ => lines.push(gen_pattern(rng, &made)),
            }
        }
        if rng.chance(15) {
            lines.push("Dockerfile".into());
        }
        if rng.chance(15) {
            lines.push(".dockerignore".into());
        }
        let eol = if rng.chance(10) { "\r\n" } else { "\n" };
        let ignore = lines.join(eol) + eol;
        fs::write(ctx.join(".dockerignore"), &ignore).unwrap();
    }
    let ignore = fs::read_to_string(ctx.join(".dockerignore")).unwrap_or_default();
    Case {
        id,
        ctx,
        dockerfile,
        ignore,
        description: format!("{made:?}"),
    }
}

/// Hand-written cases for behaviour first observed by probing Docker 20.10.
pub fn fixed_cases(base: &Path) -> Vec<Case> {
    let specs: &[(&[&str], &[&str], &str)] = &[
        // (files, dirs, .dockerignore)
        (&["a/b/c/f", "a/b/g", "a/h"], &[], "a\n!a/b\na\n"),
        (&["a/keep", "a/x/keep", "a/other"], &[], "*\n!**/keep\n"),
        (&["a/b/f"], &[], "a\n!a/zzz\n"),
        (&["a+b", "aab", "x(y)", "p{1}"], &[], "a+b\nx(y)\np{1}\n"),
        (&["b/x/y", "b/z/w", "b/x/keep/k"], &[], "**/b\n!b/x/keep\n"),
        (
            &["d1/f", "d2/f", "d3/f", "d4/f", "#c", " s", "e", "g"],
            &["empty"],
            "\u{feff}/d1\nd2/\n./d3\n  d4  \n#c\n #c\r\ne\r\n! g\n/\n.\n..\n",
        ),
        (&["f"], &["empty", "d/e"], "Dockerfile\n.dockerignore\n"),
        (&["x/y/z"], &[], "x/**\n!x/y/z\n"),
        (&["a.txt", "b/a.txt", "b/c/a.txt"], &[], "**/*.txt\n!b/**\n"),
    ];
    specs
        .iter()
        .enumerate()
        .map(|(i, (files, dirs, ignore))| {
            let id = 100_000 + i;
            let ctx = base.join(format!("ctx{id}"));
            for f in *files {
                let p = ctx.join(f);
                fs::create_dir_all(p.parent().unwrap()).unwrap();
                fs::write(&p, f.as_bytes()).unwrap();
            }
            for d in *dirs {
                fs::create_dir_all(ctx.join(d)).unwrap();
            }
            fs::write(ctx.join("Dockerfile"), DOCKERFILE).unwrap();
            fs::write(ctx.join(".dockerignore"), ignore).unwrap();
            Case {
                id,
                dockerfile: ctx.join("Dockerfile"),
                ctx,
                ignore: ignore.to_string(),
                description: format!("fixed case {i}: {files:?} {dirs:?}"),
            }
        })
        .collect()
}
