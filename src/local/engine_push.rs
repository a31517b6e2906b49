//! The push half of a publish (run while a push slot is held, outside the build slot): push the
//! hash tag, read its digest back from the registry, push the extra tags.

use tokio::sync::mpsc::UnboundedSender;
use tokio_util::sync::CancellationToken;

use super::daemon::DaemonAddr;
use super::{push, LocalError, ProgressEvent, PublishSpec, Published};
use crate::redact::Redactor;
use crate::registry::{ImageName, Registry, RegistryError};

/// Where and how to push.
pub(crate) struct PushTarget<'a> {
    /// The daemon holding the image.
    pub(crate) addr: &'a DaemonAddr,
    /// The daemon's API prefix.
    pub(crate) prefix: &'a str,
    /// The target registry.
    pub(crate) registry: &'a Registry,
    /// Redacts secrets from push output.
    pub(crate) redactor: &'a Redactor,
}

/// Pushes all tags of `spec`; fills the digest into `published`. A failure after the first push
/// says what is already in the registry (`LocalError::AfterPush`).
pub(crate) async fn push_all(
    target: PushTarget<'_>,
    spec: &PublishSpec,
    mut published: Published,
    progress: &UnboundedSender<ProgressEvent>,
    cancel: &CancellationToken,
) -> Result<Published, LocalError> {
    let repo = &spec.repository;
    let creds = target.registry.credentials(&repo.registry).await?;
    let t = &target;
    let uploaded = push::push(
        t.addr,
        t.prefix,
        repo,
        &spec.hash_tag,
        &creds,
        t.redactor,
        progress,
        cancel,
    )
    .await?;
    let after = |published: &Published, e: LocalError| LocalError::AfterPush {
        published: Box::new(published.clone()),
        source: Box::new(e),
    };
    published.pushed_bytes = uploaded.counted();
    match target.registry.manifest_digest(repo, &spec.hash_tag).await {
        Ok(Some(d)) => {
            // The image config digest, as the adopt path reads it: the same imageId whether
            // built or adopted, on the classic and the containerd image store alike (the latter's
            // local id is the manifest's digest, not the config's).
            if let Ok(Some(parts)) = target.registry.image_parts(repo, &d).await {
                published.pushed_bytes = report_uploaded_bytes(&uploaded, &parts.layers, progress);
                published.image_id = parts.config;
            }
            published.image_uri = Some(repo.with_digest(&d));
            published.digest = Some(d);
        }
        Ok(None) => {
            let e = LocalError::Push {
                reference: repo.with_tag(&spec.hash_tag),
                attempts: 1,
                detail: "the push finished but the registry does not serve the tag".into(),
            };
            return Err(after(&published, e));
        }
        Err(e) => return Err(after(&published, e.into())),
    }
    for tag in &spec.extra_tags {
        let pushed = push::push(
            t.addr, t.prefix, repo, tag, &creds, t.redactor, progress, cancel,
        );
        if let Err(e) = pushed.await {
            return Err(after(&published, refused_tag(e, repo, tag, &spec.hash_tag)));
        }
    }
    Ok(published)
}

/// A refusal of an extra tag, once the same credentials pushed the hash tag, is the repository's
/// policy (tag immutability, a protected tag), not the credentials: say so instead of asking
/// for other ones.
fn refused_tag(error: LocalError, repo: &ImageName, tag: &str, hash_tag: &str) -> LocalError {
    let detail = match error {
        LocalError::Registry(RegistryError::Auth { detail, .. }) => detail,
        // Engine 29 (containerd) relays a registry's refusal as `error from registry: <its
        // message>`, without the status that would classify it as an auth error.
        LocalError::Push { detail, .. } if detail.contains(REGISTRY_REFUSAL) => detail,
        other => return other,
    };
    LocalError::Push {
        reference: repo.with_tag(tag),
        attempts: 1,
        detail: format!(
            "the registry refused the tag `{tag}` although the same credentials had just \
             pushed `{hash_tag}` ({detail}); a repository policy refuses this tag (e.g. tag \
             immutability while `{tag}` points at another image): change the policy, or drop \
             `{tag}` from `tags`"
        ),
    }
}

/// How containerd's resolver words an error answer from the registry itself.
const REGISTRY_REFUSAL: &str = "error from registry:";

/// Completes the push's byte count from the manifest when the daemon reported uploads without
/// counting their bytes (Engine 29 does for small layers); returns the bytes uploaded.
fn report_uploaded_bytes(
    uploaded: &push::UploadedLayers,
    layers: &[(String, u64)],
    progress: &UnboundedSender<ProgressEvent>,
) -> u64 {
    let total = uploaded.total_with(layers);
    if total > uploaded.counted() {
        let _ = progress.send(ProgressEvent::Pushing { bytes: total });
    }
    total
}
