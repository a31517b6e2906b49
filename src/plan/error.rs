//! Why a plan could not be made; each message names the input at fault and the fix.

use crate::context::ContextError;

/// Why a build plan could not be made.
#[derive(Debug, thiserror::Error)]
pub enum PlanError {
    /// The Dockerfile does not parse the way BuildKit would accept it.
    #[error("{path}: line {line}: {message}")]
    Dockerfile {
        /// The Dockerfile path, or `dockerfileInline`.
        path: String,
        /// 1-based line (0 = the whole file).
        line: usize,
        /// What is wrong and how to fix it.
        message: String,
    },
    /// The Dockerfile file cannot be read.
    #[error("Dockerfile {path} cannot be read: {source}; set `dockerfile` to an existing file")]
    DockerfileUnreadable {
        /// The path as given.
        path: String,
        /// Underlying failure.
        source: std::io::Error,
    },
    /// The Dockerfile changed between reading it for the analysis and hashing it.
    #[error(
        "Dockerfile {path} changed while it was being read; run again once nothing writes to it"
    )]
    DockerfileChanged {
        /// The path as given.
        path: String,
    },
    /// A `contexts` entry is not usable.
    #[error("`contexts.{name}`: {reason}")]
    NamedContext {
        /// The context name.
        name: String,
        /// What is wrong and how to fix it.
        reason: String,
    },
    /// A base image does not exist for the requested platform.
    #[error("{origin}: {message}")]
    BasePlatform {
        /// The instruction that uses the image.
        origin: String,
        /// What is missing and how to fix it.
        message: String,
    },
    /// An image reference in the Dockerfile or `contexts` is malformed.
    #[error("{origin}: image reference `{reference}` is not valid: {reason}")]
    ImageReference {
        /// The instruction or input that names it.
        origin: String,
        /// The reference as written (after ARG expansion).
        reference: String,
        /// Why.
        reason: String,
    },
    /// The context engine failed (missing directory, unreadable file, missing COPY source ...).
    #[error(transparent)]
    Context(ContextError),
}

impl PlanError {
    /// The input property a Check failure should name.
    pub fn property(&self) -> String {
        match self {
            PlanError::Dockerfile { path, .. }
            | PlanError::DockerfileUnreadable { path, .. }
            | PlanError::DockerfileChanged { path } => {
                if path == "dockerfileInline" {
                    "dockerfileInline".into()
                } else {
                    "dockerfile".into()
                }
            }
            PlanError::NamedContext { name, .. } => format!("contexts.{name}"),
            PlanError::BasePlatform { .. } => "platform".into(),
            PlanError::ImageReference { origin, .. } if origin.starts_with("`contexts.") => {
                origin.trim_matches('`').to_string()
            }
            PlanError::ImageReference { .. } => "dockerfile".into(),
            PlanError::Context(_) => "context".into(),
        }
    }
}
