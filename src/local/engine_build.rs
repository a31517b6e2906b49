//! The build half of a publish (run while a build slot is held): BuildKit over our session with
//! the context served by FileSync, or the classic builder with a tar body; the fallback from one
//! to the other (builds with named contexts go through `engine_control`); error mapping; the image
//! id and the extra local tags.

use std::collections::HashMap;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Instant;

use tokio::sync::mpsc::UnboundedSender;
use tokio_util::sync::CancellationToken;

use super::api::{self, DaemonVersion};
use super::builder::{self, BuildFailure, BuildRequest, SessionFiles};
use super::daemon::{DaemonAddr, RawBody};
use super::engine::{force_classic, LocalEngine};
use super::progress::Tracker;
use super::ssh::SshAgents;
use super::syncdirs::{shared_key, SyncDirs};
use super::transferlog::TransferLog;
use super::{context_body, LocalError, ProgressEvent, PublishSpec, TransferRequest};
use crate::redact::Redactor;
use crate::registry::{BasicCredentials, Registry};

/// What the build half produced.
pub(crate) struct BuiltImage {
    /// Local image id.
    pub(crate) image_id: String,
    /// The daemon's API prefix, for the push.
    pub(crate) prefix: String,
    /// Redacts the build's secrets.
    pub(crate) redactor: Redactor,
    /// Wall time of the build.
    pub(crate) build_seconds: f64,
    /// File bytes BuildKit asked for.
    pub(crate) context_bytes_sent: u64,
    /// Steps solved and served from cache.
    pub(crate) steps: crate::steps::StepCounts,
    /// BuildKit's directory requests.
    pub(crate) transfers: Vec<TransferRequest>,
}

/// Inputs of the build half that the caller resolved already.
pub(crate) struct BuildInputs<'a> {
    /// The daemon.
    pub(crate) addr: &'a DaemonAddr,
    /// The target registry (None without push).
    pub(crate) registry: Option<&'a Registry>,
    /// SSH agents to forward.
    pub(crate) ssh: SshAgents,
    /// Progress events.
    pub(crate) progress: &'a UnboundedSender<ProgressEvent>,
    /// Cancellation.
    pub(crate) cancel: &'a CancellationToken,
}

/// What one build attempt needs besides the spec.
pub(super) struct Attempt<'a> {
    /// The daemon.
    pub(super) addr: &'a DaemonAddr,
    /// What it runs.
    pub(super) version: &'a DaemonVersion,
    /// Registry credentials BuildKit may ask the session for.
    pub(super) creds: Arc<HashMap<String, BasicCredentials>>,
    /// The full reference the image gets (`repository:hash_tag`).
    pub(super) tag: &'a str,
    /// SSH agents to forward.
    pub(super) ssh: SshAgents,
    /// Progress events.
    pub(super) progress: &'a UnboundedSender<ProgressEvent>,
    /// Cancellation.
    pub(super) cancel: &'a CancellationToken,
}

impl<'a> Attempt<'a> {
    /// The request for `spec` on this attempt's daemon: BuildKit or the classic builder, the
    /// Dockerfile's name and the session's files (`None` when the body is a tar).
    pub(super) fn request(
        &self,
        spec: &'a PublishSpec,
        api_prefix: &'a str,
        buildkit: bool,
        dockerfile: &'a str,
        files: Option<SessionFiles>,
    ) -> BuildRequest<'a> {
        BuildRequest {
            addr: self.addr,
            api_prefix,
            buildkit,
            spec: &spec.build,
            tag: self.tag,
            dockerfile,
            files,
            creds: self.creds.clone(),
            inline_cache: spec.push,
        }
    }
}

/// An image id (when the daemon reported one) and the log of the session's transfers.
pub(super) type Outcome = (Option<String>, Option<Arc<TransferLog>>);

impl LocalEngine {
    /// Builds `spec` and applies its extra tags locally.
    pub(crate) async fn build_image(
        &self,
        spec: &PublishSpec,
        inputs: BuildInputs<'_>,
    ) -> Result<BuiltImage, LocalError> {
        let BuildInputs {
            addr,
            registry,
            ssh,
            progress,
            cancel,
        } = inputs;
        let build_start = Instant::now();
        let version = self.daemon_version(addr).await?;
        check_os(spec, &version)?;
        if spec.build.has_named_contexts() {
            self.check_named_contexts(addr, &version)?;
        }
        if spec.build.cache_to.is_some() {
            self.check_cache_export(addr, &version).await?;
        }
        let creds = self.build_credentials(spec, registry).await;
        let redactor = Redactor::new(spec.build.secrets.values());
        let mut tracker = Tracker::new(redactor.clone());
        let prefix = version.prefix();
        let tag_ref = spec.repository.with_tag(&spec.hash_tag);
        let attempt = Attempt {
            addr,
            version: &version,
            creds,
            tag: &tag_ref,
            ssh,
            progress,
            cancel,
        };
        let (built_id, transfer_log) = if spec.build.needs_control_api() {
            self.build_via_control(spec, attempt, &mut tracker).await?
        } else {
            self.build_via_endpoint(spec, attempt, &mut tracker).await?
        };
        let image_id = match built_id {
            Some(id) => id,
            None => api::image_id(addr, &prefix, &tag_ref).await?,
        };
        let repo_str = spec.repository.to_string();
        for t in &spec.extra_tags {
            api::tag(addr, &prefix, &image_id, &repo_str, t).await?;
        }
        let (context_bytes_sent, transfers) = transfer_log
            .map(|l| (l.bytes(), l.requests()))
            .unwrap_or_default();
        Ok(BuiltImage {
            image_id,
            prefix,
            redactor,
            build_seconds: build_start.elapsed().as_secs_f64(),
            context_bytes_sent,
            steps: tracker.steps(),
            transfers,
        })
    }

    /// `POST /build`: BuildKit with the context over the session, falling back to the classic
    /// builder (tar body) when the daemon refuses BuildKit.
    async fn build_via_endpoint(
        &self,
        spec: &PublishSpec,
        a: Attempt<'_>,
        tracker: &mut Tracker,
    ) -> Result<Outcome, LocalError> {
        let prefix = a.version.prefix();
        let mut buildkit = a.version.has_buildkit()
            && !self.no_buildkit.load(Ordering::SeqCst)
            && !force_classic();
        loop {
            if !buildkit {
                self.classic_preconditions(spec, a.addr, &a.ssh, a.progress)?;
            }
            let (dockerfile, body, files) = context_for(buildkit, spec, a.addr, &a.ssh, a.progress);
            let transfer_log = files.as_ref().map(|f| f.log.clone());
            let req = a.request(spec, &prefix, buildkit, &dockerfile, files);
            self.builds_started.fetch_add(1, Ordering::SeqCst);
            match builder::run(req, body, tracker, a.progress, a.cancel).await {
                Ok(id) => return Ok((id, transfer_log)),
                Err(BuildFailure::NoBuildKit(_)) if buildkit => {
                    self.no_buildkit.store(true, Ordering::SeqCst);
                    buildkit = false;
                }
                Err(BuildFailure::NoBuildKit(msg)) => {
                    return Err(LocalError::BuildFailed {
                        message: tracker.redactor().apply(&msg),
                        log_tail: tracker.tail(),
                    })
                }
                Err(BuildFailure::Error(e)) => return Err(platform_error(spec, a.version, e)),
            }
        }
    }

    /// Refuses what only BuildKit can do, and says once that the classic builder is in use.
    fn classic_preconditions(
        &self,
        spec: &PublishSpec,
        addr: &DaemonAddr,
        ssh: &SshAgents,
        progress: &UnboundedSender<ProgressEvent>,
    ) -> Result<(), LocalError> {
        let needs = match (spec.build.secrets.is_empty(), ssh.is_empty()) {
            (false, _) => Some("build secrets"),
            (true, false) => Some("ssh agent forwarding"),
            (true, true) => None,
        };
        if let Some(what) = needs {
            return Err(LocalError::Invalid(format!(
                "the Docker daemon at {} has no BuildKit, and {what} need BuildKit; \
                 enable BuildKit on the daemon (Docker 18.09+ on Linux)",
                addr.display
            )));
        }
        if !self.classic_logged.swap(true, Ordering::SeqCst) {
            let msg = format!(
                "the Docker daemon at {} has no BuildKit; using the classic builder \
                 (no cache mounts, no secrets, no inline cache)",
                addr.display
            );
            eprintln!("imagebuild: {msg}");
            let _ = progress.send(ProgressEvent::Log(msg));
        }
        Ok(())
    }
}

/// The Dockerfile name, the request body and the session's files for one attempt: BuildKit asks
/// for what it needs over the session, as with the docker CLI (empty body); the classic builder
/// gets the context as a tar body.
pub(super) fn context_for(
    buildkit: bool,
    spec: &PublishSpec,
    addr: &DaemonAddr,
    ssh: &SshAgents,
    progress: &UnboundedSender<ProgressEvent>,
) -> (String, RawBody, Option<SessionFiles>) {
    let snap = &spec.build.snapshot;
    if !buildkit {
        let (name, body) =
            context_body::body(snap, spec.build.dockerfile_text.as_ref(), addr.is_remote());
        return (name, body, None);
    }
    let (name, files) = session_files(spec, &addr.display, ssh, progress);
    (name, api::empty(), Some(files))
}

/// The Dockerfile's name and the directories a session serves for `spec`, keyed (the shared key)
/// by the BuildKit they are sent to, `builder`.
pub(super) fn session_files(
    spec: &PublishSpec,
    builder: &str,
    ssh: &SshAgents,
    progress: &UnboundedSender<ProgressEvent>,
) -> (String, SessionFiles) {
    let snap = &spec.build.snapshot;
    let (mut dirs, name) = SyncDirs::for_snapshot(snap, spec.build.dockerfile_text.as_ref());
    let named = dirs.add_named(snap);
    let files = SessionFiles {
        dirs,
        log: Arc::new(TransferLog::new(progress.clone())),
        shared_key: shared_key(builder, snap),
        ssh: ssh.clone(),
        named,
    };
    (name, files)
}

/// A platform whose OS the daemon cannot run fails before any build.
fn check_os(spec: &PublishSpec, version: &DaemonVersion) -> Result<(), LocalError> {
    match &spec.build.platform {
        Some(p) if p.split('/').next() != Some(version.os.as_str()) => Err(LocalError::Platform {
            platform: p.clone(),
            daemon: format!("{}/{}", version.os, version.arch),
            detail: format!("the daemon runs {} containers only", version.os),
        }),
        _ => Ok(()),
    }
}

/// Names the daemon's platform in platform errors, and recognises a foreign platform behind a
/// generic failure: it usually fails while resolving base images (only the daemon's own
/// platform exists locally, and pulling may be impossible).
pub(super) fn platform_error(
    spec: &PublishSpec,
    version: &DaemonVersion,
    e: LocalError,
) -> LocalError {
    let daemon = format!("{}/{}", version.os, version.arch);
    match e {
        LocalError::Platform {
            platform, detail, ..
        } => LocalError::Platform {
            platform,
            daemon,
            detail,
        },
        LocalError::BuildFailed { message, log_tail } => {
            let foreign = spec.build.platform.as_deref().filter(|p| *p != daemon);
            match foreign {
                Some(p) if message.contains("failed to create LLB definition") => {
                    LocalError::Platform {
                        platform: p.to_string(),
                        detail: format!("no {p} variant of a base image is available: {message}"),
                        daemon,
                    }
                }
                _ => LocalError::BuildFailed { message, log_tail },
            }
        }
        other => other,
    }
}
