//! `imagebuild:index:ContainerImage`: built on this machine through Docker (BuildKit), pushed,
//! and skipped entirely when the context hash is unchanged or already in the registry.

use super::build_summary::Outcome;
use super::diff::DiffResult;
use super::image_args::{
    self, derived_outputs_secret, finish_check, read_build_inputs, validate_repository,
    validate_tag, BuildInputs, BuildSite,
};
use super::image_diff;
use super::inputs::{Failure, Field, InputReader};
use super::redact::{redactor_for_inputs, Redactor};
use super::{progress, pushed_image};
use super::{Call, CheckResult, Created, ReadResult, ResourceError, Services};
use crate::context::ContextSnapshot;
use crate::local::{BuildSpec, LocalError, PublishSpec, Published};
use crate::registry::{BasicCredentials, ImageName};
use crate::values::{PropertyMap, Value};
use std::collections::BTreeMap;

/// The resource's type token.
pub const TOKEN: &str = "imagebuild:index:ContainerImage";

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

/// Output properties computed by the provider (the rest echo the inputs).
pub const COMPUTED_OUTPUT_NAMES: [&str; 15] = [
    "contextHash",
    "imageId",
    "imageUri",
    "digest",
    "tags",
    "platform",
    "buildSeconds",
    "contextBytes",
    "contextFiles",
    "contextBytesSent",
    "adopted",
    "cachedSteps",
    "totalSteps",
    "pushedBytes",
    "claimTag",
];

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

/// Check: validates, fills defaults, and hashes the context so preview knows without building.
pub async fn check(services: &Services, news: &PropertyMap) -> CheckResult {
    let mut r = InputReader::new(news);
    r.reject_unknown_names(&INPUT_NAMES);
    let image = read_inputs(&mut r);
    let defaults = [
        ("push", Value::Bool(true)),
        ("deleteOnDestroy", Value::Bool(false)),
    ];
    let wants_cache_export = image.as_ref().is_some_and(|i| i.cache_to.is_some());
    let build = image.map(|i| i.build);
    let mut result = finish_check(
        services,
        BuildSite::LocalDaemon,
        news,
        r.into_failures(),
        build.clone(),
        &defaults,
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

/// Diff: compares inputs and the context hash; names the changed files when it can.
pub async fn diff(
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

/// Create: builds and pushes, or adopts (in preview only hashes), then claims the digest.
pub async fn create(
    services: &Services,
    call: &Call,
    news: &PropertyMap,
    preview: bool,
) -> Result<Created, ResourceError> {
    // Boxed: the build future is deep, and an unboxed one overflows rustc's layout depth limit.
    let created = Box::pin(build_or_adopt(services, call, news, preview)).await?;
    Ok(pushed_image::claimed(services, call, created, None, preview).await)
}

/// Builds and pushes, or adopts; in preview only hashes.
async fn build_or_adopt(
    services: &Services,
    call: &Call,
    news: &PropertyMap,
    preview: bool,
) -> Result<Created, ResourceError> {
    let mut r = InputReader::new(news);
    let image = read_inputs(&mut r);
    let failures = r.into_failures();
    if !failures.is_empty() {
        let text: Vec<String> = failures.into_iter().map(|f| f.reason).collect();
        return Err(ResourceError::Invalid(text.join("; ")));
    }
    let derived_secret = derived_outputs_secret(news);
    let Some(image) = image else {
        if preview {
            return Ok(Created {
                id: String::new(),
                outputs: preview_outputs(news, None, derived_secret),
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
        return Ok(Created {
            id: String::new(),
            outputs: preview_outputs(news, Some(&snap), derived_secret),
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
        failure(e, news, &image, &snap, &redactor, derived_secret)
    })?;
    self_check(services, call, &snap, &published).await;
    services.report_outcome(call, outcome(&image, &published));
    let outputs = final_outputs(news, &image, &snap, &published, derived_secret);
    Ok(Created {
        id: resource_id(&image, &snap, &published),
        outputs,
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
    derived_secret: bool,
) -> ResourceError {
    let message = redactor.apply(&error.to_string());
    if let Some(pushed) = error.pushed() {
        return ResourceError::Partial {
            id: resource_id(image, snap, pushed),
            outputs: final_outputs(news, image, snap, pushed, derived_secret),
            reasons: vec![message],
        };
    }
    if matches!(error, LocalError::Cancelled) {
        ResourceError::Cancelled(message)
    } else {
        ResourceError::Failed(message)
    }
}

/// The echoed inputs; `tags` is left out because the output of that name lists full references.
fn echo_inputs(news: &PropertyMap) -> PropertyMap {
    image_args::echo_inputs(news, &INPUT_NAMES, &["tags", INPUT_ONLY_NAMES[0]])
}

fn preview_outputs(
    news: &PropertyMap,
    snap: Option<&ContextSnapshot>,
    secret: bool,
) -> PropertyMap {
    let mut out = echo_inputs(news);
    for name in COMPUTED_OUTPUT_NAMES {
        out.insert(name.into(), Value::Unknown);
    }
    if let Some(snap) = snap {
        out.insert(
            "contextHash".into(),
            Value::from(snap.hash.clone()).secret_if(secret),
        );
        out.insert("contextBytes".into(), snap.bytes.into());
        out.insert("contextFiles".into(), snap.files.into());
    }
    if let Some(p) = news.get("platform") {
        out.insert("platform".into(), p.clone());
    }
    out
}

fn final_outputs(
    news: &PropertyMap,
    image: &ImageInputs,
    snap: &ContextSnapshot,
    published: &Published,
    secret: bool,
) -> PropertyMap {
    let mut out = echo_inputs(news);
    let mut set = |k: &str, v: Value| {
        out.insert(k.into(), v.secret_if(secret));
    };
    set("contextHash", snap.hash.clone().into());
    set(
        "imageUri",
        published
            .image_uri
            .clone()
            .map_or(Value::Null, Value::String),
    );
    set(
        "digest",
        published.digest.clone().map_or(Value::Null, Value::String),
    );
    set("tags", published.tags.clone().into());
    set("platform", image.build.platform.clone().into());
    out.insert("buildSeconds".into(), published.build_seconds.into());
    out.insert("contextBytes".into(), snap.bytes.into());
    out.insert("contextFiles".into(), snap.files.into());
    out.insert(
        "contextBytesSent".into(),
        published.context_bytes_sent.into(),
    );
    out.insert("adopted".into(), published.adopted.into());
    out.insert("cachedSteps".into(), published.steps.cached.into());
    out.insert("totalSteps".into(), published.steps.total.into());
    out.insert("pushedBytes".into(), published.pushed_bytes.into());
    out.insert("imageId".into(), published.image_id.clone().into());
    out
}

fn resource_id(image: &ImageInputs, snap: &ContextSnapshot, published: &Published) -> String {
    match (&published.image_uri, &image.repository) {
        (Some(uri), _) => uri.clone(),
        (None, Some(repo)) => format!("{repo}:{}", snap.hash),
        (None, None) => published.image_id.clone(),
    }
}

/// Update: the same as Create (an unchanged hash adopts what the registry already has),
/// keeping the claim tag of `olds`, which follows the new digest.
pub async fn update(
    services: &Services,
    call: &Call,
    olds: &PropertyMap,
    news: &PropertyMap,
    preview: bool,
) -> Result<Created, ResourceError> {
    // Boxed: the build future is deep, and an unboxed one overflows rustc's layout depth limit.
    let created = Box::pin(build_or_adopt(services, call, news, preview)).await?;
    let held = pushed_image::claim_of(olds);
    Ok(pushed_image::claimed(services, call, created, held, preview).await)
}

/// Read (refresh): is the pushed digest still in the registry? Gone only on a definite not-found.
pub async fn read(
    services: &Services,
    call: &Call,
    id: &str,
    outputs: &PropertyMap,
) -> Result<ReadResult, ResourceError> {
    if !pushed_image::still_in_registry(services, call, outputs).await? {
        return Ok(None);
    }
    let read = Created {
        id: id.to_string(),
        outputs: outputs.clone(),
    };
    // State written before claim tags existed gets one on its first refresh.
    Ok(Some(
        pushed_image::claim_if_unclaimed(services, call, read).await,
    ))
}

/// Delete: removes the pushed image only with `deleteOnDestroy` (see [`pushed_image::delete`]).
pub async fn delete(
    services: &Services,
    call: &Call,
    outputs: &PropertyMap,
) -> Result<(), ResourceError> {
    pushed_image::delete(services, call, outputs).await
}
