//! Base image pins: what of each FROM image enters an image's content hash, so a moved tag or a
//! rebuilt shared base rebuilds its dependents. The registry digest wins for images a registry
//! serves; the local image id stands in for images only the daemon has (built or loaded here).
//!
//! Never fails: an unreachable registry in preview must not stop a deployment, so every outcome is
//! a [`BasePin`] the caller turns into a hash input, a warning or (for `NoPlatform`) an error.

use std::time::Duration;

use crate::local::{local_image, LocalError, LocalImage};
use crate::registry::{Digest, ImageRef, Platform, Registry, RegistryError, ResolvedImage};

/// A registry that does not answer within this long counts as unreachable (DNS black holes and
/// firewalls that drop packets would otherwise hold Check for minutes).
pub const REGISTRY_LOOKUP_TIMEOUT: Duration = Duration::from_secs(30);

/// What pins one base image.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BasePin {
    /// Registry content: the platform's manifest digest for a tag, the reference's own digest when
    /// it is pinned (whether or not the registry could be asked, so the hash never flips with the
    /// network).
    Digest {
        /// What enters the hash.
        digest: Digest,
        /// The registry's answer, when there was one.
        image: Option<ResolvedImage>,
        /// ONBUILD triggers present, when known.
        has_onbuild: Option<bool>,
        /// Something worth a warning (e.g. a single-platform image of another platform).
        note: Option<String>,
    },
    /// The local image id: the image is only in the daemon's store (or the registry could not say).
    Local {
        /// The daemon's image.
        image: LocalImage,
        /// Why the registry did not pin it, when that is worth a warning.
        note: Option<String>,
    },
    /// Nothing pins it: the caller warns and hashes the reference text.
    Unresolved {
        /// Why, in a sentence naming the image.
        reason: String,
    },
    /// No image for the requested platform: the build would fail or build the wrong platform.
    NoPlatform {
        /// What is missing and how to fix it.
        message: String,
    },
}

impl BasePin {
    /// The text that enters the content hash, `None` when the caller must fall back to the reference.
    pub fn hash_input(&self) -> Option<String> {
        match self {
            BasePin::Digest { digest, .. } => Some(format!("digest {digest}")),
            BasePin::Local { image, .. } => Some(format!("local {}", image.id)),
            BasePin::Unresolved { .. } | BasePin::NoPlatform { .. } => None,
        }
    }

    /// Whether the base image has ONBUILD triggers, when known.
    pub fn has_onbuild(&self) -> Option<bool> {
        match self {
            BasePin::Digest { has_onbuild, .. } => *has_onbuild,
            BasePin::Local { image, .. } => Some(image.has_onbuild),
            BasePin::Unresolved { .. } | BasePin::NoPlatform { .. } => None,
        }
    }

    /// A sentence for the user, when this pin deserves one.
    pub fn message(&self) -> Option<&str> {
        match self {
            BasePin::Digest { note, .. } | BasePin::Local { note, .. } => note.as_deref(),
            BasePin::Unresolved { reason } => Some(reason),
            BasePin::NoPlatform { message, .. } => Some(message),
        }
    }
}

/// Which local image store a build can use for its FROM images.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LocalStore<'a> {
    /// The build runs on this Docker daemon (`None`: $DOCKER_HOST, else the default socket).
    Daemon(Option<&'a str>),
    /// The build runs elsewhere (CodeBuild): only registries count.
    Nowhere,
}

/// How long a registry host that did not answer is not asked again in this process: every
/// image of a stack often builds on the same base, and an offline machine would otherwise pay
/// the client's retries once per image.
const UNREACHABLE_MEMORY: Duration = Duration::from_secs(300);

static UNREACHABLE: std::sync::Mutex<Vec<(String, std::time::Instant)>> =
    std::sync::Mutex::new(Vec::new());

fn recently_unreachable(host: &str) -> bool {
    let list = UNREACHABLE.lock().unwrap_or_else(|e| e.into_inner());
    list.iter()
        .any(|(h, at)| h == host && at.elapsed() < UNREACHABLE_MEMORY)
}

fn remember_unreachable(host: &str) {
    let mut list = UNREACHABLE.lock().unwrap_or_else(|e| e.into_inner());
    list.retain(|(h, at)| h != host && at.elapsed() < UNREACHABLE_MEMORY);
    list.push((host.to_string(), std::time::Instant::now()));
}

/// Asks the daemon, then (unless the daemon's image did not come from the FROM's repository) the
/// registry, and decides with [`resolve_base`]. An image whose `RepoDigests` do not name the
/// FROM's repository was built, loaded or tagged on this daemon under that name and never pulled
/// from there (it may have been pushed elsewhere, e.g. a base image shared through a private
/// registry): the daemon builds on it whatever a registry serves under that name, so its id is
/// the pin and no registry is asked. On an offline machine that saves a DNS or connection
/// failure per plugin process, which took 1 to 6 s of every `pulumi up` of the bench.
pub async fn lookup_base(
    reference: &ImageRef,
    platform: &Platform,
    store: LocalStore<'_>,
    registry: &Registry,
) -> BasePin {
    let local = match store {
        LocalStore::Daemon(host) => local_image(host, &reference.to_string()).await,
        LocalStore::Nowhere => Ok(None),
    };
    if let Ok(Some(img)) = &local {
        let pulled_from_there = img.repo_digest(&reference.name).is_some();
        if !pulled_from_there && reference.digest.is_none() && img.serves(platform) {
            return BasePin::Local {
                image: img.clone(),
                note: None,
            };
        }
    }
    let remote = ask_registry(reference, platform, registry).await;
    resolve_base(reference, platform, &local, &remote)
}

/// The registry's answer, bounded in time; a host that did not answer recently is not asked.
async fn ask_registry(
    reference: &ImageRef,
    platform: &Platform,
    registry: &Registry,
) -> Result<Option<ResolvedImage>, RegistryError> {
    let host = reference.name.registry.clone();
    if recently_unreachable(&host) {
        return Err(RegistryError::Unreachable {
            registry: host,
            url: reference.to_string(),
            detail: "it did not answer a moment ago".to_string(),
        });
    }
    let answer = tokio::time::timeout(
        REGISTRY_LOOKUP_TIMEOUT,
        registry.resolve_platform(reference, platform),
    )
    .await
    .unwrap_or_else(|_| {
        Err(RegistryError::Unreachable {
            registry: host.clone(),
            url: reference.to_string(),
            detail: format!("no answer within {} s", REGISTRY_LOOKUP_TIMEOUT.as_secs()),
        })
    });
    if matches!(answer, Err(RegistryError::Unreachable { .. })) {
        remember_unreachable(&host);
    }
    answer
}

/// Decides the pin of `reference` for `platform` from what the daemon (`local`) and the registry
/// said. Pure, so every combination is testable. (`scratch` is no image: callers skip it.)
pub fn resolve_base(
    reference: &ImageRef,
    platform: &Platform,
    local: &Result<Option<LocalImage>, LocalError>,
    registry: &Result<Option<ResolvedImage>, RegistryError>,
) -> BasePin {
    if let Ok(Some(found)) = registry {
        return BasePin::Digest {
            digest: reference
                .digest
                .clone()
                .unwrap_or_else(|| found.manifest_digest.clone()),
            image: Some(found.clone()),
            has_onbuild: Some(found.has_onbuild),
            note: lone_manifest_note(found, platform),
        };
    }
    let from_registry = RegistryOutcome::of(reference, registry);
    match local {
        Ok(Some(img)) if img.serves(platform) => match &reference.digest {
            Some(d) => BasePin::Digest {
                digest: d.clone(),
                image: None,
                has_onbuild: Some(img.has_onbuild),
                note: from_registry.note(),
            },
            None => BasePin::Local {
                image: img.clone(),
                note: from_registry.note(),
            },
        },
        // An error even when the registry could not be asked: the daemon builds on the local
        // image (Engine 20.10 fails, Engine 29 silently builds its filesystem labelled as the
        // requested platform), so the build cannot give what was asked for.
        Ok(Some(img)) => BasePin::NoPlatform {
            message: format!(
                "base image {reference} has no {platform} variant locally (the local image is {}), \
                 and {}; build or load a {platform} image under that name, push one to the registry, \
                 or set the platform to {}",
                img.platform(),
                from_registry.text,
                img.platform()
            ),
        },
        Ok(None) | Err(_) => nothing_local(reference, &from_registry, local.as_ref().err()),
    }
}

/// The pin when the daemon has no usable image either.
fn nothing_local(
    reference: &ImageRef,
    reg: &RegistryOutcome,
    local: Option<&LocalError>,
) -> BasePin {
    if reg.no_platform {
        return BasePin::NoPlatform {
            message: reg.text.clone(),
        };
    }
    if let Some(d) = &reference.digest {
        // The digest pins the content whatever the registry says now; the build will tell.
        return BasePin::Digest {
            digest: d.clone(),
            image: None,
            has_onbuild: None,
            note: Some(format!(
                "base image {reference} could not be checked: {}",
                reg.text
            )),
        };
    }
    let local_text = match local {
        Some(e) => format!("the local image store could not be asked ({e})"),
        None => "no local image of that name was found".to_string(),
    };
    BasePin::Unresolved {
        reason: format!(
            "base image {reference} could not be pinned to a digest: {}, and {local_text}",
            reg.text
        ),
    }
}

/// What the registry said, as text for the other outcomes' messages.
struct RegistryOutcome {
    text: String,
    no_platform: bool,
    /// The registry simply has no such image (the normal case for local-only images).
    missing: bool,
}

impl RegistryOutcome {
    fn of(reference: &ImageRef, r: &Result<Option<ResolvedImage>, RegistryError>) -> Self {
        match r {
            Ok(_) => RegistryOutcome {
                text: format!("registry {} has no such image", reference.name.registry),
                no_platform: false,
                missing: true,
            },
            Err(e) => RegistryOutcome {
                text: e.to_string(),
                no_platform: matches!(e, RegistryError::NoPlatform { .. }),
                missing: false,
            },
        }
    }

    /// A warning for a pin that did not come from the registry, unless the image is simply local-only.
    fn note(&self) -> Option<String> {
        (!self.missing).then(|| format!("the registry did not pin it: {}", self.text))
    }
}

/// BuildKit runs a single-platform image whatever its platform; say so when it is not the one asked for.
fn lone_manifest_note(found: &ResolvedImage, platform: &Platform) -> Option<String> {
    let declared = found.platform.as_ref()?;
    (found.index_digest.is_none() && platform.preference(declared).is_none()).then(|| {
        format!(
            "base image {} is a single-platform {declared} image, not {platform}; \
             the build uses it anyway and its RUN steps need emulation",
            found.reference
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn r(s: &str) -> ImageRef {
        ImageRef::parse(s).unwrap()
    }
    fn plat(s: &str) -> Platform {
        Platform::parse(s).unwrap()
    }
    fn local(arch: &str) -> Result<Option<LocalImage>, LocalError> {
        Ok(Some(LocalImage {
            reference: "docker.io/team/base:1".into(),
            id: Digest::sha256_of(b"local-id"),
            repo_digests: vec![],
            os: "linux".into(),
            architecture: arch.into(),
            variant: None,
            has_onbuild: true,
        }))
    }
    fn remote(
        reference: &str,
        index: bool,
        arch: &str,
    ) -> Result<Option<ResolvedImage>, RegistryError> {
        Ok(Some(ResolvedImage {
            reference: r(reference),
            manifest_digest: Digest::sha256_of(b"manifest"),
            index_digest: index.then(|| Digest::sha256_of(b"index")),
            config_digest: Digest::sha256_of(b"config"),
            platform: Some(plat(&format!("linux/{arch}"))),
            has_onbuild: false,
        }))
    }
    fn unreachable() -> Result<Option<ResolvedImage>, RegistryError> {
        Err(RegistryError::Unreachable {
            registry: "docker.io".into(),
            url: "https://registry-1.docker.io/v2/".into(),
            detail: "dns error".into(),
        })
    }
    fn auth() -> Result<Option<ResolvedImage>, RegistryError> {
        Err(RegistryError::Auth {
            registry: "docker.io".into(),
            source_tried: "no credentials (anonymous access)".into(),
            detail: "HTTP 401".into(),
        })
    }
    fn no_variant() -> Result<Option<ResolvedImage>, RegistryError> {
        Err(RegistryError::NoPlatform {
            registry: "docker.io".into(),
            reference: "docker.io/team/base:1".into(),
            platform: "linux/arm64".into(),
            offered: vec!["linux/amd64".into()],
        })
    }
    fn daemon_down() -> Result<Option<LocalImage>, LocalError> {
        Err(LocalError::DaemonUnreachable {
            host: "unix:///nope".into(),
            detail: "no such file".into(),
        })
    }

    #[test]
    fn registry_digest_wins_over_local() {
        let pin = resolve_base(
            &r("team/base:1"),
            &plat("linux/amd64"),
            &local("amd64"),
            &remote("team/base:1", true, "amd64"),
        );
        assert!(
            matches!(&pin, BasePin::Digest { digest, note: None, has_onbuild: Some(false), .. } if *digest == Digest::sha256_of(b"manifest")),
            "{pin:?}"
        );
        assert_eq!(
            pin.hash_input(),
            Some(format!("digest {}", Digest::sha256_of(b"manifest")))
        );
    }

    #[test]
    fn local_only_images_pin_by_id() {
        for reg in [Ok(None), auth(), unreachable()] {
            let quiet = matches!(reg, Ok(None));
            let pin = resolve_base(
                &r("team/base:1"),
                &plat("linux/amd64"),
                &local("amd64"),
                &reg,
            );
            let BasePin::Local { image, note } = &pin else {
                panic!("{pin:?}")
            };
            assert_eq!(image.id, Digest::sha256_of(b"local-id"));
            assert_eq!(note.is_none(), quiet, "{note:?}");
            assert_eq!(
                pin.hash_input(),
                Some(format!("local {}", Digest::sha256_of(b"local-id")))
            );
            assert_eq!(pin.has_onbuild(), Some(true));
        }
    }

    #[test]
    fn local_image_of_another_arch_is_reported() {
        for reg in [Ok(None), auth(), unreachable(), no_variant()] {
            let pin = resolve_base(
                &r("team/base:1"),
                &plat("linux/arm64"),
                &local("amd64"),
                &reg,
            );
            let BasePin::NoPlatform { message } = &pin else {
                panic!("{pin:?}")
            };
            assert!(
                message.contains(
                    "base image docker.io/team/base:1 has no linux/arm64 variant locally"
                ),
                "{message}"
            );
            assert!(
                message.contains("the local image is linux/amd64"),
                "{message}"
            );
            assert_eq!(pin.hash_input(), None);
        }
    }

    #[test]
    fn nothing_anywhere_is_unresolved_never_an_error() {
        for (reg, loc, needle) in [
            (unreachable(), Ok(None), "cannot reach registry docker.io"),
            (Ok(None), Ok(None), "has no such image"),
            (auth(), daemon_down(), "could not be asked"),
        ] {
            let pin = resolve_base(&r("team/base:1"), &plat("linux/amd64"), &loc, &reg);
            let BasePin::Unresolved { reason } = &pin else {
                panic!("{pin:?}")
            };
            assert!(
                reason.contains("docker.io/team/base:1") && reason.contains(needle),
                "{reason}"
            );
            assert_eq!((pin.hash_input(), pin.has_onbuild()), (None, None));
        }
        let pin = resolve_base(
            &r("team/base:1"),
            &plat("linux/arm64"),
            &Ok(None),
            &no_variant(),
        );
        assert!(matches!(pin, BasePin::NoPlatform { .. }), "{pin:?}");
    }

    #[test]
    fn pinned_references_keep_their_digest_whatever_answers() {
        let d = Digest::sha256_of(b"index");
        let reference = r(&format!("team/base:1@{d}"));
        let answers = [
            (remote("team/base", true, "amd64"), Ok(None)),
            (unreachable(), Ok(None)),
            (unreachable(), local("amd64")),
            (Ok(None), Ok(None)),
        ];
        for (reg, loc) in answers {
            let pin = resolve_base(&reference, &plat("linux/amd64"), &loc, &reg);
            assert_eq!(pin.hash_input(), Some(format!("digest {d}")), "{pin:?}");
        }
        let pin = resolve_base(&reference, &plat("linux/arm64"), &Ok(None), &no_variant());
        assert!(matches!(pin, BasePin::NoPlatform { .. }), "{pin:?}");
    }

    #[test]
    fn single_platform_images_of_another_platform_carry_a_note() {
        let pin = resolve_base(
            &r("team/base:1"),
            &plat("linux/arm64"),
            &Ok(None),
            &remote("team/base:1", false, "amd64"),
        );
        let note = pin.message().expect("a note");
        assert!(
            note.contains("single-platform linux/amd64 image, not linux/arm64"),
            "{note}"
        );
        assert!(pin.hash_input().is_some());
        let fits = resolve_base(
            &r("team/base:1"),
            &plat("linux/amd64"),
            &Ok(None),
            &remote("team/base:1", false, "amd64"),
        );
        assert_eq!(fits.message(), None);
    }
}
