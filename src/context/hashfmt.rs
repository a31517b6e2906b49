//! The framed byte sequence whose SHA-256 is the context hash.
//!
//! Every variable-length field is length-prefixed and every section tagged, so
//! no two different contexts can produce the same byte sequence. Only what
//! changes the build enters it: paths, kinds, the owner-exec bit, sizes,
//! content digests, link targets, the Dockerfile and the caller's extra inputs
//! (never mtimes, owners or full modes, which differ between checkouts).

use sha2::{Digest, Sha256};

use super::{Entry, EntryKind};

/// Bump on any change to what is hashed or how; old hashes then stop matching.
pub(crate) const FORMAT_VERSION: u32 = 1;

fn frame(h: &mut Sha256, bytes: &[u8]) {
    h.update((bytes.len() as u64).to_be_bytes());
    h.update(bytes);
}

/// Computes the context hash (64 lowercase hex characters).
/// `inputs` must already be in the caller's canonical (sorted) order.
pub(crate) fn context_hash(
    entries: &[Entry],
    dockerfile: &[u8],
    inputs: &[(String, String)],
) -> String {
    let mut h = Sha256::new();
    h.update(b"imagebuild-context\0");
    h.update(FORMAT_VERSION.to_be_bytes());
    h.update(b"E");
    h.update((entries.len() as u64).to_be_bytes());
    for e in entries {
        frame(&mut h, e.path.as_bytes());
        match &e.kind {
            EntryKind::Dir => h.update(b"d"),
            EntryKind::Symlink { target } => {
                h.update(b"l");
                frame(&mut h, target.as_bytes());
            }
            EntryKind::File { exec, size, digest } => {
                h.update(b"f");
                h.update([u8::from(*exec)]);
                h.update(size.to_be_bytes());
                h.update(digest);
            }
        }
    }
    h.update(b"D");
    frame(&mut h, dockerfile);
    h.update(b"X");
    h.update((inputs.len() as u64).to_be_bytes());
    for (k, v) in inputs {
        frame(&mut h, k.as_bytes());
        frame(&mut h, v.as_bytes());
    }
    hex::encode(h.finalize())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn file(path: &str, exec: bool) -> Entry {
        Entry {
            path: path.into(),
            kind: EntryKind::File {
                exec,
                size: 1,
                digest: [7; 32],
            },
        }
    }

    #[test]
    fn every_field_changes_the_hash() {
        let base = context_hash(&[file("a", false)], b"FROM x", &[]);
        assert_eq!(base.len(), 64);
        assert_eq!(base, context_hash(&[file("a", false)], b"FROM x", &[]));
        assert_ne!(base, context_hash(&[file("a", true)], b"FROM x", &[]));
        assert_ne!(base, context_hash(&[file("b", false)], b"FROM x", &[]));
        assert_ne!(base, context_hash(&[file("a", false)], b"FROM y", &[]));
        let inputs = [("platform".to_string(), "linux/amd64".to_string())];
        assert_ne!(base, context_hash(&[file("a", false)], b"FROM x", &inputs));
        let dir = Entry {
            path: "a".into(),
            kind: EntryKind::Dir,
        };
        assert_ne!(base, context_hash(&[dir], b"FROM x", &[]));
    }

    #[test]
    fn framing_prevents_ambiguity() {
        let one = [("ab".to_string(), "c".to_string())];
        let two = [("a".to_string(), "bc".to_string())];
        assert_ne!(context_hash(&[], b"", &one), context_hash(&[], b"", &two));
    }
}
