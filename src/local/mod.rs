//! Local builds through the Docker Engine API (BuildKit with our own session, classic fallback),
//! bounded parallelism, progress events, tag and push with a verified registry digest.

mod api;
mod builder;
mod context_body;
mod daemon;
mod engine;
mod error;
mod limiter;
mod progress;
mod push;
mod session;
mod types;

pub use crate::context::{tar_stream, ContextSnapshot, Entry, EntryKind, ExtraFile};

pub use context_body::{dockerfile_in_tar, INJECTED_DOCKERFILE};
pub use daemon::DEFAULT_DOCKER_HOST;
pub use engine::LocalEngine;
pub use error::LocalError;
pub use limiter::{Limiter, Permit};
pub use types::{BuildSpec, LocalConfig, ProgressEvent, PublishSpec, Published};

/// Test hook: pushes the existing local image `name:tag` with `creds`, bypassing the registry
/// pre-checks (exercises the daemon's in-stream auth errors).
#[doc(hidden)]
pub async fn push_existing(
    docker_host: Option<&str>,
    name: &crate::registry::ImageName,
    tag: &str,
    creds: &crate::registry::ResolvedCredentials,
) -> Result<(), LocalError> {
    let addr = daemon::DaemonAddr::resolve(docker_host)?;
    let version = api::version(&addr).await?;
    let (tx, _rx) = tokio::sync::mpsc::unbounded_channel();
    let redactor = progress::Redactor::new(creds.credentials.iter().map(|c| &c.password));
    push::push(
        &addr,
        &version.prefix(),
        name,
        tag,
        creds,
        &redactor,
        &tx,
        &tokio_util::sync::CancellationToken::new(),
    )
    .await
}
