//! `pulumi-resource-imagebuild context DIR [--dockerfile F] [--list] [--explain OLD_HASH]`:
//! lets users see what a context contains and why its hash changed.

use std::path::PathBuf;

use super::{
    explain, snapshot_with, ContextRequest, Dialect, DockerfileSource, EntryKind, Explanation,
    SnapshotOptions,
};

const USAGE: &str = "usage: pulumi-resource-imagebuild context DIR [--dockerfile FILE] [--list] [--explain OLD_HASH] [--dialect buildkit|docker20]
  DIR                 build context directory
  --dialect NAME      .dockerignore rules: buildkit (default, Docker 23+) or docker20 (Docker 20.10)
  --dockerfile FILE   Dockerfile (default: DIR/Dockerfile); its content enters the hash
  --list              print the included paths, one per line, sorted (directories end in /)
  --explain OLD_HASH  list files added (+), removed (-) and changed (~) since OLD_HASH";

struct Args {
    dir: PathBuf,
    dockerfile: Option<PathBuf>,
    list: bool,
    explain: Option<String>,
    dialect: Dialect,
}

fn parse(args: &[String]) -> Result<Option<Args>, String> {
    // Callers may pass the words after the program name with or without `context`.
    let args = match args.first() {
        Some(first) if first == "context" => &args[1..],
        _ => args,
    };
    let (mut dir, mut dockerfile, mut list, mut explain) = (None, None, false, None);
    let mut dialect = Dialect::default();
    let mut it = args.iter();
    while let Some(arg) = it.next() {
        match arg.as_str() {
            "-h" | "--help" => return Ok(None),
            "--list" => list = true,
            "--dockerfile" | "-f" => {
                let v = it.next().ok_or("--dockerfile needs a file")?;
                dockerfile = Some(PathBuf::from(v));
            }
            "--explain" => explain = Some(it.next().ok_or("--explain needs a hash")?.clone()),
            "--dialect" => {
                dialect = match it.next().map(String::as_str) {
                    Some("buildkit") => Dialect::BuildKit,
                    Some("docker20") => Dialect::Docker20,
                    _ => return Err("--dialect needs buildkit or docker20".into()),
                }
            }
            s if s.starts_with("--dockerfile=") => {
                dockerfile = Some(PathBuf::from(&s["--dockerfile=".len()..]))
            }
            s if s.starts_with("--explain=") => explain = Some(s["--explain=".len()..].to_string()),
            s if s.starts_with('-') && s.len() > 1 => return Err(format!("unknown option {s}")),
            s if dir.is_none() => dir = Some(PathBuf::from(s)),
            s => return Err(format!("unexpected argument {s}")),
        }
    }
    let dir = dir.ok_or("missing context directory")?;
    Ok(Some(Args {
        dir,
        dockerfile,
        list,
        explain,
        dialect,
    }))
}

/// Runs the `context` subcommand: prints to stdout/stderr and returns the exit
/// code (0 ok, 1 failure, 2 usage). `args` are the words after the program name.
pub fn run_cli(args: &[String]) -> i32 {
    let args = match parse(args) {
        Ok(Some(a)) => a,
        Ok(None) => {
            println!("{USAGE}");
            return 0;
        }
        Err(e) => {
            eprintln!("error: {e}\n{USAGE}");
            return 2;
        }
    };
    let dockerfile = args
        .dockerfile
        .clone()
        .unwrap_or_else(|| args.dir.join("Dockerfile"));
    let req = ContextRequest {
        dir: args.dir.clone(),
        dockerfile: DockerfileSource::Path(dockerfile.clone()),
        extra_inputs: Vec::new(),
        cache_dir: None,
    };
    let snap = match snapshot_with(
        &req,
        &SnapshotOptions {
            dialect: args.dialect,
        },
    ) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("error: {e}");
            return 1;
        }
    };
    println!("context:    {}", snap.root.display());
    match &snap.dockerfile_in_context {
        Some(rel) => println!("dockerfile: {} (in context as {rel})", dockerfile.display()),
        None => println!("dockerfile: {}", dockerfile.display()),
    }
    println!("hash:       {}", snap.hash);
    println!("files:      {}", snap.files);
    println!("bytes:      {} ({})", snap.bytes, human(snap.bytes));
    if let Some(old) = &args.explain {
        match explain(old, &snap, None) {
            Explanation::OldManifestMissing => {
                println!("explain:    no manifest for {old} in the cache; cannot tell what changed")
            }
            Explanation::Changes {
                added,
                removed,
                changed,
            } => {
                println!(
                    "explain:    since {old}: {} added, {} removed, {} changed",
                    added.len(),
                    removed.len(),
                    changed.len()
                );
                for p in &added {
                    println!("+ {p}");
                }
                for p in &removed {
                    println!("- {p}");
                }
                for p in &changed {
                    println!("~ {p}");
                }
            }
        }
    }
    if args.list {
        for e in snap.entries.iter() {
            match e.kind {
                EntryKind::Dir => println!("{}/", e.path),
                _ => println!("{}", e.path),
            }
        }
    }
    0
}

fn human(bytes: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut v = bytes as f64;
    let mut unit = 0;
    while v >= 1024.0 && unit + 1 < UNITS.len() {
        v /= 1024.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{bytes} B")
    } else {
        format!("{v:.1} {}", UNITS[unit])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn words(s: &str) -> Vec<String> {
        s.split_whitespace().map(String::from).collect()
    }

    #[test]
    fn parses_with_or_without_subcommand_word() {
        let a = parse(&words("context d --list --explain abc -f x/Dockerfile"))
            .unwrap()
            .unwrap();
        assert_eq!(a.dir, PathBuf::from("d"));
        assert!(a.list);
        assert_eq!(a.explain.as_deref(), Some("abc"));
        assert_eq!(a.dockerfile, Some(PathBuf::from("x/Dockerfile")));
        let a = parse(&words("d --dockerfile=F")).unwrap().unwrap();
        assert_eq!(a.dockerfile, Some(PathBuf::from("F")));
    }

    #[test]
    fn rejects_bad_usage() {
        assert!(parse(&words("context")).is_err());
        assert!(parse(&words("context d --bogus")).is_err());
        assert!(parse(&words("context d e")).is_err());
        assert!(parse(&words("context d --explain")).is_err());
        assert!(parse(&words("context --help")).unwrap().is_none());
    }

    #[test]
    fn human_sizes() {
        assert_eq!(human(12), "12 B");
        assert_eq!(human(1536), "1.5 KiB");
    }
}
