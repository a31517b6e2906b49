//! AWS clients for the remote engine, built once per provider from the standard credential chain.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use aws_config::retry::RetryConfig;
use aws_config::timeout::TimeoutConfig;
use aws_config::{BehaviorVersion, Region};
use tokio::sync::Mutex;

use super::error::RemoteError;
use super::project::ManagedSettings;

/// Region and per-service endpoint overrides (for LocalStack or moto users); `None` means AWS's default.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AwsEndpoints {
    /// AWS region; `None` falls back to the standard chain (AWS_REGION, profile).
    pub region: Option<String>,
    /// S3 endpoint URL; when set, path-style addressing is used.
    pub s3: Option<String>,
    /// CodeBuild endpoint URL.
    pub codebuild: Option<String>,
    /// CloudWatch Logs endpoint URL.
    pub logs: Option<String>,
    /// ECR API endpoint URL.
    pub ecr: Option<String>,
    /// Attempts per call, retries included (throttling, 5xx, transport); `None` = 5.
    pub max_attempts: Option<u32>,
}

/// The S3, CodeBuild, CloudWatch Logs and ECR clients plus the region they use; cheap to clone.
#[derive(Clone, Debug)]
pub struct RemoteClients {
    /// S3 (context objects).
    pub s3: aws_sdk_s3::Client,
    /// CodeBuild (projects and builds).
    pub codebuild: aws_sdk_codebuild::Client,
    /// CloudWatch Logs (build log lines).
    pub logs: aws_sdk_cloudwatchlogs::Client,
    /// ECR API (DescribeImages).
    pub ecr: aws_sdk_ecr::Client,
    region: String,
    // Managed projects already created or updated by this process, so concurrent builds
    // of one platform do not race on CreateProject and later ones skip the round trip.
    pub(crate) ensured: Arc<Mutex<HashMap<String, ManagedSettings>>>,
}

impl RemoteClients {
    /// Loads credentials and region from the standard chain and applies the endpoint overrides.
    pub async fn new(endpoints: &AwsEndpoints) -> Result<RemoteClients, RemoteError> {
        let retry = RetryConfig::standard()
            .with_max_attempts(endpoints.max_attempts.unwrap_or(5).max(1))
            .with_initial_backoff(Duration::from_millis(200))
            .with_max_backoff(Duration::from_secs(20));
        let timeouts = TimeoutConfig::builder()
            .connect_timeout(Duration::from_secs(10))
            .build();
        let mut loader = aws_config::defaults(BehaviorVersion::latest())
            .retry_config(retry)
            .timeout_config(timeouts);
        if let Some(region) = &endpoints.region {
            loader = loader.region(Region::new(region.clone()));
        }
        let shared = loader.load().await;
        let region = shared.region().map(|r| r.to_string()).ok_or_else(|| {
            RemoteError::Invalid(
                "no AWS region: set the provider's region or AWS_REGION".to_string(),
            )
        })?;

        let mut s3 = aws_sdk_s3::config::Builder::from(&shared);
        if let Some(url) = &endpoints.s3 {
            // Custom endpoints (moto, LocalStack, MinIO) rarely resolve bucket subdomains.
            s3 = s3.endpoint_url(url).force_path_style(true);
        }
        let mut codebuild = aws_sdk_codebuild::config::Builder::from(&shared);
        if let Some(url) = &endpoints.codebuild {
            codebuild = codebuild.endpoint_url(url);
        }
        let mut logs = aws_sdk_cloudwatchlogs::config::Builder::from(&shared);
        if let Some(url) = &endpoints.logs {
            logs = logs.endpoint_url(url);
        }
        let mut ecr = aws_sdk_ecr::config::Builder::from(&shared);
        if let Some(url) = &endpoints.ecr {
            ecr = ecr.endpoint_url(url);
        }
        Ok(RemoteClients {
            s3: aws_sdk_s3::Client::from_conf(s3.build()),
            codebuild: aws_sdk_codebuild::Client::from_conf(codebuild.build()),
            logs: aws_sdk_cloudwatchlogs::Client::from_conf(logs.build()),
            ecr: aws_sdk_ecr::Client::from_conf(ecr.build()),
            region,
            ensured: Arc::default(),
        })
    }

    /// The region every client uses.
    pub fn region(&self) -> &str {
        &self.region
    }
}
