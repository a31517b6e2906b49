//! Waiting for a build: poll with backoff, report phase changes and log lines, stop it on cancel or deadline.

use std::time::Duration;

use aws_sdk_codebuild::types::Build;
use tokio::sync::mpsc::UnboundedSender;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use super::clients::RemoteClients;
use super::error::{BuildFailure, RemoteError};
use super::logs::LogFollower;
use super::status::{fetch_build, is_digest, BuildState, BuildStatus, DIGEST_MARKER};

/// Something a waiting caller may show (e.g. as an ephemeral status line).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RemoteProgress {
    /// The build entered a new phase, e.g. `QUEUED`, `BUILD`.
    Phase(String),
    /// A new line of the build's log (as the build printed it; CodeBuild masks its secrets).
    Log(String),
    /// StopBuild was sent because of cancel or the deadline.
    Stopping,
}

/// How to wait.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WaitOptions {
    /// Give up (and stop the build) at this instant; None = wait as long as the build runs.
    pub deadline: Option<Instant>,
    /// First poll interval; also used again whenever something new happened.
    pub poll_initial: Duration,
    /// Longest poll interval while nothing changes.
    pub poll_max: Duration,
    /// How many log lines a failure carries.
    pub tail_lines: usize,
}

impl Default for WaitOptions {
    fn default() -> Self {
        WaitOptions {
            deadline: None,
            poll_initial: Duration::from_secs(2),
            poll_max: Duration::from_secs(15),
            tail_lines: 30,
        }
    }
}

/// A build that succeeded and pushed.
#[derive(Debug, Clone, PartialEq)]
pub struct FinishedBuild {
    /// CodeBuild build id.
    pub build_id: String,
    /// Always SUCCEEDED.
    pub state: BuildState,
    /// Pushed manifest digest, `sha256:...`.
    pub digest: String,
    /// Seconds submitted and queued.
    pub queued_seconds: f64,
    /// Seconds from leaving the queue to the end.
    pub build_seconds: f64,
    /// Console link to its log.
    pub logs_url: String,
    /// Dockerfile steps the log shows, and how many were cached.
    pub steps: crate::steps::StepCounts,
}

/// How long StopBuild is given to show up as a final status before we return anyway.
const STOP_CONFIRM: Duration = Duration::from_secs(20);

/// Waits for `build_id` to finish; failures carry the failing phase, its context and the log tail.
pub async fn wait_build(
    clients: &RemoteClients,
    build_id: &str,
    progress: UnboundedSender<RemoteProgress>,
    cancel: CancellationToken,
    options: WaitOptions,
) -> Result<FinishedBuild, RemoteError> {
    let started = Instant::now();
    let mut follower = LogFollower::new(options.tail_lines);
    let mut phases_seen = 0usize;
    let mut delay = options.poll_initial;
    loop {
        let build = fetch_build(clients, build_id)
            .await?
            .ok_or_else(|| RemoteError::BuildNotFound(build_id.to_string()))?;
        // Every phase entered since the last poll, in order, even ones that came and went between polls.
        let phases = build.phases();
        let mut news = phases.len() > phases_seen;
        for p in phases.iter().skip(phases_seen) {
            if let Some(t) = p.phase_type() {
                let _ = progress.send(RemoteProgress::Phase(t.as_str().to_string()));
            }
        }
        phases_seen = phases_seen.max(phases.len());
        // A log outage must not fail a build that is fine; the next poll tries again.
        if let Ok(lines) = follower.poll(clients, &build, DIGEST_MARKER).await {
            news |= !lines.is_empty();
            for line in lines {
                let _ = progress.send(RemoteProgress::Log(line));
            }
        }
        let status = BuildStatus::from_build(&build, clients.region());
        if status.state.is_final() {
            return finish(clients, &build, status, &mut follower, &progress).await;
        }
        delay = if news {
            options.poll_initial
        } else {
            (delay.mul_f64(1.5)).min(options.poll_max)
        };
        let mut wake = Instant::now() + delay;
        if let Some(deadline) = options.deadline {
            wake = wake.min(deadline);
        }
        tokio::select! {
            _ = cancel.cancelled() => {
                let stop_error = stop(clients, build_id, &progress).await;
                return Err(RemoteError::Cancelled { build_id: build_id.to_string(), stop_error });
            }
            _ = tokio::time::sleep_until(wake) => {}
        }
        if options.deadline.is_some_and(|d| Instant::now() >= d) {
            let stop_error = stop(clients, build_id, &progress).await;
            return Err(RemoteError::DeadlineExceeded {
                build_id: build_id.to_string(),
                seconds: started.elapsed().as_secs(),
                stop_error,
            });
        }
    }
}

async fn finish(
    clients: &RemoteClients,
    build: &Build,
    status: BuildStatus,
    follower: &mut LogFollower,
    progress: &UnboundedSender<RemoteProgress>,
) -> Result<FinishedBuild, RemoteError> {
    // Lines written just before completion may arrive after the status flips.
    if let Ok(lines) = follower.poll(clients, build, DIGEST_MARKER).await {
        for line in lines {
            let _ = progress.send(RemoteProgress::Log(line));
        }
    }
    if status.state != BuildState::Succeeded {
        let failed = status.failed_phase.clone();
        return Err(RemoteError::BuildFailed(Box::new(BuildFailure {
            build_id: status.build_id,
            state: status.state,
            phase: failed.as_ref().map(|f| f.phase.clone()),
            context_code: failed.as_ref().and_then(|f| f.code.clone()),
            context_message: failed.and_then(|f| f.message),
            log_tail: follower.tail(),
            logs_url: status.logs_url,
        })));
    }
    let digest = status
        .digest
        .clone()
        .or_else(|| follower.marker.clone().filter(|d| is_digest(d)));
    let Some(digest) = digest else {
        return Err(RemoteError::MissingDigest {
            build_id: status.build_id,
            logs_url: status.logs_url,
        });
    };
    Ok(FinishedBuild {
        build_id: status.build_id,
        state: status.state,
        digest,
        queued_seconds: status.queued_seconds,
        build_seconds: status.build_seconds,
        logs_url: status.logs_url,
        steps: follower.steps.counts(),
    })
}

/// Sends StopBuild and waits briefly for the build to read as final; returns why stopping failed, if it did.
pub async fn stop(
    clients: &RemoteClients,
    build_id: &str,
    progress: &UnboundedSender<RemoteProgress>,
) -> Option<String> {
    let _ = progress.send(RemoteProgress::Stopping);
    if let Err(e) = clients.codebuild.stop_build().id(build_id).send().await {
        // Finishing on its own between our last poll and StopBuild is not a failure to stop.
        if let Ok(Some(b)) = fetch_build(clients, build_id).await {
            if BuildStatus::from_build(&b, clients.region())
                .state
                .is_final()
            {
                return None;
            }
        }
        let err = RemoteError::from_sdk("codebuild:StopBuild", build_id, e);
        return Some(err.to_string());
    }
    let until = Instant::now() + STOP_CONFIRM;
    while Instant::now() < until {
        match fetch_build(clients, build_id).await {
            Ok(Some(b))
                if BuildStatus::from_build(&b, clients.region())
                    .state
                    .is_final() =>
            {
                return None
            }
            Ok(_) | Err(_) => tokio::time::sleep(Duration::from_millis(500)).await,
        }
    }
    None
}
