//! fsutil's `FollowLinks`: turns follow paths into include patterns by
//! resolving symlinks on the way, against the real context directory.
//!
//! BuildKit sends the paths a Dockerfile names (`COPY src/app.py ...`) as
//! follow paths; a path through a symlink must also bring the link's target,
//! or the build would see a dangling link. Rules, as fsutil applies them:
//! each component is checked in turn; a symlink is replaced by its target
//! (absolute targets are taken relative to the context root, relative ones
//! are clamped at the root) and the rest of the path is resolved from there;
//! a wildcard component is expanded over the directory listing (only to find
//! symlinks among the matches; the wildcard path itself stays a pattern); a
//! path that does not exist is kept as given; `.` anywhere means no filter.

use std::collections::BTreeSet;
use std::fs;
use std::io;
use std::path::Path;

use super::goclean::{clean, dir};
use super::gomatch::go_match;
use super::ContextError;

/// Resolves `paths` against `root` (`None`: a directory without links, where each
/// path stands for itself); `None` means "everything" (a path was the root).
pub(crate) fn follow_links(
    root: Option<&Path>,
    paths: &[String],
) -> Result<Option<Vec<String>>, ContextError> {
    let mut resolver = Resolver {
        root,
        resolved: BTreeSet::new(),
    };
    for p in paths {
        resolver.append(p)?;
    }
    let sorted: Vec<String> = resolver.resolved.into_iter().collect();
    Ok(dedupe_paths(&sorted))
}

/// Drops paths below an earlier path (the input is expected sorted); `None` if one is `.`.
pub(crate) fn dedupe_paths(paths: &[String]) -> Option<Vec<String>> {
    let mut out: Vec<String> = Vec::with_capacity(paths.len());
    let mut last = String::new();
    for p in paths {
        if p == "." {
            return None;
        }
        if p.starts_with(&format!("{last}/")) {
            continue;
        }
        out.push(p.clone());
        last = p.clone();
    }
    Some(out)
}

/// Go's `filepath.Join` for two `/`-separated parts.
fn join(a: &str, b: &str) -> String {
    match (a.is_empty(), b.is_empty()) {
        (true, true) => String::new(),
        (true, false) => clean(b),
        (false, true) => clean(a),
        (false, false) => clean(&format!("{a}/{b}")),
    }
}

fn base(p: &str) -> &str {
    p.rsplit('/').next().unwrap_or(p)
}

/// Go's `containsWildcards` on unix: `*`, `?` or `[` not escaped by `\`.
fn contains_wildcards(name: &str) -> bool {
    let b = name.as_bytes();
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'\\' => i += 1,
            b'*' | b'?' | b'[' => return true,
            _ => {}
        }
        i += 1;
    }
    false
}

struct Resolver<'a> {
    root: Option<&'a Path>,
    resolved: BTreeSet<String>,
}

impl Resolver<'_> {
    fn append(&mut self, p: &str) -> Result<(), ContextError> {
        let mut rest = join(".", p);
        let mut current = ".".to_string();
        loop {
            let (first, tail) = match rest.split_once('/') {
                Some((f, t)) => (f.to_string(), t.to_string()),
                None => (rest.clone(), String::new()),
            };
            current = join(&current, &first);
            let targets = self.read_symlink(&current, true)?;
            rest = tail;
            if (rest.is_empty() || targets.is_some()) && self.resolved.contains(&current) {
                return Ok(());
            }
            if let Some(targets) = targets {
                self.resolved.insert(current);
                for t in targets {
                    self.append(&join(&t, &rest))?;
                }
                return Ok(());
            }
            if rest.is_empty() {
                self.resolved.insert(current);
                return Ok(());
            }
        }
    }

    /// The link target(s) at `p` (several for a wildcard), or `None` when nothing there is a link.
    fn read_symlink(&self, p: &str, wildcard: bool) -> Result<Option<Vec<String>>, ContextError> {
        let name = base(p);
        if wildcard && contains_wildcards(name) {
            let parent = dir(p);
            let Some(names) = self.read_dir(parent)? else {
                return Ok(None);
            };
            let mut out = Vec::new();
            for n in names.iter().filter(|n| go_match(name, n)) {
                if let Some(t) = self.read_symlink(&join(parent, n), false)? {
                    out.extend(t);
                }
            }
            return Ok((!out.is_empty()).then_some(out));
        }
        let p = clean(p);
        let Some(root) = self.root.filter(|_| p != "." && p != "/" && !escapes(&p)) else {
            return Ok(None);
        };
        let abs = root.join(&p);
        let md = match fs::symlink_metadata(&abs) {
            Ok(md) => md,
            Err(e) if missing(&e) => return Ok(None),
            Err(source) => return Err(ContextError::Unreadable { path: abs, source }),
        };
        if !md.file_type().is_symlink() {
            return Ok(None);
        }
        let link = fs::read_link(&abs).map_err(|source| ContextError::Unreadable {
            path: abs.clone(),
            source,
        })?;
        let link = link
            .into_os_string()
            .into_string()
            .map_err(|_| ContextError::NonUtf8Path { path: abs.clone() })?;
        let link = clean(&link);
        if link.starts_with('/') {
            return Ok(Some(vec![link]));
        }
        Ok(Some(vec![join("/", &join(dir(&p), &link))]))
    }

    /// Names in directory `p` of the context, sorted; `None` if it is not a directory.
    fn read_dir(&self, p: &str) -> Result<Option<Vec<String>>, ContextError> {
        let p = clean(p);
        let Some(root) = self.root.filter(|_| !escapes(&p)) else {
            return Ok(None);
        };
        let abs = if p == "." || p == "/" {
            root.to_path_buf()
        } else {
            root.join(&p)
        };
        match fs::symlink_metadata(&abs) {
            Ok(md) if md.is_dir() => {}
            Ok(_) => return Ok(None),
            Err(e) if missing(&e) => return Ok(None),
            Err(source) => return Err(ContextError::Unreadable { path: abs, source }),
        }
        let unreadable = |source| ContextError::Unreadable {
            path: abs.clone(),
            source,
        };
        let mut names = Vec::new();
        for dirent in fs::read_dir(&abs).map_err(unreadable)? {
            let dirent = dirent.map_err(unreadable)?;
            // A name that is not UTF-8 cannot be part of the context anyway.
            if let Ok(n) = dirent.file_name().into_string() {
                names.push(n);
            }
        }
        names.sort();
        Ok(Some(names))
    }
}

/// Paths above the context root are never read (fsutil would look outside the root for
/// `../x`; BuildKit never asks for such paths, so they are simply not found).
fn escapes(p: &str) -> bool {
    p == ".." || p.starts_with("../")
}

fn missing(e: &io::Error) -> bool {
    e.kind() == io::ErrorKind::NotFound || e.raw_os_error() == Some(libc::ENOTDIR)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::symlink;

    fn strings(v: &[&str]) -> Vec<String> {
        v.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn dedupe_like_fsutil() {
        assert_eq!(
            dedupe_paths(&strings(&["a", "a/b", "ab", "b/c"])),
            Some(strings(&["a", "ab", "b/c"]))
        );
        assert_eq!(dedupe_paths(&strings(&["a", "."])), None);
    }

    #[test]
    fn resolves_links_and_wildcards() {
        let tmp = tempfile::tempdir().unwrap();
        let root = tmp.path();
        fs::create_dir_all(root.join("real/sub")).unwrap();
        fs::write(root.join("real/sub/f"), "f").unwrap();
        symlink("real", root.join("link")).unwrap();
        symlink("/real/sub", root.join("abs")).unwrap();
        symlink("../../../real", root.join("real/up")).unwrap();
        symlink("loop2", root.join("loop1")).unwrap();
        symlink("loop1", root.join("loop2")).unwrap();
        fs::write(root.join("x.txt"), "x").unwrap();
        symlink("real/sub/f", root.join("y.txt")).unwrap();

        let got = |paths: &[&str]| follow_links(Some(root), &strings(paths)).unwrap();
        assert_eq!(got(&["link/sub/f"]), Some(strings(&["link", "real/sub/f"])));
        assert_eq!(got(&["abs/f"]), Some(strings(&["abs", "real/sub/f"])));
        // A relative link climbing above the root is clamped at the root.
        assert_eq!(
            got(&["real/up/sub"]),
            Some(strings(&["real/sub", "real/up"]))
        );
        assert_eq!(got(&["loop1"]), Some(strings(&["loop1", "loop2"])));
        assert_eq!(got(&["missing/x"]), Some(strings(&["missing/x"])));
        assert_eq!(got(&["*.txt"]), Some(strings(&["*.txt", "real/sub/f"])));
        assert_eq!(got(&["x.txt", "."]), None);
        assert_eq!(got(&["./x.txt/"]), Some(strings(&["x.txt"])));
        let flat = follow_links(None, &strings(&["link/sub/f", "*.txt"])).unwrap();
        assert_eq!(flat, Some(strings(&["*.txt", "link/sub/f"])));
    }

    #[test]
    fn wildcards_need_an_unescaped_glob_char() {
        assert!(contains_wildcards("a*"));
        assert!(contains_wildcards("[ab]"));
        assert!(!contains_wildcards("a\\*"));
        assert!(!contains_wildcards("plain"));
    }
}
