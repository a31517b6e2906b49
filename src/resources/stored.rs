//! An image resource's stored state, typed: what Diff, Read, Update and Delete need from the
//! outputs the engine hands back, read once here instead of by name wherever it is used.

use crate::registry::BasicCredentials;
use crate::values::{PropertyMap, Value};

/// The output naming the tag by which a resource claims its digest in the registry.
pub const CLAIM_OUTPUT: &str = "claimTag";

/// CodeBuild's name for a build that has not finished.
const IN_PROGRESS: &str = "IN_PROGRESS";

/// What one image resource's state records (both resources; fields one lacks are `None`).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct StoredImage {
    /// The repository pushed to (`registry/path`), as the input gave it.
    pub repository: Option<String>,
    /// The pushed manifest's digest.
    pub digest: Option<String>,
    /// The context hash, which is also the image's hash tag.
    pub context_hash: Option<String>,
    /// The extra tags pushed, as full references (`repo:tag`).
    pub tag_references: Vec<String>,
    /// This resource's claim tag on the digest.
    pub claim: Option<String>,
    /// The `registryAuth` credentials given at create.
    pub credentials: Option<BasicCredentials>,
    /// Whether destroy deletes the pushed image.
    pub delete_on_destroy: bool,
    /// FastContainerImage: the CodeBuild build id.
    pub build_id: Option<String>,
    /// FastContainerImage: the build's status when the state was written.
    pub build_status: Option<String>,
}

impl StoredImage {
    /// Reads `outputs` (secret wrappers removed: the values stay inside the provider).
    pub fn parse(outputs: &PropertyMap) -> StoredImage {
        StoredImage {
            repository: text(outputs, "repository"),
            digest: text(outputs, "digest"),
            context_hash: text(outputs, "contextHash"),
            tag_references: strings(outputs, "tags"),
            claim: text(outputs, CLAIM_OUTPUT),
            credentials: credentials(outputs),
            delete_on_destroy: matches!(
                outputs.get("deleteOnDestroy").map(Value::reveal),
                Some(Value::Bool(true))
            ),
            build_id: text(outputs, "buildId"),
            build_status: text(outputs, "buildStatus"),
        }
    }

    /// The tag names this resource pushed: the hash tag and the extra tags.
    pub fn own_tags(&self) -> Vec<String> {
        let extra = self
            .tag_references
            .iter()
            .filter_map(|r| r.rsplit_once(':').map(|(_, tag)| tag.to_string()));
        self.context_hash.iter().cloned().chain(extra).collect()
    }

    /// The CodeBuild build the state says is still running.
    pub fn running_build(&self) -> Option<&str> {
        match self.build_status.as_deref() {
            Some(IN_PROGRESS) => self.build_id.as_deref(),
            _ => None,
        }
    }
}

/// A top-level string output, secret or not; an empty string counts as absent.
pub fn text(map: &PropertyMap, name: &str) -> Option<String> {
    match map.get(name).map(Value::reveal) {
        Some(Value::String(s)) if !s.is_empty() => Some(s),
        _ => None,
    }
}

fn strings(map: &PropertyMap, name: &str) -> Vec<String> {
    match map.get(name).map(Value::reveal) {
        Some(Value::Array(items)) => items
            .into_iter()
            .filter_map(|v| match v {
                Value::String(s) => Some(s),
                _ => None,
            })
            .collect(),
        _ => Vec::new(),
    }
}

fn credentials(outputs: &PropertyMap) -> Option<BasicCredentials> {
    match outputs.get("registryAuth").map(Value::reveal) {
        Some(Value::Object(m)) => match (m.get("username"), m.get("password")) {
            (Some(Value::String(u)), Some(Value::String(p))) => Some(BasicCredentials {
                username: u.clone(),
                password: p.clone(),
            }),
            _ => None,
        },
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_every_field_through_secret_wrappers() {
        let mut auth = PropertyMap::new();
        auth.insert("username".into(), "ci".into());
        auth.insert("password".into(), Value::Secret(Box::new("pw".into())));
        let mut out = PropertyMap::new();
        out.insert("repository".into(), "reg:5000/app".into());
        out.insert("digest".into(), Value::Secret(Box::new("sha256:ab".into())));
        out.insert("contextHash".into(), "h1".into());
        out.insert(
            "tags".into(),
            vec![
                "reg:5000/app:v1".to_string(),
                "reg:5000/app:latest".to_string(),
            ]
            .into(),
        );
        out.insert(CLAIM_OUTPUT.into(), "imagebuild-claim-1".into());
        out.insert("registryAuth".into(), Value::Object(auth));
        out.insert("deleteOnDestroy".into(), true.into());
        out.insert("buildId".into(), "p:1".into());
        out.insert("buildStatus".into(), "IN_PROGRESS".into());
        let stored = StoredImage::parse(&out);
        assert_eq!(stored.digest.as_deref(), Some("sha256:ab"));
        assert_eq!(stored.own_tags(), ["h1", "v1", "latest"]);
        assert_eq!(stored.claim.as_deref(), Some("imagebuild-claim-1"));
        assert_eq!(stored.credentials.as_ref().unwrap().password, "pw");
        assert!(stored.delete_on_destroy);
        assert_eq!(stored.running_build(), Some("p:1"));
    }

    #[test]
    fn empty_state_reads_as_nothing_recorded() {
        let stored = StoredImage::parse(&PropertyMap::new());
        assert_eq!(stored, StoredImage::default());
        assert!(stored.own_tags().is_empty() && stored.running_build().is_none());
        let mut finished = PropertyMap::new();
        finished.insert("buildId".into(), "p:1".into());
        finished.insert("buildStatus".into(), "FAILED".into());
        assert_eq!(StoredImage::parse(&finished).running_build(), None);
    }
}
