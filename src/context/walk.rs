//! Parallel walk of the context directory applying the ignore rules.
//!
//! Directories are read on rayon's pool (one task per directory); excluded
//! directories are not opened unless an exception may re-include something
//! inside them, so an ignored `node_modules` costs one `readdir` entry.
//! Symlinks are recorded, never followed; sockets, FIFOs and devices skipped.

use std::fs;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use rayon::prelude::*;

use super::matcher::{Matcher, ParentMatches};
use super::ContextError;

/// The stat fields the hash cache keys on, plus the exec bit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct FileStat {
    pub(crate) size: u64,
    pub(crate) mtime_ns: i64,
    pub(crate) ctime_ns: i64,
    pub(crate) ino: u64,
    pub(crate) dev: u64,
    pub(crate) exec: bool,
}

impl FileStat {
    /// Extracts the fields from `lstat`/`fstat` metadata.
    pub(crate) fn from_metadata(md: &fs::Metadata) -> FileStat {
        FileStat {
            size: md.size(),
            mtime_ns: md.mtime().saturating_mul(1_000_000_000) + md.mtime_nsec(),
            ctime_ns: md.ctime().saturating_mul(1_000_000_000) + md.ctime_nsec(),
            ino: md.ino(),
            dev: md.dev(),
            exec: md.mode() & 0o100 != 0,
        }
    }
}

/// What the walk found at an included path.
#[derive(Debug, Clone)]
pub(crate) enum ItemKind {
    Dir,
    Symlink(String),
    File(FileStat),
}

/// One included path.
#[derive(Debug, Clone)]
pub(crate) struct Item {
    pub(crate) path: String,
    pub(crate) kind: ItemKind,
}

/// Walks `root` and returns every included path (unsorted).
/// `ignore_file` only serves to name the file in pattern errors.
pub(crate) fn walk(
    root: &Path,
    matcher: &Matcher,
    ignore_file: &Path,
) -> Result<Vec<Item>, ContextError> {
    let walker = Walker {
        matcher,
        ignore_file,
    };
    let mut out = Vec::new();
    walker.dir(root, "", None, &mut out)?;
    Ok(out)
}

/// The error for an unreadable `path`, as a `map_err` argument.
fn unreadable(path: &Path) -> impl FnOnce(std::io::Error) -> ContextError {
    let path = path.to_path_buf();
    move |source| ContextError::Unreadable { path, source }
}

struct Walker<'a> {
    matcher: &'a Matcher,
    ignore_file: &'a Path,
}

/// A subdirectory found while reading its parent, walked afterwards in parallel.
struct SubDir {
    abs: PathBuf,
    rel: String,
    parent_matches: ParentMatches,
    excluded: bool,
}

impl Walker<'_> {
    fn excluded(
        &self,
        path: &str,
        parent: Option<&ParentMatches>,
    ) -> Result<(bool, ParentMatches), ContextError> {
        if self.matcher.is_empty() {
            return Ok((false, Vec::new()));
        }
        self.matcher
            .excluded(path, parent)
            .map_err(|e| ContextError::BadPattern {
                path: self.ignore_file.to_path_buf(),
                pattern: e.pattern,
                reason: e.reason,
            })
    }

    fn dir(
        &self,
        abs: &Path,
        rel: &str,
        parent: Option<&ParentMatches>,
        out: &mut Vec<Item>,
    ) -> Result<(), ContextError> {
        let mut subdirs = Vec::new();
        for dirent in fs::read_dir(abs).map_err(unreadable(abs))? {
            let dirent = dirent.map_err(unreadable(abs))?;
            self.entry(&dirent, rel, parent, out, &mut subdirs)?;
        }
        self.subdirs(subdirs, out)
    }

    /// One directory entry: a kept file or symlink goes to `out`, a subdirectory to walk to `subdirs`.
    fn entry(
        &self,
        dirent: &fs::DirEntry,
        rel: &str,
        parent: Option<&ParentMatches>,
        out: &mut Vec<Item>,
        subdirs: &mut Vec<SubDir>,
    ) -> Result<(), ContextError> {
        let name = dirent.file_name();
        let lossy;
        let (name, utf8) = match name.to_str() {
            Some(s) => (s, true),
            None => {
                lossy = name.to_string_lossy().into_owned();
                (lossy.as_str(), false)
            }
        };
        let path = if rel.is_empty() {
            name.to_string()
        } else {
            format!("{rel}/{name}")
        };
        let file_type = dirent.file_type().map_err(unreadable(&dirent.path()))?;
        let (excluded, parent_matches) = self.excluded(&path, parent)?;
        let non_utf8 = || ContextError::NonUtf8Path {
            path: dirent.path(),
        };
        if file_type.is_dir() {
            if excluded && !self.matcher.walk_excluded_dir(&path) {
                return Ok(());
            }
            if !utf8 {
                return Err(non_utf8());
            }
            subdirs.push(SubDir {
                abs: dirent.path(),
                rel: path,
                parent_matches,
                excluded,
            });
            return Ok(());
        }
        if excluded {
            return Ok(());
        }
        if !utf8 {
            return Err(non_utf8());
        }
        if file_type.is_symlink() {
            let target = fs::read_link(dirent.path()).map_err(unreadable(&dirent.path()))?;
            let target = target
                .into_os_string()
                .into_string()
                .map_err(|_| non_utf8())?;
            out.push(Item {
                path,
                kind: ItemKind::Symlink(target),
            });
        } else if file_type.is_file() {
            let md = dirent.metadata().map_err(unreadable(&dirent.path()))?;
            out.push(Item {
                path,
                kind: ItemKind::File(FileStat::from_metadata(&md)),
            });
        } else {
            // Plugin stderr is Pulumi's debug log; this is the debug note.
            eprintln!(
                "imagebuild: skipping {} in the build context: sockets, FIFOs and devices are not copied",
                dirent.path().display()
            );
        }
        Ok(())
    }

    /// Walks the subdirectories in parallel, appending their items (then the directory) to `out`.
    fn subdirs(&self, subdirs: Vec<SubDir>, out: &mut Vec<Item>) -> Result<(), ContextError> {
        let nested: Vec<Result<Vec<Item>, ContextError>> = subdirs
            .into_par_iter()
            .map(|sub| {
                let mut items = Vec::new();
                self.dir(&sub.abs, &sub.rel, Some(&sub.parent_matches), &mut items)?;
                // An excluded directory that had to be walked is sent whole by
                // Docker 20.10, but only as a parent of included paths by BuildKit.
                if !sub.excluded || self.matcher.keeps_walked_excluded_dir() || !items.is_empty() {
                    items.push(Item {
                        path: sub.rel,
                        kind: ItemKind::Dir,
                    });
                }
                Ok(items)
            })
            .collect();
        for items in nested {
            out.extend(items?);
        }
        Ok(())
    }
}
