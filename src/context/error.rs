//! Errors of the context engine. Each message names the path or input at
//! fault and says what the user can do about it.

use std::path::PathBuf;

/// Why a build context could not be snapshotted.
#[derive(Debug, thiserror::Error)]
pub enum ContextError {
    /// The context directory is missing or unreadable.
    #[error("build context directory {path} cannot be used: {source}; point the context at an existing, readable directory")]
    ContextDir {
        /// Directory as given.
        path: PathBuf,
        /// Underlying failure.
        source: std::io::Error,
    },
    /// The context path exists but is not a directory.
    #[error("build context {path} is not a directory; point the context at a directory")]
    NotADirectory {
        /// Path as given.
        path: PathBuf,
    },
    /// The Dockerfile cannot be read.
    #[error("Dockerfile {path} cannot be read: {source}; check the dockerfile setting (relative paths are resolved from the current directory)")]
    Dockerfile {
        /// Resolved Dockerfile path.
        path: PathBuf,
        /// Underlying failure.
        source: std::io::Error,
    },
    /// A .dockerignore file exists but cannot be read or decoded.
    #[error("ignore file {path} cannot be read: {reason}; fix the file or its permissions")]
    IgnoreFile {
        /// Ignore file path.
        path: PathBuf,
        /// What went wrong.
        reason: String,
    },
    /// A pattern Docker would reject.
    #[error("invalid pattern {pattern:?} in {path}: {reason}; fix or remove that line (Docker rejects it too)")]
    BadPattern {
        /// Ignore file path.
        path: PathBuf,
        /// The offending line, as cleaned.
        pattern: String,
        /// What is wrong with it.
        reason: String,
    },
    /// A pattern the builder sent with a file-sync request cannot be used.
    #[error("invalid pattern {pattern:?} in the {list} the builder requested: {reason}; check the Dockerfile's COPY/ADD sources and the .dockerignore")]
    BadTransferPattern {
        /// Which request list held it (`include-patterns`, `exclude-patterns`).
        list: &'static str,
        /// The offending pattern.
        pattern: String,
        /// What is wrong with it.
        reason: String,
    },
    /// A file or directory in the context cannot be read.
    #[error("cannot read {path} in the build context: {source}; fix its permissions or exclude it in .dockerignore")]
    Unreadable {
        /// Absolute path of the entry.
        path: PathBuf,
        /// Underlying failure.
        source: std::io::Error,
    },
    /// A name that cannot be represented in the context (not UTF-8).
    #[error("{path} in the build context has a name that is not valid UTF-8; rename it or exclude it in .dockerignore")]
    NonUtf8Path {
        /// Absolute path (lossily printed).
        path: PathBuf,
    },
    /// A file kept changing while it was hashed.
    #[error("{path} changed while it was being hashed; retry once nothing is writing to the build context")]
    Changed {
        /// Absolute path of the file.
        path: PathBuf,
    },
    /// A path the build reads (a COPY/ADD source or bind mount) is not in the context.
    #[error("{origin}: `{path}` {why}")]
    MissingSource {
        /// The instruction, e.g. `line 7: COPY src/ /app/`.
        origin: String,
        /// The path as the instruction names it.
        path: String,
        /// Why it is missing and what to do.
        why: String,
    },
    /// The blocking hashing task died (panic or runtime shutdown).
    #[error("build context hashing task failed: {0}")]
    Task(String),
}
