//! Which snapshot entries one BuildKit file-sync request selects, and in what
//! order they go on the wire: fsutil's `FilterFS` walk over our own entries.
//!
//! BuildKit asks for a directory with include patterns, exclude patterns (the
//! .dockerignore lines) and follow paths (what the Dockerfile names). fsutil
//! walks the real tree in its path order and, per path: tests the include
//! matcher, then the exclude matcher, each with the match results remembered
//! for the parent directory; prunes a directory outright when no pattern could
//! select anything below it (only when the relevant patterns are plain paths);
//! and emits a not-selected directory only as the parent of a selected path,
//! just before that path. The entries of a snapshot are a subset of the tree
//! that the .dockerignore admitted, and everything missing from them would be
//! dropped by the same excludes, so walking the entries gives the same answer.

use std::cmp::Ordering;
use std::path::Path;

use super::followlinks::{dedupe_paths, follow_links};
use super::matcher::{Matcher, ParentMatches};
use super::pattern::PatternError;
use super::{ContextError, Dialect, Entry, EntryKind};

/// The selection BuildKit asked for (request metadata of `FileSync/DiffCopy`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TransferFilter {
    /// `include-patterns`: a path must match one of them (none = no include filter).
    pub include_patterns: Vec<String>,
    /// `exclude-patterns`: .dockerignore-style lines, exceptions with `!`.
    pub exclude_patterns: Vec<String>,
    /// `followpaths`: paths resolved through symlinks into further include patterns.
    pub follow_paths: Vec<String>,
}

/// The entries `filter` selects, in [`fsutil_order`], with the parent
/// directories of selected paths included as fsutil emits them. `root` is the
/// real context directory, read only to resolve follow paths through symlinks.
pub fn transfer_set(
    root: &Path,
    entries: &[Entry],
    filter: &TransferFilter,
) -> Result<Vec<Entry>, ContextError> {
    select(Some(root), entries, filter)
}

/// [`transfer_set`] for a directory that exists only in memory (no links to follow).
pub(crate) fn transfer_set_virtual(
    entries: &[Entry],
    filter: &TransferFilter,
) -> Result<Vec<Entry>, ContextError> {
    select(None, entries, filter)
}

fn select(
    root: Option<&Path>,
    entries: &[Entry],
    filter: &TransferFilter,
) -> Result<Vec<Entry>, ContextError> {
    let includes = include_patterns(root, filter)?;
    let include = compile("include-patterns", includes.as_deref().unwrap_or(&[]))?;
    let exclude = compile("exclude-patterns", &filter.exclude_patterns)?;
    let mut sorted: Vec<&Entry> = entries.iter().collect();
    sorted.sort_by(|a, b| compare_path(&a.path, &b.path));
    if include.is_none() && exclude.is_none() {
        return Ok(sorted.into_iter().cloned().collect());
    }
    let mut walk = FilterWalk {
        include: include.as_ref(),
        exclude: exclude.as_ref(),
        parents: Vec::new(),
        pruned: None,
        out: Vec::new(),
    };
    for entry in sorted {
        walk.visit(entry)?;
    }
    Ok(walk.out)
}

/// Sorts entries by fsutil's `ComparePath`: bytewise, except that `/` sorts
/// before every other byte, so a directory's contents directly follow it.
pub fn fsutil_order(entries: &mut [Entry]) {
    entries.sort_by(|a, b| compare_path(&a.path, &b.path));
}

/// fsutil's `ComparePath`.
pub(crate) fn compare_path(a: &str, b: &str) -> Ordering {
    let key = |c: u8| if c == b'/' { 0u16 } else { u16::from(c) + 1 };
    for (x, y) in a.bytes().zip(b.bytes()) {
        if x != y {
            return key(x).cmp(&key(y));
        }
    }
    a.len().cmp(&b.len())
}

/// The include list fsutil ends up with: the given patterns plus resolved
/// follow paths, deduplicated; `None` means no include filter at all.
fn include_patterns(
    root: Option<&Path>,
    filter: &TransferFilter,
) -> Result<Option<Vec<String>>, ContextError> {
    let mut includes = filter.include_patterns.clone();
    if !filter.follow_paths.is_empty() {
        if let Some(targets) = follow_links(root, &filter.follow_paths)? {
            includes.extend(targets);
            match dedupe_paths(&includes) {
                Some(d) => includes = d,
                None => return Ok(None),
            }
        }
    }
    Ok((!includes.is_empty()).then_some(includes))
}

fn compile(list: &'static str, patterns: &[String]) -> Result<Option<Matcher>, ContextError> {
    if patterns.is_empty() {
        return Ok(None);
    }
    Matcher::new(patterns, Dialect::BuildKit)
        .map(Some)
        .map_err(|e| bad(list, e))
}

fn bad(list: &'static str, e: PatternError) -> ContextError {
    ContextError::BadTransferPattern {
        list,
        pattern: e.pattern,
        reason: e.reason,
    }
}

/// A directory on the current walk path.
struct Parent<'a> {
    entry: &'a Entry,
    with_slash: String,
    include: ParentMatches,
    exclude: ParentMatches,
    emitted: bool,
}

struct FilterWalk<'m, 'e> {
    include: Option<&'m Matcher>,
    exclude: Option<&'m Matcher>,
    parents: Vec<Parent<'e>>,
    /// `dir/` of a pruned directory: its contents are skipped.
    pruned: Option<String>,
    out: Vec<Entry>,
}

impl<'e> FilterWalk<'_, 'e> {
    fn visit(&mut self, entry: &'e Entry) -> Result<(), ContextError> {
        let path = entry.path.as_str();
        if let Some(prefix) = &self.pruned {
            if path.starts_with(prefix.as_str()) {
                return Ok(());
            }
            self.pruned = None;
        }
        while let Some(top) = self.parents.last() {
            if path.starts_with(top.with_slash.as_str()) {
                break;
            }
            self.parents.pop();
        }
        let is_dir = entry.kind == EntryKind::Dir;
        let mut skip = false;
        let mut include_info = ParentMatches::new();
        if let Some(m) = self.include {
            let parent = self.parents.last().map(|p| &p.include);
            let (hit, info) = m
                .excluded(path, parent)
                .map_err(|e| bad("include-patterns", e))?;
            include_info = info;
            if !hit {
                if is_dir && !m.walk_unincluded_dir(path) {
                    self.pruned = Some(format!("{path}/"));
                    return Ok(());
                }
                skip = true;
            }
        }
        let mut exclude_info = ParentMatches::new();
        if let Some(m) = self.exclude {
            let parent = self.parents.last().map(|p| &p.exclude);
            let (hit, info) = m
                .excluded(path, parent)
                .map_err(|e| bad("exclude-patterns", e))?;
            exclude_info = info;
            if hit {
                if is_dir && !m.walk_excluded_dir(path) {
                    self.pruned = Some(format!("{path}/"));
                    return Ok(());
                }
                skip = true;
            }
        }
        if !skip {
            for p in self.parents.iter_mut().filter(|p| !p.emitted) {
                p.emitted = true;
                self.out.push(p.entry.clone());
            }
            self.out.push(entry.clone());
        }
        if is_dir {
            self.parents.push(Parent {
                entry,
                with_slash: format!("{path}/"),
                include: include_info,
                exclude: exclude_info,
                emitted: !skip,
            });
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn file(path: &str) -> Entry {
        Entry {
            path: path.to_string(),
            kind: EntryKind::File {
                exec: false,
                size: 0,
                digest: [0; 32],
            },
        }
    }

    fn dir(path: &str) -> Entry {
        Entry {
            path: path.to_string(),
            kind: EntryKind::Dir,
        }
    }

    fn tree() -> Vec<Entry> {
        vec![
            file("Dockerfile"),
            dir("a"),
            file("a-b"),
            file("a/x.py"),
            dir("a/sub"),
            file("a/sub/y.py"),
            file("a/z.txt"),
            dir("b"),
            file("b/keep"),
            file("b/skip"),
        ]
    }

    fn paths(entries: &[Entry]) -> Vec<&str> {
        entries.iter().map(|e| e.path.as_str()).collect()
    }

    fn select(filter: TransferFilter) -> Vec<String> {
        let tmp = tempfile::tempdir().unwrap();
        transfer_set(tmp.path(), &tree(), &filter)
            .unwrap()
            .into_iter()
            .map(|e| e.path)
            .collect()
    }

    fn s(v: &[&str]) -> Vec<String> {
        v.iter().map(|x| x.to_string()).collect()
    }

    #[test]
    fn slash_sorts_before_every_byte() {
        let mut e = tree();
        fsutil_order(&mut e);
        assert_eq!(
            paths(&e),
            [
                "Dockerfile",
                "a",
                "a/sub",
                "a/sub/y.py",
                "a/x.py",
                "a/z.txt",
                "a-b",
                "b",
                "b/keep",
                "b/skip"
            ]
        );
        assert_eq!(compare_path("a/b", "a-b"), Ordering::Less);
        assert_eq!(compare_path("a", "a/b"), Ordering::Less);
        assert_eq!(compare_path("ab", "ab"), Ordering::Equal);
    }

    #[test]
    fn no_filter_keeps_everything_in_fsutil_order() {
        assert_eq!(select(TransferFilter::default()).len(), tree().len());
    }

    #[test]
    fn follow_paths_bring_their_parents() {
        let got = select(TransferFilter {
            follow_paths: s(&["a/sub/y.py", "b/keep"]),
            ..Default::default()
        });
        assert_eq!(got, s(&["a", "a/sub", "a/sub/y.py", "b", "b/keep"]));
    }

    #[test]
    fn excludes_apply_after_includes() {
        let got = select(TransferFilter {
            include_patterns: s(&["a"]),
            exclude_patterns: s(&["**/*.txt", "a/sub"]),
            ..Default::default()
        });
        assert_eq!(got, s(&["a", "a/x.py"]));
    }

    #[test]
    fn excluded_dir_appears_as_parent_of_an_exception() {
        let got = select(TransferFilter {
            exclude_patterns: s(&["b", "!b/keep", "a", "Dockerfile"]),
            ..Default::default()
        });
        assert_eq!(got, s(&["a-b", "b", "b/keep"]));
    }

    #[test]
    fn glob_include_walks_every_dir() {
        let got = select(TransferFilter {
            include_patterns: s(&["**/*.py"]),
            ..Default::default()
        });
        assert_eq!(got, s(&["a", "a/sub", "a/sub/y.py", "a/x.py"]));
    }

    #[test]
    fn root_follow_path_means_no_include_filter() {
        let got = select(TransferFilter {
            follow_paths: s(&["."]),
            exclude_patterns: s(&["a", "b"]),
            ..Default::default()
        });
        assert_eq!(got, s(&["Dockerfile", "a-b"]));
    }

    #[test]
    fn bad_patterns_name_the_list() {
        let tmp = tempfile::tempdir().unwrap();
        let err = transfer_set(
            tmp.path(),
            &tree(),
            &TransferFilter {
                exclude_patterns: s(&["[a-"]),
                ..Default::default()
            },
        )
        .unwrap_err();
        assert!(err.to_string().contains("exclude-patterns"), "{err}");
    }
}
