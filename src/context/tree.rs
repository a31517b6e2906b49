//! One directory tree as a build sees it: its ignore rules applied, every kept entry digested
//! (reusing the stat cache), sorted by path.

use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use rayon::prelude::*;

use super::digest::hash_file;
use super::ignorefile::read_patterns;
use super::matcher::Matcher;
use super::statcache::{now_ns, StatCache};
use super::walk::{walk, Item, ItemKind};
use super::{ContextError, Dialect, Entry, EntryKind, IgnoreFile};
use std::sync::Arc;

/// A walked and digested directory.
#[derive(Debug, Clone)]
pub(crate) struct Tree {
    /// Canonical directory.
    pub(crate) root: PathBuf,
    /// Every kept entry, sorted by path.
    pub(crate) entries: Vec<Entry>,
    /// The ignore file that was applied, when one exists, with the bytes read.
    pub(crate) ignore_file: Option<IgnoreFile>,
}

/// Walks `dir` with the ignore rules Docker would apply for `dockerfile` (its
/// `<Dockerfile>.dockerignore` wins over `<dir>/.dockerignore`) and digests every kept file.
/// `lap` receives phase names for the timing knob.
pub(crate) fn snapshot_tree(
    dir: &Path,
    dockerfile: Option<&Path>,
    cache_dir: &Path,
    dialect: Dialect,
    lap: &dyn Fn(&str),
) -> Result<Tree, ContextError> {
    let scan_start = now_ns();
    let root = canonical_root(dir)?;
    let (ignore_path, lines, ignore_file) = read_ignore_rules(&root, dockerfile)?;
    let matcher = Matcher::new(&lines, dialect).map_err(|e| ContextError::BadPattern {
        path: ignore_path.clone(),
        pattern: e.pattern,
        reason: e.reason,
    })?;
    let mut items = walk(&root, &matcher, &ignore_path)?;
    lap("walk");
    items.par_sort_unstable_by(|a, b| a.path.cmp(&b.path));
    lap("sort");
    let mut cache = StatCache::load(cache_dir, &root);
    lap("cache load");
    let entries = digest_items(&root, items, &mut cache, scan_start)?;
    lap("digests");
    // The cache only makes later runs faster.
    let _ = cache.save();
    lap("cache save");
    Ok(Tree {
        root,
        entries,
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

/// Picks `<Dockerfile>.dockerignore` next to the Dockerfile if it exists, else
/// `<context>/.dockerignore`; returns its path, its pattern lines and the file as read.
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
