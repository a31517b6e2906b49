//! `pulumi-resource-imagebuild context DIR [options]`: what an image build reads, its hash
//! (the same `contextHash` the resource computes for the same inputs) and why it changed.

use std::collections::BTreeMap;
use std::path::PathBuf;

use super::{host_platform, make_plan, BaseLookup, NamedContextSource, Plan, PlanRequest};
use crate::context::{explain, ContextReads, DockerfileSource, EntryKind, Explanation};

const USAGE: &str = "usage: pulumi-resource-imagebuild context DIR [options]
  DIR                      build context directory
  --dockerfile FILE        Dockerfile (default: DIR/Dockerfile)
  --platform OS/ARCH       target platform (default: this machine's, as the resource)
  --build-arg NAME=VALUE   a build arg (repeatable)
  --label NAME=VALUE       an image label (repeatable)
  --target STAGE           the stage to build
  --build-context NAME=V   a named context: a directory or docker-image://REF (repeatable)
  --list                   print what the build reads (directories end in /), and why
  --explain OLD_HASH       list read files added (+), removed (-) and changed (~) since OLD_HASH";

struct Args {
    request: PlanRequest,
    list: bool,
    explain: Option<String>,
}

fn key_value(flag: &str, v: Option<&String>) -> Result<(String, String), String> {
    let v = v.ok_or(format!("{flag} needs NAME=VALUE"))?;
    let (k, val) = v
        .split_once('=')
        .ok_or(format!("{flag} needs NAME=VALUE, got {v}"))?;
    Ok((k.to_string(), val.to_string()))
}

fn parse(args: &[String]) -> Result<Option<Args>, String> {
    // Callers may pass the words after the program name with or without `context`.
    let args = match args.first() {
        Some(first) if first == "context" => &args[1..],
        _ => args,
    };
    let (mut dir, mut dockerfile, mut list, mut explain) = (None, None, false, None);
    let (mut platform, mut target) = (host_platform(), None);
    let (mut build_args, mut labels, mut contexts) =
        (BTreeMap::new(), BTreeMap::new(), BTreeMap::new());
    let mut it = args.iter();
    while let Some(arg) = it.next() {
        let (flag, inline) = match arg.split_once('=') {
            Some((f, v)) if f.starts_with("--") => (f, Some(v.to_string())),
            _ => (arg.as_str(), None),
        };
        let mut value = || inline.clone().or_else(|| it.next().cloned());
        match flag {
            "-h" | "--help" => return Ok(None),
            "--list" => list = true,
            "--dockerfile" | "-f" => {
                dockerfile = Some(PathBuf::from(value().ok_or("--dockerfile needs a file")?))
            }
            "--explain" => explain = Some(value().ok_or("--explain needs a hash")?),
            "--platform" => platform = value().ok_or("--platform needs OS/ARCH")?,
            "--target" => target = Some(value().ok_or("--target needs a stage")?),
            "--build-arg" => {
                let (k, v) = key_value(flag, value().as_ref())?;
                build_args.insert(k, v);
            }
            "--label" => {
                let (k, v) = key_value(flag, value().as_ref())?;
                labels.insert(k, v);
            }
            "--build-context" => {
                let (k, v) = key_value(flag, value().as_ref())?;
                let source = NamedContextSource::parse(&v).map_err(|e| format!("{k}: {e}"))?;
                contexts.insert(k, source);
            }
            s if s.starts_with('-') && s.len() > 1 => return Err(format!("unknown option {s}")),
            s if dir.is_none() => dir = Some(PathBuf::from(s)),
            s => return Err(format!("unexpected argument {s}")),
        }
    }
    let dir: PathBuf = dir.ok_or("missing context directory")?;
    let dockerfile = dockerfile.unwrap_or_else(|| dir.join("Dockerfile"));
    Ok(Some(Args {
        request: PlanRequest {
            context: dir,
            dockerfile: DockerfileSource::Path(dockerfile),
            build_args,
            target,
            platform,
            labels,
            contexts,
            cache_dir: None,
        },
        list,
        explain,
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
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(r) => r,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return 1;
        }
    };
    let lookup = BaseLookup::local_default(std::env::var("DOCKER_HOST").ok());
    match runtime.block_on(make_plan(&args.request, &lookup)) {
        Ok(plan) => {
            print_plan(&plan, &args);
            0
        }
        Err(e) => {
            eprintln!("error: {e}");
            1
        }
    }
}

fn print_plan(plan: &Plan, args: &Args) {
    let snap = &plan.snapshot;
    println!("context:    {}", snap.root.display());
    if let DockerfileSource::Path(p) = &args.request.dockerfile {
        match &snap.dockerfile_in_context {
            Some(rel) => println!("dockerfile: {} (in context as {rel})", p.display()),
            None => println!("dockerfile: {}", p.display()),
        }
    }
    println!("platform:   {}", args.request.platform);
    println!("hash:       {}", snap.hash);
    // What a provider up to 0.1.x recorded for the same files and inputs (upgrades adopt it).
    println!("format 1:   {}", snap.legacy_hash);
    println!("reads:      {}", describe_reads(&snap.reads));
    println!("files:      {}", snap.files);
    println!("bytes:      {} ({})", snap.bytes, human(snap.bytes));
    for w in &plan.warnings {
        println!("warning:    {w}");
    }
    if let Some(old) = &args.explain {
        print_explanation(old, snap);
    }
    if args.list {
        print_list(snap);
    }
}

fn describe_reads(reads: &ContextReads) -> String {
    match reads {
        ContextReads::Whole(reasons) => format!("the whole context ({})", reasons.join("; ")),
        ContextReads::Paths(p) if p.is_empty() => "nothing".to_string(),
        ContextReads::Paths(p) => {
            let paths: Vec<&str> = p.iter().map(|r| r.path.as_str()).collect();
            format!("only {}", paths.join(", "))
        }
    }
}

fn print_explanation(old: &str, snap: &crate::context::ContextSnapshot) {
    match explain(old, snap, None) {
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

fn print_list(snap: &crate::context::ContextSnapshot) {
    if let ContextReads::Paths(paths) = &snap.reads {
        for p in paths {
            println!("# reads {} ({})", p.path, p.origin);
        }
    }
    for e in snap.used.iter() {
        match e.kind {
            EntryKind::Dir => println!("{}/", e.path),
            _ => println!("{}", e.path),
        }
    }
    for n in &snap.named {
        println!("# named context {} ({})", n.name, n.root.display());
        for e in n.used.iter() {
            match e.kind {
                EntryKind::Dir => println!("@{}/{}/", n.name, e.path),
                _ => println!("@{}/{}", n.name, e.path),
            }
        }
    }
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
        let a = parse(&words(
            "context d --list --explain abc -f x/Dockerfile --platform linux/arm64 \
             --build-arg A=1 --build-arg=B=2 --label l=v --target t --build-context s=../s",
        ))
        .unwrap()
        .unwrap();
        assert_eq!(a.request.context, PathBuf::from("d"));
        assert!(a.list);
        assert_eq!(a.explain.as_deref(), Some("abc"));
        assert_eq!(
            a.request.dockerfile,
            DockerfileSource::Path(PathBuf::from("x/Dockerfile"))
        );
        assert_eq!(a.request.platform, "linux/arm64");
        assert_eq!(a.request.build_args.len(), 2);
        assert_eq!(a.request.build_args["B"], "2");
        assert_eq!(a.request.labels["l"], "v");
        assert_eq!(a.request.target.as_deref(), Some("t"));
        assert_eq!(
            a.request.contexts["s"],
            NamedContextSource::Dir("../s".into())
        );
        let a = parse(&words("d --dockerfile=F")).unwrap().unwrap();
        assert_eq!(a.request.dockerfile, DockerfileSource::Path("F".into()));
        assert_eq!(a.request.platform, host_platform());
    }

    #[test]
    fn rejects_bad_usage() {
        assert!(parse(&words("context")).is_err());
        assert!(parse(&words("context d --bogus")).is_err());
        assert!(parse(&words("context d e")).is_err());
        assert!(parse(&words("context d --explain")).is_err());
        assert!(parse(&words("context d --build-arg A")).is_err());
        assert!(parse(&words("context d --build-context s=https://x")).is_err());
        assert!(parse(&words("context --help")).unwrap().is_none());
    }

    #[test]
    fn human_sizes() {
        assert_eq!(human(12), "12 B");
        assert_eq!(human(1536), "1.5 KiB");
    }
}
