//! `imagebuild:index:FastContainerImage`: the context goes to S3 (content-addressed) and the image
//! is built on AWS CodeBuild and pushed to ECR; `pulumi up` may return before the build ends.

use super::build_summary::Outcome;
use super::diff::{DiffKind, DiffResult};
use super::image_args::{
    self, finish_check, read_build_inputs, validate_repository, BuildInputs, BuildSite,
};
use super::image_diff;
use super::inputs::{Failure, Field, InputReader};
use super::outputs::Computed;
use super::progress::human_bytes;
use super::pushed_image;
use super::redact::{redactor_for_inputs, Redactor};
use super::state::{self, Built, State};
use super::stored::{text, StoredImage};
use super::{imported, Call, CheckResult, ReadResult, Reporter, Resource, ResourceError, Services};
use crate::context::{named_archive_dirs, tar_stream_with_named, ContextSnapshot};
use crate::local::dockerfile_in_tar_with;
use crate::plan::Plan;
use crate::registry::{BasicCredentials, ImageName, Registry};
use crate::remote::{
    self, build_status, upload_context, wait_build, BuildState, ProjectChoice, RemoteBuildSpec,
    RemoteClients, RemoteContextSource, RemoteNamedContext, RemoteProgress, RemoteSecret,
    SecretKind, UploadOptions, UploadTarget, WaitOptions,
};
use crate::values::{PropertyMap, Value};
use std::sync::Arc;
use tokio::time::Instant;

/// The resource's type token.
pub const TOKEN: &str = "imagebuild:index:FastContainerImage";

/// The FastContainerImage resource: its lifecycle is the [`Resource`] implementation below.
pub struct FastContainerImage;

/// Every input property (schema `inputProperties`).
pub const INPUT_NAMES: [&str; 20] = [
    "context",
    "dockerfile",
    "dockerfileInline",
    "buildArgs",
    "target",
    "platform",
    "contexts",
    "repository",
    "registryAuth",
    "contextBucket",
    "contextPrefix",
    "codebuildProject",
    "serviceRoleArn",
    "computeType",
    "buildImage",
    "wait",
    "buildTimeoutMinutes",
    "cacheRef",
    "secrets",
    "deleteOnDestroy",
];

crate::computed_outputs! {
    /// What a FastContainerImage computes (its other outputs echo its inputs), and when each is
    /// secret.
    pub struct FastComputed {
        /// The context hash, which is also the image's hash tag.
        context_hash: String = derived("contextHash"),
        /// `repository@digest`, or `repository:<hash>` until the digest is known.
        image_uri: String = derived("imageUri"),
        /// The pushed manifest's digest; null until an unwatched build is seen to finish.
        digest: Option<String> = derived("digest"),
        /// The CodeBuild build id (empty when adopted).
        build_id: String = plain("buildId"),
        /// The build's status when the state was written.
        build_status: String = plain("buildStatus"),
        /// Where the build's logs are.
        logs_url: String = plain("logsUrl"),
        /// The S3 object holding the context.
        context_object: String = derived("contextObject"),
        /// Bytes uploaded to S3.
        upload_bytes: u64 = plain("uploadBytes"),
        /// True when S3 already had the context.
        upload_skipped: bool = plain("uploadSkipped"),
        /// Seconds the build queued.
        queued_seconds: f64 = plain("queuedSeconds"),
        /// Seconds the build ran.
        build_seconds: f64 = plain("buildSeconds"),
        /// True when the registry already had the hash and nothing was built.
        adopted: bool = plain("adopted"),
        /// The platform built for.
        platform: String = derived("platform"),
        /// Build steps served from the cache; null until a waited-for build finished.
        cached_steps: Option<u64> = plain("cachedSteps"),
        /// Build steps in all; null until a waited-for build finished.
        total_steps: Option<u64> = plain("totalSteps"),
        /// This resource's claim tag on its digest.
        claim_tag: String = plain("claimTag"),
    }
}

/// Output properties computed by the provider (the rest echo the inputs), and when each is secret.
pub const COMPUTED_OUTPUTS: &[Computed] = FastComputed::TABLE;

const DEFAULT_PREFIX: &str = "imagebuild/contexts";
const DEFAULT_COMPUTE: &str = "BUILD_GENERAL1_SMALL";
const DEFAULT_TIMEOUT_MINUTES: u64 = 60;
/// Time a waited-for build may take beyond its `buildTimeoutMinutes` (queue, provisioning, upload).
const WAIT_MARGIN: std::time::Duration = std::time::Duration::from_secs(15 * 60);

/// Build status recorded when the registry already had the image.
const ADOPTED_STATUS: &str = "SUCCEEDED";

/// The validated inputs of one FastContainerImage.
#[derive(Clone, Debug)]
struct FastInputs {
    build: BuildInputs,
    repository: String,
    registry_auth: Option<BasicCredentials>,
    bucket: String,
    prefix: String,
    project: ProjectChoice,
    wait: bool,
    timeout_minutes: u32,
    cache_ref: Option<String>,
    secrets: Vec<RemoteSecret>,
}

fn read_inputs(r: &mut InputReader) -> Option<FastInputs> {
    let build = read_build_inputs(r);
    let repository = r.string("repository");
    let registry_auth = image_args::read_registry_auth(r);
    let bucket = r.string("contextBucket");
    let prefix = r.string("contextPrefix");
    let project = read_project(r);
    let wait = r.bool("wait");
    let timeout = r.count("buildTimeoutMinutes");
    let cache_ref = r.string("cacheRef");
    let secrets = read_secrets(r);
    let _ = r.bool("deleteOnDestroy");

    let repository = match repository {
        Field::Known(repo) => match validate_repository(&repo) {
            Ok(()) => Some(repo),
            Err(reason) => {
                r.fail("repository", reason);
                None
            }
        },
        Field::Absent => {
            r.fail(
                "repository",
                "`repository` is required: the ECR repository to push to, e.g. \
                 \"123456789012.dkr.ecr.us-east-1.amazonaws.com/app\"",
            );
            None
        }
        Field::Unknown => None,
    };
    let bucket = match bucket {
        Field::Known(b) if !b.is_empty() => Some(b),
        Field::Unknown => None,
        _ => {
            r.fail(
                "contextBucket",
                "`contextBucket` is required: the S3 bucket that receives build contexts \
                 (CodeBuild's role must be able to read it)",
            );
            None
        }
    };
    let timeout_minutes = match timeout.or_default_known(DEFAULT_TIMEOUT_MINUTES)? {
        t @ 5..=2160 => t as u32,
        t => {
            r.fail(
                "buildTimeoutMinutes",
                format!("`buildTimeoutMinutes` must be between 5 and 2160 (CodeBuild's limits), got {t}"),
            );
            return None;
        }
    };
    Some(FastInputs {
        build: build?,
        repository: repository?,
        registry_auth: registry_auth?,
        bucket: bucket?,
        prefix: prefix.or_default_known(DEFAULT_PREFIX.to_string())?,
        project: project?,
        wait: wait.or_default_known(true)?,
        timeout_minutes,
        cache_ref: match cache_ref {
            Field::Known(c) if !c.is_empty() => Some(c),
            Field::Unknown => return None,
            _ => None,
        },
        secrets: secrets?,
    })
}

fn read_project(r: &mut InputReader) -> Option<ProjectChoice> {
    let existing = r.string("codebuildProject");
    let role = r.string("serviceRoleArn");
    let compute = r.string("computeType");
    let image = r.string("buildImage");
    match (existing, role) {
        (Field::Known(_), Field::Known(_)) => {
            r.fail(
                "serviceRoleArn",
                "set either `codebuildProject` (an existing CodeBuild project, which has its own \
                 role) or `serviceRoleArn` (the provider creates and maintains the project), not \
                 both",
            );
            None
        }
        (Field::Known(name), _) => {
            for (field, property) in [(&compute, "computeType"), (&image, "buildImage")] {
                if matches!(field, Field::Known(_)) {
                    r.fail(
                        property,
                        format!(
                            "`{property}` configures the project the provider creates; the \
                             existing project `{name}` has its own: unset `{property}` or use \
                             `serviceRoleArn` instead of `codebuildProject`"
                        ),
                    );
                }
            }
            Some(ProjectChoice::Existing(name))
        }
        (Field::Absent, Field::Known(role)) => Some(ProjectChoice::Managed {
            service_role_arn: role,
            compute_type: compute.or_default_known(DEFAULT_COMPUTE.to_string())?,
            image: image.or_default_known(String::new())?,
        }),
        (Field::Absent, Field::Absent) => {
            r.fail(
                "codebuildProject",
                "set `codebuildProject` (an existing CodeBuild project) or `serviceRoleArn` (the \
                 provider then creates and maintains one shared project per platform)",
            );
            None
        }
        _ => None,
    }
}

fn read_secrets(r: &mut InputReader) -> Option<Vec<RemoteSecret>> {
    let map = match r.object("secrets") {
        Field::Known(m) => m,
        Field::Absent => return Some(Vec::new()),
        Field::Unknown => return None,
    };
    let mut out = Vec::new();
    for (id, value) in &map {
        let reference = match value.reveal() {
            Value::Object(m) => m,
            _ => PropertyMap::new(),
        };
        let param = text(&reference, "parameterStore");
        let manager = text(&reference, "secretsManager");
        let (kind, reference) = match (param, manager) {
            (Some(p), None) => (SecretKind::ParameterStore, p),
            (None, Some(s)) => (SecretKind::SecretsManager, s),
            _ => {
                r.fail(
                    format!("secrets.{id}"),
                    format!(
                        "secret `{id}` needs exactly one of `parameterStore` (an SSM parameter name) \
                         or `secretsManager` (a Secrets Manager id); values never travel in plain text"
                    ),
                );
                continue;
            }
        };
        out.push(RemoteSecret {
            id: id.clone(),
            kind,
            reference,
        });
    }
    Some(out)
}

fn failures_of(news: &PropertyMap) -> (Option<FastInputs>, Vec<Failure>) {
    let mut r = InputReader::new(news);
    let inputs = read_inputs(&mut r);
    (inputs, r.into_failures())
}

#[async_trait::async_trait]
impl Resource for FastContainerImage {
    fn token(&self) -> &'static str {
        TOKEN
    }

    /// Check: validates, fills defaults and hashes the context (no upload in preview).
    async fn check(&self, services: &Services, news: &PropertyMap) -> CheckResult {
        let mut r = InputReader::new(news);
        r.reject_unknown_names(&INPUT_NAMES);
        let inputs = read_inputs(&mut r);
        let prefix = ("contextPrefix", Value::from(DEFAULT_PREFIX));
        let defaults: Vec<_> = IMPORT_DEFAULTS.iter().cloned().chain([prefix]).collect();
        finish_check(
            services,
            BuildSite::Remote,
            news,
            r.into_failures(),
            inputs.map(|i| i.build),
            &defaults,
        )
        .await
    }

    /// Diff: like ContainerImage; a remote build that ended badly also needs another run.
    async fn diff(
        &self,
        services: &Services,
        call: &Call,
        olds: &PropertyMap,
        old_inputs: &PropertyMap,
        news: &PropertyMap,
    ) -> DiffResult {
        let mut result = image_diff::diff_image(
            services,
            BuildSite::Remote,
            call,
            olds,
            old_inputs,
            news,
            &INPUT_NAMES,
        )
        .await;
        let failed = StoredImage::parse(olds).build_status.is_some_and(|s| {
            let state = BuildState::from_name(&s);
            state.is_final() && state != BuildState::Succeeded
        });
        if failed {
            result.record("buildStatus", DiffKind::Update, false);
        }
        result
    }

    async fn build_or_adopt(
        &self,
        services: &Services,
        call: &Call,
        news: &PropertyMap,
        preview: bool,
    ) -> Result<Built, ResourceError> {
        build_or_adopt(services, call, news, preview).await
    }

    /// Read (refresh): a build still running is asked about (status, digest); a finished image is
    /// checked in the registry like ContainerImage.
    async fn read(
        &self,
        services: &Services,
        call: &Call,
        id: &str,
        outputs: &PropertyMap,
    ) -> Result<ReadResult, ResourceError> {
        if imported::is_import(outputs) {
            return import(services, call, id).await;
        }
        let mut computed = FastComputed::parse(outputs);
        let stored = StoredImage::parse(outputs);
        if let Some(build_id) = stored.running_build() {
            let clients = services.remote().await.map_err(ResourceError::Failed)?;
            let status = build_status(&clients, build_id)
                .await
                .map_err(|e| ResourceError::Failed(format!("refresh of build {build_id}: {e}")))?;
            let Some(status) = status else {
                return Err(ResourceError::Failed(format!(
                    "CodeBuild no longer knows build {build_id}; the resource is kept in state"
                )));
            };
            computed.build_status = Field::Known(status.state.as_str().into());
            computed.queued_seconds = Field::Known(status.queued_seconds);
            computed.build_seconds = Field::Known(status.build_seconds);
            if let (Some(digest), Some(repo)) = (&status.digest, &stored.repository) {
                computed.digest = Field::Known(Some(digest.clone()));
                computed.image_uri = Field::Known(format!("{repo}@{digest}"));
            }
        }
        // The stored inputs travel with the outputs: what derives from a secret one stays secret.
        let state = State::stored(outputs, &INPUT_NAMES, &[], Box::new(computed));
        let stored = StoredImage::parse(&state.to_outputs());
        let present = pushed_image::still_in_registry(services, call, &stored).await?;
        if !present {
            return Ok(None);
        }
        let read = Built {
            id: id.to_string(),
            state,
        };
        // A build that finished unwatched (`wait: false`) claims its digest once it is known.
        let read = pushed_image::claim_if_unclaimed(services, call, read).await;
        Ok(Some(read.into_created().into()))
    }

    /// Delete: removes the pushed image only with `deleteOnDestroy`; a build still running is stopped.
    async fn delete(
        &self,
        services: &Services,
        call: &Call,
        outputs: &PropertyMap,
    ) -> Result<(), ResourceError> {
        let stored = StoredImage::parse(outputs);
        if let Some(build_id) = stored.running_build() {
            let clients = services.remote().await.map_err(ResourceError::Failed)?;
            let (tx, _rx) = tokio::sync::mpsc::unbounded_channel();
            if let Some(problem) = remote::stop(&clients, build_id, &tx).await {
                call.reporter.warn(&problem);
            }
        }
        pushed_image::delete(services, call, &stored).await
    }
}

/// Adopt, or upload and build remotely (waiting or not).
async fn build_or_adopt(
    services: &Services,
    call: &Call,
    news: &PropertyMap,
    preview: bool,
) -> Result<Built, ResourceError> {
    let (inputs, failures) = failures_of(news);
    if !failures.is_empty() {
        let text: Vec<String> = failures.into_iter().map(|f| f.reason).collect();
        return Err(ResourceError::Invalid(text.join("; ")));
    }
    let plan = match &inputs {
        Some(i) => {
            Some(image_args::plan_for(services, call, BuildSite::Remote, &i.build, news).await?)
        }
        None => None,
    };
    if preview {
        if plan.is_some() {
            services.tally.record(&call.urn, Outcome::WouldBuild);
        }
        return Ok(Built {
            id: String::new(),
            state: preview_state(news, plan.as_ref().map(|p| &p.snapshot)),
        });
    }
    let (Some(inputs), Some(plan)) = (inputs, plan) else {
        return Err(ResourceError::Invalid(
            "some inputs are still unknown outside preview".into(),
        ));
    };
    let snap = &plan.snapshot;
    let name = ImageName::parse(&inputs.repository)
        .map_err(|e| ResourceError::Invalid(format!("`repository`: {e}")))?;
    let redactor = redactor_for_inputs(
        news,
        inputs.registry_auth.iter().map(|a| a.password.clone()),
    );
    let fail = |e: String| ResourceError::Failed(redactor.apply(&e));

    if let Some(digest) = adoptable(services, call, &inputs, &name, snap)
        .await
        .map_err(fail)?
    {
        call.reporter.status(
            "registry already has this context's image: adopted, nothing uploaded or built",
        );
        services.report_outcome(call, Outcome::Adopted);
        return Ok(finish(news, &inputs, snap, BuildRecord::adopted(&digest)));
    }

    let clients = services.remote().await.map_err(fail)?;
    let upload = upload(&clients, call, &inputs, &plan).await.map_err(fail)?;
    let spec = build_spec(&name, &inputs, &plan, &upload.object_uri);
    call.reporter.status("starting the CodeBuild build");
    let started = remote::start_build(&clients, &spec)
        .await
        .map_err(|e| fail(e.to_string()))?;
    let mut record = BuildRecord {
        build_id: started.build_id.clone(),
        status: BuildState::InProgress.as_str().to_string(),
        logs_url: started.logs_url.clone(),
        context_object: upload.object_uri.clone(),
        upload_bytes: upload.bytes,
        upload_skipped: upload.skipped,
        digest: None,
        queued_seconds: 0.0,
        build_seconds: 0.0,
        adopted: false,
        steps: None,
    };
    follow_build(&clients, call, services, &inputs, &redactor, &mut record).await?;
    Ok(finish(news, &inputs, snap, record))
}

/// The digest the registry serves for this context's hash tag, if it has it.
async fn adoptable(
    services: &Services,
    call: &Call,
    inputs: &FastInputs,
    name: &ImageName,
    snap: &ContextSnapshot,
) -> Result<Option<String>, String> {
    let registry = Registry::new(pushed_image::registry_config(
        services,
        name,
        inputs.registry_auth.clone(),
    ));
    call.reporter
        .status("asking the registry for this context's image");
    registry
        .manifest_digest(name, &snap.hash)
        .await
        .map_err(|e| format!("checking {}:{} failed: {e}", inputs.repository, snap.hash))
}

/// With `wait`, waits for the build and fills `record` in from how it ended; either way, says
/// on the row how it came out.
async fn follow_build(
    clients: &RemoteClients,
    call: &Call,
    services: &Services,
    inputs: &FastInputs,
    redactor: &Redactor,
    record: &mut BuildRecord,
) -> Result<(), ResourceError> {
    if !inputs.wait {
        let build_id = record.build_id.clone();
        services.report_outcome(call, Outcome::Started { build_id });
        return Ok(());
    }
    let finished = wait(
        clients,
        call,
        services,
        &record.build_id,
        inputs.timeout_minutes,
        redactor,
    )
    .await
    .inspect_err(|_| services.tally.record(&call.urn, Outcome::Failed))?;
    services.report_outcome(
        call,
        Outcome::Built {
            seconds: finished.build_seconds,
            steps: Some(finished.steps),
            pushed_bytes: None,
            site: "on CodeBuild",
        },
    );
    record.steps = Some(finished.steps);
    record.status = finished.state.as_str().to_string();
    record.digest = Some(finished.digest);
    record.queued_seconds = finished.queued_seconds;
    record.build_seconds = finished.build_seconds;
    Ok(())
}

async fn upload(
    clients: &RemoteClients,
    call: &Call,
    inputs: &FastInputs,
    plan: &Plan,
) -> Result<remote::UploadOutcome, String> {
    let snap = &plan.snapshot;
    let target = UploadTarget {
        bucket: inputs.bucket.clone(),
        prefix: inputs.prefix.clone(),
        context_hash: snap.hash.clone(),
    };
    call.reporter.status(&format!(
        "uploading the context ({} files, {})",
        snap.files,
        human_bytes(snap.bytes)
    ));
    // The Dockerfile the build reads: FROM images pinned to the digests that were hashed.
    let (_, extra) = dockerfile_in_tar_with(snap, plan.build_dockerfile.as_ref());
    let body_snap = snap.clone();
    // Named local contexts travel in the same archive, under `.imagebuild-contexts/<i>/`.
    let outcome = upload_context(clients, &target, UploadOptions::default(), move || {
        tar_stream_with_named(&body_snap, extra.into_iter().collect(), true)
    })
    .await
    .map_err(|e| e.to_string())?;
    call.reporter.status(&if outcome.skipped {
        format!("context already in {}: upload skipped", outcome.object_uri)
    } else {
        format!(
            "uploaded {} to {}",
            human_bytes(outcome.bytes),
            outcome.object_uri
        )
    });
    Ok(outcome)
}

fn build_spec(
    name: &ImageName,
    inputs: &FastInputs,
    plan: &Plan,
    object_uri: &str,
) -> RemoteBuildSpec {
    let snap = &plan.snapshot;
    let (dockerfile, _) = dockerfile_in_tar_with(snap, plan.build_dockerfile.as_ref());
    RemoteBuildSpec {
        context_hash: snap.hash.clone(),
        context_object: object_uri.to_string(),
        repository: name.clone(),
        hash_tag: snap.hash.clone(),
        dockerfile,
        project: inputs.project.clone(),
        platform: Some(inputs.build.platform.clone()),
        target: inputs.build.target.clone(),
        build_args: inputs.build.build_args.clone(),
        timeout_minutes: inputs.timeout_minutes,
        cache_ref: inputs.cache_ref.clone(),
        secrets: inputs.secrets.clone(),
        named_contexts: named_contexts(plan),
    }
}

/// The named contexts the Dockerfile uses: archived local directories (what the plan hashed),
/// then image references (digest-pinned where a registry resolved the digest that was hashed).
fn named_contexts(plan: &Plan) -> Vec<RemoteNamedContext> {
    let dirs = named_archive_dirs(&plan.snapshot)
        .into_iter()
        .map(|(name, dir)| RemoteNamedContext {
            name,
            source: RemoteContextSource::Archive(dir),
        });
    let images = plan
        .image_contexts
        .clone()
        .into_iter()
        .map(|(name, image)| RemoteNamedContext {
            name,
            source: RemoteContextSource::Image(image),
        });
    dirs.chain(images).collect()
}

/// How long a `wait=true` Create waits: the program's custom timeout, else the build's own
/// `buildTimeoutMinutes` plus [`WAIT_MARGIN`] for queueing, provisioning and finalizing (CodeBuild
/// stops the build itself at its timeout; waiting less would abandon a build that may succeed).
fn wait_limit(call: &Call, timeout_minutes: u32) -> std::time::Duration {
    call.timeout
        .unwrap_or(std::time::Duration::from_secs(u64::from(timeout_minutes) * 60) + WAIT_MARGIN)
}

async fn wait(
    clients: &RemoteClients,
    call: &Call,
    services: &Services,
    build_id: &str,
    timeout_minutes: u32,
    redactor: &Redactor,
) -> Result<remote::FinishedBuild, ResourceError> {
    let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
    let forwarder = tokio::spawn(forward(rx, call.reporter.clone(), redactor.clone()));
    let options = WaitOptions {
        deadline: Some(Instant::now() + wait_limit(call, timeout_minutes)),
        ..WaitOptions::default()
    };
    let cancel = services.cancel.child_token();
    let result = wait_build(clients, build_id, tx, cancel.clone(), options).await;
    let _ = forwarder.await;
    result.map_err(|e| {
        let message = redactor.apply(&e.to_string());
        if cancel.is_cancelled() {
            ResourceError::Cancelled(message)
        } else {
            ResourceError::Failed(message)
        }
    })
}

async fn forward(
    mut rx: tokio::sync::mpsc::UnboundedReceiver<RemoteProgress>,
    reporter: Arc<dyn Reporter>,
    redactor: Redactor,
) {
    let mut phase = String::from("SUBMITTED");
    while let Some(event) = rx.recv().await {
        let line = match event {
            RemoteProgress::Phase(p) => {
                phase = p;
                format!("CodeBuild: {phase}")
            }
            RemoteProgress::Log(l) => format!("CodeBuild {phase} | {}", l.trim()),
            RemoteProgress::Stopping => "stopping the CodeBuild build".to_string(),
        };
        reporter.status(&redactor.apply(&line));
    }
}

/// What is known about the remote build behind this resource.
struct BuildRecord {
    build_id: String,
    status: String,
    logs_url: String,
    context_object: String,
    upload_bytes: u64,
    upload_skipped: bool,
    digest: Option<String>,
    queued_seconds: f64,
    build_seconds: f64,
    adopted: bool,
    /// Steps the build log showed (None until a waited-for build finished).
    steps: Option<crate::steps::StepCounts>,
}

impl BuildRecord {
    fn adopted(digest: &str) -> Self {
        BuildRecord {
            build_id: String::new(),
            status: ADOPTED_STATUS.to_string(),
            logs_url: String::new(),
            context_object: String::new(),
            upload_bytes: 0,
            upload_skipped: true,
            digest: Some(digest.to_string()),
            queued_seconds: 0.0,
            build_seconds: 0.0,
            adopted: true,
            steps: Some(Default::default()),
        }
    }
}

fn echo_inputs(news: &PropertyMap) -> PropertyMap {
    image_args::echo_inputs(news, &INPUT_NAMES, &[])
}

/// Check's defaults that an import records too (the context prefix is no fact of the image).
const IMPORT_DEFAULTS: [(&str, Value); 2] = [
    ("wait", Value::Bool(true)),
    ("deleteOnDestroy", Value::Bool(false)),
];

/// Import: the image the id names, as its registry shows it (see [`imported`]); recorded as an
/// adopted image, since no CodeBuild build of it is known.
async fn import(services: &Services, call: &Call, id: &str) -> Result<ReadResult, ResourceError> {
    let Some(found) = imported::find(services, call, id).await? else {
        return Ok(None);
    };
    let mut computed = FastComputed::parse(&PropertyMap::new());
    computed.context_hash = found
        .context_hash
        .clone()
        .map_or(Field::Absent, Field::Known);
    computed.image_uri = Field::Known(found.image_uri());
    computed.digest = Field::Known(Some(found.digest.clone()));
    computed.build_id = Field::Known(String::new());
    computed.build_status = Field::Known(ADOPTED_STATUS.into());
    computed.adopted = Field::Known(true);
    computed.platform = Field::Known(found.platform());
    Ok(Some(found.answer(
        &IMPORT_DEFAULTS,
        echo_inputs,
        Box::new(computed),
    )))
}

/// What preview knows: the hash (when the context could be hashed) and the platform.
fn preview_state(news: &PropertyMap, snap: Option<&ContextSnapshot>) -> State {
    let mut computed = FastComputed::unknown();
    if let Some(snap) = snap {
        computed.context_hash = Field::Known(snap.hash.clone());
    }
    if news.contains_key("platform") {
        computed.platform = state::stored(news, "platform");
    }
    State::new(echo_inputs(news), news, Box::new(computed))
}

fn finish(
    news: &PropertyMap,
    inputs: &FastInputs,
    snap: &ContextSnapshot,
    record: BuildRecord,
) -> Built {
    let uri = match &record.digest {
        Some(d) => format!("{}@{d}", inputs.repository),
        None => format!("{}:{}", inputs.repository, snap.hash),
    };
    let count = |n: Option<u32>| n.map(u64::from);
    let id = if record.build_id.is_empty() {
        uri.clone()
    } else {
        record.build_id.clone()
    };
    let computed = FastComputed {
        context_hash: Field::Known(snap.hash.clone()),
        image_uri: Field::Known(uri),
        digest: Field::Known(record.digest),
        build_id: Field::Known(record.build_id),
        build_status: Field::Known(record.status),
        logs_url: Field::Known(record.logs_url),
        context_object: Field::Known(record.context_object),
        upload_bytes: Field::Known(record.upload_bytes),
        upload_skipped: Field::Known(record.upload_skipped),
        queued_seconds: Field::Known(record.queued_seconds),
        build_seconds: Field::Known(record.build_seconds),
        adopted: Field::Known(record.adopted),
        platform: Field::Known(inputs.build.platform.clone()),
        cached_steps: Field::Known(count(record.steps.map(|s| s.cached))),
        total_steps: Field::Known(count(record.steps.map(|s| s.total))),
        claim_tag: Field::Absent,
    };
    let state = State::new(echo_inputs(news), news, Box::new(computed));
    Built { id, state }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_waited_build_gets_its_build_timeout_unless_the_program_sets_one() {
        let call = |timeout| Call {
            urn: "urn:pulumi:s::p::imagebuild:index:FastContainerImage::x".into(),
            reporter: crate::engine_log::EngineLog::start(None).reporter("x"),
            timeout,
        };
        let minutes = |d: std::time::Duration| d.as_secs() / 60;
        // No custom timeout: the build's own limit (up to CodeBuild's 2160) plus the margin.
        assert_eq!(minutes(wait_limit(&call(None), 2160)), 2160 + 15);
        assert_eq!(minutes(wait_limit(&call(None), 60)), 60 + 15);
        let custom = std::time::Duration::from_secs(7 * 60);
        assert_eq!(wait_limit(&call(Some(custom)), 2160), custom);
    }

    #[test]
    fn an_existing_project_refuses_the_managed_project_settings() {
        let mut news = PropertyMap::new();
        news.insert("context".into(), ".".into());
        news.insert("codebuildProject".into(), "builds".into());
        news.insert("serviceRoleArn".into(), "arn:aws:iam::1:role/r".into());
        let (_, failures) = failures_of(&news);
        assert!(
            failures
                .iter()
                .any(|f| f.property == "serviceRoleArn" && f.reason.contains("not both")),
            "{failures:?}"
        );
        news.remove("serviceRoleArn");
        news.insert("computeType".into(), "BUILD_GENERAL1_LARGE".into());
        let (_, failures) = failures_of(&news);
        assert!(
            failures
                .iter()
                .any(|f| f.property == "computeType"
                    && f.reason.contains("existing project `builds`")),
            "{failures:?}"
        );
    }

    #[test]
    fn contexts_are_an_input_checked_as_for_container_image() {
        assert!(INPUT_NAMES.contains(&"contexts"));
        let mut contexts = PropertyMap::new();
        contexts.insert("remote".into(), "https://example.com/x.tar".into());
        contexts.insert("ok".into(), "docker-image://busybox:1".into());
        let mut news = PropertyMap::new();
        news.insert("context".into(), ".".into());
        news.insert("contexts".into(), Value::Object(contexts));
        let (_, failures) = failures_of(&news);
        let named: Vec<_> = failures
            .iter()
            .filter(|f| f.property.starts_with("contexts"))
            .collect();
        assert_eq!(named.len(), 1, "{failures:?}");
        assert_eq!(named[0].property, "contexts.remote");
        assert!(named[0].reason.contains("docker-image://"));
    }

    #[test]
    fn outputs_computed_from_a_secret_input_are_secret() {
        let snap = ContextSnapshot {
            hash: "ab".repeat(32),
            files: 1,
            bytes: 1,
            root: "ctx".into(),
            entries: Arc::new(Vec::new()),
            used: Arc::new(Vec::new()),
            legacy_hash: "cd".repeat(32),
            reads: crate::context::ContextReads::whole("test"),
            ignore_file: None,
            dockerfile_contents: Arc::new(Vec::new()),
            dockerfile_path: None,
            dockerfile_in_context: None,
            named: Vec::new(),
        };
        let mut news = PropertyMap::new();
        news.insert("context".into(), Value::Secret(Box::new("ctx".into())));
        let out = preview_state(&news, Some(&snap)).to_outputs();
        assert!(matches!(out["contextHash"], Value::Secret(_)));
        news.insert("context".into(), "ctx".into());
        let out = preview_state(&news, Some(&snap)).to_outputs();
        assert_eq!(out["contextHash"], Value::from("ab".repeat(32)));
    }
}
