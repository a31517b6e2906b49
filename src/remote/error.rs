//! Errors of the remote engine: each names the AWS action and resource, or the build and why it ended.

use std::fmt;

use aws_sdk_s3::error::{DisplayErrorContext, ProvideErrorMetadata, SdkError};

use super::status::BuildState;

/// Why a remote build operation failed; Display is a sentence a user can act on and never holds a secret.
#[derive(Debug, thiserror::Error)]
pub enum RemoteError {
    /// The credentials in use may not perform `action` on `resource`.
    #[error("AWS denied {action} on {resource}: {message}. Allow {action} on it for the credentials in use (for steps inside the build: the CodeBuild service role)")]
    AccessDenied {
        /// e.g. `s3:PutObject`.
        action: String,
        /// e.g. `s3://bucket/key`.
        resource: String,
        /// AWS's own message.
        message: String,
    },
    /// Any other AWS error, after the SDK's retries for throttling and 5xx answers.
    #[error("AWS {action} on {resource} failed{}: {message}", code.as_deref().map(|c| format!(" ({c})")).unwrap_or_default())]
    Aws {
        /// e.g. `codebuild:StartBuild`.
        action: String,
        /// The resource the call was about.
        resource: String,
        /// AWS error code when one was given.
        code: Option<String>,
        /// AWS's message or the transport error chain.
        message: String,
    },
    /// An input cannot be turned into a valid build; the message names the input.
    #[error("invalid remote build input: {0}")]
    Invalid(String),
    /// The context archive could not be produced while uploading it.
    #[error("reading the build context archive for {object} failed: {source}")]
    Context {
        /// Destination `s3://` URI.
        object: String,
        /// The producer's error.
        #[source]
        source: std::io::Error,
    },
    /// The build ended FAILED, FAULT, TIMED_OUT or STOPPED on its own.
    #[error("{0}")]
    BuildFailed(Box<BuildFailure>),
    /// The caller cancelled the wait; the build was asked to stop.
    #[error("build {build_id} was cancelled{}", stop_note(.stop_error))]
    Cancelled {
        /// CodeBuild build id.
        build_id: String,
        /// Why StopBuild failed, if it did.
        stop_error: Option<String>,
    },
    /// The wait passed its deadline; the build was asked to stop.
    #[error("build {build_id} did not finish within {seconds} s (the resource's timeout){}", stop_note(.stop_error))]
    DeadlineExceeded {
        /// CodeBuild build id.
        build_id: String,
        /// Length of the wait that ran out.
        seconds: u64,
        /// Why StopBuild failed, if it did.
        stop_error: Option<String>,
    },
    /// The build succeeded but reported no pushed digest (no IMAGE_DIGEST export, no marker line).
    #[error(
        "build {build_id} succeeded but reported no pushed image digest; see its log: {logs_url}"
    )]
    MissingDigest {
        /// CodeBuild build id.
        build_id: String,
        /// Where its log is.
        logs_url: String,
    },
    /// CodeBuild does not know this build id.
    #[error("CodeBuild has no build {0}")]
    BuildNotFound(String),
}

fn stop_note(stop_error: &Option<String>) -> String {
    match stop_error {
        None => "; StopBuild was sent".to_string(),
        Some(e) => format!("; StopBuild failed, stop it by hand: {e}"),
    }
}

/// A build that ended badly: where, why, and the end of its log.
#[derive(Debug, Clone, PartialEq)]
pub struct BuildFailure {
    /// CodeBuild build id.
    pub build_id: String,
    /// Final status (FAILED, FAULT, TIMED_OUT or STOPPED).
    pub state: BuildState,
    /// The phase that failed, e.g. `BUILD`.
    pub phase: Option<String>,
    /// That phase's context status code, e.g. `COMMAND_EXECUTION_ERROR`.
    pub context_code: Option<String>,
    /// That phase's context message, e.g. the failing command and exit status.
    pub context_message: Option<String>,
    /// The last log lines (at most 30), oldest first.
    pub log_tail: Vec<String>,
    /// Console link to the whole log.
    pub logs_url: String,
}

impl fmt::Display for BuildFailure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "CodeBuild build {} {}", self.build_id, self.state)?;
        if let Some(phase) = &self.phase {
            write!(f, " in phase {phase}")?;
        }
        match (&self.context_code, &self.context_message) {
            (Some(c), Some(m)) => write!(f, ": {c}: {m}")?,
            (None, Some(m)) => write!(f, ": {m}")?,
            (Some(c), None) => write!(f, ": {c}")?,
            (None, None) => {}
        }
        if !self.log_tail.is_empty() {
            write!(f, "\nlast {} log lines:", self.log_tail.len())?;
            for line in &self.log_tail {
                write!(f, "\n  {line}")?;
            }
        }
        write!(f, "\nfull log: {}", self.logs_url)
    }
}

impl RemoteError {
    /// Turns an SDK error into AccessDenied or Aws, naming the action and resource.
    pub(crate) fn from_sdk<E, R>(action: &str, resource: &str, err: SdkError<E, R>) -> RemoteError
    where
        E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
        R: fmt::Debug,
    {
        let code = err.code().map(str::to_string);
        let message = err
            .message()
            .map(str::to_string)
            .unwrap_or_else(|| DisplayErrorContext(&err).to_string());
        if is_access_denied(code.as_deref()) {
            return RemoteError::AccessDenied {
                action: action.to_string(),
                resource: resource.to_string(),
                message,
            };
        }
        RemoteError::Aws {
            action: action.to_string(),
            resource: resource.to_string(),
            code,
            message,
        }
    }

    /// The AWS error code, when this is an AWS error that carried one.
    pub fn aws_code(&self) -> Option<&str> {
        match self {
            RemoteError::Aws { code, .. } => code.as_deref(),
            RemoteError::AccessDenied { .. } => Some("AccessDenied"),
            _ => None,
        }
    }
}

fn is_access_denied(code: Option<&str>) -> bool {
    matches!(
        code,
        Some(
            "AccessDenied"
                | "AccessDeniedException"
                | "UnauthorizedOperation"
                | "UnrecognizedClientException"
                | "InvalidAccessKeyId"
                | "SignatureDoesNotMatch"
                | "ExpiredToken"
                | "ExpiredTokenException"
        )
    )
}
