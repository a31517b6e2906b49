//! Build context engine: which files `COPY .` would see (Docker's .dockerignore
//! rules), which of them a build can read (the paths the Dockerfile names, given
//! by the caller as [`ContextReads`]), a content hash of exactly those that never
//! goes stale, a per-hash manifest to explain rebuilds, and a deterministic tar
//! stream of the files the hash covers. Knows nothing about Docker's API, the
//! Dockerfile grammar or gRPC.

mod archive;
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
mod select;
mod snapshot;
mod statcache;
mod transfer;
mod tree;
mod walk;

use std::path::{Path, PathBuf};
use std::sync::Arc;

pub use archive::{
    named_archive_dirs, named_archive_root, tar_stream, tar_stream_with_named, NAMED_ARCHIVE_ROOT,
};
pub use error::ContextError;
pub use hashfmt::is_context_hash;
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
    /// These are the inputs hash format 1 knew; see `pins` for the newer ones.
    pub extra_inputs: Vec<(String, String)>,
    /// Inputs that only the current hash format covers (base image digests, image contexts).
    pub pins: Vec<(String, String)>,
    /// Stat cache and manifest directory; `None` means [`default_cache_dir`].
    pub cache_dir: Option<PathBuf>,
    /// What the build can read from `dir`.
    pub reads: ContextReads,
    /// Further local directories the build reads by name (`--build-context name=dir`).
    pub named: Vec<NamedRequest>,
}

impl ContextRequest {
    /// A request for `dir` and `dockerfile` that treats the whole context as read, with no
    /// further inputs and the default cache directory.
    pub fn new(dir: impl Into<PathBuf>, dockerfile: DockerfileSource) -> Self {
        ContextRequest {
            dir: dir.into(),
            dockerfile,
            extra_inputs: Vec::new(),
            pins: Vec::new(),
            cache_dir: None,
            reads: ContextReads::whole("no Dockerfile analysis was asked for"),
            named: Vec::new(),
        }
    }
}

/// A named local directory context.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NamedRequest {
    /// The name the Dockerfile uses (`FROM name`, `COPY --from=name`).
    pub name: String,
    /// The directory; its own `.dockerignore` applies.
    pub dir: PathBuf,
    /// What the build reads from it.
    pub reads: ContextReads,
}

/// Which paths of a context a build can read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ContextReads {
    /// Everything `.dockerignore` keeps, for these reasons (e.g. "line 3: COPY . /app").
    Whole(Vec<String>),
    /// Only these paths (and what lies below them), with fsutil's follow-path semantics:
    /// symlinks on the way are followed, wildcards match one path component.
    Paths(Vec<ReadPath>),
}

impl ContextReads {
    /// The whole context, for one reason.
    pub fn whole(reason: impl Into<String>) -> Self {
        ContextReads::Whole(vec![reason.into()])
    }
}

/// One path a build reads from a context (a COPY/ADD source or a bind mount source).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReadPath {
    /// Relative, cleaned, `/`-separated; may hold `*`, `?` and `[...]` wildcards.
    pub path: String,
    /// Patterns excluded from what this source copies (COPY --exclude), relative to the context.
    pub excludes: Vec<String>,
    /// Whether the build fails when nothing matches (true for paths without wildcards).
    pub must_exist: bool,
    /// Where the read comes from, for messages: e.g. `line 7: COPY src/ /app/`.
    pub origin: String,
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
    /// 64 lowercase hex characters; equal inputs give equal hashes on any machine.
    pub hash: String,
    /// The hash that format 1 (every file `.dockerignore` keeps, no pins) gives for the same
    /// files and inputs: lets an upgraded provider recognise images hashed by an older one.
    pub legacy_hash: String,
    /// Number of regular files the build can read (in `used`).
    pub files: u64,
    /// Total size of those files.
    pub bytes: u64,
    /// Canonical context directory.
    pub root: PathBuf,
    /// Sorted by path; exactly what `COPY . /dest` sees (directories included).
    pub entries: Arc<Vec<Entry>>,
    /// The entries the build can read (a subset of `entries`, sorted): what the hash covers.
    pub used: Arc<Vec<Entry>>,
    /// What the build was said to read, as given in the request.
    pub reads: ContextReads,
    /// The ignore file whose rules were applied, when one exists, with the bytes read.
    pub ignore_file: Option<IgnoreFile>,
    /// The Dockerfile's bytes.
    pub dockerfile_contents: Arc<Vec<u8>>,
    /// The Dockerfile's absolute path when it is a file (None when inline).
    pub dockerfile_path: Option<PathBuf>,
    /// The Dockerfile's path relative to `root` when it is one of the `used` entries.
    pub dockerfile_in_context: Option<String>,
    /// Named local directory contexts, sorted by name.
    pub named: Vec<NamedSnapshot>,
}

/// A snapshot of one named local directory context.
#[derive(Debug, Clone)]
pub struct NamedSnapshot {
    /// The name the Dockerfile uses.
    pub name: String,
    /// Canonical directory.
    pub root: PathBuf,
    /// Everything its `.dockerignore` keeps.
    pub entries: Arc<Vec<Entry>>,
    /// What the build can read from it.
    pub used: Arc<Vec<Entry>>,
    /// What the build was said to read.
    pub reads: ContextReads,
    /// Its ignore file, when one exists.
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
