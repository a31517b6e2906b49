//! Oracle test for `Dialect::BuildKit`: our snapshot must list exactly what
//! current BuildKit's client sends, as computed by the upstream libraries
//! themselves (moby/patternmatcher's ignorefile + tonistiigi/fsutil's Walk,
//! built from tests/context_fsutil with Go), for many random trees.
//!
//! Needs `go` and the Go module proxy (or a warm module cache); fails loudly
//! otherwise. Knobs: IMAGEBUILD_BK_ORACLE_TREES (default 1000),
//! IMAGEBUILD_ORACLE_SEED.

mod context_gen;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

use imagebuild::context::{
    snapshot_with, ContextRequest, Dialect, DockerfileSource, EntryKind, SnapshotOptions,
};

use context_gen::{fixed_cases, gen_case, Case, Rng};

type Listing = BTreeMap<String, String>;

fn build_helper(out: &Path) -> PathBuf {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/context_fsutil");
    let bin = out.join("context_fsutil");
    let result = Command::new("go")
        .arg("build")
        .arg("-o")
        .arg(&bin)
        .arg(".")
        .current_dir(&src)
        .output();
    match result {
        Ok(o) if o.status.success() => bin,
        Ok(o) => panic!(
            "cannot build the fsutil oracle helper in {} (needs the Go module proxy or a warm module cache): {}",
            src.display(),
            String::from_utf8_lossy(&o.stderr)
        ),
        Err(e) => panic!("cannot run `go` ({e}); the BuildKit oracle needs a Go toolchain"),
    }
}

fn fsutil_listing(helper: &Path, case: &Case) -> Result<Listing, String> {
    let out = Command::new(helper)
        .arg(&case.ctx)
        .output()
        .map_err(|e| e.to_string())?;
    if !out.status.success() {
        return Err(String::from_utf8_lossy(&out.stderr).into_owned());
    }
    Ok(String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|line| {
            let mut parts = line.splitn(3, '\t');
            let kind = parts.next().unwrap_or_default();
            let path = parts.next().unwrap_or_default().to_string();
            let target = parts.next().unwrap_or_default();
            let desc = match kind {
                "link" => format!("link -> {target}"),
                other => other.to_string(),
            };
            (path, desc)
        })
        .collect())
}

fn our_listing(case: &Case, cache: &Path) -> Result<Listing, String> {
    let req = ContextRequest {
        extra_inputs: vec![],
        cache_dir: Some(cache.to_path_buf()),
        ..ContextRequest::new(
            case.ctx.clone(),
            DockerfileSource::Path(case.dockerfile.clone()),
        )
    };
    let snap = snapshot_with(
        &req,
        &SnapshotOptions {
            dialect: Dialect::BuildKit,
        },
    )
    .map_err(|e| e.to_string())?;
    Ok(snap
        .entries
        .iter()
        .map(|e| {
            let desc = match &e.kind {
                EntryKind::Dir => "dir".to_string(),
                EntryKind::File { .. } => "file".to_string(),
                EntryKind::Symlink { target } => format!("link -> {target}"),
            };
            (e.path.clone(), desc)
        })
        .collect())
}

#[test]
fn buildkit_dialect_matches_upstream_fsutil_walk() {
    let tmp = tempfile::tempdir().unwrap();
    let helper = build_helper(tmp.path());
    let trees: usize = std::env::var("IMAGEBUILD_BK_ORACLE_TREES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1000);
    let seed = std::env::var("IMAGEBUILD_ORACLE_SEED")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(0xB1D_C0DEu64);
    let cache = tmp.path().join("cache");
    let mut rng = Rng(seed);
    let mut cases = fixed_cases(tmp.path());
    for id in 0..trees {
        cases.push(gen_case(&mut rng, id, tmp.path()));
    }
    let mut failures = Vec::new();
    let mut rejected = 0;
    for case in &cases {
        let theirs = fsutil_listing(&helper, case);
        let ours = our_listing(case, &cache);
        let problem = match (&theirs, &ours) {
            (Err(_), Err(_)) => {
                rejected += 1;
                None
            }
            (Ok(t), Ok(o)) if t == o => None,
            (Ok(t), Ok(o)) => {
                let mut d = String::new();
                for (p, k) in t {
                    if o.get(p) != Some(k) {
                        d += &format!("  fsutil: {p} ({k}), ours: {:?}\n", o.get(p));
                    }
                }
                for (p, k) in o {
                    if !t.contains_key(p) {
                        d += &format!("  only in ours: {p} ({k})\n");
                    }
                }
                Some(d)
            }
            (t, o) => Some(format!(
                "fsutil: {:?}\nours: {:?}",
                t.as_ref().err(),
                o.as_ref().err()
            )),
        };
        if let Some(p) = problem {
            failures.push(format!(
                "case {} ({}):\n.dockerignore:\n{}--\n{p}tree: {}",
                case.id,
                case.ctx.display(),
                case.ignore,
                case.description
            ));
        }
    }
    eprintln!(
        "buildkit oracle: {} cases, {rejected} rejected by both, {} disagreements",
        cases.len(),
        failures.len()
    );
    assert!(
        failures.is_empty(),
        "{} of {} cases disagree with fsutil:\n{}",
        failures.len(),
        cases.len(),
        failures
            .iter()
            .take(6)
            .cloned()
            .collect::<Vec<_>>()
            .join("\n\n")
    );
}
