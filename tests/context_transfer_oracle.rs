//! Oracle test for `transfer_set`/`fsutil_order`: for random trees (with
//! their random .dockerignore) and random include patterns, extra excludes
//! and follow paths (through symlinks, with wildcards), our selection over the
//! snapshot's entries must equal, path for path and in the same order, what
//! upstream fsutil's FilterFS walk yields over the real directory (the Go
//! helper in tests/context_fsutil, `-filter` mode). The excludes always start
//! with the .dockerignore lines as BuildKit parses them, as in a real build.
//!
//! Needs `go` and the Go module proxy (or a warm module cache); fails loudly
//! otherwise. Knobs: IMAGEBUILD_TRANSFER_ORACLE_TREES (default 1000),
//! IMAGEBUILD_ORACLE_SEED.

mod context_gen;

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use imagebuild::context::{
    snapshot_with, transfer_set, ContextRequest, Dialect, DockerfileSource, EntryKind,
    SnapshotOptions, TransferFilter,
};
use serde::{Deserialize, Serialize};

use context_gen::{fixed_cases, gen_case, Case, Rng};

#[derive(Serialize)]
struct Request {
    dir: PathBuf,
    include: Vec<String>,
    exclude: Vec<String>,
    follow: Vec<String>,
}

#[derive(Deserialize)]
struct Answer {
    entries: Vec<[String; 3]>,
    #[serde(default)]
    error: Option<String>,
}

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
        Err(e) => panic!("cannot run `go` ({e}); the transfer oracle needs a Go toolchain"),
    }
}

/// Runs all requests through one helper process.
fn fsutil_answers(helper: &Path, requests: &[Request]) -> Vec<Answer> {
    let mut child = Command::new(helper)
        .arg("-filter")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start the fsutil helper");
    let mut stdin = child.stdin.take().unwrap();
    let lines: Vec<u8> = requests
        .iter()
        .flat_map(|r| {
            let mut l = serde_json::to_vec(r).unwrap();
            l.push(b'\n');
            l
        })
        .collect();
    let writer = std::thread::spawn(move || stdin.write_all(&lines));
    let out = child.wait_with_output().expect("fsutil helper output");
    writer.join().unwrap().expect("feed the fsutil helper");
    assert!(
        out.status.success(),
        "fsutil helper failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let answers: Vec<Answer> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).expect("helper answer"))
        .collect();
    assert_eq!(answers.len(), requests.len(), "one answer per request");
    answers
}

/// Every path under `root` (relative), with whether it is a real directory.
fn tree_paths(root: &Path, rel: &str, out: &mut Vec<(String, bool)>) {
    let dir = if rel.is_empty() {
        root.to_path_buf()
    } else {
        root.join(rel)
    };
    let mut names: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap())
        .collect();
    names.sort_by_key(|e| e.file_name());
    for e in names {
        let name = e.file_name().to_string_lossy().into_owned();
        let path = if rel.is_empty() {
            name
        } else {
            format!("{rel}/{name}")
        };
        let is_dir = e.file_type().unwrap().is_dir();
        out.push((path.clone(), is_dir));
        if is_dir {
            tree_paths(root, &path, out);
        }
    }
}

/// A path-like pattern derived from the tree, in the shapes BuildKit sends.
fn gen_path(rng: &mut Rng, paths: &[(String, bool)], wildcards: bool) -> String {
    if paths.is_empty() || rng.chance(8) {
        return rng
            .pick(&[
                "missing",
                "a/none",
                ".",
                "*",
                "src/*.txt",
                "Dockerfile",
                "./a/",
            ])
            .to_string();
    }
    let (p, is_dir) = &paths[rng.below(paths.len())];
    let mut parts: Vec<String> = p.split('/').map(String::from).collect();
    if wildcards && rng.chance(30) {
        let i = rng.below(parts.len());
        let part = &mut parts[i];
        *part = match rng.below(4) {
            0 => "*".into(),
            1 => format!("{}*", part.chars().next().unwrap_or('a')),
            2 if part.len() > 1 => format!("?{}", &part[1..]),
            _ => format!("[{}z]{}", &part[..1], &part[1..]),
        };
    }
    let mut out = parts.join("/");
    if *is_dir && rng.chance(20) {
        let suffix: &&str = rng.pick(&["/**", "/*", "/"]);
        out.push_str(suffix);
    }
    if rng.chance(10) {
        out = format!("./{out}");
    }
    out
}

/// Adds symlinks to paths of the tree (absolute ones count from the context root, as fsutil
/// resolves them), so that follow paths can run through links into real directories.
fn add_links(rng: &mut Rng, ctx: &Path) {
    if !rng.chance(60) {
        return;
    }
    let mut paths = Vec::new();
    tree_paths(ctx, "", &mut paths);
    let dirs: Vec<&str> = std::iter::once("")
        .chain(paths.iter().filter(|p| p.1).map(|p| p.0.as_str()))
        .collect();
    for name in ["ln", "lnk", "alias"].iter().take(1 + rng.below(3)) {
        let at = *rng.pick(&dirs);
        let link = if at.is_empty() {
            name.to_string()
        } else {
            format!("{at}/{name}")
        };
        if ctx.join(&link).symlink_metadata().is_ok() {
            continue;
        }
        let to = if paths.is_empty() {
            "."
        } else {
            paths[rng.below(paths.len())].0.as_str()
        };
        let up = "../".repeat(if at.is_empty() {
            0
        } else {
            at.split('/').count()
        });
        let target = match rng.below(10) {
            0..=3 => format!("/{to}"),
            4..=7 => format!("{up}{to}"),
            8 => format!("{up}../../{to}"),
            _ => rng.pick(&[".", "..", "/"]).to_string(),
        };
        std::os::unix::fs::symlink(&target, ctx.join(&link)).unwrap();
    }
}

/// `link/child` for every symlink of the tree that leads to a directory of the context.
fn through_links(ctx: &Path, paths: &[(String, bool)]) -> Vec<(String, bool)> {
    let mut out = Vec::new();
    for (p, _) in paths {
        let Ok(target) = std::fs::read_link(ctx.join(p)) else {
            continue;
        };
        let target = target.to_string_lossy().into_owned();
        let resolved = match target.strip_prefix('/') {
            Some(abs) => ctx.join(abs),
            None => ctx.join(p).parent().unwrap().join(&target),
        };
        let Ok(dir) = std::fs::read_dir(&resolved) else {
            continue;
        };
        for e in dir.flatten() {
            out.push((format!("{p}/{}", e.file_name().to_string_lossy()), false));
        }
    }
    out.sort();
    out
}

fn gen_filter(rng: &mut Rng, ctx: &Path) -> (Vec<String>, Vec<String>, Vec<String>) {
    let mut paths = Vec::new();
    tree_paths(ctx, "", &mut paths);
    let linked = through_links(ctx, &paths);
    paths.extend(linked);
    let list = |rng: &mut Rng, percent: usize, wildcards: bool| -> Vec<String> {
        if !rng.chance(percent) {
            return Vec::new();
        }
        (0..1 + rng.below(4))
            .map(|_| gen_path(rng, &paths, wildcards))
            .collect()
    };
    let include = list(rng, 25, true);
    let follow = list(rng, 60, true);
    // Extra excludes come after the .dockerignore lines and carry no exceptions, so that
    // the snapshot (filtered by the .dockerignore alone) still holds everything they admit.
    let extra = list(rng, 30, true);
    (include, follow, extra)
}

fn snapshot_entries(case: &Case, cache: &Path) -> Option<imagebuild::context::ContextSnapshot> {
    let req = ContextRequest {
        cache_dir: Some(cache.to_path_buf()),
        ..ContextRequest::new(
            case.ctx.clone(),
            DockerfileSource::Path(case.dockerfile.clone()),
        )
    };
    let opts = SnapshotOptions {
        dialect: Dialect::BuildKit,
    };
    snapshot_with(&req, &opts).ok()
}

fn our_listing(
    snap: &imagebuild::context::ContextSnapshot,
    filter: &TransferFilter,
) -> Result<Vec<[String; 3]>, String> {
    let set = transfer_set(&snap.root, &snap.entries, filter).map_err(|e| e.to_string())?;
    Ok(set
        .into_iter()
        .map(|e| match e.kind {
            EntryKind::Dir => ["dir".into(), e.path, String::new()],
            EntryKind::File { .. } => ["file".into(), e.path, String::new()],
            EntryKind::Symlink { target } => ["link".into(), e.path, target],
        })
        .collect())
}

/// The .dockerignore lines as BuildKit's frontend parses them (the helper's own parser).
fn ignore_lines(helper_excludes: &str) -> Vec<String> {
    serde_json::from_str(helper_excludes).unwrap_or_default()
}

#[test]
fn transfer_set_matches_upstream_fsutil_filter() {
    let tmp = tempfile::tempdir().unwrap();
    let helper = build_helper(tmp.path());
    let trees: usize = std::env::var("IMAGEBUILD_TRANSFER_ORACLE_TREES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1000);
    let seed = std::env::var("IMAGEBUILD_ORACLE_SEED")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(0x7A_45F3u64);
    let cache = tmp.path().join("cache");
    let mut rng = Rng(seed);
    let mut cases = fixed_cases(tmp.path());
    for id in 0..trees {
        cases.push(gen_case(&mut rng, id, tmp.path()));
    }
    // First ask the helper how BuildKit parses each .dockerignore (ReadAll).
    let parsed = ignore_patterns(&helper, &cases);
    let mut requests = Vec::new();
    let mut snaps = Vec::new();
    for (case, ignore) in cases.iter().zip(&parsed) {
        add_links(&mut rng, &case.ctx);
        let (include, follow, extra) = gen_filter(&mut rng, &case.ctx);
        let mut exclude = ignore.clone();
        exclude.extend(extra);
        requests.push(Request {
            dir: case.ctx.clone(),
            include,
            exclude,
            follow,
        });
        snaps.push(snapshot_entries(case, &cache));
    }
    let answers = fsutil_answers(&helper, &requests);
    let (mut failures, mut skipped, mut rejected, mut selected) = (Vec::new(), 0, 0, 0usize);
    for ((case, req), (snap, theirs)) in cases.iter().zip(&requests).zip(snaps.iter().zip(&answers))
    {
        let Some(snap) = snap else {
            // The .dockerignore itself is invalid: no build gets as far as a transfer.
            skipped += 1;
            continue;
        };
        let filter = TransferFilter {
            include_patterns: req.include.clone(),
            exclude_patterns: req.exclude.clone(),
            follow_paths: req.follow.clone(),
        };
        let ours = our_listing(snap, &filter);
        let problem = match (&theirs.error, &ours) {
            (Some(_), Err(_)) => {
                rejected += 1;
                None
            }
            (None, Ok(o)) if *o == theirs.entries => {
                selected += o.len();
                None
            }
            (None, Ok(o)) => Some(format!("fsutil: {:?}\nours:   {:?}", theirs.entries, o)),
            (t, o) => Some(format!("fsutil error: {t:?}\nours: {:?}", o.as_ref().err())),
        };
        if let Some(p) = problem {
            failures.push(format!(
                "case {} ({}):\ninclude {:?}\nexclude {:?}\nfollow {:?}\n.dockerignore:\n{}--\n{p}\ntree: {}",
                case.id,
                case.ctx.display(),
                req.include,
                req.exclude,
                req.follow,
                case.ignore,
                case.description
            ));
        }
    }
    eprintln!(
        "transfer oracle: {} cases, {skipped} with an invalid .dockerignore, {rejected} rejected by both, \
         {selected} paths selected in agreement, {} disagreements",
        cases.len(),
        failures.len()
    );
    assert!(
        selected > cases.len(),
        "the generated filters selected almost nothing ({selected} paths): the test would prove little"
    );
    assert!(
        failures.is_empty(),
        "{} of {} cases disagree with fsutil:\n{}",
        failures.len(),
        cases.len(),
        failures
            .iter()
            .take(5)
            .cloned()
            .collect::<Vec<_>>()
            .join("\n\n")
    );
}

/// The helper parses each case's .dockerignore with BuildKit's own reader.
fn ignore_patterns(helper: &Path, cases: &[Case]) -> Vec<Vec<String>> {
    let out = Command::new(helper)
        .arg("-ignorefile")
        .args(cases.iter().map(|c| c.ctx.join(".dockerignore")))
        .output()
        .expect("run the fsutil helper");
    assert!(
        out.status.success(),
        "fsutil helper -ignorefile failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let lines: Vec<Vec<String>> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(ignore_lines)
        .collect();
    assert_eq!(lines.len(), cases.len());
    lines
}
