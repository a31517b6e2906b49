//! Local engine errors: each Display is a sentence a user can act on, never holding a secret.

use super::Published;
use crate::registry::RegistryError;

/// Why a publish failed.
#[derive(Debug, thiserror::Error)]
pub enum LocalError {
    /// The Docker daemon could not be reached.
    #[error("cannot reach Docker at {host}: {detail}; is dockerd running?")]
    DaemonUnreachable {
        /// The address tried.
        host: String,
        /// Transport error.
        detail: String,
    },
    /// The daemon refused or failed an API call.
    #[error("Docker daemon at {host} failed to {what}: {detail}")]
    Daemon {
        /// The daemon address.
        host: String,
        /// The call that failed.
        what: String,
        /// The daemon's message.
        detail: String,
    },
    /// The standalone BuildKit builder could not be reached.
    #[error(
        "cannot reach the BuildKit builder at {address} (imagebuild:builder): {detail}; is \
         buildkitd running and listening there?"
    )]
    BuilderUnreachable {
        /// The configured address.
        address: String,
        /// Transport error.
        detail: String,
    },
    /// The builder refused the connection: mTLS without an accepted client certificate.
    #[error(
        "the BuildKit builder at {address} refused the connection: {detail}; it requires a client \
         certificate signed by a CA it trusts, which this one is not or none was given: set imagebuild:builderCert and imagebuild:builderKey \
         (and imagebuild:builderCaCert to the CA of its server certificate)"
    )]
    BuilderRefused {
        /// The configured address.
        address: String,
        /// The TLS or transport error.
        detail: String,
    },
    /// The builder failed a Control API call.
    #[error("the BuildKit builder at {address} failed to {what}: {detail}")]
    Builder {
        /// The configured address.
        address: String,
        /// The call that failed.
        what: String,
        /// Its message.
        detail: String,
    },
    /// The input cannot be used as given.
    #[error("{0}")]
    Invalid(String),
    /// A Dockerfile step failed.
    #[error("{}", step_failed_text(.step, .exit_code, .message, .log_tail))]
    StepFailed {
        /// The failing instruction, e.g. `[2/3] RUN make`.
        step: String,
        /// Exit code of the step's process, when known.
        exit_code: Option<i32>,
        /// Daemon's error message (secret-redacted).
        message: String,
        /// Last lines (at most 30) of the step's output, secret-redacted.
        log_tail: Vec<String>,
    },
    /// The build failed outside a step (e.g. a Dockerfile syntax error or a missing base image).
    #[error("build failed: {message}{}", tail_text(.log_tail))]
    BuildFailed {
        /// Daemon's error message (secret-redacted).
        message: String,
        /// Last log lines, secret-redacted.
        log_tail: Vec<String>,
    },
    /// The daemon cannot build for the requested platform.
    #[error(
        "the Docker daemon ({daemon}) cannot build for platform {platform}: {detail}; register an \
         emulator for it with binfmt_misc on the daemon's machine (Debian/Ubuntu: `apt-get install \
         qemu-user-static binfmt-support`; Docker Desktop has it; elsewhere: `docker run --privileged \
         --rm tonistiigi/binfmt --install all`), build on a machine of that platform, or use \
         FastContainerImage (CodeBuild has arm64 machines)"
    )]
    Platform {
        /// Requested platform.
        platform: String,
        /// The daemon's os/arch.
        daemon: String,
        /// Daemon's message.
        detail: String,
    },
    /// A registry call failed (auth, unreachable, ...).
    #[error(transparent)]
    Registry(#[from] RegistryError),
    /// The push failed after retries.
    #[error("pushing {reference} failed after {attempts} attempt(s): {detail}")]
    Push {
        /// `registry/repository:tag`.
        reference: String,
        /// Attempts made.
        attempts: u32,
        /// Last error.
        detail: String,
    },
    /// A context file differs from what the content hash was computed from.
    #[error("build context file {path} changed since the hash was computed ({detail}); run again")]
    ContextChanged {
        /// The file.
        path: String,
        /// What differs.
        detail: String,
    },
    /// BuildKit asked for context files in a way the session cannot serve.
    #[error("cannot serve the {dir:?} directory BuildKit asked for: {detail}")]
    Transfer {
        /// Directory name of the request.
        dir: String,
        /// What went wrong.
        detail: String,
    },
    /// An SSH agent to forward cannot be used.
    #[error("ssh forwarding for id {id:?}: {detail}")]
    Ssh {
        /// The ssh id (`default` unless named).
        id: String,
        /// What is wrong and how to fix it.
        detail: String,
    },
    /// The build uses named contexts, which the daemon's BuildKit cannot build.
    #[error(
        "`contexts` (named build contexts) need Docker Engine 23 or later (BuildKit 0.10+), but \
         the Docker daemon at {host} runs Engine {engine} (API {api}); upgrade Docker, or point \
         the provider's `dockerHost` at an Engine 23+ daemon"
    )]
    NamedContextsUnsupported {
        /// The daemon address.
        host: String,
        /// The engine release it reports.
        engine: String,
        /// Its API version.
        api: String,
    },
    /// The build exports a registry cache, which the daemon's BuildKit cannot.
    #[error(
        "`cacheTo` (a registry build cache) needs a daemon whose BuildKit can export caches: \
         Docker Engine 23 or later with the containerd image store, but the Docker daemon at \
         {host} runs Engine {engine}{store}; enable the containerd image store \
         (\"features\": {{\"containerd-snapshotter\": true}} in daemon.json), point the \
         provider's `dockerHost` at such a daemon, or drop `cacheTo` (pushed images still carry \
         inline cache for `cacheFrom`)"
    )]
    CacheExportUnsupported {
        /// The daemon address.
        host: String,
        /// The engine release it reports.
        engine: String,
        /// Why, beyond the version: e.g. " with the classic image store".
        store: String,
    },
    /// The caller cancelled; the build was stopped on the daemon.
    #[error("build cancelled")]
    Cancelled,
    /// The image was pushed, then a later step failed; `published` says what is in the registry.
    #[error("{source} (the image was already pushed as {})", published.image_uri.as_deref().unwrap_or("?"))]
    AfterPush {
        /// What was pushed.
        published: Box<Published>,
        /// What failed afterwards.
        source: Box<LocalError>,
    },
}

impl LocalError {
    /// What was pushed before the failure, if anything.
    pub fn pushed(&self) -> Option<&Published> {
        match self {
            LocalError::AfterPush { published, .. } => Some(published),
            _ => None,
        }
    }
}

fn tail_text(tail: &[String]) -> String {
    if tail.is_empty() {
        String::new()
    } else {
        format!("\nlast {} log line(s):\n{}", tail.len(), tail.join("\n"))
    }
}

fn step_failed_text(step: &str, code: &Option<i32>, message: &str, tail: &[String]) -> String {
    let code = code
        .map(|c| format!(" with exit code {c}"))
        .unwrap_or_default();
    format!(
        "Dockerfile step `{step}` failed{code}: {message}{}",
        tail_text(tail)
    )
}
