//! Snapshot orchestration: read the Dockerfile, walk and digest each context tree, select what
//! the build can read, hash it, and record the manifest that explains the hash later.

use std::fs;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use super::digest::sha256;
use super::hashfmt::{context_hash, legacy_context_hash, HashedContexts};
use super::manifest::{self, Manifest};
use super::select::select;
use super::tree::{snapshot_tree, Tree};
use super::{
    cache_dir_of, ContextError, ContextRequest, ContextSnapshot, DockerfileSource, Entry,
    EntryKind, NamedSnapshot, SnapshotOptions,
};

/// Snapshots a build context with the default options. Blocking: call it
/// from a blocking thread (it runs its own work on rayon's pool).
pub fn snapshot(req: &ContextRequest) -> Result<ContextSnapshot, ContextError> {
    snapshot_with(req, &SnapshotOptions::default())
}

/// [`snapshot`] on tokio's blocking pool.
pub async fn snapshot_async(req: ContextRequest) -> Result<ContextSnapshot, ContextError> {
    tokio::task::spawn_blocking(move || snapshot(&req))
        .await
        .map_err(|e| ContextError::Task(e.to_string()))?
}

/// Snapshots a build context with explicit options (e.g. the .dockerignore dialect).
pub fn snapshot_with(
    req: &ContextRequest,
    opts: &SnapshotOptions,
) -> Result<ContextSnapshot, ContextError> {
    // IMAGEBUILD_CONTEXT_TIMING=1 prints phase timings to stderr (Pulumi's
    // debug log), to see where a slow `preview` spends its time.
    let timing = std::env::var_os("IMAGEBUILD_CONTEXT_TIMING").is_some();
    let t0 = std::time::Instant::now();
    let lap = |what: &str| {
        if timing {
            eprintln!(
                "context timing: {what} at {:.1} ms",
                t0.elapsed().as_secs_f64() * 1e3
            );
        }
    };
    let dockerfile_path = match &req.dockerfile {
        DockerfileSource::Path(p) => Some(std::path::absolute(p).unwrap_or_else(|_| p.clone())),
        DockerfileSource::Inline(_) => None,
    };
    let cache_dir = cache_dir_of(req.cache_dir.as_deref());
    let main = snapshot_tree(
        &req.dir,
        dockerfile_path.as_deref(),
        &cache_dir,
        opts.dialect,
        &lap,
    )?;
    let dockerfile_contents = read_dockerfile(&req.dockerfile, dockerfile_path.as_deref())?;
    let used = select(&main, &req.reads)?;
    let named = snapshot_named(req, &cache_dir, opts, &lap)?;
    lap("select");

    let mut legacy_inputs = req.extra_inputs.clone();
    legacy_inputs.sort();
    let legacy_hash = legacy_context_hash(&main.entries, &dockerfile_contents, &legacy_inputs);
    let mut inputs = legacy_inputs;
    inputs.extend(req.pins.iter().cloned());
    inputs.sort();
    let hashed = HashedContexts {
        main: &used,
        named: named
            .iter()
            .map(|n| (n.name.as_str(), n.used.as_slice()))
            .collect(),
    };
    let hash = context_hash(&hashed, &dockerfile_contents, &inputs);
    lap("hash");
    let manifest = Manifest {
        legacy: false,
        dockerfile_digest: sha256(&dockerfile_contents),
        inputs,
        entries: manifest_entries(&used, &named),
    };
    // The manifest only makes later runs explainable.
    let _ = manifest::store(&cache_dir, &hash, &manifest);
    lap("manifest");
    Ok(assemble(
        req,
        main,
        used,
        named,
        hash,
        legacy_hash,
        dockerfile_contents,
        dockerfile_path,
    ))
}

/// A named context before it is frozen into a [`NamedSnapshot`].
struct NamedTree {
    name: String,
    tree: Tree,
    used: Vec<Entry>,
    reads: super::ContextReads,
}

fn snapshot_named(
    req: &ContextRequest,
    cache_dir: &Path,
    opts: &SnapshotOptions,
    lap: &dyn Fn(&str),
) -> Result<Vec<NamedTree>, ContextError> {
    let mut out = Vec::with_capacity(req.named.len());
    for named in &req.named {
        let tree = snapshot_tree(&named.dir, None, cache_dir, opts.dialect, lap)?;
        let used = select(&tree, &named.reads)?;
        out.push(NamedTree {
            name: named.name.clone(),
            tree,
            used,
            reads: named.reads.clone(),
        });
    }
    out.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(out)
}

/// The manifest lists the main context's readable entries, then each named context's under
/// `@name/`, so `explain` can name a changed file wherever it lives.
fn manifest_entries(main: &[Entry], named: &[NamedTree]) -> Vec<Entry> {
    let mut out = main.to_vec();
    for n in named {
        out.extend(n.used.iter().map(|e| Entry {
            path: format!("@{}/{}", n.name, e.path),
            kind: e.kind.clone(),
        }));
    }
    out
}

#[allow(clippy::too_many_arguments)]
fn assemble(
    req: &ContextRequest,
    main: Tree,
    used: Vec<Entry>,
    named: Vec<NamedTree>,
    hash: String,
    legacy_hash: String,
    dockerfile_contents: Vec<u8>,
    dockerfile_path: Option<PathBuf>,
) -> ContextSnapshot {
    let (mut files, mut bytes) = (0u64, 0u64);
    for e in &used {
        if let EntryKind::File { size, .. } = e.kind {
            files += 1;
            bytes += size;
        }
    }
    let dockerfile_in_context = dockerfile_path
        .as_deref()
        .and_then(|p| relative_inside(&main.root, p))
        .filter(|rel| used.binary_search_by(|e| e.path.as_str().cmp(rel)).is_ok());
    let named = named
        .into_iter()
        .map(|n| NamedSnapshot {
            name: n.name,
            root: n.tree.root,
            entries: Arc::new(n.tree.entries),
            used: Arc::new(n.used),
            reads: n.reads,
            ignore_file: n.tree.ignore_file,
        })
        .collect();
    ContextSnapshot {
        hash,
        legacy_hash,
        files,
        bytes,
        root: main.root,
        entries: Arc::new(main.entries),
        used: Arc::new(used),
        reads: req.reads.clone(),
        ignore_file: main.ignore_file,
        dockerfile_contents: Arc::new(dockerfile_contents),
        dockerfile_path,
        dockerfile_in_context,
        named,
    }
}

/// Reads the Dockerfile's bytes (`abs` is its absolute path when it is a file).
fn read_dockerfile(src: &DockerfileSource, abs: Option<&Path>) -> Result<Vec<u8>, ContextError> {
    match (src, abs) {
        (DockerfileSource::Path(_), Some(abs)) => {
            fs::read(abs).map_err(|source| ContextError::Dockerfile {
                path: abs.to_path_buf(),
                source,
            })
        }
        (DockerfileSource::Path(p), None) => Err(ContextError::Dockerfile {
            path: p.clone(),
            source: std::io::Error::other("no absolute path"),
        }),
        (DockerfileSource::Inline(text), _) => Ok(text.clone().into_bytes()),
    }
}

/// `path` relative to `root` if it lies inside it (both made canonical first).
fn relative_inside(root: &Path, path: &Path) -> Option<String> {
    let parent = fs::canonicalize(path.parent()?).ok()?;
    let full = parent.join(path.file_name()?);
    let rel = full.strip_prefix(root).ok()?;
    let rel = rel.to_str()?;
    (!rel.is_empty()).then(|| rel.to_string())
}
