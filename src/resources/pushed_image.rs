//! What both image resources do with an image already in a registry: check it on refresh,
//! and delete it on destroy when asked to.

use super::inputs::Field;
use super::state::Built;
use super::stored::StoredImage;
use super::{Call, ResourceError, Services};
use crate::registry::{BasicCredentials, ImageName, Registry, RegistryConfig, RegistryError};

/// The registry configuration for `name`: explicit credentials, else the provider's for that host.
pub fn registry_config(
    services: &Services,
    name: &ImageName,
    explicit: Option<BasicCredentials>,
) -> RegistryConfig {
    RegistryConfig {
        explicit: explicit.or_else(|| services.config.credentials_for(&name.registry)),
        ecr_endpoint: services.config.ecr_endpoint.clone(),
        aws_region: services.config.region.clone(),
    }
}

/// A pushed image and the registry clients to reach it with, in order: the credentials stored
/// at create, then this run's (the provider's `registryAuth` for the host, else an ECR token or
/// the Docker config), so a rotated password or an expired token does not lock the resource.
struct PushedImage {
    name: ImageName,
    digest: String,
    registries: Vec<Registry>,
}

impl PushedImage {
    fn of(services: &Services, stored: &StoredImage) -> Option<PushedImage> {
        let name = ImageName::parse(stored.repository.as_deref()?).ok()?;
        let digest = stored.digest.clone()?;
        let current = registry_config(services, &name, None);
        let mut registries = Vec::new();
        if let Some(stored) = &stored.credentials {
            if current.explicit.as_ref() != Some(stored) {
                registries.push(Registry::new(registry_config(
                    services,
                    &name,
                    Some(stored.clone()),
                )));
            }
        }
        registries.push(Registry::new(current));
        Some(PushedImage {
            name,
            digest,
            registries,
        })
    }

    /// `registry/repository@digest`.
    fn reference(&self) -> String {
        format!(
            "{}/{}@{}",
            self.name.registry, self.name.repository, self.digest
        )
    }
}

/// `$call` (an async registry call on `$r`) with each of `$image`'s registry clients until one
/// is not refused for its credentials; the last answer otherwise. A macro, not a function taking
/// an async closure: the futures borrow the client, and tonic's handlers must stay `Send`.
macro_rules! with_credentials {
    ($image:expr, $r:ident => $call:expr) => {{
        let mut answer = None;
        for $r in &$image.registries {
            let got = $call.await;
            let refused = matches!(got, Err(RegistryError::Auth { .. }));
            answer = Some(got);
            if !refused {
                break;
            }
        }
        answer.expect("at least the current credentials are tried")
    }};
}

/// True unless the registry answers a definite not-found for the pushed digest. A network error
/// fails the refresh, so the resource is never dropped by mistake; credentials that no longer
/// work (stored or current) keep the resource as it is, with a warning that says how to fix them.
/// With nothing pushed there is nothing remote to check, and the resource stays.
pub async fn still_in_registry(
    services: &Services,
    call: &Call,
    stored: &StoredImage,
) -> Result<bool, ResourceError> {
    let Some(image) = PushedImage::of(services, stored) else {
        return Ok(true);
    };
    let name = &image.name;
    let found = with_credentials!(image, r => r.manifest_digest(name, &image.digest));
    match found {
        Ok(found) => Ok(found.is_some()),
        Err(e @ RegistryError::Auth { .. }) => {
            call.reporter.warn(&format!(
                "refresh could not check {}: {e}; the resource is kept as it was. Give the \
                 provider current credentials for {} (`imagebuild:registryAuth`, `docker login`, \
                 or AWS credentials for ECR), or run `pulumi up` with the new `registryAuth`",
                image.reference(),
                name.registry
            ));
            Ok(true)
        }
        Err(e) => Err(ResourceError::Failed(format!(
            "refresh could not check {}: {e} (the resource is kept in state)",
            image.reference()
        ))),
    }
}

/// Releases this resource's claim tag and, when `deleteOnDestroy` is set, deletes the pushed
/// image unless a tag that is not this resource's (another resource's claim among them) still
/// points at the digest (then it warns and leaves it). When no credentials are accepted, the
/// image is left in place with a warning and the resource is still destroyed: nothing pushed is
/// lost and the state never wedges.
pub async fn delete(
    services: &Services,
    call: &Call,
    stored: &StoredImage,
) -> Result<(), ResourceError> {
    let Some(image) = PushedImage::of(services, stored) else {
        return Ok(());
    };
    if let Some(claim) = &stored.claim {
        release_claim(call, &image, claim).await;
    }
    if !stored.delete_on_destroy {
        return Ok(());
    }
    let mut ours = stored.own_tags();
    ours.extend(stored.claim.clone());
    match delete_unless_shared(call, &image, &ours).await {
        Err(e @ RegistryError::Auth { .. }) => {
            call.reporter.warn(&format!(
                "left {} in place: {e}; delete it by hand, or give the provider current \
                 credentials for {} and destroy a resource that records it",
                image.reference(),
                image.name.registry
            ));
            Ok(())
        }
        Err(e) => Err(ResourceError::Failed(format!(
            "deleting {} failed: {e}",
            image.reference()
        ))),
        Ok(()) => Ok(()),
    }
}

/// Deletes the image unless a tag not in `ours` still points at its digest (then warns).
async fn delete_unless_shared(
    call: &Call,
    image: &PushedImage,
    ours: &[String],
) -> Result<(), RegistryError> {
    let (name, digest) = (&image.name, &image.digest);
    let pointing = with_credentials!(image, r => r.tags_pointing_at(name, digest))?;
    let foreign: Vec<&str> = pointing
        .iter()
        .filter(|t| !ours.contains(t))
        .map(String::as_str)
        .collect();
    if !foreign.is_empty() {
        call.reporter.warn(&format!(
            "left {} in place: other tags still point at it ({})",
            image.reference(),
            foreign.join(", ")
        ));
        return Ok(());
    }
    with_credentials!(image, r => r.delete_manifest(name, digest))
}

/// Moves `claim` off the image (onto a tombstone, then deleted), so this resource no longer
/// keeps another's `deleteOnDestroy` from deleting it. Best effort: a failure is a warning.
async fn release_claim(call: &Call, image: &PushedImage, claim: &str) {
    let name = &image.name;
    match with_credentials!(image, r => r.release_tag(name, claim)) {
        Ok(tombstone) => {
            // Deleting the shared tombstone only removes tags that were released.
            let _ = with_credentials!(image, r => r.delete_manifest(name, &tombstone));
        }
        Err(e) => call.reporter.warn(&format!(
            "could not release the claim tag {claim} on {}: {e}; until it is deleted by hand, \
             destroying another resource with `deleteOnDestroy` leaves this image in place",
            image.reference()
        )),
    }
}

/// A new claim tag: one per resource instance, so a replacement's claim is not the one its
/// predecessor's destroy releases.
fn new_claim_tag(urn: &str) -> String {
    use sha2::Digest as _;
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    let seed = format!("{urn}\n{nanos}\n{}", std::process::id());
    let hex = hex::encode(sha2::Sha256::digest(seed.as_bytes()));
    format!("imagebuild-claim-{}", &hex[..24])
}

/// `built` holding its claim tag (`held`, else a new one); in preview it stays unknown.
pub async fn claimed(
    services: &Services,
    call: &Call,
    built: Built,
    held: Option<String>,
    preview: bool,
) -> Built {
    if preview {
        return built;
    }
    hold_claim(services, call, built, held).await
}

/// `read` with a claim tag: unchanged when it has one or records no pushed digest, else it
/// claims the digest now (a refresh of state from before claims, or of a finished unwatched build).
pub async fn claim_if_unclaimed(services: &Services, call: &Call, read: Built) -> Built {
    let stored = StoredImage::parse(&read.state.to_outputs());
    if stored.claim.is_some() || stored.digest.is_none() {
        return read;
    }
    hold_claim(services, call, read, None).await
}

/// Points this resource's claim tag (`held`, else a new one) at the digest it just recorded and
/// adds `claimTag` to its outputs, so another resource's `deleteOnDestroy` leaves the image. A
/// claim that cannot be written is a warning: the image is pushed and recorded either way.
async fn hold_claim(
    services: &Services,
    call: &Call,
    mut built: Built,
    held: Option<String>,
) -> Built {
    let stored = StoredImage::parse(&built.state.to_outputs());
    let Some(image) = PushedImage::of(services, &stored) else {
        return built;
    };
    let kept = held.is_some();
    let claim = held.unwrap_or_else(|| new_claim_tag(&call.urn));
    let (name, digest) = (&image.name, &image.digest);
    let written = with_credentials!(image, r => r.put_tag(name, digest, &claim));
    if let Err(e) = &written {
        call.reporter.warn(&format!(
            "could not write the claim tag {claim} on {}: {e}; destroying another resource \
             that records this digest with `deleteOnDestroy` may delete it",
            image.reference()
        ));
    }
    // A claim this resource already held stays recorded even when it could not follow the new
    // digest: it still points at the old one, and only a resource that records it releases it
    // (the next update moves it, destroy releases it).
    if written.is_ok() || kept {
        *built.state.claim_mut() = Field::Known(claim);
    }
    built
}
