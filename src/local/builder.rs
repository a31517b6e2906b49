//! One `/build` call: query parameters, the context (served over the session for BuildKit, a
//! streamed tar body for the classic builder), the response stream, cancellation (drop the
//! connection and ask the daemon to cancel) and error mapping.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use bollard::models::{BuildInfo, BuildInfoAux};
use bytes::{Bytes, BytesMut};
use futures::StreamExt;
use http_body_util::BodyExt;
use tokio::sync::mpsc::UnboundedSender;
use tokio_util::sync::CancellationToken;

use super::daemon::{body_text, encode, ConnGuard, DaemonAddr, RawBody};
use super::progress::{exit_code, Tracker};
use super::ssh::SshAgents;
use super::syncdirs::{NamedDir, SyncDirs};
use super::transferlog::TransferLog;
use super::{session, BuildSpec, LocalError, ProgressEvent};
use crate::registry::BasicCredentials;

/// Everything one daemon build needs.
pub(crate) struct BuildRequest<'a> {
    /// Daemon address.
    pub addr: &'a DaemonAddr,
    /// `/v1.41`-style prefix.
    pub api_prefix: &'a str,
    /// BuildKit (true) or the classic builder.
    pub buildkit: bool,
    /// The user's build inputs.
    pub spec: &'a BuildSpec,
    /// Full reference given to `t`.
    pub tag: &'a str,
    /// Dockerfile path inside the tar, or its name in the session's `dockerfile` directory.
    pub dockerfile: &'a str,
    /// The context served over the session (`remote=client-session`); None: the body is a tar.
    pub files: Option<SessionFiles>,
    /// Registry credentials by host, for base images and cache-from.
    pub creds: Arc<HashMap<String, BasicCredentials>>,
    /// Write BuildKit inline cache metadata into the image.
    pub inline_cache: bool,
}

/// The directories a session build serves, where their transfers are logged, and the shared key.
pub(crate) struct SessionFiles {
    /// `context`, `dockerfile`, ...
    pub dirs: SyncDirs,
    /// Bytes, requests and failures of the transfers.
    pub log: Arc<TransferLog>,
    /// `X-Docker-Expose-Session-Sharedkey`.
    pub shared_key: String,
    /// SSH agents offered to `RUN --mount=type=ssh`.
    pub ssh: SshAgents,
    /// The named local contexts among `dirs` (only the Control API can ask for them).
    pub named: Vec<NamedDir>,
}

/// Why a build did not produce an image.
pub(crate) enum BuildFailure {
    /// The daemon refused BuildKit; the caller may retry with the classic builder.
    NoBuildKit(String),
    /// Anything else.
    Error(LocalError),
}

impl From<LocalError> for BuildFailure {
    fn from(e: LocalError) -> Self {
        BuildFailure::Error(e)
    }
}

fn query(req: &BuildRequest<'_>, build_id: &str, session_id: &str) -> String {
    let mut q: Vec<(String, String)> = vec![
        ("t".into(), req.tag.to_string()),
        ("dockerfile".into(), req.dockerfile.to_string()),
        ("rm".into(), "1".into()),
        ("forcerm".into(), "1".into()),
        ("buildid".into(), build_id.to_string()),
    ];
    let mut args: BTreeMap<String, String> = req.spec.build_args.clone();
    if req.buildkit {
        q.push(("version".into(), "2".into()));
        q.push(("session".into(), session_id.to_string()));
        if req.files.is_some() {
            q.push(("remote".into(), "client-session".into()));
        }
        if req.inline_cache {
            args.insert("BUILDKIT_INLINE_CACHE".into(), "1".into());
        }
    } else {
        q.push(("version".into(), "1".into()));
    }
    if !args.is_empty() {
        q.push((
            "buildargs".into(),
            serde_json::to_string(&args).unwrap_or_default(),
        ));
    }
    if !req.spec.labels.is_empty() {
        q.push((
            "labels".into(),
            serde_json::to_string(&req.spec.labels).unwrap_or_default(),
        ));
    }
    if let Some(t) = &req.spec.target {
        q.push(("target".into(), t.clone()));
    }
    if let Some(p) = &req.spec.platform {
        q.push(("platform".into(), p.clone()));
    }
    if req.spec.no_cache {
        q.push(("nocache".into(), "1".into()));
    }
    if !req.spec.cache_from.is_empty() {
        q.push((
            "cachefrom".into(),
            serde_json::to_string(&req.spec.cache_from).unwrap_or_default(),
        ));
    }
    q.iter()
        .map(|(k, v)| format!("{k}={}", encode(v)))
        .collect::<Vec<_>>()
        .join("&")
}

/// X-Registry-Config for the classic builder's base-image pulls.
fn registry_config_header(creds: &HashMap<String, BasicCredentials>) -> Option<String> {
    use base64::Engine as _;
    if creds.is_empty() {
        return None;
    }
    let map: HashMap<&String, serde_json::Value> = creds
        .iter()
        .map(|(host, c)| {
            (
                host,
                serde_json::json!({"username": c.username, "password": c.password, "serveraddress": host}),
            )
        })
        .collect();
    serde_json::to_vec(&map)
        .ok()
        .map(|v| base64::engine::general_purpose::URL_SAFE.encode(v))
}

/// Runs the build; returns the image id when the daemon reported one.
pub(crate) async fn run(
    mut req: BuildRequest<'_>,
    body: RawBody,
    tracker: &mut Tracker,
    progress: &UnboundedSender<ProgressEvent>,
    cancel: &CancellationToken,
) -> Result<Option<String>, BuildFailure> {
    let log = req.files.as_ref().map(|f| f.log.clone());
    let result = run_inner(&mut req, body, tracker, progress, cancel).await;
    transfer_failure_first(log.as_deref(), result)
}

/// A transfer that had to fail (a context file changed) is the reason the build failed, whatever
/// the daemon made of it; a cancelled build stays cancelled.
pub(crate) fn transfer_failure_first<T>(
    log: Option<&TransferLog>,
    result: Result<T, BuildFailure>,
) -> Result<T, BuildFailure> {
    match (log.and_then(|l| l.failure()), result) {
        (_, Err(BuildFailure::Error(LocalError::Cancelled))) => Err(LocalError::Cancelled.into()),
        (Some(failure), _) => Err(failure.into_error().into()),
        (None, result) => result,
    }
}

/// Opens the build's BuildKit session `session_id`: secrets, credentials, and the files and SSH
/// agents of `req.files` (taken from it). Without files the shared key is the session id.
pub(crate) async fn open_session(
    req: &mut BuildRequest<'_>,
    session_id: &str,
) -> Result<session::Session, LocalError> {
    let (services, shared_key) =
        session_services(req.spec, req.creds.clone(), req.files.take(), session_id);
    session::start(req.addr, req.api_prefix, session_id, &shared_key, services).await
}

/// What a build's session serves (secrets, credentials, `files` and their SSH agents) and its
/// shared key (the session id when there are no files).
pub(crate) fn session_services(
    spec: &BuildSpec,
    creds: Arc<HashMap<String, BasicCredentials>>,
    files: Option<SessionFiles>,
    session_id: &str,
) -> (session::Services, String) {
    let shared_key = files
        .as_ref()
        .map_or_else(|| session_id.to_string(), |f| f.shared_key.clone());
    let (files, ssh) = match files {
        Some(f) => (Some((f.dirs, f.log)), f.ssh),
        None => (None, SshAgents::default()),
    };
    let services = session::Services {
        secrets: Arc::new(spec.secrets.clone()),
        creds,
        files,
        ssh,
    };
    (services, shared_key)
}

async fn run_inner(
    req: &mut BuildRequest<'_>,
    body: RawBody,
    tracker: &mut Tracker,
    progress: &UnboundedSender<ProgressEvent>,
    cancel: &CancellationToken,
) -> Result<Option<String>, BuildFailure> {
    let build_id = uuid::Uuid::new_v4().to_string();
    let session_id = uuid::Uuid::new_v4().to_string();
    let query = query(req, &build_id, &session_id);
    let _session = if req.buildkit {
        Some(open_session(req, &session_id).await?)
    } else {
        None
    };
    let mut http_req = http::Request::builder()
        .method("POST")
        .uri(format!("{}/build?{}", req.api_prefix, query))
        .header("Host", "docker")
        .header("Content-Type", "application/x-tar");
    if !req.buildkit {
        if let Some(h) = registry_config_header(&req.creds) {
            http_req = http_req.header("X-Registry-Config", h);
        }
    }
    let http_req = http_req
        .body(body)
        .map_err(|e| LocalError::Invalid(format!("cannot form the build request: {e}")))?;

    let send = req.addr.request(http_req);
    let (resp, guard) = tokio::select! {
        r = send => r?,
        _ = cancel.cancelled() => {
            // The request may already be running on the daemon: the dropped connection and an
            // explicit cancel both stop it.
            cancel_on_daemon(req.addr, req.api_prefix, &build_id).await;
            return Err(LocalError::Cancelled.into());
        }
    };
    if !resp.status().is_success() {
        return Err(refused(req, tracker, resp).await);
    }

    read_output(req, resp, guard, &build_id, tracker, progress, cancel).await
}

/// Follows the build's JSON stream to its end (or cancels the build on the daemon).
async fn read_output(
    req: &BuildRequest<'_>,
    resp: http::Response<hyper::body::Incoming>,
    guard: ConnGuard,
    build_id: &str,
    tracker: &mut Tracker,
    progress: &UnboundedSender<ProgressEvent>,
    cancel: &CancellationToken,
) -> Result<Option<String>, BuildFailure> {
    let mut body = resp.into_body().into_data_stream();
    let mut buf = BytesMut::new();
    let mut image_id = None;
    let mut failure: Option<String> = None;
    loop {
        let chunk = tokio::select! {
            c = body.next() => c,
            _ = cancel.cancelled() => {
                drop(body);
                drop(guard);
                cancel_on_daemon(req.addr, req.api_prefix, build_id).await;
                return Err(LocalError::Cancelled.into());
            }
        };
        let Some(chunk) = chunk else { break };
        let chunk: Bytes = chunk.map_err(|e| LocalError::Daemon {
            host: req.addr.display.clone(),
            what: "stream the build output".into(),
            detail: e.to_string(),
        })?;
        buf.extend_from_slice(&chunk);
        while let Some(pos) = buf.iter().position(|b| *b == b'\n') {
            let line = buf.split_to(pos + 1);
            let line = line.trim_ascii();
            if line.is_empty() {
                continue;
            }
            let Ok(info) = serde_json::from_slice::<BuildInfo>(line) else {
                continue;
            };
            handle(info, tracker, progress, &mut image_id, &mut failure);
        }
    }
    for e in tracker.flush() {
        let _ = progress.send(e);
    }
    drop(guard);
    if let Some(msg) = failure {
        return Err(map_error(req, tracker, &msg).into());
    }
    Ok(image_id)
}

/// Turns a non-2xx answer to `/build` into the failure: BuildKit refused (the caller may fall back
/// to the classic builder), or a build error.
async fn refused(
    req: &BuildRequest<'_>,
    tracker: &Tracker,
    resp: http::Response<hyper::body::Incoming>,
) -> BuildFailure {
    let status = resp.status();
    let text = body_text(resp).await;
    let lower = text.to_ascii_lowercase();
    let refused = [
        "not supported",
        "not enabled",
        "experimental",
        "unknown builder",
    ]
    .iter()
    .any(|k| lower.contains(k));
    if req.buildkit && lower.contains("buildkit") && refused {
        return BuildFailure::NoBuildKit(text);
    }
    let message = tracker.redactor().apply(&format!("HTTP {status}: {text}"));
    map_error(req, tracker, &message).into()
}

fn handle(
    info: BuildInfo,
    tracker: &mut Tracker,
    progress: &UnboundedSender<ProgressEvent>,
    image_id: &mut Option<String>,
    failure: &mut Option<String>,
) {
    match info.aux {
        Some(BuildInfoAux::BuildKit(status)) => {
            for e in tracker.on_buildkit(status) {
                let _ = progress.send(e);
            }
        }
        Some(BuildInfoAux::Default(id)) => {
            if let Some(id) = id.id {
                *image_id = Some(id);
            }
        }
        None => {}
    }
    if let Some(text) = info.stream.as_deref() {
        for e in tracker.on_classic(text) {
            let _ = progress.send(e);
        }
    }
    let err = info.error_detail.and_then(|d| d.message);
    if let Some(msg) = err {
        *failure = Some(tracker.redactor().apply(&msg));
    }
}

/// The build's error for the daemon's (redacted) failure message: a foreign platform, a failed
/// step with its exit code and last lines, or a build failure with the build's last lines.
pub(crate) fn map_error(req: &BuildRequest<'_>, tracker: &Tracker, message: &str) -> LocalError {
    map_spec_error(req.spec, tracker, message)
}

/// [`map_error`] for a build of `spec` on any BuildKit (a Docker daemon's or a builder's).
pub(crate) fn map_spec_error(spec: &BuildSpec, tracker: &Tracker, message: &str) -> LocalError {
    let lower = message.to_ascii_lowercase();
    let failed = tracker.failed_step();
    if let Some(platform) = &spec.platform {
        if lower.contains("exec format error")
            || lower.contains("no match for platform")
            || lower.contains("does not match the specified platform")
            || lower.contains("unsupported platform")
        {
            return LocalError::Platform {
                platform: platform.clone(),
                daemon: String::new(),
                detail: message.to_string(),
            };
        }
        // A RUN step of a platform nothing emulates: the kernel's ENOEXEC is only in its output.
        if let Some((step, tail)) = &failed {
            if let Some(line) = tail.iter().find(|l| l.contains("exec format error")) {
                return LocalError::Platform {
                    platform: platform.clone(),
                    daemon: String::new(),
                    detail: format!("step `{step}` could not run its program ({})", line.trim()),
                };
            }
        }
    }
    let code = exit_code(message);
    match failed {
        Some((step, log_tail)) if code.is_some() => LocalError::StepFailed {
            step,
            exit_code: code,
            message: message.to_string(),
            log_tail,
        },
        _ => LocalError::BuildFailed {
            message: message.to_string(),
            log_tail: tracker.tail(),
        },
    }
}

/// Best-effort `/build/cancel`; the dropped connection alone also stops BuildKit.
async fn cancel_on_daemon(addr: &DaemonAddr, api_prefix: &str, build_id: &str) {
    let req = http::Request::builder()
        .method("POST")
        .uri(format!("{api_prefix}/build/cancel?id={}", encode(build_id)))
        .header("Host", "docker")
        .body(
            http_body_util::Empty::new()
                .map_err(|never| match never {})
                .boxed_unsync(),
        );
    if let Ok(req) = req {
        let fut = addr.request(req);
        let _ = tokio::time::timeout(std::time::Duration::from_secs(5), async {
            if let Ok((resp, _g)) = fut.await {
                let _ = body_text(resp).await;
            }
        })
        .await;
    }
}
