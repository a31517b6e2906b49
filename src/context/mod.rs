//! Build context engine: which files `COPY .` would see (Docker's .dockerignore
//! rules), a content hash of them that never goes stale, a per-hash manifest to
//! explain rebuilds, and a deterministic tar stream of exactly those files.
//! Knows nothing about Docker's API or gRPC.

mod archive;
mod cli;
mod digest;
mod error;
mod followlinks;
mod goclean;
mod gomatch;
mod hashfmt;
mod ignorefile;
mod manifest;
mod matcher;
mod pattern;
mod snapshot;
mod statcache;
mod transfer;
mod walk;

use std::path::{Path, PathBuf};
use std::sync::Arc;

pub use archive::tar_stream;
pub use cli::run_cli;
pub use error::ContextError;
pub use manifest::explain;
pub use snapshot::{snapshot, snapshot_async, snapshot_with};
pub(crate) use transfer::transfer_set_virtual;
pub use transfer::{fsutil_order, transfer_set, TransferFilter};

/// Where the Dockerfile comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DockerfileSource {
    /// A file; absolute, or relative to the current directory (like `docker build -f`).
    Path(PathBuf),
    /// Dockerfile text given directly.
    Inline(String),
}

/// What to snapshot.
#[derive(Debug, Clone)]
pub struct ContextRequest {
    /// The build context directory.
    pub dir: PathBuf,
    /// The Dockerfile; its content enters the hash wherever it lives.
    pub dockerfile: DockerfileSource,
    /// Further inputs that must change the hash (build args, platform, ...), as (name, value).
    pub extra_inputs: Vec<(String, String)>,
    /// Stat cache and manifest directory; `None` means [`default_cache_dir`].
    pub cache_dir: Option<PathBuf>,
}

/// What a context entry is, as far as the hash and the archive care.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EntryKind {
    /// Regular file: only the owner-executable bit of its mode is kept.
    File {
        /// Owner-executable bit.
        exec: bool,
        /// Size in bytes (of the content that was hashed).
        size: u64,
        /// SHA-256 of the content.
        digest: [u8; 32],
    },
    /// Directory.
    Dir,
    /// Symbolic link, recorded (never followed) with its target text.
    Symlink {
        /// Link target exactly as stored in the link.
        target: String,
    },
}

/// One path of the build context.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    /// Relative, `/`-separated path without a leading `./`.
    pub path: String,
    /// What the path is.
    pub kind: EntryKind,
}

/// The result of snapshotting a context.
#[derive(Debug, Clone)]
pub struct ContextSnapshot {
    /// 64 lowercase hex characters; equal trees give equal hashes on any machine.
    pub hash: String,
    /// Number of regular files.
    pub files: u64,
    /// Total size of the regular files.
    pub bytes: u64,
    /// Canonical context directory.
    pub root: PathBuf,
    /// Sorted by path; exactly what `COPY . /dest` sees (directories included).
    pub entries: Arc<Vec<Entry>>,
    /// The Dockerfile's bytes.
    pub dockerfile_contents: Arc<Vec<u8>>,
    /// The Dockerfile's path relative to `root` when it is inside the context and included.
    pub dockerfile_in_context: Option<String>,
    /// The Dockerfile's absolute path when it is a file (None when inline).
    pub dockerfile_path: Option<PathBuf>,
    /// The ignore file the rules were read from, with the bytes read (None when there is none).
    pub ignore_file: Option<IgnoreFile>,
}

/// An ignore file as the snapshot read it: a build must apply exactly these rules.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IgnoreFile {
    /// Absolute path: `<Dockerfile>.dockerignore` or `<context>/.dockerignore`.
    pub path: PathBuf,
    /// Its bytes at snapshot time.
    pub contents: Arc<Vec<u8>>,
}

/// Answer to "why did this context's hash change?".
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Explanation {
    /// Paths added, removed and changed since the old hash; the Dockerfile and
    /// extra inputs appear in `changed` as `(dockerfile)` and `(input) NAME`.
    Changes {
        /// Paths present now but not then.
        added: Vec<String>,
        /// Paths present then but not now.
        removed: Vec<String>,
        /// Paths present in both whose content, kind, exec bit or link target differ.
        changed: Vec<String>,
    },
    /// The old hash's manifest is not in the cache (pruned, other machine, other cache dir).
    OldManifestMissing,
}

/// A file added to an archive that is not in the context (e.g. an inline Dockerfile).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExtraFile {
    /// Relative, `/`-separated path inside the archive.
    pub path: String,
    /// File content.
    pub contents: Vec<u8>,
    /// Whether to mark it executable (0755 instead of 0644).
    pub exec: bool,
}

/// Which Docker release's .dockerignore algorithm to reproduce.
///
/// They differ in corner cases only (see `matcher.rs`), but "exactly what
/// Docker sends" depends on the release, so both are implemented.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Dialect {
    /// Docker Engine/CLI 20.10 with BuildKit, checked file by file against the
    /// real engine by `tests/context_oracle.rs`.
    Docker20,
    /// Current BuildKit (moby/patternmatcher, fsutil), i.e. Docker 23 and later: the default,
    /// because it is what users' Docker does today (and it honours `<Dockerfile>.dockerignore`).
    #[default]
    BuildKit,
}

/// Options of [`snapshot_with`] beyond the contract's request.
#[derive(Debug, Clone, Copy, Default)]
pub struct SnapshotOptions {
    /// Which .dockerignore algorithm to apply.
    pub dialect: Dialect,
}

/// `$IMAGEBUILD_CACHE_DIR`, else `$XDG_CACHE_HOME/imagebuild`, else `~/.cache/imagebuild`.
pub fn default_cache_dir() -> PathBuf {
    let var = |name: &str| {
        std::env::var_os(name)
            .filter(|v| !v.is_empty())
            .map(PathBuf::from)
    };
    if let Some(dir) = var("IMAGEBUILD_CACHE_DIR") {
        return dir;
    }
    if let Some(dir) = var("XDG_CACHE_HOME").filter(|d| d.is_absolute()) {
        return dir.join("imagebuild");
    }
    if let Some(home) = var("HOME") {
        return home.join(".cache").join("imagebuild");
    }
    std::env::temp_dir().join("imagebuild-cache")
}

/// The cache directory a request uses.
fn cache_dir_of(explicit: Option<&Path>) -> PathBuf {
    explicit
        .map(Path::to_path_buf)
        .unwrap_or_else(default_cache_dir)
}
