//! Base image resolution without pulling, against the real registry (images pushed through the
//! distribution API by hand: a single manifest, an index with two platforms and an attestation)
//! and the real dockerd (local-only images).

mod local_common;

use std::path::Path;

use imagebuild::local::{local_image, LocalError};
use imagebuild::plan::{lookup_base, BasePin, LocalStore};
use imagebuild::registry::{
    BasicCredentials, Digest, ImageName, ImageRef, Platform, Registry, RegistryConfig,
    RegistryError,
};
use local_common::*;

const DOCKER_MANIFEST: &str = "application/vnd.docker.distribution.manifest.v2+json";
const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
const OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";

fn platform(s: &str) -> Platform {
    Platform::parse(s).unwrap()
}

fn registry(cache: &Path) -> Registry {
    Registry::new(RegistryConfig {
        explicit: Some(registry_creds()),
        ..Default::default()
    })
    .with_blob_cache_dir(cache.to_path_buf())
}

fn at(repo: &ImageName, suffix: &str) -> ImageRef {
    ImageRef::parse(&format!("{repo}{suffix}")).unwrap()
}

/// The distribution API, spoken directly with basic auth: independent of our registry module.
struct Pusher {
    http: reqwest::Client,
    creds: BasicCredentials,
}

impl Pusher {
    fn new() -> Pusher {
        Pusher {
            http: reqwest::Client::new(),
            creds: registry_creds(),
        }
    }

    fn url(repo: &ImageName, rest: &str) -> String {
        format!("http://{}/v2/{}/{rest}", repo.registry, repo.repository)
    }

    /// Monolithic blob upload (POST, then PUT with the digest).
    async fn blob(&self, repo: &ImageName, body: &[u8]) -> Digest {
        let d = Digest::sha256_of(body);
        let r = self
            .http
            .post(Self::url(repo, "blobs/uploads/"))
            .basic_auth(&self.creds.username, Some(&self.creds.password))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 202, "upload start: {}", r.text().await.unwrap());
        let loc = r.headers()["location"].to_str().unwrap().to_string();
        let loc = if loc.starts_with('/') {
            format!("http://{}{loc}", repo.registry)
        } else {
            loc
        };
        let sep = if loc.contains('?') { '&' } else { '?' };
        let r = self
            .http
            .put(format!("{loc}{sep}digest={d}"))
            .basic_auth(&self.creds.username, Some(&self.creds.password))
            .header("Content-Type", "application/octet-stream")
            .body(body.to_vec())
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 201, "upload end: {}", r.text().await.unwrap());
        d
    }

    async fn manifest(&self, repo: &ImageName, reference: &str, media: &str, body: &str) -> Digest {
        let r = self
            .http
            .put(Self::url(repo, &format!("manifests/{reference}")))
            .basic_auth(&self.creds.username, Some(&self.creds.password))
            .header("Content-Type", media)
            .body(body.to_string())
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 201, "manifest put: {}", r.text().await.unwrap());
        Digest::sha256_of(body.as_bytes())
    }

    async fn delete_blob(&self, repo: &ImageName, d: &Digest) {
        let r = self
            .http
            .delete(Self::url(repo, &format!("blobs/{d}")))
            .basic_auth(&self.creds.username, Some(&self.creds.password))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 202, "blob delete: {}", r.text().await.unwrap());
    }

    /// An image manifest of one platform with one layer; returns (manifest digest, config digest).
    async fn image(
        &self,
        repo: &ImageName,
        reference: &str,
        media: &str,
        (arch, variant): (&str, Option<&str>),
        onbuild: &[&str],
    ) -> (Digest, Digest) {
        let layer = self.blob(repo, uuid::Uuid::new_v4().as_bytes()).await;
        let config = serde_json::json!({
            "architecture": arch, "os": "linux", "variant": variant,
            "config": {"Env": ["PATH=/bin"], "OnBuild": onbuild},
            "rootfs": {"type": "layers", "diff_ids": [layer.to_string()]},
        })
        .to_string();
        let cfg = self.blob(repo, config.as_bytes()).await;
        let (cfg_type, layer_type) = if media == OCI_MANIFEST {
            (
                "application/vnd.oci.image.config.v1+json",
                "application/vnd.oci.image.layer.v1.tar+gzip",
            )
        } else {
            (
                "application/vnd.docker.container.image.v1+json",
                "application/vnd.docker.image.rootfs.diff.tar.gzip",
            )
        };
        let manifest = serde_json::json!({
            "schemaVersion": 2, "mediaType": media,
            "config": {"mediaType": cfg_type, "digest": cfg.to_string(), "size": config.len()},
            "layers": [{"mediaType": layer_type, "digest": layer.to_string(), "size": 16}],
        })
        .to_string();
        (self.manifest(repo, reference, media, &manifest).await, cfg)
    }
}

#[tokio::test]
async fn single_manifest_image_resolves_and_a_moved_tag_is_seen() {
    require_services();
    let repo = unique_repo("base-single");
    let push = Pusher::new();
    let (m1, cfg1) = push
        .image(
            &repo,
            "v1",
            DOCKER_MANIFEST,
            ("amd64", None),
            &["COPY . /app"],
        )
        .await;
    let cache = tempfile::tempdir().unwrap();
    let reg = registry(cache.path());
    let got = reg
        .resolve_platform(&at(&repo, ":v1"), &platform("linux/amd64"))
        .await
        .unwrap()
        .expect("v1 exists");
    assert_eq!(got.manifest_digest, m1);
    assert_eq!(Some(m1.to_string()), registry_digest(&repo, "v1").await);
    assert_eq!(got.index_digest, None);
    assert_eq!(got.config_digest, cfg1);
    assert_eq!(got.platform, Some(platform("linux/amd64")));
    assert!(got.has_onbuild, "the config has an ONBUILD trigger");

    // A lone manifest is used for any platform, as BuildKit does; the pin says so.
    let other = reg
        .resolve_platform(&at(&repo, ":v1"), &platform("linux/arm64"))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(other.manifest_digest, m1);

    // The tag moves: the next resolution sees the new digest.
    let (m2, _) = push
        .image(&repo, "v1", DOCKER_MANIFEST, ("amd64", None), &[])
        .await;
    assert_ne!(m1, m2);
    let moved = reg
        .resolve_platform(&at(&repo, ":v1"), &platform("linux/amd64"))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(moved.manifest_digest, m2);
    assert!(!moved.has_onbuild);

    // Missing tags and repositories are None, not errors.
    let p = platform("linux/amd64");
    assert_eq!(
        reg.resolve_platform(&at(&repo, ":nope"), &p).await.unwrap(),
        None
    );
    let gone = unique_repo("base-gone");
    assert_eq!(
        reg.resolve_platform(&at(&gone, ":v1"), &p).await.unwrap(),
        None
    );
}

#[tokio::test]
async fn index_entries_are_picked_per_platform_skipping_attestations() {
    require_services();
    let repo = unique_repo("base-index");
    let push = Pusher::new();
    let (amd, _) = push
        .image(&repo, "amd64", OCI_MANIFEST, ("amd64", None), &[])
        .await;
    let (arm, arm_cfg) = push
        .image(
            &repo,
            "arm64",
            OCI_MANIFEST,
            ("arm64", Some("v8")),
            &["RUN make"],
        )
        .await;
    let (attest, _) = push
        .image(&repo, "attest", OCI_MANIFEST, ("unknown", None), &[])
        .await;
    let entry = |d: &Digest, p: serde_json::Value, ann: serde_json::Value| {
        serde_json::json!({"mediaType": OCI_MANIFEST, "digest": d.to_string(), "size": 1,
                           "platform": p, "annotations": ann})
    };
    // The attestation comes first and claims linux/arm64: only its annotation tells it apart.
    let index = serde_json::json!({
        "schemaVersion": 2, "mediaType": OCI_INDEX,
        "manifests": [
            entry(&attest, serde_json::json!({"os": "linux", "architecture": "arm64"}),
                  serde_json::json!({"vnd.docker.reference.type": "attestation-manifest",
                                     "vnd.docker.reference.digest": arm.to_string()})),
            entry(&amd, serde_json::json!({"os": "linux", "architecture": "amd64"}), serde_json::json!({})),
            entry(&arm, serde_json::json!({"os": "linux", "architecture": "arm64", "variant": "v8"}), serde_json::json!({})),
        ],
    })
    .to_string();
    let idx = push.manifest(&repo, "multi", OCI_INDEX, &index).await;
    assert_eq!(Some(idx.to_string()), registry_digest(&repo, "multi").await);

    let cache = tempfile::tempdir().unwrap();
    let reg = registry(cache.path());
    for p in ["linux/arm64", "linux/arm64/v8", "linux/aarch64"] {
        let got = reg
            .resolve_platform(&at(&repo, ":multi"), &platform(p))
            .await
            .unwrap()
            .unwrap();
        assert_eq!(
            (&got.manifest_digest, &got.index_digest),
            (&arm, &Some(idx.clone())),
            "{p}"
        );
        assert_eq!(got.config_digest, arm_cfg);
        assert!(got.has_onbuild);
        assert_eq!(got.platform, Some(platform("linux/arm64")));
    }
    let got = reg
        .resolve_platform(&at(&repo, ":multi"), &platform("linux/amd64"))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(got.manifest_digest, amd);
    assert!(!got.has_onbuild);

    // Pinned by the index digest (with or without a tag, which is then ignored).
    for suffix in [format!("@{idx}"), format!(":no-such-tag@{idx}")] {
        let got = reg
            .resolve_platform(&at(&repo, &suffix), &platform("linux/arm64"))
            .await
            .unwrap()
            .unwrap();
        assert_eq!(
            (got.manifest_digest, got.index_digest),
            (arm.clone(), Some(idx.clone()))
        );
    }

    let e = reg
        .resolve_platform(&at(&repo, ":multi"), &platform("linux/s390x"))
        .await
        .expect_err("no s390x entry");
    assert!(
        matches!(&e, RegistryError::NoPlatform { offered, .. }
        if offered == &vec!["linux/amd64".to_string(), "linux/arm64".to_string()]),
        "{e}"
    );
    assert!(e.to_string().contains("has no linux/s390x variant"), "{e}");
}

#[tokio::test]
async fn manifests_and_config_facts_come_from_the_disk_cache_once_fetched() {
    require_services();
    let repo = unique_repo("base-cache");
    let push = Pusher::new();
    let (m, cfg) = push
        .image(&repo, "v1", OCI_MANIFEST, ("amd64", None), &["COPY . /x"])
        .await;
    let cache = tempfile::tempdir().unwrap();
    let p = platform("linux/amd64");
    let first = registry(cache.path())
        .resolve_platform(&at(&repo, ":v1"), &p)
        .await
        .unwrap()
        .unwrap();
    assert!(cache.path().join("sha256").join(m.hex()).is_file());
    let summary = cache
        .path()
        .join("config-summaries")
        .join(format!("sha256-{}.json", cfg.hex()));
    let kept = std::fs::read_to_string(&summary).expect("config facts cached");
    assert!(
        !kept.contains("PATH=/bin"),
        "config ENV values are not cached: {kept}"
    );

    // With the config blob gone from the registry, only the cache can answer.
    push.delete_blob(&repo, &cfg).await;
    let again = registry(cache.path())
        .resolve_platform(&at(&repo, ":v1"), &p)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(again, first);
    let fresh = tempfile::tempdir().unwrap();
    let e = registry(fresh.path())
        .resolve_platform(&at(&repo, ":v1"), &p)
        .await
        .expect_err("blob is gone and the cache is empty");
    assert!(matches!(e, RegistryError::BadContent { .. }), "{e}");
    assert!(e.to_string().contains(&cfg.to_string()), "{e}");
}

#[tokio::test]
async fn unreachable_registry_and_wrong_password_are_clear_errors() {
    require_services();
    let cache = tempfile::tempdir().unwrap();
    let p = platform("linux/amd64");
    // Port 9 on loopback: nothing listens there.
    let nowhere = ImageRef::parse("127.0.0.1:9/team/base:1").unwrap();
    let e = registry(cache.path())
        .resolve_platform(&nowhere, &p)
        .await
        .expect_err("nothing listens on port 9");
    assert!(
        matches!(e, RegistryError::Unreachable { .. }) && e.is_transient(),
        "{e}"
    );
    assert!(
        e.to_string().contains("cannot reach registry 127.0.0.1:9"),
        "{e}"
    );
    let pin = lookup_base(&nowhere, &p, LocalStore::Nowhere, &registry(cache.path())).await;
    assert!(
        matches!(&pin, BasePin::Unresolved { reason } if reason.contains("cannot reach")),
        "{pin:?}"
    );

    let repo = unique_repo("base-auth");
    Pusher::new()
        .image(&repo, "v1", DOCKER_MANIFEST, ("amd64", None), &[])
        .await;
    let wrong = Registry::new(RegistryConfig {
        explicit: Some(BasicCredentials {
            username: registry_creds().username,
            password: "not-the-password-4711".into(),
        }),
        ..Default::default()
    })
    .with_blob_cache_dir(cache.path().to_path_buf());
    let e = wrong
        .resolve_platform(&at(&repo, ":v1"), &p)
        .await
        .expect_err("wrong password");
    let msg = e.to_string();
    assert!(matches!(e, RegistryError::Auth { .. }), "{msg}");
    assert!(
        msg.contains(&repo.registry) && msg.contains("explicit"),
        "{msg}"
    );
    assert!(!msg.contains("not-the-password-4711"), "{msg}");
}

#[tokio::test]
async fn local_images_are_inspected_and_missing_ones_are_none() {
    require_services();
    let busybox = local_image(None, BUSYBOX)
        .await
        .unwrap()
        .expect("base image present");
    let want_id = docker(&["image", "inspect", "-f", "{{.Id}}", BUSYBOX]);
    assert_eq!(busybox.id.as_str(), want_id.trim());
    assert_eq!(busybox.platform(), platform("linux/amd64"));
    assert_eq!(
        busybox.reference,
        "docker.io/imagebuild-base/busybox:latest"
    );
    assert!(!busybox.has_onbuild);

    let missing = format!(
        "imagebuild-itest/missing-{}:v1",
        uuid::Uuid::new_v4().simple()
    );
    assert_eq!(local_image(None, &missing).await.unwrap(), None);
    // A bare hex name is a repository for BuildKit, never an image-id prefix.
    let short_id = &busybox.id.hex()[..12];
    assert_eq!(local_image(None, short_id).await.unwrap(), None);
    let e = local_image(None, "Bad Name").await.expect_err("invalid");
    assert!(
        matches!(&e, LocalError::Invalid(m) if m.contains("\"Bad Name\"")),
        "{e}"
    );
    let e = local_image(Some("unix:///nonexistent/docker.sock"), BUSYBOX)
        .await
        .expect_err("no daemon there");
    assert!(matches!(e, LocalError::DaemonUnreachable { .. }), "{e}");

    // ONBUILD triggers of a locally built image.
    let tag = format!(
        "imagebuild-itest/onbuild-{}:v1",
        uuid::Uuid::new_v4().simple()
    );
    let dir = write_tree(&[(
        "Dockerfile",
        &format!("FROM {BUSYBOX}\nONBUILD COPY . /app\n"),
    )]);
    let out = std::process::Command::new("/usr/bin/docker")
        .args(["build", "-q", "-t", &tag])
        .arg(dir.path())
        .env("DOCKER_BUILDKIT", "1")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let found = local_image(None, &tag).await;
    docker(&["rmi", &tag]);
    assert!(found.unwrap().expect("just built").has_onbuild);
}

#[tokio::test]
async fn local_only_base_pins_by_id_and_a_wrong_arch_is_reported() {
    require_services();
    let cache = tempfile::tempdir().unwrap();
    let reg = registry(cache.path());
    let busybox = ImageRef::parse(BUSYBOX).unwrap();
    let id = docker(&["image", "inspect", "-f", "{{.Id}}", BUSYBOX]);
    let pin = lookup_base(
        &busybox,
        &platform("linux/amd64"),
        LocalStore::Daemon(None),
        &reg,
    )
    .await;
    assert!(
        matches!(&pin, BasePin::Local { image, .. } if image.id.as_str() == id.trim()),
        "{pin:?}"
    );
    assert_eq!(pin.hash_input(), Some(format!("local {}", id.trim())));

    let pin = lookup_base(
        &busybox,
        &platform("linux/arm64"),
        LocalStore::Daemon(None),
        &reg,
    )
    .await;
    let text = pin.message().unwrap_or_default().to_string();
    assert!(matches!(pin, BasePin::NoPlatform { .. }), "{pin:?}");
    assert!(
        text.contains("base image docker.io/imagebuild-base/busybox:latest has no linux/arm64 variant locally")
            && text.contains("the local image is linux/amd64"),
        "{text}"
    );

    // Remote builds do not see local images.
    let pin = lookup_base(
        &busybox,
        &platform("linux/amd64"),
        LocalStore::Nowhere,
        &reg,
    )
    .await;
    assert!(matches!(pin, BasePin::Unresolved { .. }), "{pin:?}");
}

#[tokio::test]
async fn an_image_in_both_places_pins_by_the_registry_digest() {
    require_services();
    let repo = unique_repo("base-both");
    docker(&["tag", BUSYBOX, &repo.with_tag("v1")]);
    let pushed = imagebuild::local::push_existing(
        None,
        &repo,
        "v1",
        &imagebuild::registry::ResolvedCredentials {
            credentials: Some(registry_creds()),
            source: imagebuild::registry::CredentialSource::Explicit,
        },
    )
    .await;
    let cache = tempfile::tempdir().unwrap();
    let reference = at(&repo, ":v1");
    let pin = lookup_base(
        &reference,
        &platform("linux/amd64"),
        LocalStore::Daemon(None),
        &registry(cache.path()),
    )
    .await;
    let local = local_image(None, &reference.to_string()).await;
    docker(&["rmi", &repo.with_tag("v1")]);
    pushed.unwrap_or_else(|e| panic!("{e}"));
    let want = registry_digest(&repo, "v1").await.expect("pushed");
    assert!(
        matches!(&pin, BasePin::Digest { digest, note: None, .. } if digest.as_str() == want),
        "{pin:?}"
    );
    // The daemon recorded the same digest for the push.
    assert_eq!(
        local
            .unwrap()
            .unwrap()
            .repo_digest(&repo)
            .map(|d| d.to_string()),
        Some(want)
    );
}

/// An image pushed to one registry under another name (a base image shared through a private
/// registry) is still local-only under the name a FROM gives: its id pins it and the FROM's
/// registry (docker.io, unreachable here) is not asked, so no "could not pin" note and no wait.
#[tokio::test]
async fn a_base_pushed_elsewhere_under_another_name_pins_locally_without_asking() {
    require_services();
    let unique = uuid::Uuid::new_v4().simple().to_string();
    let local_name = format!("imagebuild-itest/shared-base-{unique}:v1");
    let dir = write_tree(&[(
        "Dockerfile",
        &format!("FROM {BUSYBOX}\nLABEL imagebuild.test={unique}\n"),
    )]);
    let built = std::process::Command::new("/usr/bin/docker")
        .args(["build", "-q", "-t", &local_name])
        .arg(dir.path())
        .env("DOCKER_BUILDKIT", "1")
        .output()
        .unwrap();
    assert!(
        built.status.success(),
        "{}",
        String::from_utf8_lossy(&built.stderr)
    );
    let elsewhere = unique_repo("shared-base");
    docker(&["tag", &local_name, &elsewhere.with_tag("v1")]);
    let pushed = imagebuild::local::push_existing(
        None,
        &elsewhere,
        "v1",
        &imagebuild::registry::ResolvedCredentials {
            credentials: Some(registry_creds()),
            source: imagebuild::registry::CredentialSource::Explicit,
        },
    )
    .await;
    let cache = tempfile::tempdir().unwrap();
    let reference = ImageRef::parse(&local_name).unwrap();
    let local = local_image(None, &local_name).await;
    let pin = lookup_base(
        &reference,
        &platform("linux/amd64"),
        LocalStore::Daemon(None),
        &registry(cache.path()),
    )
    .await;
    docker(&["rmi", "-f", &local_name, &elsewhere.with_tag("v1")]);
    pushed.unwrap_or_else(|e| panic!("{e}"));
    let local = local.unwrap().expect("just built");
    assert!(
        local.repo_digest(&elsewhere).is_some(),
        "the push recorded a RepoDigest under the other name: {:?}",
        local.repo_digests
    );
    assert!(
        matches!(&pin, BasePin::Local { image, note: None } if image.id == local.id),
        "{pin:?}"
    );
}
