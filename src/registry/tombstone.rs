//! Moving a tag off an image without deleting the image: the tag is pointed at a tombstone, the
//! smallest valid OCI image manifest (the empty JSON descriptor as config and only layer).
//!
//! The distribution API has no "delete this tag" on every registry (Distribution 2.x refuses
//! `DELETE /manifests/<tag>`; deleting by digest removes every tag of that digest), so a tag is
//! released by overwriting it. The tombstone is content-addressed and shared: deleting it only
//! ever removes tags that were released.

use reqwest::{Method, StatusCode};

use super::{ImageName, Registry, RegistryError};

/// The OCI empty descriptor's content, `{}`, and its digest.
const EMPTY_JSON: &[u8] = b"{}";
const EMPTY_JSON_DIGEST: &str =
    "sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a";
const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";

/// The tombstone manifest: the empty descriptor as config and as its one layer.
fn tombstone_manifest() -> String {
    let empty = serde_json::json!({
        "mediaType": "application/vnd.oci.empty.v1+json",
        "digest": EMPTY_JSON_DIGEST,
        "size": EMPTY_JSON.len(),
    });
    serde_json::json!({
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST,
        "config": empty,
        "layers": [empty],
        "annotations": { "org.opencontainers.image.title": "imagebuild: a released tag" },
    })
    .to_string()
}

impl Registry {
    /// Points `tag` of `name` at the tombstone, so it no longer holds the image it pointed at.
    /// Answers the tombstone's digest (to delete it afterwards, if wanted).
    pub async fn release_tag(&self, name: &ImageName, tag: &str) -> Result<String, RegistryError> {
        self.ensure_empty_blob(name).await?;
        let body = tombstone_manifest();
        let digest = super::Digest::sha256_of(body.as_bytes()).to_string();
        let what = format!("releasing tag {name}:{tag}");
        let body = bytes::Bytes::from(body);
        self.put_manifest(name, tag, OCI_MANIFEST, body, &what)
            .await?;
        Ok(digest)
    }

    /// Uploads `{}` to `name` unless the registry already has it (one monolithic upload).
    async fn ensure_empty_blob(&self, name: &ImageName) -> Result<(), RegistryError> {
        let what = format!("uploading the empty JSON blob to {name}");
        let head = format!("{}/blobs/{EMPTY_JSON_DIGEST}", name.repository);
        let resp = self
            .send(name, Method::HEAD, &head, "pull,push", &what)
            .await?;
        if resp.status().is_success() {
            return Ok(());
        }
        let start = format!("{}/blobs/uploads/", name.repository);
        let resp = self
            .send(name, Method::POST, &start, "pull,push", &what)
            .await?;
        if resp.status() != StatusCode::ACCEPTED {
            let s = resp.status();
            return Err(self.http_error(name, &what, s, resp).await);
        }
        let location = resp
            .headers()
            .get(reqwest::header::LOCATION)
            .and_then(|v| v.to_str().ok())
            .and_then(upload_path)
            .ok_or_else(|| RegistryError::Http {
                registry: name.registry.clone(),
                what: what.clone(),
                status: 202,
                detail: "the upload answer had no usable Location header".into(),
            })?;
        let sep = if location.contains('?') { '&' } else { '?' };
        let put = format!("{location}{sep}digest={EMPTY_JSON_DIGEST}");
        let body = bytes::Bytes::from_static(EMPTY_JSON);
        let resp = self
            .send_body(
                name,
                Method::PUT,
                &put,
                "pull,push",
                &what,
                Some(("application/octet-stream", body)),
            )
            .await?;
        match resp.status() {
            s if s.is_success() => Ok(()),
            s => Err(self.http_error(name, &what, s, resp).await),
        }
    }
}

/// An upload Location (absolute URL or `/v2/...` path) as a path below `/v2/`.
fn upload_path(location: &str) -> Option<String> {
    let at = location.find("/v2/")?;
    Some(location[at + "/v2/".len()..].to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_empty_digest_is_the_digest_of_two_braces() {
        assert_eq!(
            super::super::Digest::sha256_of(EMPTY_JSON).to_string(),
            EMPTY_JSON_DIGEST
        );
    }

    #[test]
    fn upload_locations_become_paths_below_v2() {
        assert_eq!(
            upload_path("/v2/a/b/blobs/uploads/u1?_state=x").as_deref(),
            Some("a/b/blobs/uploads/u1?_state=x")
        );
        assert_eq!(
            upload_path("https://r.example/v2/a/blobs/uploads/u2").as_deref(),
            Some("a/blobs/uploads/u2")
        );
        assert_eq!(upload_path("/elsewhere"), None);
    }

    #[test]
    fn the_tombstone_references_only_the_empty_blob() {
        let m: serde_json::Value = serde_json::from_str(&tombstone_manifest()).unwrap();
        assert_eq!(m["config"]["digest"], EMPTY_JSON_DIGEST);
        assert_eq!(m["layers"][0]["digest"], EMPTY_JSON_DIGEST);
        assert_eq!(m["layers"].as_array().unwrap().len(), 1);
    }
}
