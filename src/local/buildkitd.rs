//! Publishing on a standalone BuildKit daemon (provider setting `builder`): the Control API
//! directly (Solve with the Dockerfile frontend, Status for progress), the session carried on the
//! builder's own `Control.Session` stream with the services of the daemon path (FileSync with the
//! snapshot's files, secrets, registry credentials, SSH), and BuildKit's image exporter pushing
//! `repository:hash` and every extra tag. The digest is then read back from the registry, as on the
//! daemon path. The exporter pushes inside the solve, so a builder's push holds its build slot.
//! Cancelling drops the connection, which cancels the solve on the builder.

use std::collections::HashMap;
use std::sync::atomic::Ordering;
use std::time::Instant;

use bollard::moby::buildkit::v1::ListWorkersRequest;
use hyper_util::rt::TokioIo;
use tokio::sync::mpsc::UnboundedSender;
use tokio_util::sync::CancellationToken;

use super::builder::{
    map_spec_error, session_services, transfer_failure_first, BuildFailure, SessionFiles,
};
use super::buildkitd_addr::{BuilderAddr, BuilderEndpoint};
use super::control::{self, IMAGE_DIGEST_KEY};
use super::control_conn::{self, error_chain, ControlConn};
use super::control_request::builder_solve_request;
use super::engine::{now, LocalEngine};
use super::engine_build::session_files;
use super::progress::Tracker;
use super::ssh::SshAgents;
use super::{session, LocalError, ProgressEvent, PublishSpec, Published};
use crate::redact::Redactor;
use crate::registry::{BasicCredentials, Registry};

/// The exporter's answer naming the image's config (the image id).
const CONFIG_DIGEST_KEY: &str = "containerimage.config.digest";

/// One publish's fixed inputs on a builder.
pub(super) struct OnBuilder<'a> {
    /// The builder.
    pub(super) builder: &'a BuilderAddr,
    /// The target registry (None without push).
    pub(super) registry: Option<&'a Registry>,
    /// SSH agents to forward.
    pub(super) ssh: SshAgents,
    /// Progress events.
    pub(super) progress: &'a UnboundedSender<ProgressEvent>,
    /// Cancellation.
    pub(super) cancel: &'a CancellationToken,
}

impl LocalEngine {
    /// Builds `spec` on the builder and (with `push`) pushes it there, while a build slot is held.
    pub(super) async fn publish_on_builder(
        &self,
        spec: &PublishSpec,
        on: OnBuilder<'_>,
    ) -> Result<Published, LocalError> {
        let _slot = self.build_slot(on.progress, on.cancel).await?;
        let _ = on.progress.send(ProgressEvent::Started { at: now() });
        let start = Instant::now();
        let creds = self.build_credentials(spec, on.registry).await;
        let mut tracker = Tracker::new(Redactor::new(spec.build.secrets.values()));
        let (dockerfile, files) = session_files(spec, &on.builder.display, &on.ssh, on.progress);
        let log = files.log.clone();
        let tags: Vec<String> = std::iter::once(&spec.hash_tag)
            .chain(&spec.extra_tags)
            .map(|t| spec.repository.with_tag(t))
            .collect();
        self.builds_started.fetch_add(1, Ordering::SeqCst);
        let job = Job {
            spec,
            dockerfile: &dockerfile,
            names: &tags,
            creds,
        };
        let solved = solve(on.builder, job, files, &mut tracker, on.progress, on.cancel).await;
        let exported = match transfer_failure_first(Some(&log), solved.map_err(BuildFailure::Error))
        {
            Ok(exported) => exported,
            Err(BuildFailure::Error(e)) => return Err(e),
            Err(BuildFailure::NoBuildKit(message)) => {
                return Err(LocalError::BuildFailed {
                    message,
                    log_tail: tracker.tail(),
                })
            }
        };
        let _ = on.progress.send(ProgressEvent::Built { at: now() });
        let digest = match on.registry {
            Some(reg) => Some(pushed_digest(spec, reg, &exported).await?),
            None => None,
        };
        let _ = on.progress.send(ProgressEvent::Done { at: now() });
        Ok(Published {
            image_id: exported.get(CONFIG_DIGEST_KEY).cloned().unwrap_or_default(),
            image_uri: digest.as_ref().map(|d| spec.repository.with_digest(d)),
            digest,
            tags,
            adopted: false,
            build_seconds: start.elapsed().as_secs_f64(),
            context_bytes_sent: log.bytes(),
            steps: tracker.steps(),
            pushed_bytes: 0,
            transfers: log.requests(),
        })
    }
}

/// What one solve builds and names.
struct Job<'a> {
    spec: &'a PublishSpec,
    dockerfile: &'a str,
    names: &'a [String],
    creds: std::sync::Arc<HashMap<String, BasicCredentials>>,
}

/// Runs the solve with its session; returns the exporter's answer.
async fn solve(
    builder: &BuilderAddr,
    job: Job<'_>,
    files: SessionFiles,
    tracker: &mut Tracker,
    progress: &UnboundedSender<ProgressEvent>,
    cancel: &CancellationToken,
) -> Result<HashMap<String, String>, LocalError> {
    let conn = tokio::select! {
        c = connect(builder) => c?,
        _ = cancel.cancelled() => return Err(LocalError::Cancelled),
    };
    let spec = &job.spec.build;
    let build_ref = uuid::Uuid::new_v4().simple().to_string();
    let session_id = uuid::Uuid::new_v4().simple().to_string();
    let request = builder_solve_request(
        spec,
        job.dockerfile,
        job.names,
        job.spec.push,
        &files.named.clone(),
        (&build_ref, &session_id),
    );
    let (services, shared_key) = session_services(spec, job.creds, Some(files), &session_id);
    let _session = session::start_on_builder(&conn.client, &session_id, &shared_key, services);
    let answer = control::follow(&conn, request, &build_ref, tracker, progress, cancel).await;
    // Closing the connection ends the calls on the builder (and a cancelled solve with them).
    drop(conn);
    for e in tracker.flush() {
        let _ = progress.send(e);
    }
    match answer? {
        Ok(resp) => Ok(resp.exporter_response),
        Err(status) => Err(solve_error(builder, spec, tracker, &status)),
    }
}

/// Opens the Control API and asks for the builder's workers: the first call is where a builder
/// that refuses our certificate (TLS 1.3 refuses after the handshake) or is not BuildKit shows.
async fn connect(builder: &BuilderAddr) -> Result<ControlConn, LocalError> {
    let io = builder.connect().await?;
    let conn = control_conn::over_io(TokioIo::new(io), None, "http://buildkitd")
        .await
        .map_err(|e| refused(builder, &error_chain(&e)))?;
    match conn
        .client
        .clone()
        .list_workers(ListWorkersRequest::default())
        .await
    {
        Ok(resp) if resp.get_ref().record.is_empty() => Err(LocalError::Builder {
            address: builder.display.clone(),
            what: "offer a worker".into(),
            detail: "it has no workers enabled (start buildkitd with an OCI or containerd worker)"
                .into(),
        }),
        Ok(_) => Ok(conn),
        Err(status) => {
            // The TLS alert of a refused certificate reaches the connection, not the call.
            tokio::task::yield_now().await;
            let detail = conn.closed_by().unwrap_or_else(|| error_chain(&status));
            Err(refused(builder, &detail))
        }
    }
}

/// The error for a connection the builder would not serve. A TLS builder that closes the
/// connection after the handshake, before answering anything, refused our client certificate: with
/// TLS 1.3 its alert comes after the handshake and is often lost to the write that fails first.
fn refused(builder: &BuilderAddr, detail: &str) -> LocalError {
    let lower = detail.to_ascii_lowercase();
    let tls = matches!(builder.endpoint, BuilderEndpoint::Tls { .. });
    let closed = [
        "certificate",
        "alert",
        "broken pipe",
        "connection closed",
        "reset",
    ]
    .iter()
    .any(|sign| lower.contains(sign));
    if tls && closed {
        return LocalError::BuilderRefused {
            address: builder.display.clone(),
            detail: format!("it closed the connection after the TLS handshake ({detail})"),
        };
    }
    LocalError::BuilderUnreachable {
        address: builder.display.clone(),
        detail: detail.to_string(),
    }
}

/// BuildKit's failure as the daemon path reports it; a broken connection names the builder.
fn solve_error(
    builder: &BuilderAddr,
    spec: &super::BuildSpec,
    tracker: &Tracker,
    status: &tonic14::Status,
) -> LocalError {
    let transport = std::error::Error::source(status).is_some_and(|e| e.is::<hyper::Error>());
    if transport {
        return LocalError::Builder {
            address: builder.display.clone(),
            what: "run the build".into(),
            detail: tracker.redactor().apply(&error_chain(status)),
        };
    }
    map_spec_error(spec, tracker, &tracker.redactor().apply(status.message()))
}

/// The digest the registry serves for `repository:hash` after the exporter's push; it must be the
/// one the exporter reported.
async fn pushed_digest(
    spec: &PublishSpec,
    reg: &Registry,
    exported: &HashMap<String, String>,
) -> Result<String, LocalError> {
    let reference = spec.repository.with_tag(&spec.hash_tag);
    let found = reg
        .manifest_digest(&spec.repository, &spec.hash_tag)
        .await?;
    let Some(digest) = found else {
        return Err(LocalError::Push {
            reference,
            attempts: 1,
            detail: "the builder reported the push done, but the registry has no such tag".into(),
        });
    };
    match exported.get(IMAGE_DIGEST_KEY) {
        Some(reported) if *reported != digest => Err(LocalError::Push {
            reference,
            attempts: 1,
            detail: format!(
                "the registry serves {digest}, but the builder pushed {reported} (another push \
                 to the same tag raced this one?)"
            ),
        }),
        _ => Ok(digest),
    }
}
