//! `imagebuild:index:ContainerImage`: built on this machine through Docker (BuildKit), pushed,
//! and skipped entirely when the context hash is unchanged or already in the registry.

use super::build_summary::Outcome;
use super::diff::DiffResult;
use super::image_args::{
    self, finish_check, read_build_inputs, validate_repository, validate_tag, BuildInputs,
    BuildSite,
};
use super::image_diff;
use super::inputs::{Failure, Field, InputReader};
use super::outputs::Computed;
use super::redact::{redactor_for_inputs, Redactor};
use super::state::{self, Built, State};
use super::stored::StoredImage;
use super::{imported, progress, pushed_image};
use super::{Call, CheckResult, ReadResult, Resource, ResourceError, Services};
use crate::context::ContextSnapshot;
use crate::local::{BuildSpec, LocalError, PublishSpec, Published};
use crate::registry::{BasicCredentials, ImageName};
use crate::values::{PropertyMap, Value};
use std::collections::BTreeMap;

/// The resource's type token.
pub const TOKEN: &str = "imagebuild:index:ContainerImage";

/// The ContainerImage resource: its lifecycle is the [`Resource`] implementation below.
pub struct ContainerImage;

/// Every input property (schema `inputProperties`).
pub const INPUT_NAMES: [&str; 18] = [
    "context",
    "dockerfile",
    "dockerfileInline",
    "buildArgs",
    "target",
    "platform",
    "labels",
    "contexts",
    "tags",
    "secrets",
    "ssh",
    "cacheFrom",
    "cacheTo",
    "noCache",
    "repository",
    "registryAuth",
    "push",
    "deleteOnDestroy",
];

crate::computed_outputs! {
    /// What a ContainerImage computes (its other outputs echo its inputs), and when each is secret.
    pub struct ImageComputed {
        /// The context hash, which is also the image's hash tag.
        context_hash: String = derived("contextHash"),
        /// The image's config digest (`sha256:...`).
        image_id: String = derived("imageId"),
        /// `repository@digest`; null when nothing was pushed.
        image_uri: Option<String> = derived("imageUri"),
        /// The pushed manifest's digest; null when nothing was pushed.
        digest: Option<String> = derived("digest"),
        /// The extra tags pushed, as full references (`repository:tag`).
        tags: Vec<String> = derived("tags"),
        /// The platform built for.
        platform: String = derived("platform"),
        /// Seconds the build took.
        build_seconds: f64 = plain("buildSeconds"),
        /// Bytes of the files the hash covers.
        context_bytes: u64 = plain("contextBytes"),
        /// Files the hash covers.
        context_files: u64 = plain("contextFiles"),
        /// Bytes sent to the builder for this build.
        context_bytes_sent: u64 = plain("contextBytesSent"),
        /// True when the registry already had the hash and nothing was built.
        adopted: bool = plain("adopted"),
        /// Build steps served from the cache.
        cached_steps: u64 = plain("cachedSteps"),
        /// Build steps in all.
        total_steps: u64 = plain("totalSteps"),
        /// Bytes of layers the push uploaded.
        pushed_bytes: u64 = plain("pushedBytes"),
        /// This resource's claim tag on its digest.
        claim_tag: String = plain("claimTag"),
    }
}

/// Output properties computed by the provider (the rest echo the inputs), and when each is secret.
pub const COMPUTED_OUTPUTS: &[Computed] = ImageComputed::TABLE;

/// Inputs that are never echoed into the outputs (so never in the state's outputs): where the
/// SSH agent lives is a fact about this machine, not about the image.
pub const INPUT_ONLY_NAMES: [&str; 1] = ["ssh"];

/// The validated inputs of one ContainerImage.
#[derive(Clone, Debug)]
pub struct ImageInputs {
    build: BuildInputs,
    tags: Vec<String>,
    secrets: BTreeMap<String, String>,
    ssh: Vec<crate::local::SshSpec>,
    cache_from: Vec<String>,
    cache_to: Option<crate::local::CacheTo>,
    no_cache: bool,
    repository: Option<String>,
    registry_auth: Option<BasicCredentials>,
    push: bool,
}

/// Reads `map`; `None` when something is unknown (preview) or invalid (see the reader's failures).
fn read_inputs(r: &mut InputReader) -> Option<ImageInputs> {
    let build = read_build_inputs(r);
    let tags = r.string_list("tags");
    let secrets = r.string_map("secrets");
    let ssh = super::ssh_input::read_ssh(r);
    let cache_from = r.string_list("cacheFrom");
    let cache_to = super::cache_input::read_cache_to(r);
    let no_cache = r.bool("noCache");
    let repository = r.string("repository");
    let registry_auth = image_args::read_registry_auth(r);
    let push = r.bool("push");
    // Read for validation only: Delete reads it from the stored outputs.
    let _ = r.bool("deleteOnDestroy");

    if let Field::Known(tags) = &tags {
        for (i, tag) in tags.iter().enumerate() {
            if let Err(reason) = validate_tag(tag) {
                r.fail(format!("tags[{i}]"), reason);
            }
        }
    }
    if let Field::Known(repo) = &repository {
        if let Err(reason) = validate_repository(repo) {
            r.fail("repository", reason);
        }
    }
    let push = push.or_default_known(true)?;
    if push && matches!(repository, Field::Absent) {
        r.fail(
            "repository",
            "`repository` is required when `push` is true (the default): set the repository to push \
             to, e.g. \"123456789012.dkr.ecr.us-east-1.amazonaws.com/app\", or set `push: false`",
        );
    }
    Some(ImageInputs {
        build: build?,
        tags: tags.or_default_known(Vec::new())?,
        secrets: secrets.or_default_known(BTreeMap::new())?,
        ssh: ssh?,
        cache_from: cache_from.or_default_known(Vec::new())?,
        cache_to: cache_to?,
        no_cache: no_cache.or_default_known(false)?,
        repository: match repository {
            Field::Known(r) => Some(r),
            Field::Absent => None,
            Field::Unknown => return None,
        },
        registry_auth: registry_auth?,
        push,
    })
}

#[async_trait::async_trait]
impl Resource for ContainerImage {
    fn token(&self) -> &'static str {
        TOKEN
    }

    /// Check: validates, fills defaults, and hashes the context so preview knows without building.
    async fn check(&self, services: &Services, news: &PropertyMap) -> CheckResult {
        let mut r = InputReader::new(news);
        r.reject_unknown_names(&INPUT_NAMES);
        let image = read_inputs(&mut r);
        let wants_cache_export = image.as_ref().is_some_and(|i| i.cache_to.is_some());
        let build = image.map(|i| i.build);
        let mut result = finish_check(
            services,
            BuildSite::LocalDaemon,
            news,
            r.into_failures(),
            build.clone(),
            &DEFAULTS,
        )
        .await;
        if let Some(build) = build.filter(|_| result.failures.is_empty()) {
            result
                .failures
                .extend(named_contexts_failure(services, news, &build).await);
        }
        if wants_cache_export && result.failures.is_empty() {
            result.failures.extend(cache_export_failure(services).await);
        }
        result
    }

    /// Diff: compares inputs and the context hash; names the changed files when it can.
    async fn diff(
        &self,
        services: &Services,
        call: &Call,
        olds: &PropertyMap,
        old_inputs: &PropertyMap,
        news: &PropertyMap,
    ) -> DiffResult {
        image_diff::diff_image(
            services,
            BuildSite::LocalDaemon,
            call,
            olds,
            old_inputs,
            news,
            &INPUT_NAMES,
        )
        .await
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

    /// Read (refresh): is the pushed digest still in the registry? Gone only on a definite not-found.
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
        let stored = StoredImage::parse(outputs);
        if !pushed_image::still_in_registry(services, call, &stored).await? {
            return Ok(None);
        }
        let computed = ImageComputed::parse(outputs);
        let read = Built {
            id: id.to_string(),
            state: State::stored(outputs, &INPUT_NAMES, &ECHO_SKIP, Box::new(computed)),
        };
        // State written before claim tags existed gets one on its first refresh.
        let read = pushed_image::claim_if_unclaimed(services, call, read).await;
        Ok(Some(read.into_created().into()))
    }

    /// Delete: removes the pushed image only with `deleteOnDestroy` (see [`pushed_image::delete`]).
    async fn delete(
        &self,
        services: &Services,
        call: &Call,
        outputs: &PropertyMap,
    ) -> Result<(), ResourceError> {
        pushed_image::delete(services, call, &StoredImage::parse(outputs)).await
    }
}

/// Check's defaults, which an import records for the inputs only the program knows.
const DEFAULTS: [(&str, Value); 2] = [
    ("push", Value::Bool(true)),
    ("deleteOnDestroy", Value::Bool(false)),
];

/// Import: the image the id names, as its registry shows it (see [`imported`]).
async fn import(services: &Services, call: &Call, id: &str) -> Result<ReadResult, ResourceError> {
    let Some(found) = imported::find(services, call, id).await? else {
        return Ok(None);
    };
    let mut computed = ImageComputed::parse(&PropertyMap::new());
    computed.context_hash = found
        .context_hash
        .clone()
        .map_or(Field::Absent, Field::Known);
    computed.image_id = Field::Known(found.image_id.clone());
    computed.image_uri = Field::Known(Some(found.image_uri()));
    computed.digest = Field::Known(Some(found.digest.clone()));
    computed.tags = Field::Known(found.tag_references());
    computed.platform = Field::Known(found.platform());
    computed.adopted = Field::Known(true);
    Ok(Some(found.answer(
        &DEFAULTS,
        echo_inputs,
        Box::new(computed),
    )))
}

/// A daemon that cannot export a registry cache fails Check, naming `cacheTo` and the engine;
/// a daemon that does not answer leaves it to the build.
async fn cache_export_failure(services: &Services) -> Option<Failure> {
    let refused = services.local().cache_export_supported().await.err()?;
    Some(Failure {
        property: "cacheTo".into(),
        reason: refused.to_string(),
    })
}

/// A daemon that cannot build named contexts fails Check (naming `contexts` and the engine)
/// when the Dockerfile reads one; a daemon that does not answer leaves it to the build.
async fn named_contexts_failure(
    services: &Services,
    news: &PropertyMap,
    build: &BuildInputs,
) -> Option<Failure> {
    if build.contexts.is_empty() {
        return None;
    }
    let lookup = image_args::base_lookup(services, BuildSite::LocalDaemon, news);
    let request = build.plan_request(services.config.cache_path());
    // Memoized: the same plan finish_check just made.
    let plan = services.snapshots.get(&request, &lookup).await.ok()?;
    if plan.snapshot.named.is_empty() && plan.image_contexts.is_empty() {
        return None;
    }
    let refused = services.local().named_contexts_supported().await.err()?;
    Some(Failure {
        property: "contexts".into(),
        reason: refused.to_string(),
    })
}

/// Builds and pushes, or adopts; in preview only hashes.
async fn build_or_adopt(
    services: &Services,
    call: &Call,
    news: &PropertyMap,
    preview: bool,
) -> Result<Built, ResourceError> {
    let mut r = InputReader::new(news);
    let image = read_inputs(&mut r);
    let failures = r.into_failures();
    if !failures.is_empty() {
        let text: Vec<String> = failures.into_iter().map(|f| f.reason).collect();
        return Err(ResourceError::Invalid(text.join("; ")));
    }
    let Some(image) = image else {
        if preview {
            return Ok(Built {
                id: String::new(),
                state: preview_state(news, None),
            });
        }
        return Err(ResourceError::Invalid(
            "some inputs are still unknown outside preview".into(),
        ));
    };
    let plan =
        image_args::plan_for(services, call, BuildSite::LocalDaemon, &image.build, news).await?;
    let snap = plan.snapshot.clone();
    if preview {
        services.tally.record(&call.urn, Outcome::WouldBuild);
        return Ok(Built {
            id: String::new(),
            state: preview_state(news, Some(&snap)),
        });
    }
    let redactor = redactor_for(news, &image);
    let repository = match &image.repository {
        Some(repo) => ImageName::parse(repo),
        // Unpushed images still need a local name; nothing is ever sent to this host.
        None => ImageName::parse("imagebuild.local/unpushed"),
    }
    .map_err(|e| ResourceError::Invalid(format!("`repository`: {e}")))?;
    let published = publish(services, call, &image, &plan, repository, &redactor).await;
    let published = published.map_err(|e| {
        services.tally.record(&call.urn, Outcome::Failed);
        failure(e, news, &image, &snap, &redactor)
    })?;
    self_check(services, call, &snap, &published).await;
    services.report_outcome(call, outcome(&image, &published));
    Ok(Built {
        id: resource_id(&image, &snap, &published),
        state: final_state(news, &image, &snap, &published),
    })
}

/// Compares what BuildKit read with what the hash covered; a miss is a warning now and makes the
/// next Check of this context and Dockerfile hash the whole context.
async fn self_check(
    services: &Services,
    call: &Call,
    snap: &ContextSnapshot,
    published: &Published,
) {
    let Some(miss) = crate::plan::check_transfers(snap, &published.transfers) else {
        return;
    };
    call.reporter.warn(&format!(
        "the build read more than its hash covers: {}; from now on this image's hash covers the \
         whole build context (please report this Dockerfile to the imagebuild maintainers)",
        miss.describe()
    ));
    let cache_dir = services.config.cache_path();
    let recorded = crate::plan::record_read_miss(
        cache_dir.as_deref(),
        &snap.root,
        &snap.dockerfile_contents,
        &miss,
    );
    if let Err(e) = recorded.await {
        eprintln!("imagebuild: cannot record the self-check miss: {e}");
    }
}

/// How the publish came out, for the row's last line and the stack's totals.
fn outcome(image: &ImageInputs, published: &Published) -> Outcome {
    if published.adopted {
        return Outcome::Adopted;
    }
    Outcome::Built {
        seconds: published.build_seconds,
        steps: Some(published.steps),
        pushed_bytes: image.push.then_some(published.pushed_bytes),
        site: "",
    }
}

fn redactor_for(news: &PropertyMap, image: &ImageInputs) -> Redactor {
    let mut extra: Vec<String> = image.secrets.values().cloned().collect();
    if let Some(auth) = &image.registry_auth {
        extra.push(auth.password.clone());
    }
    redactor_for_inputs(news, extra)
}

async fn publish(
    services: &Services,
    call: &Call,
    image: &ImageInputs,
    plan: &crate::plan::Plan,
    repository: ImageName,
    redactor: &Redactor,
) -> Result<Published, LocalError> {
    let snap = &plan.snapshot;
    let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
    let forwarder = tokio::spawn(progress::forward(
        rx,
        call.reporter.clone(),
        redactor.clone(),
    ));
    let spec = PublishSpec {
        build: BuildSpec {
            snapshot: snap.clone(),
            target: image.build.target.clone(),
            build_args: image.build.build_args.clone(),
            platform: Some(image.build.platform.clone()),
            labels: image.build.labels.clone(),
            no_cache: image.no_cache,
            cache_from: image.cache_from.clone(),
            cache_to: image.cache_to.clone(),
            secrets: image.secrets.clone(),
            ssh: image.ssh.clone(),
            dockerfile_text: plan.build_dockerfile.clone(),
            image_contexts: plan.image_contexts.clone(),
        },
        registry: pushed_image::registry_config(services, &repository, image.registry_auth.clone()),
        repository,
        hash_tag: snap.hash.clone(),
        extra_tags: image.tags.clone(),
        push: image.push,
    };
    let result = services
        .local()
        .publish(spec, tx, call.cancel_token(services))
        .await;
    let _ = forwarder.await;
    result
}

fn failure(
    error: LocalError,
    news: &PropertyMap,
    image: &ImageInputs,
    snap: &ContextSnapshot,
    redactor: &Redactor,
) -> ResourceError {
    let message = redactor.apply(&error.to_string());
    if let Some(pushed) = error.pushed() {
        return ResourceError::Partial {
            id: resource_id(image, snap, pushed),
            outputs: final_state(news, image, snap, pushed).to_outputs(),
            reasons: vec![message],
        };
    }
    if matches!(error, LocalError::Cancelled) {
        ResourceError::Cancelled(message)
    } else {
        ResourceError::Failed(message)
    }
}

/// Inputs the outputs do not echo: the output `tags` lists full references, and where the SSH
/// agent lives is not the image's business.
const ECHO_SKIP: [&str; 2] = ["tags", INPUT_ONLY_NAMES[0]];

/// The echoed inputs.
fn echo_inputs(news: &PropertyMap) -> PropertyMap {
    image_args::echo_inputs(news, &INPUT_NAMES, &ECHO_SKIP)
}

/// What preview knows: the hash and sizes (when the context could be hashed) and the platform.
fn preview_state(news: &PropertyMap, snap: Option<&ContextSnapshot>) -> State {
    let mut computed = ImageComputed::unknown();
    if let Some(snap) = snap {
        computed.context_hash = Field::Known(snap.hash.clone());
        computed.context_bytes = Field::Known(snap.bytes);
        computed.context_files = Field::Known(snap.files);
    }
    if news.contains_key("platform") {
        computed.platform = state::stored(news, "platform");
    }
    State::new(echo_inputs(news), news, Box::new(computed))
}

fn final_state(
    news: &PropertyMap,
    image: &ImageInputs,
    snap: &ContextSnapshot,
    published: &Published,
) -> State {
    let computed = ImageComputed {
        context_hash: Field::Known(snap.hash.clone()),
        image_id: Field::Known(published.image_id.clone()),
        image_uri: Field::Known(published.image_uri.clone()),
        digest: Field::Known(published.digest.clone()),
        tags: Field::Known(published.tags.clone()),
        platform: Field::Known(image.build.platform.clone()),
        build_seconds: Field::Known(published.build_seconds),
        context_bytes: Field::Known(snap.bytes),
        context_files: Field::Known(snap.files),
        context_bytes_sent: Field::Known(published.context_bytes_sent),
        adopted: Field::Known(published.adopted),
        cached_steps: Field::Known(published.steps.cached.into()),
        total_steps: Field::Known(published.steps.total.into()),
        pushed_bytes: Field::Known(published.pushed_bytes),
        claim_tag: Field::Absent,
    };
    State::new(echo_inputs(news), news, Box::new(computed))
}

fn resource_id(image: &ImageInputs, snap: &ContextSnapshot, published: &Published) -> String {
    match (&published.image_uri, &image.repository) {
        (Some(uri), _) => uri.clone(),
        (None, Some(repo)) => format!("{repo}:{}", snap.hash),
        (None, None) => published.image_id.clone(),
    }
}
