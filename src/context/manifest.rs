//! Per-hash manifests (what each hash was made of) and `explain`.
//!
//! Stored under `<cache>/manifests/<hash>.manifest`, written atomically and
//! checksummed like the stat cache; only the most recently used are kept.

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};
use std::time::SystemTime;

use super::digest::sha256;
use super::statcache::{verified_body, write_atomic, Reader};
use super::{ContextSnapshot, Entry, EntryKind, Explanation};

const MAGIC: &[u8; 8] = b"IBMANIF\0";
/// 2: entries are what a format 2 hash covers (the readable set, named contexts under `@name/`).
/// 1: entries were every kept file (format 1 hashes); still read for `explain`.
const VERSION: u32 = 2;
const LEGACY_VERSION: u32 = 1;
/// Manifests of large contexts take about a megabyte; keep the cache bounded.
const KEEP: usize = 64;

/// What a hash was computed from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Manifest {
    /// Written by a format 1 provider: `entries` is the whole kept tree.
    pub(crate) legacy: bool,
    pub(crate) dockerfile_digest: [u8; 32],
    pub(crate) inputs: Vec<(String, String)>,
    pub(crate) entries: Vec<Entry>,
}

fn manifest_path(cache_dir: &Path, hash: &str) -> Option<PathBuf> {
    // The hash may come from a user (`--explain`): never let it name another path.
    super::is_context_hash(hash)
        .then(|| cache_dir.join("manifests").join(format!("{hash}.manifest")))
}

/// Saves the manifest of `hash` unless it is already there (then marks it used).
pub(crate) fn store(cache_dir: &Path, hash: &str, manifest: &Manifest) -> std::io::Result<()> {
    let Some(path) = manifest_path(cache_dir, hash) else {
        return Ok(());
    };
    if let Ok(f) = fs::File::options().write(true).open(&path) {
        return f.set_modified(SystemTime::now());
    }
    write_atomic(&path, &encode(manifest))?;
    prune(path.parent().unwrap_or(cache_dir));
    Ok(())
}

/// Loads the manifest of `hash`, if present and intact.
pub(crate) fn load(cache_dir: &Path, hash: &str) -> Option<Manifest> {
    let bytes = fs::read(manifest_path(cache_dir, hash)?).ok()?;
    decode(&bytes)
}

fn prune(dir: &Path) {
    let Ok(listing) = fs::read_dir(dir) else {
        return;
    };
    let mut found: Vec<(SystemTime, PathBuf)> = listing
        .filter_map(Result::ok)
        .filter(|e| e.file_name().to_string_lossy().ends_with(".manifest"))
        .filter_map(|e| Some((e.metadata().ok()?.modified().ok()?, e.path())))
        .collect();
    if found.len() <= KEEP {
        return;
    }
    found.sort();
    let excess = found.len() - KEEP;
    for (_, path) in found.into_iter().take(excess) {
        let _ = fs::remove_file(path);
    }
}

fn put_str(out: &mut Vec<u8>, s: &str) {
    out.extend_from_slice(&(s.len() as u32).to_le_bytes());
    out.extend_from_slice(s.as_bytes());
}

fn encode(m: &Manifest) -> Vec<u8> {
    let mut out = Vec::with_capacity(64 + m.entries.len() * 96);
    out.extend_from_slice(MAGIC);
    let version = if m.legacy { LEGACY_VERSION } else { VERSION };
    out.extend_from_slice(&version.to_le_bytes());
    out.extend_from_slice(&m.dockerfile_digest);
    out.extend_from_slice(&(m.inputs.len() as u32).to_le_bytes());
    for (k, v) in &m.inputs {
        put_str(&mut out, k);
        put_str(&mut out, v);
    }
    out.extend_from_slice(&(m.entries.len() as u64).to_le_bytes());
    for e in &m.entries {
        put_str(&mut out, &e.path);
        match &e.kind {
            EntryKind::Dir => out.push(0),
            EntryKind::File { exec, size, digest } => {
                out.push(1);
                out.push(u8::from(*exec));
                out.extend_from_slice(&size.to_le_bytes());
                out.extend_from_slice(digest);
            }
            EntryKind::Symlink { target } => {
                out.push(2);
                put_str(&mut out, target);
            }
        }
    }
    let sum = sha256(&out);
    out.extend_from_slice(&sum);
    out
}

fn decode(bytes: &[u8]) -> Option<Manifest> {
    let mut r = Reader(verified_body(bytes)?);
    if r.take(8)? != MAGIC {
        return None;
    }
    let legacy = match r.u32()? {
        VERSION => false,
        LEGACY_VERSION => true,
        _ => return None,
    };
    let dockerfile_digest = r.digest()?;
    let n_inputs = r.u32()? as usize;
    let mut inputs = Vec::with_capacity(n_inputs.min(1024));
    for _ in 0..n_inputs {
        inputs.push((r.string()?, r.string()?));
    }
    let n = r.u64()? as usize;
    let mut entries = Vec::with_capacity(n.min(1 << 20));
    for _ in 0..n {
        let path = r.string()?;
        let kind = match r.take(1)?[0] {
            0 => EntryKind::Dir,
            1 => EntryKind::File {
                exec: r.take(1)?[0] != 0,
                size: r.u64()?,
                digest: r.digest()?,
            },
            2 => EntryKind::Symlink {
                target: r.string()?,
            },
            _ => return None,
        };
        entries.push(Entry { path, kind });
    }
    r.0.is_empty().then_some(Manifest {
        legacy,
        dockerfile_digest,
        inputs,
        entries,
    })
}

/// Explains what changed between the context that had `old_hash` and `new`,
/// from the manifests kept in `cache_dir` (default: [`super::default_cache_dir`]).
/// Only what the hashes cover is compared: files the build does not read never show.
pub fn explain(old_hash: &str, new: &ContextSnapshot, cache_dir: Option<&Path>) -> Explanation {
    let cache_dir = super::cache_dir_of(cache_dir);
    let Some(old) = load(&cache_dir, old_hash.trim()) else {
        return Explanation::OldManifestMissing;
    };
    let current = load(&cache_dir, &new.hash);
    let new_entries = current
        .as_ref()
        .map_or(new.used.as_slice(), |m| m.entries.as_slice());
    let old_entries = if old.legacy {
        comparable_legacy_entries(&old.entries, new_entries, &new.entries)
    } else {
        old.entries.clone()
    };
    let (added, removed, mut changed) = compare(&old_entries, new_entries);
    if old.dockerfile_digest != sha256(&new.dockerfile_contents) {
        changed.push("(dockerfile)".to_string());
    }
    // Extra inputs are not part of the snapshot; the new hash's own manifest has them.
    if let Some(current) = &current {
        let before: BTreeMap<_, _> = old.inputs.iter().cloned().collect();
        let after: BTreeMap<_, _> = current.inputs.iter().cloned().collect();
        let names: std::collections::BTreeSet<&String> =
            before.keys().chain(after.keys()).collect();
        for name in names {
            if before.get(name) != after.get(name) {
                changed.push(format!("(input) {name}"));
            }
        }
    }
    Explanation::Changes {
        added,
        removed,
        changed,
    }
}

/// A format 1 manifest lists every kept file: keep those the new hash covers, and those gone
/// from the tree altogether (really removed), so unread files do not show as removed.
fn comparable_legacy_entries(old: &[Entry], covered: &[Entry], tree: &[Entry]) -> Vec<Entry> {
    let has = |set: &[Entry], p: &str| set.binary_search_by(|e| e.path.as_str().cmp(p)).is_ok();
    old.iter()
        .filter(|e| has(covered, &e.path) || !has(tree, &e.path))
        .cloned()
        .collect()
}

/// (added, removed, changed) paths between two sorted entry lists.
fn compare(a: &[Entry], b: &[Entry]) -> (Vec<String>, Vec<String>, Vec<String>) {
    let (mut added, mut removed, mut changed) = (Vec::new(), Vec::new(), Vec::new());
    let (mut i, mut j) = (0, 0);
    while i < a.len() || j < b.len() {
        match (a.get(i), b.get(j)) {
            (Some(x), Some(y)) if x.path == y.path => {
                if x.kind != y.kind {
                    changed.push(y.path.clone());
                }
                i += 1;
                j += 1;
            }
            (Some(x), Some(y)) if x.path < y.path => {
                removed.push(x.path.clone());
                i += 1;
            }
            (Some(x), None) => {
                removed.push(x.path.clone());
                i += 1;
            }
            (_, Some(y)) => {
                added.push(y.path.clone());
                j += 1;
            }
            (None, None) => break,
        }
    }
    (added, removed, changed)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Manifest {
        Manifest {
            legacy: false,
            dockerfile_digest: [3; 32],
            inputs: vec![("platform".into(), "linux/amd64".into())],
            entries: vec![
                Entry {
                    path: "a".into(),
                    kind: EntryKind::Dir,
                },
                Entry {
                    path: "a/f".into(),
                    kind: EntryKind::File {
                        exec: true,
                        size: 9,
                        digest: [5; 32],
                    },
                },
                Entry {
                    path: "l".into(),
                    kind: EntryKind::Symlink {
                        target: "a/f".into(),
                    },
                },
            ],
        }
    }

    #[test]
    fn round_trip() {
        let m = sample();
        assert_eq!(decode(&encode(&m)), Some(m));
    }

    #[test]
    fn legacy_manifests_still_decode() {
        let m = Manifest {
            legacy: true,
            ..sample()
        };
        assert_eq!(decode(&encode(&m)), Some(m));
    }

    #[test]
    fn corruption_is_detected() {
        let mut bytes = encode(&sample());
        bytes[20] ^= 1;
        assert_eq!(decode(&bytes), None);
    }

    #[test]
    fn hostile_hashes_name_no_file() {
        assert!(manifest_path(Path::new("/c"), "../../etc/passwd").is_none());
        assert!(manifest_path(Path::new("/c"), &"A".repeat(64)).is_none());
        assert!(manifest_path(Path::new("/c"), &"a".repeat(64)).is_some());
    }
}
