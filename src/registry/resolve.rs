//! Base image resolution without pulling: tag -> digest -> the platform's manifest -> config facts.
//! Everything after the tag lookup is content-addressed and cached on disk (see `blob_cache`).

use reqwest::{Method, StatusCode};

use super::blob_cache::ConfigSummary;
use super::manifest::{best_entry, is_index_type, offered_platforms, parse_document, Document};
use super::{Digest, ImageName, ImageRef, Platform, Registry, RegistryError};

/// Indexes nested deeper than this are refused (real images nest at most once).
const MAX_DEPTH: usize = 4;
/// Image configs are a few KiB; refuse anything absurd rather than buffer it.
const MAX_CONFIG_BYTES: usize = 8 << 20;

/// A base image as its registry serves it for one platform.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResolvedImage {
    /// The reference that was resolved (normalized).
    pub reference: ImageRef,
    /// The platform's image manifest: what a build of this platform runs on.
    pub manifest_digest: Digest,
    /// The index (manifest list) the reference named, when it named one.
    pub index_digest: Option<Digest>,
    /// The image config blob (the image id on Docker's classic store).
    pub config_digest: Digest,
    /// The platform the image config declares (`None` when it declares none).
    pub platform: Option<Platform>,
    /// True when the config holds ONBUILD triggers (they run in the child build and may read its context).
    pub has_onbuild: bool,
}

impl Registry {
    /// Resolves `image` for `platform`: HEAD the tag (a digest-pinned reference needs no lookup), then
    /// pick the platform's entry when it is an index, as BuildKit would. `None` when the registry
    /// has no such tag or digest; an index without a matching entry is `RegistryError::NoPlatform`.
    pub async fn resolve_platform(
        &self,
        image: &ImageRef,
        platform: &Platform,
    ) -> Result<Option<ResolvedImage>, RegistryError> {
        let name = &image.name;
        let top = match &image.digest {
            Some(d) => d.clone(),
            None => match self.manifest_digest(name, image.api_reference()).await? {
                None => return Ok(None),
                Some(d) => Digest::parse(&d).map_err(|e| bad_content(name, image, e))?,
            },
        };
        let Some(body) = self.manifest_by_digest(name, &top).await? else {
            if image.digest.is_some() {
                return Ok(None);
            }
            let why = format!("the tag points at {top}, which the registry then did not serve");
            return Err(bad_content(name, image, why));
        };
        self.descend(image, platform, top, body).await.map(Some)
    }

    /// Walks from the manifest `digest` down to the platform's image manifest.
    async fn descend(
        &self,
        image: &ImageRef,
        platform: &Platform,
        mut digest: Digest,
        mut body: bytes::Bytes,
    ) -> Result<ResolvedImage, RegistryError> {
        let name = &image.name;
        let mut index_digest = None;
        // BuildKit uses a lone manifest whatever its platform; an index entry without a platform
        // must match through its config instead.
        let mut must_match_config = false;
        for _ in 0..MAX_DEPTH {
            let entries = match parse_document(&body).map_err(|e| bad_content(name, image, e))? {
                Document::Image { config } => {
                    let summary = self.config_summary(name, &config).await?;
                    let declared = declared_platform(&summary);
                    let fits = declared
                        .as_ref()
                        .is_some_and(|p| platform.preference(p).is_some());
                    if must_match_config && !fits {
                        let offered = declared.iter().map(|p| p.to_string()).collect();
                        return Err(no_platform(image, platform, offered));
                    }
                    return Ok(ResolvedImage {
                        reference: image.clone(),
                        manifest_digest: digest,
                        index_digest,
                        config_digest: config,
                        platform: declared,
                        has_onbuild: summary.onbuild_triggers > 0,
                    });
                }
                Document::Index(entries) => entries,
            };
            index_digest.get_or_insert_with(|| digest.clone());
            let entry = best_entry(&entries, platform)
                .ok_or_else(|| no_platform(image, platform, offered_platforms(&entries)))?;
            must_match_config = entry.platform.is_none() && !is_index_type(&entry.media_type);
            digest = Digest::parse(&entry.digest).map_err(|e| bad_content(name, image, e))?;
            body = self
                .manifest_by_digest(name, &digest)
                .await?
                .ok_or_else(|| {
                    let why =
                        format!("the index lists {digest}, which the registry does not serve");
                    bad_content(name, image, why)
                })?;
        }
        let why = format!("indexes nest deeper than {MAX_DEPTH} levels");
        Err(bad_content(name, image, why))
    }

    /// The manifest `digest`, from the disk cache or the registry (verified, then cached).
    async fn manifest_by_digest(
        &self,
        name: &ImageName,
        digest: &Digest,
    ) -> Result<Option<bytes::Bytes>, RegistryError> {
        if let Some(body) = self.blob_cache().manifest(digest).await {
            return Ok(Some(body));
        }
        let Some((_, body)) = self.manifest(name, digest.as_str()).await? else {
            return Ok(None);
        };
        if !digest.verifies(&body) {
            return Err(RegistryError::BadContent {
                registry: name.registry.clone(),
                what: format!("manifest {}", name.with_digest(digest.as_str())),
                detail: "its bytes do not hash to that digest".into(),
            });
        }
        self.blob_cache().put_manifest(digest, &body).await;
        Ok(Some(body))
    }

    /// The facts of config blob `config`, from the disk cache or one blob GET.
    async fn config_summary(
        &self,
        name: &ImageName,
        config: &Digest,
    ) -> Result<ConfigSummary, RegistryError> {
        if let Some(s) = self.blob_cache().summary(config).await {
            return Ok(s);
        }
        let what = format!("config blob {}", name.with_digest(config.as_str()));
        let bad = |detail: String| RegistryError::BadContent {
            registry: name.registry.clone(),
            what: what.clone(),
            detail,
        };
        let body = self.blob(name, config, &what).await?;
        if !config.verifies(&body) {
            return Err(bad("its bytes do not hash to that digest".into()));
        }
        let summary = ConfigSummary::from_config(&body).map_err(bad)?;
        self.blob_cache().put_summary(config, &summary).await;
        Ok(summary)
    }

    /// GETs a small blob (following the registry's redirect to storage, if any).
    async fn blob(
        &self,
        name: &ImageName,
        digest: &Digest,
        what: &str,
    ) -> Result<Vec<u8>, RegistryError> {
        let path = format!("{}/blobs/{digest}", name.repository);
        let mut resp = self.send(name, Method::GET, &path, "pull", what).await?;
        match resp.status() {
            s if s.is_success() => {}
            StatusCode::NOT_FOUND => {
                return Err(RegistryError::BadContent {
                    registry: name.registry.clone(),
                    what: what.to_string(),
                    detail: "the image's manifest names it, but the registry does not have it"
                        .into(),
                })
            }
            s => return Err(self.http_error(name, what, s, resp).await),
        }
        let mut body = Vec::new();
        while let Some(chunk) = resp
            .chunk()
            .await
            .map_err(|e| self.unreachable(name, &path, e))?
        {
            body.extend_from_slice(&chunk);
            if body.len() > MAX_CONFIG_BYTES {
                return Err(RegistryError::BadContent {
                    registry: name.registry.clone(),
                    what: what.to_string(),
                    detail: format!("it is larger than {MAX_CONFIG_BYTES} bytes"),
                });
            }
        }
        Ok(body)
    }
}

/// The platform a config declares, if it names an architecture.
fn declared_platform(s: &ConfigSummary) -> Option<Platform> {
    (!s.architecture.is_empty())
        .then(|| Platform::new(&s.os, &s.architecture, s.variant.as_deref()))
}

fn bad_content(name: &ImageName, image: &ImageRef, detail: String) -> RegistryError {
    RegistryError::BadContent {
        registry: name.registry.clone(),
        what: format!("image {image}"),
        detail,
    }
}

fn no_platform(image: &ImageRef, platform: &Platform, offered: Vec<String>) -> RegistryError {
    RegistryError::NoPlatform {
        registry: image.name.registry.clone(),
        reference: image.to_string(),
        platform: platform.to_string(),
        offered,
    }
}
