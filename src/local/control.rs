//! One build through BuildKit's Control API on the daemon, for builds with named contexts (the
//! `/build` endpoint has no way to pass `context:NAME` frontend attributes). It keeps the `/build`
//! path's contract: the same session (secrets, credentials, FileSync with the snapshot's files,
//! SSH), the same frontend attributes, the image stored and tagged `tag` by the daemon's exporter,
//! BuildKit's status fed into the same Tracker, the same error mapping and transfer records.
//! Cancelling drops the connection, which cancels the solve on the daemon.

use std::time::Duration;

use bollard::moby::buildkit::v1::{SolveResponse, StatusRequest, StatusResponse};
use futures::StreamExt;
use tokio::sync::mpsc::UnboundedSender;
use tokio_util::sync::CancellationToken;

use super::builder::{map_error, open_session, transfer_failure_first, BuildFailure, BuildRequest};
use super::control_conn::{self, ControlConn};
use super::control_request::solve_request;
use super::progress::Tracker;
use super::{LocalError, ProgressEvent};

/// How long the status stream may trail the solve's answer (its last vertex updates).
const STATUS_TAIL: Duration = Duration::from_secs(5);
/// The exporter's answer that names the image (`/build` reports the same value as its id).
pub(crate) const IMAGE_DIGEST_KEY: &str = "containerimage.digest";

/// Runs the build; returns the image id when the exporter reported one.
pub(crate) async fn run(
    mut req: BuildRequest<'_>,
    tracker: &mut Tracker,
    progress: &UnboundedSender<ProgressEvent>,
    cancel: &CancellationToken,
) -> Result<Option<String>, LocalError> {
    let log = req.files.as_ref().map(|f| f.log.clone());
    let result = run_inner(&mut req, tracker, progress, cancel)
        .await
        .map_err(BuildFailure::Error);
    match transfer_failure_first(log.as_deref(), result) {
        Ok(id) => Ok(id),
        Err(BuildFailure::Error(e)) => Err(e),
        Err(BuildFailure::NoBuildKit(msg)) => Err(LocalError::BuildFailed {
            message: msg,
            log_tail: tracker.tail(),
        }),
    }
}

async fn run_inner(
    req: &mut BuildRequest<'_>,
    tracker: &mut Tracker,
    progress: &UnboundedSender<ProgressEvent>,
    cancel: &CancellationToken,
) -> Result<Option<String>, LocalError> {
    let build_ref = uuid::Uuid::new_v4().simple().to_string();
    let session_id = uuid::Uuid::new_v4().simple().to_string();
    let named = req
        .files
        .as_ref()
        .map(|f| f.named.clone())
        .unwrap_or_default();
    let solve = solve_request(req, &named, &build_ref, &session_id);
    let _session = open_session(req, &session_id).await?;
    let conn = tokio::select! {
        c = control_conn::connect(req.addr, req.api_prefix) => c?,
        _ = cancel.cancelled() => return Err(LocalError::Cancelled),
    };
    let answer = follow(&conn, solve, &build_ref, tracker, progress, cancel).await;
    // Closing the connection ends the calls on the daemon (and a cancelled solve with them).
    drop(conn);
    for e in tracker.flush() {
        let _ = progress.send(e);
    }
    match answer? {
        Ok(resp) => Ok(resp.exporter_response.get(IMAGE_DIGEST_KEY).cloned()),
        Err(status) => Err(solve_error(req, tracker, &status)),
    }
}

/// Runs `Solve` while streaming `Status` into the tracker; the outer error is ours (cancel, a
/// broken connection), the inner one BuildKit's answer.
pub(crate) async fn follow(
    conn: &ControlConn,
    solve: bollard::moby::buildkit::v1::SolveRequest,
    build_ref: &str,
    tracker: &mut Tracker,
    progress: &UnboundedSender<ProgressEvent>,
    cancel: &CancellationToken,
) -> Result<Result<SolveResponse, tonic14::Status>, LocalError> {
    let mut solver = conn.client.clone();
    let mut watcher = conn.client.clone();
    let solve = solver.solve(solve);
    let status = watcher.status(StatusRequest {
        r#ref: build_ref.to_string(),
    });
    tokio::pin!(solve);
    tokio::pin!(status);
    // The status call answers once the daemon knows the job; its stream ends with the job.
    let mut status_pending = true;
    let mut updates = None;
    let answer = loop {
        tokio::select! {
            r = &mut solve => break r.map(tonic14::Response::into_inner),
            r = &mut status, if status_pending => {
                status_pending = false;
                updates = r.ok().map(tonic14::Response::into_inner);
            }
            u = next_update(&mut updates), if updates.is_some() => match u {
                Some(s) => report(tracker, progress, s),
                None => updates = None,
            },
            _ = cancel.cancelled() => return Err(LocalError::Cancelled),
        }
    };
    if let Some(stream) = updates.as_mut() {
        let tail = async {
            while let Some(Ok(s)) = stream.next().await {
                report(tracker, progress, s);
            }
        };
        let _ = tokio::time::timeout(STATUS_TAIL, tail).await;
    }
    Ok(answer)
}

async fn next_update(
    updates: &mut Option<tonic14::Streaming<StatusResponse>>,
) -> Option<StatusResponse> {
    match updates {
        Some(s) => s.next().await.and_then(Result::ok),
        None => std::future::pending().await,
    }
}

fn report(tracker: &mut Tracker, progress: &UnboundedSender<ProgressEvent>, s: StatusResponse) {
    for e in tracker.on_buildkit(s) {
        let _ = progress.send(e);
    }
}

/// BuildKit's failure as the `/build` path reports it; a broken connection names the daemon.
fn solve_error(req: &BuildRequest<'_>, tracker: &Tracker, status: &tonic14::Status) -> LocalError {
    let transport = std::error::Error::source(status).is_some_and(|e| e.is::<hyper::Error>());
    if transport {
        return LocalError::Daemon {
            host: req.addr.display.clone(),
            what: "run the build (BuildKit Control API)".into(),
            detail: tracker.redactor().apply(&status.to_string()),
        };
    }
    map_error(req, tracker, &tracker.redactor().apply(status.message()))
}
