//! PROVISIONAL (replaced by the `session` branch's fsutil-exact version before anything ships):
//! fsutil's FilterFS over our entries, follow paths only, without symlink resolution.

use std::path::Path;

use super::{ContextError, Entry};

/// What BuildKit asks the session for (fsutil FilterOpt).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TransferFilter {
    /// Include patterns.
    pub include_patterns: Vec<String>,
    /// Exclude patterns.
    pub exclude_patterns: Vec<String>,
    /// Follow paths.
    pub follow_paths: Vec<String>,
}

/// The entries a transfer with `filter` would send (parents of included paths included).
pub fn transfer_set(
    _root: &Path,
    entries: &[Entry],
    filter: &TransferFilter,
) -> Result<Vec<Entry>, ContextError> {
    let patterns: Vec<Vec<&str>> = filter
        .follow_paths
        .iter()
        .map(|p| {
            p.split('/')
                .filter(|c| !c.is_empty() && *c != ".")
                .collect()
        })
        .collect();
    let matched: Vec<&Entry> = entries
        .iter()
        .filter(|e| {
            let comps: Vec<&str> = e.path.split('/').collect();
            patterns.iter().any(|p| {
                p.len() <= comps.len() && p.iter().zip(&comps).all(|(pat, c)| glob(pat, c))
            })
        })
        .collect();
    let mut keep: std::collections::BTreeSet<&str> = std::collections::BTreeSet::new();
    for e in &matched {
        let mut p = e.path.as_str();
        keep.insert(p);
        while let Some((parent, _)) = p.rsplit_once('/') {
            keep.insert(parent);
            p = parent;
        }
    }
    Ok(entries
        .iter()
        .filter(|e| keep.contains(e.path.as_str()))
        .cloned()
        .collect())
}

/// Sorts entries as fsutil walks them (`/` before every other byte).
pub fn fsutil_order(entries: &mut [Entry]) {
    entries.sort_by(|a, b| {
        let key = |s: &str| {
            s.bytes()
                .map(|c| if c == b'/' { 0 } else { c })
                .collect::<Vec<u8>>()
        };
        key(&a.path).cmp(&key(&b.path))
    });
}

fn glob(pattern: &str, name: &str) -> bool {
    fn rec(p: &[u8], n: &[u8]) -> bool {
        match p.first() {
            None => n.is_empty(),
            Some(b'*') => (0..=n.len()).any(|i| rec(&p[1..], &n[i..])),
            Some(b'?') => !n.is_empty() && rec(&p[1..], &n[1..]),
            Some(b'\\') if p.len() > 1 => n.first() == Some(&p[1]) && rec(&p[2..], &n[1..]),
            Some(c) => n.first() == Some(c) && rec(&p[1..], &n[1..]),
        }
    }
    rec(pattern.as_bytes(), name.as_bytes())
}
