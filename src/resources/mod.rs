//! The resources this provider manages, each one type with check/diff/create/read/update/delete.
//!
//! Resources work on [`PropertyMap`]s and report through [`Reporter`]; they never see gRPC.

pub mod build_summary;
pub mod cache_input;
pub mod container_image;
pub mod diff;
pub mod fast_container_image;
pub mod image_args;
pub mod image_diff;
pub mod imported;
pub mod inputs;
pub mod outputs;
pub mod progress;
pub mod pushed_image;
pub mod redact;
pub mod snapshots;
pub mod ssh_input;
pub mod state;
pub mod stored;

use crate::config::ProviderConfig;
use crate::local::LocalEngine;
use crate::remote::{AwsEndpoints, RemoteClients};
use crate::values::PropertyMap;
use inputs::Failure;
use std::sync::{Arc, OnceLock};
use std::time::Duration;
use tokio_util::sync::CancellationToken;

/// One resource type's lifecycle, as the engine drives it. The provider keeps one table of these
/// keyed by [`Resource::token`]; each RPC decodes its request and calls the method of that name.
#[async_trait::async_trait]
pub trait Resource: Send + Sync {
    /// The resource's type token, e.g. `imagebuild:index:ContainerImage`.
    fn token(&self) -> &'static str;

    /// Check: validates `news`, fills defaults and computes what preview can know.
    async fn check(&self, services: &Services, news: &PropertyMap) -> CheckResult;

    /// Diff: what changed between the stored state (`olds`, `old_inputs`) and `news`.
    async fn diff(
        &self,
        services: &Services,
        call: &Call,
        olds: &PropertyMap,
        old_inputs: &PropertyMap,
        news: &PropertyMap,
    ) -> diff::DiffResult;

    /// Builds and pushes, or adopts what the registry already has for the hash; in preview
    /// only what can be known without building. Create and Update then claim the digest.
    async fn build_or_adopt(
        &self,
        services: &Services,
        call: &Call,
        news: &PropertyMap,
        preview: bool,
    ) -> Result<state::Built, ResourceError>;

    /// Create: [`Resource::build_or_adopt`], then a new claim tag on the digest.
    async fn create(
        &self,
        services: &Services,
        call: &Call,
        news: &PropertyMap,
        preview: bool,
    ) -> Result<Created, ResourceError> {
        let built = self.build_or_adopt(services, call, news, preview).await?;
        let claimed = pushed_image::claimed(services, call, built, None, preview).await;
        Ok(claimed.into_created())
    }

    /// Update of the resource whose stored outputs are `olds`: the same as Create (an
    /// unchanged hash adopts), keeping the claim tag of `olds`, which follows the new digest.
    async fn update(
        &self,
        services: &Services,
        call: &Call,
        olds: &PropertyMap,
        news: &PropertyMap,
        preview: bool,
    ) -> Result<Created, ResourceError> {
        let built = self.build_or_adopt(services, call, news, preview).await?;
        let held = stored::StoredImage::parse(olds).claim;
        let claimed = pushed_image::claimed(services, call, built, held, preview).await;
        Ok(claimed.into_created())
    }

    /// Read: a refresh of stored `outputs` (the resource as it is now, `None` when it is
    /// definitely gone), or an import when there are none (see [`imported`]).
    async fn read(
        &self,
        services: &Services,
        call: &Call,
        id: &str,
        outputs: &PropertyMap,
    ) -> Result<ReadResult, ResourceError>;

    /// Delete of the resource whose stored outputs are `outputs`.
    async fn delete(
        &self,
        services: &Services,
        call: &Call,
        outputs: &PropertyMap,
    ) -> Result<(), ResourceError>;
}

/// Every resource type this provider serves.
pub const RESOURCES: [&dyn Resource; 2] = [
    &container_image::ContainerImage,
    &fast_container_image::FastContainerImage,
];

/// Where a resource sends what the user should see while it works.
pub trait Reporter: Send + Sync {
    /// A transient status line on the resource's row (replaced by the next one).
    fn status(&self, text: &str);
    /// A message kept in the output.
    fn info(&self, text: &str);
    /// A warning kept in the output.
    fn warn(&self, text: &str);
}

/// Everything a resource operation may use, shared by all calls in this process.
pub struct Services {
    /// The provider configuration (Configure + environment).
    pub config: ProviderConfig,
    /// Context hashes computed in this process, reused by Check, Diff, Create and Update.
    pub snapshots: snapshots::SnapshotCache,
    /// Cancelled when the engine sends Cancel (Ctrl-C).
    pub cancel: CancellationToken,
    /// How each image came out in this run, for the stack's closing message.
    pub tally: build_summary::RunTally,
    local: OnceLock<LocalEngine>,
    remote: tokio::sync::OnceCell<Result<Arc<RemoteClients>, String>>,
}

impl Services {
    /// Services for a configured provider; `cancel` is the provider's Cancel signal.
    pub fn new(config: ProviderConfig, cancel: CancellationToken) -> Self {
        Self {
            config,
            snapshots: snapshots::SnapshotCache::default(),
            cancel,
            tally: build_summary::RunTally::default(),
            local: OnceLock::new(),
            remote: tokio::sync::OnceCell::new(),
        }
    }

    /// The AWS clients for remote builds (created on first use, with the configured endpoints).
    pub async fn remote(&self) -> Result<Arc<RemoteClients>, String> {
        self.remote
            .get_or_init(|| async {
                let c = &self.config;
                let endpoints = AwsEndpoints {
                    region: c.region.clone(),
                    s3: c.s3_endpoint.clone(),
                    codebuild: c.codebuild_endpoint.clone(),
                    logs: c.logs_endpoint.clone(),
                    ecr: c.ecr_endpoint.clone(),
                    max_attempts: None,
                };
                RemoteClients::new(&endpoints)
                    .await
                    .map(Arc::new)
                    .map_err(|e| e.to_string())
            })
            .await
            .clone()
    }

    /// The process-wide local build engine (created on first use: Check and Diff never need it).
    pub fn local(&self) -> &LocalEngine {
        self.local
            .get_or_init(|| LocalEngine::new(self.config.local_config()))
    }

    /// Records how the resource of `call` came out, and ends its row with the line saying so.
    pub fn report_outcome(&self, call: &Call, outcome: build_summary::Outcome) {
        if let Some(line) = outcome.row_line() {
            call.reporter.info(&line);
        }
        self.tally.record(&call.urn, outcome);
    }
}

/// Local builds get this long when the program sets no custom timeout.
pub const LOCAL_BUILD_TIMEOUT: Duration = Duration::from_secs(60 * 60);

/// Facts about one engine call that every resource operation receives.
pub struct Call {
    /// The resource's URN.
    pub urn: String,
    /// Where progress goes.
    pub reporter: Arc<dyn Reporter>,
    /// The custom timeout, if the program set one.
    pub timeout: Option<Duration>,
}

impl Call {
    /// A token cancelled by Cancel or when the custom timeout (else [`LOCAL_BUILD_TIMEOUT`])
    /// passes.
    pub fn cancel_token(&self, services: &Services) -> CancellationToken {
        let token = services.cancel.child_token();
        let timeout = self.timeout.unwrap_or(LOCAL_BUILD_TIMEOUT);
        let t = token.clone();
        tokio::spawn(async move {
            tokio::select! {
                _ = tokio::time::sleep(timeout) => t.cancel(),
                _ = t.cancelled() => {}
            }
        });
        token
    }
}

/// The answer to Check.
pub struct CheckResult {
    /// The inputs with defaults filled (and the context hash when it could be computed).
    pub inputs: PropertyMap,
    /// What is wrong with them.
    pub failures: Vec<Failure>,
}

/// The answer to Create or Update.
pub struct Created {
    /// The resource id.
    pub id: String,
    /// The outputs.
    pub outputs: PropertyMap,
}

/// What Read found: the resource and, for an import, the inputs the engine records for it
/// (a refresh keeps the inputs the engine already has).
pub struct Found {
    /// The id and outputs.
    pub resource: Created,
    /// The inputs, for an import.
    pub inputs: Option<PropertyMap>,
}

impl From<Created> for Found {
    fn from(resource: Created) -> Found {
        Found {
            resource,
            inputs: None,
        }
    }
}

/// The answer to Read: `None` when the resource is definitely gone (or, for an import, when the
/// registry has no such image).
pub type ReadResult = Option<Found>;

/// How a resource operation failed.
#[derive(Debug)]
pub enum ResourceError {
    /// The inputs are invalid; nothing happened.
    Invalid(String),
    /// The operation failed and nothing was created or changed.
    Failed(String),
    /// Something was made before the failure: the engine must keep it in state.
    Partial {
        /// The id of what exists.
        id: String,
        /// Its outputs.
        outputs: PropertyMap,
        /// Why the operation did not finish.
        reasons: Vec<String>,
    },
    /// The operation was cancelled or timed out.
    Cancelled(String),
}

impl std::fmt::Display for ResourceError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ResourceError::Invalid(m) | ResourceError::Failed(m) | ResourceError::Cancelled(m) => {
                f.write_str(m)
            }
            ResourceError::Partial { reasons, .. } => f.write_str(&reasons.join("; ")),
        }
    }
}
