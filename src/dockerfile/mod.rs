//! Dockerfile analysis: what a build can read from its main and named contexts, and which
//! images its reachable stages use, parsed the way BuildKit's Dockerfile frontend parses.
//!
//! Pure: no Docker, no I/O. The answer is never smaller than what BuildKit (the current
//! frontend, and the older one in Engine 20.10) can read; whatever cannot be known
//! statically makes the context `Whole` with the reason:
//!
//! - a COPY/ADD source or bind-mount source that is the context root (`.`, `/`, `..`, or a
//!   variable expanding to nothing), a bind mount without `source=`, a tmpfs mount
//!   without `from=`;
//! - a source, mount source or mount type using a variable no ARG/ENV of the stage sets
//!   while the stage is built on an image or named context (its ENV may set it), or one
//!   the two frontends would expand differently (`ARG A=1 B=$A`, `ARG TARGETSTAGE`);
//! - a reachable stage built on a stage with ONBUILD instructions (main and every named
//!   context);
//! - a `# syntax=` directive (or BUILDKIT_SYNTAX build arg) other than Dockerfile 1.x
//!   (main and every named context);
//! - for a named context: `FROM <it>`, a stage built on a stage it replaces, or the target
//!   stage being replaced by it.

mod analysis;
mod env;
mod error;
mod flags;
mod health;
mod instructions;
mod lexer;
mod mount;
mod nodes;
mod pattern;
mod pin;
mod platform;
mod reads;
mod reference;
mod shell;
mod stages;
mod syntax;
mod text;

#[cfg(test)]
mod tests;
#[cfg(test)]
mod tests_fuzz;
#[cfg(test)]
mod tests_reference;

use std::collections::{BTreeMap, BTreeSet};

pub use error::DockerfileError;
pub use pin::pin_from_images;

/// The build inputs that change what a Dockerfile reads.
#[derive(Debug, Clone, Copy)]
pub struct BuildFacts<'a> {
    /// `--build-arg` values.
    pub build_args: &'a BTreeMap<String, String>,
    /// Target stage; `None` builds the last stage.
    pub target: Option<&'a str>,
    /// TARGETPLATFORM, e.g. `linux/arm64`.
    pub platform: &'a str,
    /// BUILDPLATFORM, e.g. `linux/amd64`.
    pub build_platform: &'a str,
    /// Names the user gave in `contexts` (named build contexts).
    pub named_contexts: &'a BTreeSet<String>,
}

/// What a build reads and uses.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Analysis {
    /// Reads from the main build context.
    pub main: Reads,
    /// Reads per named context, for the named contexts reachable stages read.
    pub named: BTreeMap<String, Reads>,
    /// Images reachable stages use (not stages, not named contexts, not scratch), in line
    /// order. An image whose config has ONBUILD triggers runs them in our build: callers
    /// that inspect images should treat the contexts as `Whole` then.
    pub images: Vec<ImageUse>,
    /// The `# syntax=` directive's value, if any.
    pub syntax: Option<String>,
}

/// What is read from one context.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reads {
    /// These paths (possibly none).
    Paths(Vec<SourcePath>),
    /// The whole context (after .dockerignore), for these reasons.
    Whole(Vec<WholeReason>),
}

/// Why a whole context is an input.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WholeReason {
    /// 1-based line of the instruction (0 = the whole file).
    pub line: usize,
    /// The instruction as written (first line, trimmed, at most 120 characters).
    pub instruction: String,
    /// Why, in words.
    pub why: String,
}

/// One source path read from a context.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct SourcePath {
    /// Relative, cleaned, without a leading `/` or `./` (BuildKit's `normalizeContextPaths`);
    /// may hold wildcards.
    pub path: String,
    /// COPY/ADD `--exclude` patterns, as BuildKit applies them (it does not expand them).
    pub excludes: Vec<String>,
    /// Which instruction reads it.
    pub kind: SourceKind,
    /// 1-based line where the instruction starts.
    pub line: usize,
    /// The instruction as written (first line, trimmed, at most 120 characters).
    pub instruction: String,
    /// False when BuildKit tolerates the path matching nothing (wildcards, and sources
    /// only the older frontend reads as paths, such as ADD of a git URL).
    pub must_exist: bool,
}

/// The kind of instruction reading a source.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum SourceKind {
    /// COPY.
    Copy,
    /// ADD.
    Add,
    /// RUN `--mount` (bind, or cache/tmpfs with a `from`): the mount's source.
    BindMount,
}

/// An image a reachable stage uses.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImageUse {
    /// The reference as written, after ARG expansion.
    pub reference: String,
    /// The fully qualified reference BuildKit resolves (`docker.io/library/alpine:latest`).
    pub normalized: String,
    /// FROM `--platform` (normalized); `None` means the target platform.
    pub platform: Option<String>,
    /// 1-based line of the instruction.
    pub line: usize,
    /// The instruction as written (first line, trimmed, at most 120 characters).
    pub instruction: String,
    /// How the image is used.
    pub kind: ImageUseKind,
}

/// How an image is used.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ImageUseKind {
    /// `FROM image`.
    From,
    /// `COPY --from=image`.
    CopyFrom,
    /// `RUN --mount=from=image`.
    MountFrom,
}

/// Analyzes Dockerfile `text` for the build described by `facts`.
pub fn analyze(text: &[u8], facts: &BuildFacts<'_>) -> Result<Analysis, DockerfileError> {
    if text.is_empty() {
        return Err(DockerfileError::new(
            0,
            "the Dockerfile cannot be empty; give it at least a FROM line",
        ));
    }
    // Invalid UTF-8 cannot name a context file (the context engine rejects such names).
    let text = String::from_utf8_lossy(text);
    let directive = syntax::detect(&text);
    let frontend = facts
        .build_args
        .get("BUILDKIT_SYNTAX")
        .cloned()
        .or_else(|| directive.clone());
    let parsed = lexer::parse(&text).and_then(instructions::build);
    if let Some(f) = frontend.filter(|f| !syntax::is_understood(f)) {
        return Ok(analysis::foreign_frontend(
            &f,
            directive,
            parsed.ok(),
            facts,
        ));
    }
    let mut result = analysis::run(&parsed?, facts)?;
    result.syntax = directive;
    Ok(result)
}
