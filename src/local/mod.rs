//! Local builds through the Docker Engine API (BuildKit with our own session, classic fallback) or on a
//! standalone BuildKit daemon: bounded parallelism, progress events, tag and push with a verified
//! registry digest.
//!
//! Behaviour the caller can rely on:
//! - `publish` with `push = true` first HEADs `repository:hash_tag`; if present it adopts (no daemon
//!   call at all, extra tags are pointed at the same manifest registry-side), else it builds. This
//!   also checks the credentials before any build (a wrong password fails fast).
//! - A build slot is held from `Started` to `Built` (build and local tags), so those spans never
//!   exceed `max_parallel_builds`; the push then runs under its own bound (`PushStarted`..`Done`
//!   spans never exceed `max_parallel_pushes`), so a slow upload does not keep the next build waiting.
//! - `BuildSpec.ssh` forwards SSH agents like `docker build --ssh` (agent sockets only, read-only:
//!   listing and signing); a missing socket fails before any build starts.
//! - `Published.tags` are full references (`registry/repo:tag`), hash tag first.
//! - Secrets travel only through the BuildKit session; every emitted line and error is redacted.
//! - BuildKit builds serve the context over the session as the docker CLI does (`remote=client-session`):
//!   BuildKit asks for the `context` and `dockerfile` directories with the Dockerfile's paths and the
//!   .dockerignore patterns, and only for files whose metadata changed since its previous copy (kept
//!   under a shared key per daemon, context and Dockerfile). Nothing is added to the context; every
//!   file sent is checked against the snapshot's digest, and a changed file fails the build naming it.
//!   `Published.transfers` records every request, `context_bytes_sent` what was sent.
//! - The classic builder gets a tar body: the Dockerfile at its own path when it is part of the context,
//!   otherwise as `.imagebuild.Dockerfile`, which `COPY . /x` then also copies (see `dockerfile_in_tar`).
//! - `IMAGEBUILD_LOCAL_BUILDER=classic` forces the classic builder.
//! - With `LocalConfig.builder` set, builds go to that standalone BuildKit daemon instead of the Docker
//!   daemon (`buildkitd`): the same adopt check, session, frontend attributes and progress, the session
//!   carried on the builder's `Control.Session` stream, BuildKit's image exporter pushing every tag
//!   inside the solve (so the push holds the build slot), the digest read back from the registry.

mod api;
mod builder;
mod buildkitd;
mod buildkitd_addr;
mod context_body;
mod control;
mod control_conn;
mod control_request;
mod daemon;
mod engine;
mod engine_build;
mod engine_control;
mod engine_push;
mod error;
mod filesync;
mod fsstat;
mod image;
mod limiter;
mod progress;
mod push;
mod session;
mod session_pipe;
mod ssh;
mod syncdirs;
mod transferlog;
mod types;

pub use crate::context::{tar_stream, ContextSnapshot, Entry, EntryKind, ExtraFile};

pub use context_body::{dockerfile_in_tar, dockerfile_in_tar_with, INJECTED_DOCKERFILE};
pub use daemon::DEFAULT_DOCKER_HOST;
pub use engine::{default_parallelism, LocalEngine, DEFAULT_PARALLEL_PUSHES};
pub use error::LocalError;
pub use image::{local_image, LocalImage};
pub use limiter::{Limiter, Permit};
pub use types::{
    BuildSpec, BuilderConfig, CacheMode, CacheTo, LocalConfig, ProgressEvent, PublishSpec,
    Published, SshSpec, TransferRequest,
};

/// Test hook: pushes the existing local image `name:tag` with `creds`, bypassing the registry
/// pre-checks (exercises the daemon's in-stream auth errors).
#[doc(hidden)]
pub async fn push_existing(
    docker_host: Option<&str>,
    name: &crate::registry::ImageName,
    tag: &str,
    creds: &crate::registry::ResolvedCredentials,
) -> Result<(), LocalError> {
    let (tx, _rx) = tokio::sync::mpsc::unbounded_channel();
    push_existing_with_progress(docker_host, name, tag, creds, tx).await
}

/// Test hook: `push_existing` that reports progress (retries show up as Log events).
#[doc(hidden)]
pub async fn push_existing_with_progress(
    docker_host: Option<&str>,
    name: &crate::registry::ImageName,
    tag: &str,
    creds: &crate::registry::ResolvedCredentials,
    progress: tokio::sync::mpsc::UnboundedSender<ProgressEvent>,
) -> Result<(), LocalError> {
    let addr = daemon::DaemonAddr::resolve(docker_host)?;
    let version = api::version(&addr).await?;
    let redactor = crate::redact::Redactor::new(creds.credentials.iter().map(|c| &c.password));
    push::push(
        &addr,
        &version.prefix(),
        name,
        tag,
        creds,
        &redactor,
        &progress,
        &tokio_util::sync::CancellationToken::new(),
    )
    .await
    .map(|_| ())
}
