//! Which entries of a tree a build can read: everything, or what fsutil's follow-path filter
//! keeps for the paths the Dockerfile names (exactly what BuildKit then asks the session for).

use std::fs;

use super::transfer::{transfer_set, TransferFilter};
use super::tree::Tree;
use super::{ContextError, ContextReads, Entry, ReadPath};

/// The entries of `tree` the build can read, sorted by path. A path that must exist and does
/// not (or is excluded by the ignore file) is an error naming the instruction.
pub(crate) fn select(tree: &Tree, reads: &ContextReads) -> Result<Vec<Entry>, ContextError> {
    let paths = match reads {
        ContextReads::Whole(_) => return Ok(tree.entries.clone()),
        ContextReads::Paths(paths) => paths,
    };
    if paths.is_empty() {
        return Ok(Vec::new());
    }
    let filter = TransferFilter {
        include_patterns: Vec::new(),
        exclude_patterns: Vec::new(),
        follow_paths: paths.iter().map(|p| p.path.clone()).collect(),
    };
    let mut used = transfer_set(&tree.root, &tree.entries, &filter)?;
    used.sort_by(|a, b| a.path.cmp(&b.path));
    used.dedup_by(|a, b| a.path == b.path);
    for p in paths.iter().filter(|p| p.must_exist) {
        check_exists(tree, &used, p)?;
    }
    Ok(used)
}

/// BuildKit fails a COPY whose (wildcard-free) source is absent from what it received.
fn check_exists(tree: &Tree, used: &[Entry], read: &ReadPath) -> Result<(), ContextError> {
    let on_disk = tree.root.join(&read.path);
    let Ok(real) = fs::canonicalize(&on_disk) else {
        return Err(missing(
            read,
            format!(
                "does not exist in the build context {}; fix the path (it is relative to the \
                 context directory) or create it",
                tree.root.display()
            ),
        ));
    };
    let rel = real
        .strip_prefix(&tree.root)
        .ok()
        .and_then(|r| r.to_str())
        .map(str::to_string);
    let present = match rel.as_deref() {
        Some("") => true,
        Some(rel) => used.binary_search_by(|e| e.path.as_str().cmp(rel)).is_ok(),
        None => false,
    };
    if present {
        return Ok(());
    }
    let why = match (&tree.ignore_file, rel) {
        (Some(ignore), Some(_)) => format!(
            "is excluded by {}; remove the pattern that matches it or stop reading it",
            ignore.path.display()
        ),
        _ => format!(
            "resolves outside the build context {}; a build can only read paths inside it",
            tree.root.display()
        ),
    };
    Err(missing(read, why))
}

fn missing(read: &ReadPath, why: String) -> ContextError {
    ContextError::MissingSource {
        origin: read.origin.clone(),
        path: read.path.clone(),
        why,
    }
}
