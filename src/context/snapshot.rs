//! Snapshot orchestration: resolve inputs, read the ignore rules, walk, reuse
//! or compute digests, hash, and record the cache and manifest.

use std::fs;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use rayon::prelude::*;

use super::digest::{hash_file, sha256};
use super::ignorefile::read_patterns;
use super::manifest::{self, Manifest};
use super::matcher::Matcher;
use super::statcache::{now_ns, StatCache};
use super::walk::{walk, Item, ItemKind};
use super::{
    cache_dir_of, ContextError, ContextRequest, ContextSnapshot, DockerfileSource, Entry,
    EntryKind, IgnoreFile, SnapshotOptions,
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
    let scan_start = now_ns();
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
    let root = canonical_root(&req.dir)?;
    let (dockerfile_contents, dockerfile_path) = read_dockerfile(&req.dockerfile)?;
    let (ignore_path, lines, ignore_file) = read_ignore_rules(&root, dockerfile_path.as_deref())?;
    let matcher = Matcher::new(&lines, opts.dialect).map_err(|e| ContextError::BadPattern {
        path: ignore_path.clone(),
        pattern: e.pattern,
        reason: e.reason,
    })?;

    let mut items = walk(&root, &matcher, &ignore_path)?;
    lap("walk");
    items.par_sort_unstable_by(|a, b| a.path.cmp(&b.path));
    lap("sort");

    let cache_dir = cache_dir_of(req.cache_dir.as_deref());
    let mut cache = StatCache::load(&cache_dir, &root);
    lap("cache load");
    let entries = digest_items(&root, items, &mut cache, scan_start)?;
    lap("digests");
    // The cache and manifest only make later runs faster or explainable.
    let _ = cache.save();
    lap("cache save");

    let mut inputs = req.extra_inputs.clone();
    inputs.sort();
    let hash = super::hashfmt::context_hash(&entries, &dockerfile_contents, &inputs);
    let manifest = Manifest {
        dockerfile_digest: sha256(&dockerfile_contents),
        inputs,
        entries,
    };
    lap("hash");
    let _ = manifest::store(&cache_dir, &hash, &manifest);
    lap("manifest");
    let entries = manifest.entries;

    let (mut files, mut bytes) = (0u64, 0u64);
    for e in &entries {
        if let EntryKind::File { size, .. } = e.kind {
            files += 1;
            bytes += size;
        }
    }
    let dockerfile_in_context = dockerfile_path
        .as_deref()
        .and_then(|p| relative_inside(&root, p))
        .filter(|rel| {
            entries
                .binary_search_by(|e| e.path.as_str().cmp(rel))
                .is_ok()
        });
    Ok(ContextSnapshot {
        hash,
        files,
        bytes,
        root,
        entries: Arc::new(entries),
        dockerfile_contents: Arc::new(dockerfile_contents),
        dockerfile_in_context,
        dockerfile_path,
        ignore_file,
    })
}

fn canonical_root(dir: &Path) -> Result<PathBuf, ContextError> {
    let root = fs::canonicalize(dir).map_err(|source| ContextError::ContextDir {
        path: dir.to_path_buf(),
        source,
    })?;
    if !root.is_dir() {
        return Err(ContextError::NotADirectory {
            path: dir.to_path_buf(),
        });
    }
    Ok(root)
}

/// Reads the Dockerfile; for a file also returns its absolute path.
fn read_dockerfile(src: &DockerfileSource) -> Result<(Vec<u8>, Option<PathBuf>), ContextError> {
    match src {
        DockerfileSource::Inline(text) => Ok((text.clone().into_bytes(), None)),
        DockerfileSource::Path(path) => {
            let abs = std::path::absolute(path).unwrap_or_else(|_| path.clone());
            let contents = fs::read(&abs).map_err(|source| ContextError::Dockerfile {
                path: abs.clone(),
                source,
            })?;
            Ok((contents, Some(abs)))
        }
    }
}

/// Picks `<Dockerfile>.dockerignore` next to the Dockerfile if it exists,
/// else `<context>/.dockerignore`, and returns its path, pattern lines and bytes.
fn read_ignore_rules(
    root: &Path,
    dockerfile: Option<&Path>,
) -> Result<(PathBuf, Vec<String>, Option<IgnoreFile>), ContextError> {
    let mut candidates = Vec::new();
    if let Some(df) = dockerfile {
        if let Some(name) = df.file_name() {
            let mut name = name.to_os_string();
            name.push(".dockerignore");
            candidates.push(df.with_file_name(name));
        }
    }
    candidates.push(root.join(".dockerignore"));
    for path in candidates {
        match fs::read(&path) {
            Ok(bytes) => {
                let text = std::str::from_utf8(&bytes).map_err(|_| ContextError::IgnoreFile {
                    path: path.clone(),
                    reason: "it is not valid UTF-8".to_string(),
                })?;
                let lines = read_patterns(text);
                let file = IgnoreFile {
                    path: path.clone(),
                    contents: Arc::new(bytes),
                };
                return Ok((path, lines, Some(file)));
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => continue,
            Err(e) => {
                return Err(ContextError::IgnoreFile {
                    path,
                    reason: e.to_string(),
                })
            }
        }
    }
    Ok((root.join(".dockerignore"), Vec::new(), None))
}

/// Turns walk items into entries, reusing cached digests and hashing the rest in parallel.
fn digest_items(
    root: &Path,
    items: Vec<Item>,
    cache: &mut StatCache,
    scan_start: i64,
) -> Result<Vec<Entry>, ContextError> {
    let mut entries = Vec::with_capacity(items.len());
    let mut pending = Vec::new();
    for item in items {
        let kind = match item.kind {
            ItemKind::Dir => EntryKind::Dir,
            ItemKind::Symlink(target) => EntryKind::Symlink { target },
            ItemKind::File(st) => match cache.lookup(&item.path, &st) {
                Some(digest) => EntryKind::File {
                    exec: st.exec,
                    size: st.size,
                    digest,
                },
                None => {
                    pending.push((entries.len(), st));
                    EntryKind::Dir // placeholder, replaced below
                }
            },
        };
        entries.push(Entry {
            path: item.path,
            kind,
        });
    }
    // Largest first so that the last busy core is not stuck with a big file.
    pending.sort_unstable_by_key(|p| std::cmp::Reverse(p.1.size));
    let results: Vec<_> = pending
        .par_iter()
        .with_max_len(1)
        .map(|(idx, st)| {
            let path = root.join(&entries[*idx].path);
            let hashed =
                hash_file(&path, st).map_err(|source| ContextError::Unreadable { path, source })?;
            Ok((*idx, *st, hashed))
        })
        .collect::<Result<_, ContextError>>()?;
    for (idx, st, hashed) in results {
        if hashed.stable {
            cache.record(&entries[idx].path, &st, hashed.digest, scan_start);
        }
        entries[idx].kind = EntryKind::File {
            exec: st.exec,
            size: hashed.size,
            digest: hashed.digest,
        };
    }
    Ok(entries)
}

/// `path` relative to `root` if it lies inside it (both made canonical first).
fn relative_inside(root: &Path, path: &Path) -> Option<String> {
    let parent = fs::canonicalize(path.parent()?).ok()?;
    let full = parent.join(path.file_name()?);
    let rel = full.strip_prefix(root).ok()?;
    let rel = rel.to_str()?;
    (!rel.is_empty()).then(|| rel.to_string())
}
