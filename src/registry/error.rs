//! Registry errors: each Display is a sentence naming the registry and what to do, never a secret.

/// What went wrong talking to a registry.
#[derive(Debug, thiserror::Error)]
pub enum RegistryError {
    /// The image name could not be parsed.
    #[error("invalid image name {input:?}: {reason}")]
    InvalidName {
        /// The name as given.
        input: String,
        /// Why it was rejected.
        reason: String,
    },
    /// The registry refused the credentials that were tried.
    #[error(
        "registry {registry} refused access with {source_tried} ({detail}); \
         check the username/password or token for {registry}"
    )]
    Auth {
        /// host[:port] of the registry.
        registry: String,
        /// Where the credentials came from (never the secret itself).
        source_tried: String,
        /// Registry's answer, secret-free.
        detail: String,
    },
    /// The registry could not be reached at all.
    #[error("cannot reach registry {registry} ({url}): {detail}")]
    Unreachable {
        /// host[:port] of the registry.
        registry: String,
        /// URL that was requested.
        url: String,
        /// Transport error.
        detail: String,
    },
    /// The registry answered with an unexpected status.
    #[error("registry {registry} answered HTTP {status} to {what}: {detail}")]
    Http {
        /// host[:port] of the registry.
        registry: String,
        /// What was being done.
        what: String,
        /// HTTP status code.
        status: u16,
        /// Body excerpt.
        detail: String,
    },
    /// ECR GetAuthorizationToken failed.
    #[error(
        "cannot get an ECR token for {registry} (region {region}): {detail}; \
         check the AWS credentials (environment, profile or role) allowed to call ecr:GetAuthorizationToken"
    )]
    Ecr {
        /// host of the ECR registry.
        registry: String,
        /// AWS region used.
        region: String,
        /// SDK error text.
        detail: String,
    },
    /// The Docker config file could not be used.
    #[error("cannot use Docker config {path}: {detail}")]
    DockerConfig {
        /// Path of config.json.
        path: String,
        /// Parse or helper error.
        detail: String,
    },
    /// The registry served something that is not what was asked for (wrong digest, unreadable JSON).
    #[error("registry {registry} served unusable content for {what}: {detail}")]
    BadContent {
        /// host[:port] of the registry.
        registry: String,
        /// What was being read.
        what: String,
        /// What is wrong with it.
        detail: String,
    },
    /// An image index has no entry for the requested platform.
    #[error(
        "image {reference} has no {platform} variant in registry {registry} (it offers: {}); \
         set the platform to one of those, or push a {platform} image under that reference",
        if .offered.is_empty() { "nothing".to_string() } else { .offered.join(", ") }
    )]
    NoPlatform {
        /// host[:port] of the registry.
        registry: String,
        /// The image reference.
        reference: String,
        /// The platform asked for.
        platform: String,
        /// Platforms the index offers.
        offered: Vec<String>,
    },
}

impl RegistryError {
    /// True when retrying later may succeed (network trouble, 5xx, 429).
    pub fn is_transient(&self) -> bool {
        match self {
            RegistryError::Unreachable { .. } => true,
            RegistryError::Http { status, .. } => *status >= 500 || *status == 429,
            _ => false,
        }
    }
}
