//! Pins of the images a build uses (FROM, COPY --from, RUN --mount from, `docker-image://`
//! named contexts): each is resolved to a digest (or a local image id) that enters the hash.

use std::collections::BTreeMap;
use std::sync::Arc;

use futures::future::join_all;

use super::base::{lookup_base, BasePin, LocalStore};
use super::PlanError;
use crate::dockerfile::{ImageUse, ImageUseKind};
use crate::registry::{ImageRef, Platform, Registry, RegistryConfig};

/// Where the images of a build are looked up.
#[derive(Clone)]
pub struct BaseLookup {
    /// The daemon whose local images the build can use (`Some(None)`: $DOCKER_HOST or the
    /// default socket); `None` when the build runs elsewhere (CodeBuild).
    pub daemon: Option<Option<String>>,
    /// Registry settings (credential chain, ECR) for a registry host.
    pub registry_for: Arc<dyn Fn(&str) -> RegistryConfig + Send + Sync>,
}

impl BaseLookup {
    /// The local daemon of `docker_host` and the default credential chain for every registry.
    pub fn local_default(docker_host: Option<String>) -> Self {
        BaseLookup {
            daemon: Some(docker_host),
            registry_for: Arc::new(|_| RegistryConfig::default()),
        }
    }
}

/// What resolving the images gave: hash pins, warnings, and whether a base has ONBUILD triggers.
#[derive(Debug, Default)]
pub(super) struct Pinned {
    /// (`base:<ref>@<platform>` or `context:<name>`, what enters the hash).
    pub(super) pins: Vec<(String, String)>,
    /// Sentences for the user.
    pub(super) warnings: Vec<String>,
    /// References whose image has ONBUILD triggers (they may read the context).
    pub(super) onbuild: Vec<String>,
    /// FROM lines whose image a registry pinned: line -> `reference@digest` for the build.
    pub(super) from_pins: BTreeMap<usize, String>,
    /// Every image context the build uses, name -> the reference to build with:
    /// `reference@digest` when a registry pinned it, else the reference as given.
    pub(super) image_contexts: BTreeMap<String, String>,
}

/// One image to pin: its hash key, reference text and platform.
struct Wanted {
    key: String,
    reference: String,
    platform: String,
    origin: String,
}

/// Resolves every image the build uses, in parallel.
pub(super) async fn pin_images(
    images: &[ImageUse],
    image_contexts: &BTreeMap<String, String>,
    platform: &str,
    lookup: &BaseLookup,
) -> Result<Pinned, PlanError> {
    let mut wanted: Vec<Wanted> = images
        .iter()
        .map(|i| {
            let p = i.platform.clone().unwrap_or_else(|| platform.to_string());
            Wanted {
                key: format!("base:{}@{p}", i.reference),
                reference: i.reference.clone(),
                platform: p,
                origin: format!("line {}: {}", i.line, i.instruction),
            }
        })
        .collect();
    wanted.extend(image_contexts.iter().map(|(name, reference)| Wanted {
        key: format!("context:{name}"),
        reference: reference.clone(),
        platform: platform.to_string(),
        origin: format!("`contexts.{name}`"),
    }));
    wanted.sort_by(|a, b| a.key.cmp(&b.key));
    wanted.dedup_by(|a, b| a.key == b.key);
    let answers = join_all(wanted.iter().map(|w| pin_one(w, lookup))).await;
    let mut out = Pinned::default();
    let mut digests = BTreeMap::new();
    for (w, answer) in wanted.iter().zip(answers) {
        let pin = answer?;
        if let BasePin::Digest { digest, .. } = &pin {
            digests.insert(w.key.clone(), digest.to_string());
        }
        if pin.has_onbuild() == Some(true) {
            out.onbuild.push(w.reference.clone());
        }
        let value = match &pin {
            BasePin::NoPlatform { message } => {
                return Err(PlanError::BasePlatform {
                    origin: w.origin.clone(),
                    message: message.clone(),
                })
            }
            _ => pin.hash_input(),
        };
        match (&pin, pin.message()) {
            // A local-only base (built or loaded here) is normal; why the registry could not
            // pin it is only worth the debug log.
            (BasePin::Local { .. }, Some(note)) => eprintln!("imagebuild: {}: {note}", w.origin),
            (_, Some(note)) => out.warnings.push(format!("{}: {note}", w.origin)),
            (_, None) => {}
        }
        let value = value.unwrap_or_else(|| format!("unresolved {}", w.reference));
        out.pins.push((w.key.clone(), value));
    }
    out.from_pins = from_pins(images, platform, &digests);
    out.image_contexts = context_pins(image_contexts, &digests);
    Ok(out)
}

/// The image contexts with the digests a registry gave them (a local-only image keeps its
/// reference: the daemon resolves it to the id that was hashed).
fn context_pins(
    image_contexts: &BTreeMap<String, String>,
    digests: &BTreeMap<String, String>,
) -> BTreeMap<String, String> {
    image_contexts
        .iter()
        .map(|(name, reference)| {
            let pinned = digests
                .get(&format!("context:{name}"))
                .filter(|_| !reference.contains('@'))
                .and_then(|digest| {
                    let parsed = ImageRef::parse(reference).ok()?;
                    Some(parsed.name.with_digest(digest))
                });
            (name.clone(), pinned.unwrap_or_else(|| reference.clone()))
        })
        .collect()
}

/// The FROM lines to pin by digest for the build: those whose image a registry pinned and
/// whose reference names no digest yet.
fn from_pins(
    images: &[ImageUse],
    platform: &str,
    digests: &BTreeMap<String, String>,
) -> BTreeMap<usize, String> {
    images
        .iter()
        .filter(|i| i.kind == ImageUseKind::From && !i.reference.contains('@'))
        .filter_map(|i| {
            let p = i.platform.clone().unwrap_or_else(|| platform.to_string());
            let digest = digests.get(&format!("base:{}@{p}", i.reference))?;
            Some((i.line, format!("{}@{digest}", i.normalized)))
        })
        .collect()
}

async fn pin_one(w: &Wanted, lookup: &BaseLookup) -> Result<BasePin, PlanError> {
    let reference = ImageRef::parse(&w.reference).map_err(|e| PlanError::ImageReference {
        origin: w.origin.clone(),
        reference: w.reference.clone(),
        reason: e.to_string(),
    })?;
    let platform = Platform::parse(&w.platform).map_err(|reason| PlanError::ImageReference {
        origin: w.origin.clone(),
        reference: w.reference.clone(),
        reason: format!("platform `{}`: {reason}", w.platform),
    })?;
    let registry = Registry::new((lookup.registry_for)(&reference.name.registry));
    let store = match &lookup.daemon {
        Some(host) => LocalStore::Daemon(host.as_deref()),
        None => LocalStore::Nowhere,
    };
    Ok(lookup_base(&reference, &platform, store, &registry).await)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn image_contexts_are_built_with_the_digest_that_was_hashed() {
        let contexts = BTreeMap::from([
            ("py".to_string(), "python:3.12".to_string()),
            (
                "local".to_string(),
                "imagebuild-base/busybox:latest".to_string(),
            ),
            (
                "fixed".to_string(),
                "reg:5000/a/b@sha256:".to_string() + &"1".repeat(64),
            ),
        ]);
        let d = format!("sha256:{}", "2".repeat(64));
        let digests = BTreeMap::from([
            ("context:py".to_string(), d.clone()),
            ("context:fixed".to_string(), d.clone()),
            ("base:python:3.12@linux/amd64".to_string(), d.clone()),
        ]);
        let pinned = context_pins(&contexts, &digests);
        assert_eq!(pinned["py"], format!("docker.io/library/python@{d}"));
        // Local-only: the daemon resolves the reference to the id that was hashed.
        assert_eq!(pinned["local"], "imagebuild-base/busybox:latest");
        // Already pinned by the user: kept as written.
        assert_eq!(pinned["fixed"], contexts["fixed"]);
    }
}
