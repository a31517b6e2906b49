//! PROVISIONAL types (the `dockerfile` branch brings the real parser): the binding API only.

use std::collections::{BTreeMap, BTreeSet};

/// Facts about the build the analysis depends on.
pub struct BuildFacts<'a> {
    /// Build args.
    pub build_args: &'a BTreeMap<String, String>,
    /// Target stage; None = last.
    pub target: Option<&'a str>,
    /// TARGETPLATFORM.
    pub platform: &'a str,
    /// BUILDPLATFORM.
    pub build_platform: &'a str,
    /// Names given in `contexts`.
    pub named_contexts: &'a BTreeSet<String>,
}

/// What a Dockerfile reads.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Analysis {
    /// Reads from the main context.
    pub main: Reads,
    /// Reads per named context.
    pub named: BTreeMap<String, Reads>,
    /// Images used.
    pub images: Vec<ImageUse>,
    /// `# syntax=`.
    pub syntax: Option<String>,
}

/// Reads from one context.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reads {
    /// These paths.
    Paths(Vec<SourcePath>),
    /// Everything.
    Whole(Vec<WholeReason>),
}

/// Why everything.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WholeReason {
    /// Line.
    pub line: usize,
    /// Instruction.
    pub instruction: String,
    /// Why.
    pub why: String,
}

/// A source path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SourcePath {
    /// Path.
    pub path: String,
    /// Excludes.
    pub excludes: Vec<String>,
    /// Kind.
    pub kind: SourceKind,
    /// Line.
    pub line: usize,
    /// Instruction.
    pub instruction: String,
    /// Must exist.
    pub must_exist: bool,
}

/// Source kinds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SourceKind {
    /// COPY.
    Copy,
    /// ADD.
    Add,
    /// RUN --mount=type=bind.
    BindMount,
}

/// An image use.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImageUse {
    /// Reference.
    pub reference: String,
    /// Platform.
    pub platform: Option<String>,
    /// Line.
    pub line: usize,
    /// Instruction.
    pub instruction: String,
    /// Kind.
    pub kind: ImageUseKind,
}

/// Image use kinds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ImageUseKind {
    /// FROM.
    From,
    /// COPY --from.
    CopyFrom,
    /// RUN --mount from.
    MountFrom,
}

/// A parse error.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DockerfileError {
    /// Line (0 = whole file).
    pub line: usize,
    /// Message.
    pub message: String,
}

impl std::fmt::Display for DockerfileError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "line {}: {}", self.line, self.message)
    }
}

impl std::error::Error for DockerfileError {}

/// PROVISIONAL: always the whole context.
pub fn analyze(_text: &[u8], _facts: &BuildFacts<'_>) -> Result<Analysis, DockerfileError> {
    Ok(Analysis {
        main: Reads::Whole(vec![WholeReason {
            line: 0,
            instruction: String::new(),
            why: "provisional analysis".into(),
        }]),
        named: BTreeMap::new(),
        images: Vec::new(),
        syntax: None,
    })
}
