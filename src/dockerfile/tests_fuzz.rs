//! Property test: random bytes and token soup never make `analyze` panic, and an `Ok`
//! answer never holds an empty or absolute path. Deterministic (own PRNG), bounded in size.

use std::panic::{catch_unwind, AssertUnwindSafe};

use super::tests::Facts;
use super::*;

/// xorshift64*: small, deterministic, good enough to spread inputs.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}

const TOKENS: &[&str] = &[
    "FROM ",
    "from ",
    "scratch",
    "alpine",
    "busybox:1",
    " AS ",
    " as ",
    "b",
    "base",
    "COPY ",
    "ADD ",
    "RUN ",
    "ARG ",
    "ENV ",
    "ONBUILD ",
    "WORKDIR ",
    "HEALTHCHECK ",
    "SHELL ",
    "LABEL ",
    "USER ",
    "--from=",
    "--from=b ",
    "--from=0 ",
    "--mount=",
    "type=bind",
    "type=cache",
    "type=tmpfs",
    "type=secret",
    ",source=",
    ",target=/t",
    ",from=b",
    "--platform=",
    "--exclude=",
    "--parents ",
    "--chmod=",
    "--network=none ",
    "$",
    "${",
    "}",
    ":-",
    ":+",
    "#",
    "%",
    "/",
    "//",
    "${X}",
    "$X",
    "X=",
    "X",
    "=",
    "\"",
    "'",
    "\\",
    "`",
    "\n",
    "\n",
    "\n",
    " ",
    " ",
    "\t",
    "\r",
    "<<EOF",
    "EOF",
    "<<-E",
    "\tE",
    "# escape=`\n",
    "# syntax=",
    "docker/dockerfile:1",
    "[",
    "]",
    "[\"a\", \"/b\"]",
    ".",
    "..",
    "./",
    "*",
    "?",
    "0",
    "1",
    "é",
    "\u{feff}",
    "$TARGETARCH",
    "$BUILDPLATFORM",
    "src",
    "a.txt",
    "/dst/",
    "http://x/y",
    "git@h:r.git",
    "CMD ",
    "NONE",
    "\\\n",
];

const INSTRUCTIONS: &[&str] = &[
    "FROM ",
    "FROM scratch AS b",
    "FROM alpine",
    "COPY ",
    "ADD ",
    "RUN ",
    "ARG ",
    "ENV ",
    "ONBUILD ",
    "WORKDIR ",
    "LABEL ",
    "USER ",
    "HEALTHCHECK ",
    "SHELL ",
    "CMD ",
    "VOLUME ",
    "EXPOSE ",
    "STOPSIGNAL ",
    "# ",
    "",
];

/// Lines that mostly look like instructions, so the analysis (not only the parser) runs.
fn soup(rng: &mut Rng) -> Vec<u8> {
    let mut s = String::new();
    if rng.below(8) == 0 {
        s.push_str(TOKENS[rng.below(TOKENS.len())]);
    }
    if rng.below(3) != 0 {
        s.push_str("FROM scratch\n");
    }
    for _ in 0..1 + rng.below(8) {
        s.push_str(INSTRUCTIONS[rng.below(INSTRUCTIONS.len())]);
        for _ in 0..rng.below(8) {
            let t = TOKENS[rng.below(TOKENS.len())];
            if t.contains('\n') && rng.below(3) != 0 {
                continue;
            }
            s.push_str(t);
            if rng.below(2) == 0 {
                s.push(' ');
            }
        }
        s.push('\n');
    }
    s.into_bytes()
}

fn pick<'a>(rng: &mut Rng, from: &[&'a str]) -> &'a str {
    from[rng.below(from.len())]
}

/// Well-formed instructions with random parts: exercises stages, scopes and reads.
fn templated(rng: &mut Rng) -> Vec<u8> {
    const IMG: &[&str] = &[
        "scratch",
        "alpine",
        "b",
        "c",
        "${X}",
        "busybox:1",
        "$TARGETARCH",
    ];
    const SRC: &[&str] = &[
        ".",
        "a",
        "src/*.go",
        "$X",
        "${X:-d}",
        "../x",
        "<<EOF",
        "git@h:r.git",
        "\"q\"",
        "$PATH",
        "${X%/*}",
        "a\\b",
        "${Y}",
        "/",
        "./x/./y",
    ];
    const FLAGS: &[&str] = &[
        "",
        "",
        "--from=b ",
        "--from=0 ",
        "--from=img:1 ",
        "--exclude=*.md ",
        "--parents ",
    ];
    const MOUNT: &[&str] = &[
        "",
        "--mount=target=/t ",
        "--mount=type=bind,source=$X,target=/t ",
        "--mount=type=cache,target=/c ",
        "--mount=type=tmpfs,target=/t ",
        "--mount=from=b,source=s,target=/t ",
        "--mount=type=secret,id=s ",
    ];
    let mut s = String::new();
    if rng.below(4) == 0 {
        s.push_str("ARG X=x\n");
    }
    for n in 0..1 + rng.below(10) {
        let line = match if n == 0 { 0 } else { rng.below(9) } {
            0 | 1 => {
                let name = pick(rng, &["", " AS b", " AS c", " AS B"]);
                format!("FROM {}{name}\n", pick(rng, IMG))
            }
            2 | 3 => format!(
                "COPY {}{} {} /dst/\n",
                pick(rng, FLAGS),
                pick(rng, SRC),
                pick(rng, SRC)
            ),
            4 => format!("ADD {} /d\n", pick(rng, SRC)),
            5 => format!("RUN {}echo\n", pick(rng, MOUNT)),
            6 => format!(
                "ARG {}\n",
                pick(rng, &["X", "X=v", "Y=$X", "X=a Y=$X", "TARGETARCH"])
            ),
            7 => format!("ENV {}\n", pick(rng, &["X=e", "Y=$X", "$X=1", "X=\"a b\""])),
            _ => pick(rng, &["ONBUILD COPY . /\n", "WORKDIR /w\n", "# c\n", "\n"]).to_string(),
        };
        s.push_str(&line);
        if line.contains("<<EOF") {
            s.push_str("body\nEOF\n");
        }
    }
    s.into_bytes()
}

fn bytes(rng: &mut Rng) -> Vec<u8> {
    let n = rng.below(200);
    let alphabet = b"FROMCOPYRUN $\\{}:-\"'\n\t#=/.*[]<>`,";
    (0..n)
        .map(|_| match rng.below(4) {
            0 => (rng.next() & 0xff) as u8,
            _ => alphabet[rng.below(alphabet.len())],
        })
        .collect()
}

fn check_paths(r: &Reads, input: &[u8]) {
    if let Reads::Paths(p) = r {
        for sp in p {
            assert!(
                !sp.path.is_empty() && !sp.path.starts_with('/'),
                "bad path {:?} for input {:?}",
                sp.path,
                String::from_utf8_lossy(input)
            );
            assert!(
                sp.line >= 1,
                "line 0 for a path, input {:?}",
                String::from_utf8_lossy(input)
            );
        }
    }
}

#[test]
fn random_inputs_never_panic_and_paths_are_relative() {
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    let mut oks = 0;
    for i in 0..5_000 {
        let input = match i % 3 {
            0 => bytes(&mut rng),
            1 => soup(&mut rng),
            _ => templated(&mut rng),
        };
        let mut facts = Facts::new();
        if rng.below(4) == 0 {
            facts = facts.named("b").named("alpine");
        }
        if rng.below(5) == 0 {
            facts = facts.target("b");
        }
        if rng.below(5) == 0 {
            facts = facts.arg("X", "x/../..");
        }
        let outcome = catch_unwind(AssertUnwindSafe(|| {
            facts.run(std::str::from_utf8(&input).unwrap_or("\u{fffd}"))
        }));
        let raw = catch_unwind(AssertUnwindSafe(|| {
            analyze(
                &input,
                &BuildFacts {
                    build_args: &facts.args,
                    target: facts.target.as_deref(),
                    platform: &facts.platform,
                    build_platform: &facts.build_platform,
                    named_contexts: &facts.named,
                },
            )
        }));
        for r in [outcome, raw] {
            match r {
                Err(_) => panic!("analyze panicked on {:?}", String::from_utf8_lossy(&input)),
                Ok(Ok(a)) => {
                    oks += 1;
                    check_paths(&a.main, &input);
                    for n in a.named.values() {
                        check_paths(n, &input);
                    }
                }
                Ok(Err(e)) => assert!(!e.message.is_empty()),
            }
        }
    }
    // The soup must reach the analysis, not only the parser's errors.
    assert!(oks > 1_500, "only {oks} inputs analyzed");
}
