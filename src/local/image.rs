//! Images in the daemon's own store: what a BuildKit build on this daemon uses for a FROM before it
//! would go to a registry (the daemon prefers a local image whose platform fits).

use serde::Deserialize;

use super::api;
use super::daemon::DaemonAddr;
use super::LocalError;
use crate::registry::{Digest, ImageName, ImageRef, Platform};

/// A local image, as `GET /images/{name}/json` describes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LocalImage {
    /// The reference that was looked up, fully qualified (`docker.io/library/python:3.12`).
    pub reference: String,
    /// The image id (config digest on the classic store, manifest/index digest on containerd's).
    pub id: Digest,
    /// `RepoDigests`: `name@sha256:...` of registries the image was pulled from or pushed to.
    pub repo_digests: Vec<String>,
    /// `Os` as the image config says.
    pub os: String,
    /// `Architecture` as the image config says.
    pub architecture: String,
    /// `Variant`, when the config names one.
    pub variant: Option<String>,
    /// True when the config holds ONBUILD triggers.
    pub has_onbuild: bool,
}

impl LocalImage {
    /// The image's normalized platform.
    pub fn platform(&self) -> Platform {
        Platform::new(&self.os, &self.architecture, self.variant.as_deref())
    }

    /// True when the daemon would use this image for a build of `platform` (else it goes to a registry).
    pub fn serves(&self, platform: &Platform) -> bool {
        platform.accepts_local(&self.os, &self.architecture, self.variant.as_deref())
    }

    /// The digest this image has in repository `name`, if it was pulled from or pushed there.
    pub fn repo_digest(&self, name: &ImageName) -> Option<Digest> {
        self.repo_digests.iter().find_map(|rd| {
            let parsed = ImageRef::parse(rd).ok()?;
            (parsed.name == *name).then_some(parsed.digest).flatten()
        })
    }
}

#[derive(Deserialize)]
struct Inspect {
    #[serde(rename = "Id")]
    id: String,
    #[serde(rename = "RepoDigests", default)]
    repo_digests: Option<Vec<String>>,
    #[serde(rename = "Os", default)]
    os: String,
    #[serde(rename = "Architecture", default)]
    architecture: String,
    #[serde(rename = "Variant", default)]
    variant: Option<String>,
    #[serde(rename = "Config", default)]
    config: Option<InspectConfig>,
}

#[derive(Deserialize)]
struct InspectConfig {
    #[serde(rename = "OnBuild", default)]
    on_build: Option<Vec<String>>,
}

/// Looks `reference` (a FROM reference such as `python:3.12`) up in the daemon at `docker_host`
/// (None: $DOCKER_HOST, else the default socket). `None` when the daemon has no such image.
pub async fn local_image(
    docker_host: Option<&str>,
    reference: &str,
) -> Result<Option<LocalImage>, LocalError> {
    let parsed = ImageRef::parse(reference)
        .map_err(|e| LocalError::Invalid(format!("base image reference: {e}")))?;
    // Fully qualified so that the daemon cannot take a bare hex name for an image-id prefix;
    // with a digest the tag is ignored, as BuildKit does.
    let query = parsed.daemon_reference();
    let addr = DaemonAddr::resolve(docker_host)?;
    // Unversioned path: the daemon answers in its own API version, saving a /version round trip.
    let Some(body) = api::inspect_image(&addr, "", &query).await? else {
        return Ok(None);
    };
    let unreadable = |detail: String| LocalError::Daemon {
        host: addr.display.clone(),
        what: format!("inspect {query}"),
        detail,
    };
    let i: Inspect =
        serde_json::from_slice(&body).map_err(|e| unreadable(format!("unreadable answer: {e}")))?;
    let id = Digest::parse(&i.id).map_err(unreadable)?;
    Ok(Some(LocalImage {
        reference: query.clone(),
        id,
        repo_digests: i.repo_digests.unwrap_or_default(),
        os: i.os,
        architecture: i.architecture,
        variant: i.variant.filter(|v| !v.is_empty()),
        has_onbuild: i
            .config
            .and_then(|c| c.on_build)
            .is_some_and(|t| !t.is_empty()),
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn image(os: &str, arch: &str, variant: Option<&str>) -> LocalImage {
        LocalImage {
            reference: "docker.io/library/x:latest".into(),
            id: Digest::sha256_of(b"x"),
            repo_digests: vec![
                format!("127.0.0.1:5000/team/x@{}", Digest::sha256_of(b"m")),
                "x@sha256:zz".into(),
            ],
            os: os.into(),
            architecture: arch.into(),
            variant: variant.map(str::to_string),
            has_onbuild: false,
        }
    }

    #[test]
    fn serves_matching_platforms_only() {
        let arm = Platform::parse("linux/arm64").unwrap();
        assert!(image("linux", "arm64", Some("v8")).serves(&arm));
        assert!(image("linux", "arm64", None).serves(&arm));
        assert!(!image("linux", "amd64", None).serves(&arm));
        assert_eq!(
            image("linux", "aarch64", None).platform().to_string(),
            "linux/arm64"
        );
    }

    #[test]
    fn finds_repo_digests_by_repository() {
        let img = image("linux", "amd64", None);
        let name = ImageName::parse("127.0.0.1:5000/team/x").unwrap();
        assert_eq!(img.repo_digest(&name), Some(Digest::sha256_of(b"m")));
        assert_eq!(
            img.repo_digest(&ImageName::parse("127.0.0.1:5000/team/y").unwrap()),
            None
        );
        assert_eq!(
            img.repo_digest(&ImageName::parse("x").unwrap()),
            None,
            "malformed entries are skipped"
        );
    }
}
