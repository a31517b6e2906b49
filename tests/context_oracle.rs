//! Oracle test: our snapshot must list exactly what Docker's BuildKit builder
//! copies with `COPY . /ctx/`, for hundreds of random trees and .dockerignore
//! files. Ground truth is the real engine (`/usr/bin/docker`, DOCKER_BUILDKIT=1,
//! `FROM scratch` + `--output type=local`), so no base image is needed.
//!
//! Knobs: IMAGEBUILD_ORACLE_TREES (default 240), IMAGEBUILD_ORACLE_SEED,
//! IMAGEBUILD_ORACLE_JOBS (parallel docker builds, default 4).

mod context_gen;

use std::collections::BTreeMap;
use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::Command;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;

use imagebuild::context::{
    snapshot_with, ContextRequest, Dialect, DockerfileSource, EntryKind, SnapshotOptions,
};
use sha2::{Digest, Sha256};

use context_gen::{fixed_cases, gen_case, Case, Rng};

const DOCKER: &str = "/usr/bin/docker";

/// What a path is, for comparison: kind, exec bit, content digest or link target.
type Listing = BTreeMap<String, String>;

fn describe(path: &Path) -> String {
    let md = fs::symlink_metadata(path).unwrap();
    if md.file_type().is_symlink() {
        format!("link -> {}", fs::read_link(path).unwrap().display())
    } else if md.is_dir() {
        "dir".to_string()
    } else {
        let exec = md.permissions().mode() & 0o100 != 0;
        let digest = hex::encode(Sha256::digest(fs::read(path).unwrap()));
        format!("file exec={exec} {digest}")
    }
}

fn list_dir(root: &Path, rel: &str, out: &mut Listing) {
    let dir = if rel.is_empty() {
        root.to_path_buf()
    } else {
        root.join(rel)
    };
    for entry in fs::read_dir(dir).unwrap() {
        let name = entry.unwrap().file_name().into_string().unwrap();
        let path = if rel.is_empty() {
            name
        } else {
            format!("{rel}/{name}")
        };
        let abs = root.join(&path);
        let kind = describe(&abs);
        let is_dir = kind == "dir";
        out.insert(path.clone(), kind);
        if is_dir {
            list_dir(root, &path, out);
        }
    }
}

fn docker_listing(case: &Case, out_dir: &Path) -> Result<Listing, String> {
    let output = Command::new(DOCKER)
        .env("DOCKER_BUILDKIT", "1")
        .arg("build")
        .arg("-q")
        .arg("-f")
        .arg(&case.dockerfile)
        .arg("--output")
        .arg(format!("type=local,dest={}", out_dir.display()))
        .arg(&case.ctx)
        .output()
        .map_err(|e| format!("cannot run {DOCKER}: {e}"))?;
    if !output.status.success() {
        return Err(String::from_utf8_lossy(&output.stderr).into_owned());
    }
    let mut listing = Listing::new();
    let ctx = out_dir.join("ctx");
    if ctx.exists() {
        list_dir(&ctx, "", &mut listing);
    }
    Ok(listing)
}

fn our_listing(case: &Case, cache: &Path) -> Result<Listing, String> {
    // The engine here is Docker 20.10: compare with the dialect that claims to be it.
    let request = ContextRequest {
        extra_inputs: vec![],
        cache_dir: Some(cache.to_path_buf()),
        ..ContextRequest::new(
            case.ctx.clone(),
            DockerfileSource::Path(case.dockerfile.clone()),
        )
    };
    let options = SnapshotOptions {
        dialect: Dialect::Docker20,
    };
    let snap = snapshot_with(&request, &options).map_err(|e| e.to_string())?;
    Ok(snap
        .entries
        .iter()
        .map(|e| {
            let kind = match &e.kind {
                EntryKind::Dir => "dir".to_string(),
                EntryKind::Symlink { target } => format!("link -> {target}"),
                EntryKind::File { exec, digest, .. } => {
                    format!("file exec={exec} {}", hex::encode(digest))
                }
            };
            (e.path.clone(), kind)
        })
        .collect())
}

fn compare(
    case: &Case,
    docker: Result<Listing, String>,
    ours: Result<Listing, String>,
) -> Option<String> {
    let report = |what: String| {
        Some(format!(
            "case {} ({}):\n.dockerignore:\n{}\n--\n{what}\ntree: {}",
            case.id,
            case.ctx.display(),
            case.ignore,
            case.description
        ))
    };
    match (docker, ours) {
        (Err(_), Err(_)) => None,
        (Err(d), Ok(_)) => report(format!("docker failed but we succeeded: {d}")),
        (Ok(_), Err(o)) => report(format!("we failed but docker succeeded: {o}")),
        (Ok(d), Ok(o)) if d == o => None,
        (Ok(d), Ok(o)) => {
            let mut diff = String::new();
            for (p, k) in &d {
                match o.get(p) {
                    None => diff += &format!("  only in docker: {p} ({k})\n"),
                    Some(ok) if ok != k => {
                        diff += &format!("  differs: {p}: docker {k}, ours {ok}\n")
                    }
                    _ => {}
                }
            }
            for (p, k) in &o {
                if !d.contains_key(p) {
                    diff += &format!("  only in ours:   {p} ({k})\n");
                }
            }
            report(diff)
        }
    }
}

fn env_usize(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

#[test]
fn snapshot_matches_docker_buildkit_copy() {
    let version = Command::new(DOCKER)
        .args(["version", "--format", "{{.Server.Version}}"])
        .output();
    match &version {
        Ok(out) if out.status.success() => {
            eprintln!("oracle: Docker engine {}", String::from_utf8_lossy(&out.stdout).trim())
        }
        Ok(out) => panic!(
            "Docker engine unreachable through {DOCKER} (start dockerd, e.g. scripts/start-services.sh): {}",
            String::from_utf8_lossy(&out.stderr)
        ),
        Err(e) => panic!("cannot run {DOCKER} ({e}); the oracle needs Debian's docker.io client and a running dockerd"),
    }

    let trees = env_usize("IMAGEBUILD_ORACLE_TREES", 240);
    let jobs = env_usize("IMAGEBUILD_ORACLE_JOBS", 4).max(1);
    let seed = std::env::var("IMAGEBUILD_ORACLE_SEED")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(0x1AB5_EED5u64);
    eprintln!("oracle: {trees} random trees, seed {seed}, {jobs} parallel builds");

    let tmp = tempfile::tempdir().unwrap();
    let cache = tmp.path().join("cache");
    let mut rng = Rng(seed);
    let mut cases = fixed_cases(tmp.path());
    let fixed = cases.len();
    for id in 0..trees {
        cases.push(gen_case(&mut rng, id, tmp.path()));
    }

    let next = AtomicUsize::new(0);
    let failures = Mutex::new(Vec::new());
    let docker_errors = AtomicUsize::new(0);
    std::thread::scope(|s| {
        for _ in 0..jobs {
            s.spawn(|| loop {
                let i = next.fetch_add(1, Ordering::SeqCst);
                let Some(case) = cases.get(i) else { break };
                let out_dir = tmp.path().join(format!("out{}", case.id));
                let docker = docker_listing(case, &out_dir);
                if docker.is_err() {
                    docker_errors.fetch_add(1, Ordering::SeqCst);
                }
                let ours = our_listing(case, &cache);
                if let Some(f) = compare(case, docker, ours) {
                    failures.lock().unwrap().push(f);
                }
            });
        }
    });
    let failures = failures.into_inner().unwrap();
    eprintln!(
        "oracle: {} cases ({fixed} fixed + {trees} random), {} rejected by Docker, {} disagreements",
        cases.len(),
        docker_errors.load(Ordering::SeqCst),
        failures.len()
    );
    if !failures.is_empty() {
        let shown: Vec<&String> = failures.iter().take(8).collect();
        panic!(
            "{} of {} cases disagree with Docker:\n{}",
            failures.len(),
            cases.len(),
            shown
                .iter()
                .map(|s| s.as_str())
                .collect::<Vec<_>>()
                .join("\n\n")
        );
    }
}
