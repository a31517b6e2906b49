//! Remote builds on AWS CodeBuild: context archive to S3, buildspec, start, wait (phases, logs), stop, status.
//!
//! The resource drives it in steps, each usable alone:
//! 1. [`ecr_tag_digest`] (or the registry module for other registries): adopt when the hash tag exists;
//! 2. [`upload_context`] with `context::tar_stream_with_named(&snapshot, extra, true)` as the body
//!    (named local contexts under `.imagebuild-contexts/<i>/`): content-addressed key, skipped when present;
//! 3. [`start_build`] with a [`RemoteBuildSpec`]: returns at once with the build id;
//! 4. [`wait_build`] (wait=true) or later [`build_status`] (refresh of wait=false).
//!
//! No gRPC and no Pulumi types here; errors are [`RemoteError`] sentences naming action and resource.

mod buildspec;
mod clients;
mod ecr;
mod error;
mod logs;
mod project;
mod spec;
mod start;
mod status;
mod upload;
mod wait;

pub use buildspec::render as render_buildspec;
pub use clients::{AwsEndpoints, RemoteClients};
pub use ecr::ecr_tag_digest;
pub use error::{BuildFailure, RemoteError};
pub use project::{ensure_project, managed_project_name};
pub use spec::{
    ProjectChoice, RemoteBuildSpec, RemoteContextSource, RemoteNamedContext, RemoteSecret,
    SecretKind,
};
pub use start::{idempotency_token, start_build, StartedBuild};
pub use status::{build_status, console_logs_url, BuildState, BuildStatus, FailedPhase};
pub use upload::{existing_object, upload_context, UploadOptions, UploadOutcome, UploadTarget};
pub use wait::{stop, wait_build, FinishedBuild, RemoteProgress, WaitOptions};
