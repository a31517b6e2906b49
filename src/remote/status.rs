//! A CodeBuild build's state as the resource needs it (status, phase, digest, timings), for waits and refresh.

use std::fmt;

use aws_sdk_codebuild::types::{Build, StatusType};

use super::clients::RemoteClients;
use super::error::RemoteError;

/// The exported variable our buildspec sets to the pushed digest.
pub const DIGEST_VARIABLE: &str = "IMAGE_DIGEST";
/// The log line prefix our buildspec prints with the pushed digest (fallback when exports are missing).
pub const DIGEST_MARKER: &str = "IMAGEBUILD_DIGEST=";

/// CodeBuild build status.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BuildState {
    /// IN_PROGRESS.
    InProgress,
    /// SUCCEEDED.
    Succeeded,
    /// FAILED.
    Failed,
    /// FAULT.
    Fault,
    /// TIMED_OUT.
    TimedOut,
    /// STOPPED.
    Stopped,
    /// Anything newer than this code knows.
    Other(String),
}

impl BuildState {
    /// Parses CodeBuild's status name.
    pub fn from_name(name: &str) -> BuildState {
        match name {
            "IN_PROGRESS" => BuildState::InProgress,
            "SUCCEEDED" => BuildState::Succeeded,
            "FAILED" => BuildState::Failed,
            "FAULT" => BuildState::Fault,
            "TIMED_OUT" => BuildState::TimedOut,
            "STOPPED" => BuildState::Stopped,
            other => BuildState::Other(other.to_string()),
        }
    }

    /// CodeBuild's status name, e.g. `IN_PROGRESS`.
    pub fn as_str(&self) -> &str {
        match self {
            BuildState::InProgress => "IN_PROGRESS",
            BuildState::Succeeded => "SUCCEEDED",
            BuildState::Failed => "FAILED",
            BuildState::Fault => "FAULT",
            BuildState::TimedOut => "TIMED_OUT",
            BuildState::Stopped => "STOPPED",
            BuildState::Other(s) => s,
        }
    }

    /// True once the build will not change any more.
    pub fn is_final(&self) -> bool {
        !matches!(self, BuildState::InProgress)
    }
}

impl fmt::Display for BuildState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A snapshot of one build, e.g. for `pulumi refresh` of a build started with `wait=false`.
#[derive(Debug, Clone, PartialEq)]
pub struct BuildStatus {
    /// CodeBuild build id (`project:uuid`).
    pub build_id: String,
    /// Status.
    pub state: BuildState,
    /// Current phase name, e.g. `BUILD` or `COMPLETED`.
    pub current_phase: Option<String>,
    /// Pushed digest (`sha256:...`) once the build exported it.
    pub digest: Option<String>,
    /// Seconds spent submitted and queued.
    pub queued_seconds: f64,
    /// Seconds from leaving the queue to the end (or to now while running).
    pub build_seconds: f64,
    /// Console link to the build's log.
    pub logs_url: String,
    /// The phase that failed with its context (code, message), when the build ended badly.
    pub failed_phase: Option<FailedPhase>,
}

/// The phase a build failed in, with CodeBuild's context for it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FailedPhase {
    /// Phase name, e.g. `BUILD`.
    pub phase: String,
    /// Phase status, e.g. `FAILED`.
    pub status: String,
    /// Context status code, e.g. `COMMAND_EXECUTION_ERROR`.
    pub code: Option<String>,
    /// Context message, e.g. the failing command.
    pub message: Option<String>,
}

/// Fetches one build's status (BatchGetBuilds); `Ok(None)` when CodeBuild does not know the id.
pub async fn build_status(
    clients: &RemoteClients,
    build_id: &str,
) -> Result<Option<BuildStatus>, RemoteError> {
    Ok(fetch_build(clients, build_id)
        .await?
        .map(|b| BuildStatus::from_build(&b, clients.region())))
}

pub(crate) async fn fetch_build(
    clients: &RemoteClients,
    build_id: &str,
) -> Result<Option<Build>, RemoteError> {
    let out = clients
        .codebuild
        .batch_get_builds()
        .ids(build_id)
        .send()
        .await
        .map_err(|e| RemoteError::from_sdk("codebuild:BatchGetBuilds", build_id, e))?;
    Ok(out
        .builds()
        .iter()
        .find(|b| b.id() == Some(build_id))
        .cloned())
}

/// Console link to a build's log page; known as soon as the build id is.
pub fn console_logs_url(region: &str, build_id: &str) -> String {
    let project = build_id.split(':').next().unwrap_or(build_id);
    format!(
        "https://{region}.console.aws.amazon.com/codesuite/codebuild/projects/{project}/build/{}/log?region={region}",
        build_id.replace(':', "%3A")
    )
}

impl BuildStatus {
    /// Reads status, phase, digest and timings out of a BatchGetBuilds entry.
    pub(crate) fn from_build(build: &Build, region: &str) -> BuildStatus {
        let build_id = build.id().unwrap_or_default().to_string();
        let state = build
            .build_status()
            .map(|s| BuildState::from_name(s.as_str()))
            .unwrap_or(BuildState::InProgress);
        let digest = build
            .exported_environment_variables()
            .iter()
            .find(|v| v.name() == Some(DIGEST_VARIABLE))
            .and_then(|v| v.value())
            .filter(|v| is_digest(v))
            .map(str::to_string);
        let (queued_seconds, build_seconds) = timings(build);
        let failed_phase = build
            .phases()
            .iter()
            .rev()
            .find(|p| {
                p.phase_status()
                    .is_some_and(|s| !matches!(s, StatusType::Succeeded | StatusType::InProgress))
            })
            .map(|p| {
                let context = p
                    .contexts()
                    .iter()
                    .find(|c| c.message().is_some_and(|m| !m.is_empty()));
                FailedPhase {
                    phase: p
                        .phase_type()
                        .map(|t| t.as_str().to_string())
                        .unwrap_or_default(),
                    status: p
                        .phase_status()
                        .map(|s| s.as_str().to_string())
                        .unwrap_or_default(),
                    code: context
                        .and_then(|c| c.status_code())
                        .filter(|c| !c.is_empty())
                        .map(str::to_string),
                    message: context.and_then(|c| c.message()).map(str::to_string),
                }
            });
        BuildStatus {
            logs_url: build
                .logs()
                .and_then(|l| l.deep_link())
                .map(str::to_string)
                .unwrap_or_else(|| console_logs_url(region, &build_id)),
            build_id,
            state,
            current_phase: build.current_phase().map(str::to_string),
            digest,
            queued_seconds,
            build_seconds,
            failed_phase,
        }
    }
}

/// True for `sha256:` followed by 64 lowercase hex digits.
pub fn is_digest(s: &str) -> bool {
    s.strip_prefix("sha256:")
        .is_some_and(|h| h.len() == 64 && h.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')))
}

fn secs(t: &aws_smithy_types::DateTime) -> f64 {
    t.as_secs_f64()
}

fn timings(build: &Build) -> (f64, f64) {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs_f64())
        .unwrap_or(0.0);
    let start = build.start_time().map(secs).unwrap_or(now);
    let end = build.end_time().map(secs).unwrap_or(now);
    let mut queue_end = start;
    for phase in build.phases() {
        let name = phase.phase_type().map(|t| t.as_str()).unwrap_or_default();
        if matches!(name, "SUBMITTED" | "QUEUED") {
            queue_end = phase.end_time().map(secs).unwrap_or(now).max(queue_end);
        }
    }
    let queued = (queue_end - start).max(0.0);
    let built = (end - queue_end).max(0.0);
    (round_ms(queued), round_ms(built))
}

fn round_ms(x: f64) -> f64 {
    (x * 1000.0).round() / 1000.0
}

#[cfg(test)]
mod tests {
    use super::*;
    use aws_sdk_codebuild::types::{
        BuildPhase, BuildPhaseType, ExportedEnvironmentVariable, PhaseContext,
    };
    use aws_smithy_types::DateTime;

    fn phase(t: BuildPhaseType, s: Option<StatusType>, a: f64, b: Option<f64>) -> BuildPhase {
        let mut p = BuildPhase::builder()
            .phase_type(t)
            .start_time(DateTime::from_secs_f64(a));
        if let Some(s) = s {
            p = p.phase_status(s);
        }
        if let Some(b) = b {
            p = p.end_time(DateTime::from_secs_f64(b));
        }
        p.build()
    }

    #[test]
    fn reads_failure_digest_and_timings() {
        let failed = BuildPhase::builder()
            .phase_type(BuildPhaseType::Build)
            .phase_status(StatusType::Failed)
            .contexts(
                PhaseContext::builder()
                    .status_code("COMMAND_EXECUTION_ERROR")
                    .message("Error while executing command: docker build. Reason: exit status 1")
                    .build(),
            )
            .build();
        let digest = format!("sha256:{}", "0".repeat(64));
        let b = Build::builder()
            .id("p:1")
            .build_status(StatusType::Failed)
            .current_phase("COMPLETED")
            .start_time(DateTime::from_secs_f64(100.0))
            .end_time(DateTime::from_secs_f64(130.0))
            .phases(phase(
                BuildPhaseType::Submitted,
                Some(StatusType::Succeeded),
                100.0,
                Some(100.5),
            ))
            .phases(phase(
                BuildPhaseType::Queued,
                Some(StatusType::Succeeded),
                100.5,
                Some(110.0),
            ))
            .phases(failed)
            .phases(phase(BuildPhaseType::Completed, None, 130.0, None))
            .exported_environment_variables(
                ExportedEnvironmentVariable::builder()
                    .name(DIGEST_VARIABLE)
                    .value(&digest)
                    .build(),
            )
            .build();
        let s = BuildStatus::from_build(&b, "eu-west-1");
        assert_eq!(s.state, BuildState::Failed);
        assert_eq!(s.digest.as_deref(), Some(digest.as_str()));
        assert_eq!((s.queued_seconds, s.build_seconds), (10.0, 20.0));
        let f = s.failed_phase.unwrap();
        assert_eq!(f.phase, "BUILD");
        assert_eq!(f.code.as_deref(), Some("COMMAND_EXECUTION_ERROR"));
        assert!(s.logs_url.contains("eu-west-1") && s.logs_url.contains("p%3A1"));
    }

    #[test]
    fn digest_shape() {
        assert!(is_digest(&format!("sha256:{}", "ab".repeat(32))));
        assert!(!is_digest("sha256:abc"));
        assert!(!is_digest(""));
    }
}
