//! The framed byte sequences whose SHA-256 are the context hashes.
//!
//! Every variable-length field is length-prefixed and every section tagged, so
//! no two different inputs can produce the same byte sequence. Only what
//! changes the build enters it: paths, kinds, the owner-exec bit, sizes,
//! content digests, link targets, the Dockerfile and the caller's extra inputs
//! (never mtimes, owners or full modes, which differ between checkouts).
//!
//! Format 2 (current), in order:
//! `"imagebuild-context\0"`, version 2, then `M` and the entries of the main context the build
//! can read, then per named local context (sorted by name) `N`, its name and its readable
//! entries, then `D` and the Dockerfile's bytes, then `X` and the sorted (name, value) inputs:
//! platform, target, `buildArg:*`, `label:*`, and the pins (`base:<ref>` digests of base
//! images, `context:<name>` image contexts). An entry is its path, then `d`, `l` + target, or
//! `f` + exec bit + size + SHA-256 of the content.
//!
//! Format 1 hashed every entry `.dockerignore` keeps, the Dockerfile and the inputs without
//! pins; it is kept only so that images hashed by an older provider are recognised.

use sha2::{Digest, Sha256};

use super::{Entry, EntryKind};

/// The current format; bump on any change to what is hashed or how.
pub(crate) const FORMAT_VERSION: u32 = 2;
/// The format of providers up to 0.1.x.
const LEGACY_FORMAT_VERSION: u32 = 1;

fn frame(h: &mut Sha256, bytes: &[u8]) {
    h.update((bytes.len() as u64).to_be_bytes());
    h.update(bytes);
}

fn header(version: u32) -> Sha256 {
    let mut h = Sha256::new();
    h.update(b"imagebuild-context\0");
    h.update(version.to_be_bytes());
    h
}

fn entries_section(h: &mut Sha256, entries: &[Entry]) {
    h.update((entries.len() as u64).to_be_bytes());
    for e in entries {
        frame(h, e.path.as_bytes());
        match &e.kind {
            EntryKind::Dir => h.update(b"d"),
            EntryKind::Symlink { target } => {
                h.update(b"l");
                frame(h, target.as_bytes());
            }
            EntryKind::File { exec, size, digest } => {
                h.update(b"f");
                h.update([u8::from(*exec)]);
                h.update(size.to_be_bytes());
                h.update(digest);
            }
        }
    }
}

fn tail(mut h: Sha256, dockerfile: &[u8], inputs: &[(String, String)]) -> String {
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

/// What format 2 hashes besides the Dockerfile and the inputs.
pub(crate) struct HashedContexts<'a> {
    /// Readable entries of the main context, sorted by path.
    pub(crate) main: &'a [Entry],
    /// (name, readable entries) of each named local context, sorted by name.
    pub(crate) named: Vec<(&'a str, &'a [Entry])>,
}

/// True for the textual form of a context hash (either format): 64 lowercase hex digits.
pub fn is_context_hash(s: &str) -> bool {
    s.len() == 64 && s.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}

/// Computes the format 2 hash (64 lowercase hex characters).
/// `inputs` must already be sorted.
pub(crate) fn context_hash(
    contexts: &HashedContexts<'_>,
    dockerfile: &[u8],
    inputs: &[(String, String)],
) -> String {
    let mut h = header(FORMAT_VERSION);
    h.update(b"M");
    entries_section(&mut h, contexts.main);
    for (name, entries) in &contexts.named {
        h.update(b"N");
        frame(&mut h, name.as_bytes());
        entries_section(&mut h, entries);
    }
    tail(h, dockerfile, inputs)
}

/// Computes the format 1 hash over every kept entry (providers up to 0.1.x).
/// `inputs` must already be sorted.
pub(crate) fn legacy_context_hash(
    entries: &[Entry],
    dockerfile: &[u8],
    inputs: &[(String, String)],
) -> String {
    let mut h = header(LEGACY_FORMAT_VERSION);
    h.update(b"E");
    entries_section(&mut h, entries);
    tail(h, dockerfile, inputs)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_64_lowercase_hex_digits_are_a_context_hash() {
        assert!(is_context_hash(&"a1".repeat(32)));
        assert!(!is_context_hash(&"A1".repeat(32)));
        assert!(!is_context_hash("latest"));
        assert!(!is_context_hash(&"a".repeat(63)));
        assert!(!is_context_hash("../etc"));
    }

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

    /// Format 1 of `a` (size 1, digest 7*32) + Dockerfile `FROM x` + platform linux/amd64, as the
    /// 0.1.0 binary's recipe gives it (cross-checked against that binary's `context` command).
    const LEGACY_SAMPLE: &str = "6dfbe9207592ac103f114d6262a8297eea5d66f10da08aaffa36714ee8523c18";

    fn main_only(entries: &[Entry]) -> HashedContexts<'_> {
        HashedContexts {
            main: entries,
            named: Vec::new(),
        }
    }

    fn hash(entries: &[Entry], dockerfile: &[u8], inputs: &[(String, String)]) -> String {
        context_hash(&main_only(entries), dockerfile, inputs)
    }

    #[test]
    fn every_field_changes_the_hash() {
        let base = hash(&[file("a", false)], b"FROM x", &[]);
        assert_eq!(base.len(), 64);
        assert_eq!(base, hash(&[file("a", false)], b"FROM x", &[]));
        assert_ne!(base, hash(&[file("a", true)], b"FROM x", &[]));
        assert_ne!(base, hash(&[file("b", false)], b"FROM x", &[]));
        assert_ne!(base, hash(&[file("a", false)], b"FROM y", &[]));
        let inputs = [("platform".to_string(), "linux/amd64".to_string())];
        assert_ne!(base, hash(&[file("a", false)], b"FROM x", &inputs));
        let dir = Entry {
            path: "a".into(),
            kind: EntryKind::Dir,
        };
        assert_ne!(base, hash(&[dir], b"FROM x", &[]));
    }

    #[test]
    fn named_contexts_are_their_own_sections() {
        let files = [file("a", false)];
        let in_main = hash(&files, b"", &[]);
        let in_named = context_hash(
            &HashedContexts {
                main: &[],
                named: vec![("shared", &files)],
            },
            b"",
            &[],
        );
        let renamed = context_hash(
            &HashedContexts {
                main: &[],
                named: vec![("other", &files)],
            },
            b"",
            &[],
        );
        assert_ne!(in_main, in_named);
        assert_ne!(in_named, renamed);
    }

    #[test]
    fn formats_differ_for_the_same_files() {
        let files = [file("a", false)];
        assert_ne!(
            hash(&files, b"FROM x", &[]),
            legacy_context_hash(&files, b"FROM x", &[])
        );
    }

    #[test]
    fn legacy_format_is_frozen() {
        // Computed by provider 0.1.0 for this input; an upgrade must keep recognising it.
        let files = [file("a", false)];
        let inputs = [("platform".to_string(), "linux/amd64".to_string())];
        assert_eq!(
            legacy_context_hash(&files, b"FROM x", &inputs),
            LEGACY_SAMPLE
        );
    }

    #[test]
    fn framing_prevents_ambiguity() {
        let one = [("ab".to_string(), "c".to_string())];
        let two = [("a".to_string(), "bc".to_string())];
        assert_ne!(hash(&[], b"", &one), hash(&[], b"", &two));
    }
}
