//! Manifest and index documents: what kind a body is, and which index entry serves a platform
//! (containerd's `images.Manifest` order: best platform match first, entries without a platform
//! last, attestation manifests never).

use std::collections::BTreeMap;

use serde::Deserialize;

use super::{Digest, Platform};

/// Annotation BuildKit puts on attestation manifests inside an index.
pub(crate) const REFERENCE_TYPE_ANNOTATION: &str = "vnd.docker.reference.type";

const INDEX_TYPES: [&str; 2] = [
    "application/vnd.oci.image.index.v1+json",
    "application/vnd.docker.distribution.manifest.list.v2+json",
];
/// Docker's schema 1 (`+json` and `+prettyjws`).
const SCHEMA1_TYPE: &str = "application/vnd.docker.distribution.manifest.v1+";
const MANIFEST_TYPES: [&str; 2] = [
    "application/vnd.oci.image.manifest.v1+json",
    "application/vnd.docker.distribution.manifest.v2+json",
];

/// A descriptor in an index.
#[derive(Debug, Clone, Deserialize)]
pub(crate) struct Descriptor {
    #[serde(rename = "mediaType", default)]
    pub media_type: String,
    pub digest: String,
    #[serde(default)]
    pub platform: Option<DescriptorPlatform>,
    #[serde(default)]
    pub annotations: BTreeMap<String, String>,
}

/// The `platform` object of an index entry.
#[derive(Debug, Clone, Deserialize)]
pub(crate) struct DescriptorPlatform {
    #[serde(default)]
    pub architecture: String,
    #[serde(default)]
    pub os: String,
    #[serde(default)]
    pub variant: Option<String>,
}

impl DescriptorPlatform {
    /// The normalized platform.
    pub fn platform(&self) -> Platform {
        Platform::new(&self.os, &self.architecture, self.variant.as_deref())
    }
}

/// What a manifest body is.
#[derive(Debug, Clone)]
pub(crate) enum Document {
    /// An OCI index or Docker manifest list.
    Index(Vec<Descriptor>),
    /// A single-platform image manifest, with its config blob digest.
    Image {
        /// The config blob.
        config: Digest,
    },
}

#[derive(Deserialize)]
struct Raw {
    #[serde(rename = "schemaVersion", default)]
    schema_version: Option<u32>,
    #[serde(rename = "mediaType", default)]
    media_type: Option<String>,
    #[serde(default)]
    manifests: Option<Vec<Descriptor>>,
    #[serde(default)]
    config: Option<RawConfig>,
}

#[derive(Deserialize)]
struct RawConfig {
    digest: String,
}

/// Reads a manifest body; the error says what is wrong with it.
pub(crate) fn parse_document(body: &[u8]) -> Result<Document, String> {
    let raw: Raw =
        serde_json::from_slice(body).map_err(|e| format!("the manifest is not valid JSON: {e}"))?;
    let media = raw.media_type.as_deref().unwrap_or("");
    if raw.schema_version == Some(1) || media.starts_with(SCHEMA1_TYPE) {
        return Err(
            "it is a Docker schema 1 manifest, which BuildKit no longer reads; \
                    push the image again with a current Docker"
                .into(),
        );
    }
    let is_index = INDEX_TYPES.contains(&media) || (media.is_empty() && raw.manifests.is_some());
    let is_image = MANIFEST_TYPES.contains(&media) || (media.is_empty() && raw.config.is_some());
    match (is_index, is_image, raw.manifests, raw.config) {
        (true, _, Some(m), _) => Ok(Document::Index(m)),
        (_, true, _, Some(c)) => Ok(Document::Image {
            config: Digest::parse(&c.digest).map_err(|e| format!("config: {e}"))?,
        }),
        _ => Err(format!(
            "it is neither an image index nor an image manifest (media type {media:?})"
        )),
    }
}

/// True for BuildKit's attestation entries (provenance, SBOM), which are never images to run.
pub(crate) fn is_attestation(d: &Descriptor) -> bool {
    d.annotations.contains_key(REFERENCE_TYPE_ANNOTATION)
}

/// The one entry BuildKit would take for `platform`: the best platform match, else the first entry
/// without a platform (whose config must then match), else none.
pub(crate) fn best_entry<'a>(
    entries: &'a [Descriptor],
    platform: &Platform,
) -> Option<&'a Descriptor> {
    let usable = || entries.iter().filter(|d| !is_attestation(d));
    usable()
        .filter_map(|d| {
            let p = d.platform.as_ref()?.platform();
            platform.preference(&p).map(|rank| (rank, d))
        })
        // min_by_key keeps the first of equal ranks: index order breaks ties, as a stable sort does.
        .min_by_key(|(rank, _)| *rank)
        .map(|(_, d)| d)
        .or_else(|| usable().find(|d| d.platform.is_none()))
}

/// The platforms an index offers (attestations left out), for messages.
pub(crate) fn offered_platforms(entries: &[Descriptor]) -> Vec<String> {
    let mut out: Vec<String> = entries
        .iter()
        .filter(|d| !is_attestation(d))
        .map(|d| match &d.platform {
            Some(p) => p.platform().to_string(),
            None => "(no platform given)".to_string(),
        })
        .collect();
    out.dedup();
    out
}

/// True when the media type names an index (for entries that point at nested indexes).
pub(crate) fn is_index_type(media_type: &str) -> bool {
    INDEX_TYPES.contains(&media_type)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(
        digest_byte: char,
        platform: Option<(&str, &str, Option<&str>)>,
        attest: bool,
    ) -> Descriptor {
        Descriptor {
            media_type: MANIFEST_TYPES[0].into(),
            digest: format!("sha256:{}", digest_byte.to_string().repeat(64)),
            platform: platform.map(|(os, arch, v)| DescriptorPlatform {
                os: os.into(),
                architecture: arch.into(),
                variant: v.map(str::to_string),
            }),
            annotations: if attest {
                [(
                    REFERENCE_TYPE_ANNOTATION.to_string(),
                    "attestation-manifest".to_string(),
                )]
                .into()
            } else {
                BTreeMap::new()
            },
        }
    }

    fn pick(entries: &[Descriptor], p: &str) -> Option<char> {
        best_entry(entries, &Platform::parse(p).unwrap()).map(|d| d.digest.chars().last().unwrap())
    }

    #[test]
    fn picks_platform_and_skips_attestations() {
        let entries = vec![
            // Adversarial: an attestation that claims a real platform, listed first.
            entry('0', Some(("linux", "arm64", None)), true),
            entry('a', Some(("linux", "amd64", None)), false),
            entry('b', Some(("linux", "arm64", Some("v8"))), false),
            entry('c', Some(("unknown", "unknown", None)), true),
        ];
        assert_eq!(pick(&entries, "linux/arm64"), Some('b'));
        assert_eq!(pick(&entries, "linux/arm64/v8"), Some('b'));
        assert_eq!(pick(&entries, "linux/amd64"), Some('a'));
        assert_eq!(pick(&entries, "linux/s390x"), None);
        assert_eq!(
            offered_platforms(&entries),
            vec!["linux/amd64", "linux/arm64"]
        );
    }

    #[test]
    fn exact_beats_fallback_and_order_breaks_ties() {
        let entries = vec![
            entry('1', Some(("linux", "arm", Some("v7"))), false),
            entry('2', Some(("linux", "arm64", None)), false),
            entry('3', Some(("linux", "arm64", Some("v8"))), false),
        ];
        assert_eq!(pick(&entries, "linux/arm64"), Some('2'));
        assert_eq!(
            pick(&entries[..1], "linux/arm64"),
            Some('1'),
            "arm/v7 runs on arm64"
        );
        let with_none = vec![
            entry('9', None, false),
            entry('4', Some(("linux", "386", None)), false),
        ];
        assert_eq!(
            pick(&with_none, "linux/amd64"),
            Some('4'),
            "a platform match beats no platform"
        );
        assert_eq!(pick(&with_none[..1], "linux/amd64"), Some('9'));
    }

    #[test]
    fn documents_by_media_type_or_shape() {
        let cfg = format!("sha256:{}", "e".repeat(64));
        let img = format!(r#"{{"schemaVersion":2,"config":{{"digest":"{cfg}"}},"layers":[]}}"#);
        assert!(
            matches!(parse_document(img.as_bytes()), Ok(Document::Image { config }) if config.as_str() == cfg)
        );
        let oci = format!(
            r#"{{"schemaVersion":2,"mediaType":"{}","config":{{"digest":"{cfg}"}}}}"#,
            MANIFEST_TYPES[0]
        );
        assert!(matches!(
            parse_document(oci.as_bytes()),
            Ok(Document::Image { .. })
        ));
        let signed = r#"{"mediaType":"application/vnd.docker.distribution.manifest.v1+prettyjws"}"#;
        assert!(parse_document(signed.as_bytes())
            .unwrap_err()
            .contains("schema 1"));
        let idx = r#"{"schemaVersion":2,"mediaType":"application/vnd.docker.distribution.manifest.list.v2+json","manifests":[]}"#;
        assert!(matches!(parse_document(idx.as_bytes()), Ok(Document::Index(m)) if m.is_empty()));
        let v1 = r#"{"schemaVersion":1,"name":"x","fsLayers":[]}"#;
        assert!(parse_document(v1.as_bytes())
            .unwrap_err()
            .contains("schema 1"));
        assert!(parse_document(b"not json").unwrap_err().contains("JSON"));
        assert!(parse_document(br#"{"schemaVersion":2}"#)
            .unwrap_err()
            .contains("neither"));
        assert!(is_index_type(INDEX_TYPES[1]));
    }
}
