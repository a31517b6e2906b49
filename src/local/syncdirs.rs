//! The named directories a build's session serves to BuildKit, built from the
//! snapshot, and the shared key under which BuildKit keeps their copies.
//!
//! - `context`: the snapshot's root and entries, plus the context's ignore
//!   file itself: the frontend reads it with followpaths `[".dockerignore"]`
//!   even when it ignores itself, and it is served with the bytes the snapshot
//!   read, so that the daemon applies exactly the rules the hash was made with.
//! - `dockerfile`: a virtual directory holding the Dockerfile bytes from the
//!   snapshot (under its file name, or `Dockerfile` when inline) and
//!   `<name>.dockerignore` when the snapshot read its rules from there.
//!
//! - each named local context (`snapshot.named`): its root and entries, plus its own
//!   `.dockerignore` on the same terms as `context`'s (the frontend reads it with followpaths
//!   `[".dockerignore"]` before it asks for the files). It is served under its name, or with
//!   leading underscores when that name is taken (`context`, `dockerfile`), as buildx does.
//!
//! Further names can be registered with [`SyncDirs::insert`].

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;

use sha2::{Digest, Sha256};

use crate::context::{transfer_set, transfer_set_virtual, ContextSnapshot, Entry, EntryKind};
use crate::context::{ContextError, IgnoreFile, NamedSnapshot, TransferFilter};

/// Name of the build context directory in BuildKit's requests.
pub(crate) const CONTEXT_DIR: &str = "context";
/// Name of the Dockerfile directory in BuildKit's requests.
pub(crate) const DOCKERFILE_DIR: &str = "dockerfile";
/// The Dockerfile's name in the virtual directory when it has no file name of its own.
const INLINE_NAME: &str = "Dockerfile";

/// A file served from memory.
#[derive(Debug, Clone)]
pub(crate) struct VirtualFile {
    /// Path inside its directory.
    pub(crate) path: String,
    /// The bytes.
    pub(crate) contents: Arc<Vec<u8>>,
}

/// The name BuildKit's frontend reads a context's ignore file from.
const IGNORE_NAME: &str = ".dockerignore";

/// A named local context as one session serves it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct NamedDir {
    /// The name the Dockerfile uses (`FROM name`, `COPY --from=name`).
    pub(crate) name: String,
    /// The directory name BuildKit asks the session for (`context:name=local:<dir>`).
    pub(crate) dir: String,
    /// BuildKit's shared-key hint for it (`sharedkey:localdir:name`): a digest of its root, so
    /// that another directory given under the same name keeps a copy of its own.
    pub(crate) key: String,
}

/// A selected entry and, for an in-memory file, its bytes.
pub(crate) type Selected = (Entry, Option<Arc<Vec<u8>>>);

/// One directory BuildKit may ask for by name.
#[derive(Debug, Clone)]
pub(crate) struct SyncDir {
    /// The real directory holding `entries` (None: the directory exists only in memory).
    pub(crate) root: Option<PathBuf>,
    /// On-disk entries (checked against their snapshot digests when served).
    pub(crate) entries: Arc<Vec<Entry>>,
    /// In-memory files; they replace an on-disk entry of the same path.
    pub(crate) files: Vec<VirtualFile>,
}

impl SyncDir {
    /// What one request selects, in wire order, each with its in-memory bytes if it has any.
    pub(crate) fn select(&self, filter: &TransferFilter) -> Result<Vec<Selected>, ContextError> {
        let mut all: Vec<Entry> = self
            .entries
            .iter()
            .filter(|e| self.files.iter().all(|f| f.path != e.path))
            .cloned()
            .collect();
        all.extend(self.files.iter().map(|f| Entry {
            path: f.path.clone(),
            kind: EntryKind::File {
                exec: false,
                size: f.contents.len() as u64,
                digest: Sha256::digest(f.contents.as_slice()).into(),
            },
        }));
        let selected = match &self.root {
            Some(root) => transfer_set(root, &all, filter)?,
            None => transfer_set_virtual(&all, filter)?,
        };
        Ok(selected
            .into_iter()
            .map(|e| {
                let bytes = self
                    .files
                    .iter()
                    .find(|f| f.path == e.path)
                    .map(|f| f.contents.clone());
                (e, bytes)
            })
            .collect())
    }
}

/// All directories of one session, by name.
#[derive(Debug, Clone, Default)]
pub(crate) struct SyncDirs {
    dirs: HashMap<String, SyncDir>,
}

impl SyncDirs {
    /// `context` and `dockerfile` for a snapshot; also returns the Dockerfile's name in `dockerfile`.
    pub(crate) fn for_snapshot(
        snap: &ContextSnapshot,
        dockerfile_text: Option<&Arc<Vec<u8>>>,
    ) -> (SyncDirs, String) {
        let name = snap
            .dockerfile_path
            .as_ref()
            .and_then(|p| p.file_name())
            .and_then(|n| n.to_str())
            .unwrap_or(INLINE_NAME)
            .to_string();
        let mut dockerfile_files = vec![VirtualFile {
            path: name.clone(),
            contents: dockerfile_text.unwrap_or(&snap.dockerfile_contents).clone(),
        }];
        let mut context_files = Vec::new();
        if let Some(ignore) = &snap.ignore_file {
            let next_to_dockerfile = snap.dockerfile_path.as_ref().is_some_and(|p| {
                ignore.path.as_os_str() == format!("{}.dockerignore", p.display()).as_str()
            });
            if next_to_dockerfile {
                dockerfile_files.push(VirtualFile {
                    path: format!("{name}.dockerignore"),
                    contents: ignore.contents.clone(),
                });
            } else {
                context_files = self_ignored(&snap.entries, ignore);
            }
        }
        let mut dirs = SyncDirs::default();
        dirs.insert(
            CONTEXT_DIR,
            SyncDir {
                root: Some(snap.root.clone()),
                entries: snap.entries.clone(),
                files: context_files,
            },
        );
        dirs.insert(
            DOCKERFILE_DIR,
            SyncDir {
                root: None,
                entries: Arc::new(Vec::new()),
                files: dockerfile_files,
            },
        );
        (dirs, name)
    }

    /// Registers every named local context of `snap` (see the module docs); returns how each is
    /// served, in the snapshot's (name) order.
    pub(crate) fn add_named(&mut self, snap: &ContextSnapshot) -> Vec<NamedDir> {
        snap.named.iter().map(|n| self.add_one_named(n)).collect()
    }

    fn add_one_named(&mut self, named: &NamedSnapshot) -> NamedDir {
        let mut dir = named.name.clone();
        while self.dirs.contains_key(&dir) {
            dir.insert(0, '_');
        }
        let files = named
            .ignore_file
            .as_ref()
            .map(|ignore| self_ignored(&named.entries, ignore))
            .unwrap_or_default();
        self.insert(
            &dir,
            SyncDir {
                root: Some(named.root.clone()),
                entries: named.entries.clone(),
                files,
            },
        );
        let root = named.root.as_os_str().as_encoded_bytes();
        NamedDir {
            name: named.name.clone(),
            dir,
            key: hex::encode(&Sha256::digest(root)[..16]),
        }
    }

    /// Registers (or replaces) the directory served under `name`.
    pub(crate) fn insert(&mut self, name: &str, dir: SyncDir) {
        self.dirs.insert(name.to_string(), dir);
    }

    /// The directory registered under `name`.
    pub(crate) fn get(&self, name: &str) -> Option<&SyncDir> {
        self.dirs.get(name)
    }
}

/// The ignore file as an in-memory `.dockerignore` when it ignores itself: it is then not part of
/// what COPY sees, but the frontend still reads it (with the bytes the snapshot applied).
fn self_ignored(entries: &[Entry], ignore: &IgnoreFile) -> Vec<VirtualFile> {
    if entries.iter().any(|e| e.path == IGNORE_NAME) {
        return Vec::new();
    }
    vec![VirtualFile {
        path: IGNORE_NAME.to_string(),
        contents: ignore.contents.clone(),
    }]
}

/// The session's `X-Docker-Expose-Session-Sharedkey`.
///
/// BuildKit keeps each directory it received under `dir name + ":" + this key`
/// and, next time, asks only for files whose metadata changed against that
/// copy. So the key must stay the same from one build of an image to the next
/// (a random per-build key, as before, meant a full transfer every time), and
/// differ between builds that select different files from the same directory:
/// two Dockerfiles on one monorepo context name different paths, and with one
/// shared key each build would receive a diff against the other's selection
/// (and two builds running at once cannot reuse the same copy at all, so one
/// of them starts from nothing). Hence (daemon address, context root,
/// Dockerfile identity): the Dockerfile's absolute path, or for inline text
/// its digest (inline text has no other identity; an edit then costs one full
/// transfer). The docker CLI keys on the context directory plus a per-machine
/// random id; two machines sharing a daemon and a path would only lose the
/// reuse, never correctness, because BuildKit still compares metadata.
pub(crate) fn shared_key(daemon: &str, snap: &ContextSnapshot) -> String {
    let identity = match &snap.dockerfile_path {
        Some(p) => format!("path:{}", p.display()),
        None => format!(
            "inline:{}",
            hex::encode(Sha256::digest(snap.dockerfile_contents.as_slice()))
        ),
    };
    let text = format!("imagebuild\n{daemon}\n{}\n{identity}", snap.root.display());
    hex::encode(Sha256::digest(text.as_bytes()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::context::IgnoreFile;

    fn snap(
        dockerfile: Option<&str>,
        ignore: Option<&str>,
        entries: Vec<Entry>,
    ) -> ContextSnapshot {
        ContextSnapshot {
            hash: "0".repeat(64),
            files: 0,
            bytes: 0,
            root: "/ctx".into(),
            legacy_hash: "1".repeat(64),
            used: Arc::new(entries.clone()),
            reads: crate::context::ContextReads::whole("test"),
            named: Vec::new(),
            entries: Arc::new(entries),
            dockerfile_contents: Arc::new(b"FROM x\n".to_vec()),
            dockerfile_in_context: None,
            dockerfile_path: dockerfile.map(PathBuf::from),
            ignore_file: ignore.map(|p| IgnoreFile {
                path: p.into(),
                contents: Arc::new(b"*.log\n".to_vec()),
            }),
        }
    }

    fn names(dir: &SyncDir) -> Vec<String> {
        dir.select(&TransferFilter::default())
            .unwrap()
            .into_iter()
            .map(|(e, _)| e.path)
            .collect()
    }

    #[test]
    fn inline_dockerfile_and_self_ignored_dockerignore() {
        let (dirs, name) =
            SyncDirs::for_snapshot(&snap(None, Some("/ctx/.dockerignore"), vec![]), None);
        assert_eq!(name, "Dockerfile");
        assert_eq!(names(dirs.get(DOCKERFILE_DIR).unwrap()), ["Dockerfile"]);
        assert_eq!(names(dirs.get(CONTEXT_DIR).unwrap()), [".dockerignore"]);
    }

    #[test]
    fn dockerfile_specific_ignore_file_lives_next_to_the_dockerfile() {
        let (dirs, name) = SyncDirs::for_snapshot(
            &snap(
                Some("/elsewhere/app.Dockerfile"),
                Some("/elsewhere/app.Dockerfile.dockerignore"),
                vec![],
            ),
            None,
        );
        assert_eq!(name, "app.Dockerfile");
        let dockerfile = dirs.get(DOCKERFILE_DIR).unwrap();
        assert_eq!(
            names(dockerfile),
            ["app.Dockerfile", "app.Dockerfile.dockerignore"]
        );
        assert!(names(dirs.get(CONTEXT_DIR).unwrap()).is_empty());
        let filter = TransferFilter {
            follow_paths: vec!["app.Dockerfile".into()],
            ..Default::default()
        };
        let got = dockerfile.select(&filter).unwrap();
        assert_eq!(got.len(), 1);
        assert_eq!(
            got[0].1.as_deref().map(Vec::as_slice),
            Some(&b"FROM x\n"[..])
        );
    }

    fn named(name: &str, root: &str, ignore: Option<&str>, entries: Vec<Entry>) -> NamedSnapshot {
        NamedSnapshot {
            name: name.into(),
            root: root.into(),
            used: Arc::new(entries.clone()),
            entries: Arc::new(entries),
            reads: crate::context::ContextReads::whole("test"),
            ignore_file: ignore.map(|text| IgnoreFile {
                path: PathBuf::from(root).join(".dockerignore"),
                contents: Arc::new(text.as_bytes().to_vec()),
            }),
        }
    }

    fn file(path: &str) -> Entry {
        Entry {
            path: path.into(),
            kind: EntryKind::File {
                exec: false,
                size: 1,
                digest: [0; 32],
            },
        }
    }

    #[test]
    fn named_directories_are_served_under_their_names_with_their_ignore_files() {
        let mut s = snap(None, None, vec![]);
        s.named = vec![
            named("context", "/other", None, vec![file("x")]),
            named("shared", "/shared", Some("*.log\n.dockerignore\n"), vec![]),
            named(
                "visible",
                "/visible",
                Some("*.log\n"),
                vec![file(".dockerignore")],
            ),
        ];
        let (mut dirs, _) = SyncDirs::for_snapshot(&s, None);
        let served = dirs.add_named(&s);
        let pairs: Vec<(&str, &str)> = served
            .iter()
            .map(|n| (n.name.as_str(), n.dir.as_str()))
            .collect();
        // `context` is the main context's: the named one gets another directory name.
        assert_eq!(
            pairs,
            [
                ("context", "_context"),
                ("shared", "shared"),
                ("visible", "visible")
            ]
        );
        let other = dirs.get("_context").unwrap();
        assert_eq!(other.root.as_deref(), Some(std::path::Path::new("/other")));
        assert!(dirs.get(CONTEXT_DIR).unwrap().entries.is_empty());
        // A self-ignored ignore file is served from the snapshot's bytes...
        let shared = dirs.get("shared").unwrap();
        assert_eq!(shared.files.len(), 1);
        assert_eq!(shared.files[0].path, ".dockerignore");
        assert_eq!(
            shared.files[0].contents.as_slice(),
            b"*.log\n.dockerignore\n"
        );
        // ...one that COPY sees is an entry, served (and checked) from disk.
        assert!(dirs.get("visible").unwrap().files.is_empty());
        // Each root keeps its own copy on the daemon.
        assert_ne!(served[1].key, served[2].key);
        assert_eq!(served[1].key, dirs.clone().add_named(&s)[1].key);
    }

    #[test]
    fn shared_key_is_stable_and_per_dockerfile() {
        let a = snap(Some("/ctx/a.Dockerfile"), None, vec![]);
        let b = snap(Some("/ctx/b.Dockerfile"), None, vec![]);
        assert_eq!(shared_key("unix:///x", &a), shared_key("unix:///x", &a));
        assert_ne!(shared_key("unix:///x", &a), shared_key("unix:///x", &b));
        assert_ne!(shared_key("unix:///x", &a), shared_key("tcp://h:1", &a));
        assert_eq!(shared_key("unix:///x", &a).len(), 64);
    }
}
