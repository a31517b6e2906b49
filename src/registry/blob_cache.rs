//! On-disk cache of content-addressed registry documents, so a base image's manifests and config
//! are fetched once per machine: a steady-state Check costs one manifest HEAD per base image.
//!
//! Manifests are stored as served (and verified against their digest on every read). Of an image
//! config only the few facts we use are stored: configs may carry ENV values, which must not be
//! copied into our cache.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::Digest;

/// What we keep of an image config blob.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct ConfigSummary {
    /// `os` as written in the config.
    pub os: String,
    /// `architecture` as written.
    pub architecture: String,
    /// `variant` as written, if any.
    pub variant: Option<String>,
    /// Number of ONBUILD triggers (`config.OnBuild`).
    pub onbuild_triggers: usize,
}

impl ConfigSummary {
    /// Reads the facts from a config blob (Docker writes `OnBuild`; Go's JSON decoding, and so the
    /// daemon, accepts any letter case for it).
    pub fn from_config(body: &[u8]) -> Result<ConfigSummary, String> {
        let v: serde_json::Value = serde_json::from_slice(body)
            .map_err(|e| format!("the image config is not valid JSON: {e}"))?;
        let text = |key: &str| {
            v.get(key)
                .and_then(|x| x.as_str())
                .unwrap_or_default()
                .to_string()
        };
        let onbuild_triggers = v
            .get("config")
            .and_then(|c| c.as_object())
            .and_then(|c| {
                c.iter()
                    .find(|(k, _)| k.eq_ignore_ascii_case("onbuild"))
                    .and_then(|(_, x)| x.as_array())
            })
            .map_or(0, Vec::len);
        Ok(ConfigSummary {
            os: text("os"),
            architecture: text("architecture"),
            variant: Some(text("variant")).filter(|s| !s.is_empty()),
            onbuild_triggers,
        })
    }
}

/// The cache directory: `<dir>/<algorithm>/<hex>` for manifests, `<dir>/config-summaries/` for configs.
#[derive(Debug, Clone)]
pub(crate) struct BlobCache {
    dir: PathBuf,
}

impl BlobCache {
    /// A cache rooted at `dir`.
    pub fn new(dir: PathBuf) -> BlobCache {
        BlobCache { dir }
    }

    /// `crate::context::default_cache_dir()/blobs`.
    pub fn default_dir() -> PathBuf {
        crate::context::default_cache_dir().join("blobs")
    }

    fn manifest_path(&self, d: &Digest) -> PathBuf {
        self.dir.join(d.algorithm()).join(d.hex())
    }

    fn summary_path(&self, config: &Digest) -> PathBuf {
        self.dir.join("config-summaries").join(format!(
            "{}-{}.json",
            config.algorithm(),
            config.hex()
        ))
    }

    /// A cached manifest whose bytes still hash to `d` (a damaged file reads as a miss).
    pub async fn manifest(&self, d: &Digest) -> Option<bytes::Bytes> {
        let body = tokio::fs::read(self.manifest_path(d)).await.ok()?;
        d.verifies(&body).then(|| body.into())
    }

    /// Stores a manifest already verified against `d`.
    pub async fn put_manifest(&self, d: &Digest, body: &[u8]) {
        write_atomic(&self.manifest_path(d), body).await;
    }

    /// The cached summary of config `config`.
    pub async fn summary(&self, config: &Digest) -> Option<ConfigSummary> {
        let body = tokio::fs::read(self.summary_path(config)).await.ok()?;
        serde_json::from_slice(&body).ok()
    }

    /// Stores the summary of a config blob verified against `config`.
    pub async fn put_summary(&self, config: &Digest, summary: &ConfigSummary) {
        if let Ok(body) = serde_json::to_vec(summary) {
            write_atomic(&self.summary_path(config), &body).await;
        }
    }
}

/// Writes through a unique temporary file and a rename, so concurrent providers never read a
/// half-written entry. Failures are ignored: the cache only saves round trips.
async fn write_atomic(path: &Path, body: &[u8]) {
    let Some(parent) = path.parent() else { return };
    if tokio::fs::create_dir_all(parent).await.is_err() {
        return;
    }
    let tmp = parent.join(format!(".tmp-{}", uuid::Uuid::new_v4().simple()));
    if tokio::fs::write(&tmp, body).await.is_ok() && tokio::fs::rename(&tmp, path).await.is_ok() {
        return;
    }
    let _ = tokio::fs::remove_file(&tmp).await;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn summarizes_configs_without_keeping_env() {
        let cfg = br#"{"architecture":"arm64","os":"linux","variant":"v8",
            "config":{"Env":["TOKEN=hunter2"],"onbuild":["COPY . /app","RUN make"]}}"#;
        let s = ConfigSummary::from_config(cfg).unwrap();
        assert_eq!(s.architecture, "arm64");
        assert_eq!(s.variant.as_deref(), Some("v8"));
        assert_eq!(s.onbuild_triggers, 2);
        assert!(!serde_json::to_string(&s).unwrap().contains("hunter2"));
        let plain = ConfigSummary::from_config(
            br#"{"architecture":"amd64","os":"linux","config":{"OnBuild":null}}"#,
        )
        .unwrap();
        assert_eq!((plain.onbuild_triggers, plain.variant), (0, None));
        assert!(ConfigSummary::from_config(b"[").is_err());
    }

    #[tokio::test]
    async fn round_trips_and_rejects_damaged_entries() {
        let dir = tempfile::tempdir().unwrap();
        let cache = BlobCache::new(dir.path().to_path_buf());
        let body = br#"{"schemaVersion":2}"#;
        let d = Digest::sha256_of(body);
        assert!(cache.manifest(&d).await.is_none());
        cache.put_manifest(&d, body).await;
        assert_eq!(cache.manifest(&d).await.as_deref(), Some(&body[..]));
        std::fs::write(dir.path().join("sha256").join(d.hex()), b"damaged").unwrap();
        assert!(
            cache.manifest(&d).await.is_none(),
            "a damaged entry is a miss"
        );
        let s = ConfigSummary {
            os: "linux".into(),
            architecture: "amd64".into(),
            variant: None,
            onbuild_triggers: 1,
        };
        cache.put_summary(&d, &s).await;
        assert_eq!(cache.summary(&d).await, Some(s));
        let leftovers: Vec<_> = std::fs::read_dir(dir.path().join("sha256"))
            .unwrap()
            .filter_map(|e| e.ok())
            .filter(|e| e.file_name().to_string_lossy().starts_with(".tmp-"))
            .collect();
        assert!(leftovers.is_empty());
    }
}
