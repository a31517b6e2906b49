//! Shared helpers for the local engine's integration tests (real dockerd + registry).
#![allow(dead_code)]

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use std::time::Instant;

use imagebuild::context::{ContextRequest, DockerfileSource};
use imagebuild::local::{
    BuildSpec, ContextSnapshot, LocalConfig, LocalEngine, ProgressEvent, PublishSpec, Published,
};
use imagebuild::registry::{BasicCredentials, ImageName, RegistryConfig};
use tokio_util::sync::CancellationToken;

mod engines;
#[allow(unused_imports)] // not every suite names a daemon
pub use engines::*;

pub const BUSYBOX: &str = "imagebuild-base/busybox:latest";
/// The local Python base image (scripts/make-base-images.sh).
pub const PYTHON: &str = "imagebuild-base/python:3.11";
/// Debian's arm64 busybox-static, config linux/arm64 (scripts/make-base-images.sh; RUN runs
/// under QEMU, scripts/enable-emulation.sh).
pub const BUSYBOX_ARM64: &str = "imagebuild-base/busybox-arm64:latest";

/// Test registry address (scripts/env.sh).
pub fn registry_addr() -> String {
    std::env::var("IMAGEBUILD_TEST_REGISTRY").unwrap_or_else(|_| "127.0.0.1:5000".into())
}

/// The registry's test credentials.
pub fn registry_creds() -> BasicCredentials {
    BasicCredentials {
        username: std::env::var("IMAGEBUILD_TEST_REGISTRY_USER")
            .unwrap_or_else(|_| "imagebuild".into()),
        password: std::env::var("IMAGEBUILD_TEST_REGISTRY_PASSWORD")
            .unwrap_or_else(|_| "imagebuild-test-password".into()),
    }
}

/// Engine 20.10's socket, the daemon the suites use when DOCKER_HOST is unset.
pub const DEFAULT_DOCKER_SOCK: &str = "/var/run/docker.sock";

/// The daemon under test: $DOCKER_HOST (`make rust-test-engine29` sets Engine 29's), else the default socket.
pub fn docker_host() -> String {
    std::env::var("DOCKER_HOST")
        .ok()
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| format!("unix://{DEFAULT_DOCKER_SOCK}"))
}

/// The unix socket of the daemon under test (the suites only run against local daemons).
pub fn docker_sock() -> String {
    let host = docker_host();
    match host.strip_prefix("unix://") {
        Some(path) => path.to_string(),
        None => {
            panic!("DOCKER_HOST={host}: the local suites need a unix:// socket of a local daemon")
        }
    }
}

/// Panics with the reason when the daemon under test, the registry or a base image on it is missing.
pub fn require_services() {
    let host = docker_host();
    if std::os::unix::net::UnixStream::connect(docker_sock()).is_err() {
        panic!("no Docker daemon is reachable at {host}: run scripts/start-services.sh");
    }
    let addr = registry_addr();
    if std::net::TcpStream::connect(&addr).is_err() {
        panic!("the test registry is not reachable at {addr}: run scripts/start-services.sh");
    }
    // /usr/bin/docker inherits DOCKER_HOST, so this asks the daemon under test.
    for image in [BUSYBOX, PYTHON, BUSYBOX_ARM64] {
        let out = std::process::Command::new("/usr/bin/docker")
            .args(["image", "inspect", "-f", "{{.Id}}", image])
            .output()
            .expect("run /usr/bin/docker");
        if !out.status.success() {
            panic!(
                "base image {image} is missing on {host}: run scripts/make-base-images.sh --host {host}"
            );
        }
    }
}

/// A fresh repository name in the test registry.
pub fn unique_repo(prefix: &str) -> ImageName {
    let id = uuid::Uuid::new_v4().simple().to_string();
    ImageName::parse(&format!("{}/itest/{prefix}-{}", registry_addr(), &id[..10])).unwrap()
}

/// Writes `files` under a new temp dir.
pub fn write_tree(files: &[(&str, &str)]) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    for (p, c) in files {
        let path = dir.path().join(p);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, c).unwrap();
    }
    dir
}

/// Snapshot through the real context engine; `dockerfile_in_context` names the Dockerfile's path when
/// it is a file of the context, else `dockerfile` is given inline. `salt` varies the hash.
pub fn snapshot(
    root: &Path,
    dockerfile: &str,
    dockerfile_in_context: Option<&str>,
    salt: &str,
) -> ContextSnapshot {
    let source = match dockerfile_in_context {
        Some(p) => DockerfileSource::Path(root.join(p)),
        None => DockerfileSource::Inline(dockerfile.to_string()),
    };
    imagebuild::context::snapshot(&ContextRequest {
        extra_inputs: vec![("test-salt".into(), salt.into())],
        cache_dir: Some(std::env::temp_dir().join("imagebuild-local-tests-cache")),
        ..ContextRequest::new(PathBuf::from(root), source)
    })
    .unwrap_or_else(|e| panic!("snapshot of {}: {e}", root.display()))
}

/// A BuildSpec with defaults.
pub fn build_spec(snap: ContextSnapshot) -> BuildSpec {
    BuildSpec {
        snapshot: snap,
        target: None,
        build_args: BTreeMap::new(),
        platform: None,
        labels: BTreeMap::new(),
        no_cache: false,
        cache_from: vec![],
        cache_to: None,
        secrets: BTreeMap::new(),
        ssh: vec![],
        dockerfile_text: None,
        image_contexts: BTreeMap::new(),
    }
}

/// A PublishSpec pushing to `repo` with the test credentials.
pub fn publish_spec(build: BuildSpec, repo: ImageName) -> PublishSpec {
    PublishSpec {
        hash_tag: build.snapshot.hash.clone(),
        build,
        repository: repo,
        extra_tags: vec![],
        push: true,
        registry: RegistryConfig {
            explicit: Some(registry_creds()),
            ecr_endpoint: None,
            aws_region: None,
        },
    }
}

/// Events with their arrival time.
pub type Events = Arc<Mutex<Vec<(Instant, ProgressEvent)>>>;

/// Runs one publish, collecting its events.
pub async fn publish(
    engine: &LocalEngine,
    spec: PublishSpec,
    cancel: CancellationToken,
) -> (
    Result<Published, imagebuild::local::LocalError>,
    Vec<(Instant, ProgressEvent)>,
) {
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    let events: Events = Arc::new(Mutex::new(Vec::new()));
    let ev2 = events.clone();
    let drain = tokio::spawn(async move {
        while let Some(e) = rx.recv().await {
            ev2.lock().unwrap().push((Instant::now(), e));
        }
    });
    let r = engine.publish(spec, tx, cancel).await;
    drain.await.unwrap();
    let ev = events.lock().unwrap().clone();
    (r, ev)
}

/// An engine on the default daemon.
pub fn engine(max: usize) -> LocalEngine {
    LocalEngine::new(LocalConfig {
        docker_host: None,
        max_parallel_builds: max,
        max_parallel_pushes: 0,
        builder: None,
    })
}

/// `method` on the manifest of `repo:tag` in the test registry, accepting every manifest type.
async fn manifest_request(
    method: reqwest::Method,
    repo: &ImageName,
    tag: &str,
) -> reqwest::Response {
    let c = registry_creds();
    let url = format!(
        "http://{}/v2/{}/manifests/{tag}",
        repo.registry, repo.repository
    );
    reqwest::Client::new()
        .request(method, url)
        .basic_auth(c.username, Some(c.password))
        .header(
            "Accept",
            "application/vnd.docker.distribution.manifest.v2+json, application/vnd.docker.distribution.manifest.list.v2+json, application/vnd.oci.image.manifest.v1+json, application/vnd.oci.image.index.v1+json",
        )
        .send()
        .await
        .unwrap()
}

/// The manifest of `repo:tag` as the registry serves it, read independently of our registry module.
pub async fn registry_manifest(repo: &ImageName, tag: &str) -> serde_json::Value {
    let r = manifest_request(reqwest::Method::GET, repo, tag).await;
    r.json().await.unwrap()
}

/// The image config of `repo:tag`, asserting first that the registry holds a single image
/// manifest there (Docker v2 or OCI), never an index: what Lambda accepts.
pub async fn registry_single_image_config(repo: &ImageName, tag: &str) -> serde_json::Value {
    let manifest = registry_manifest(repo, tag).await;
    let media = manifest["mediaType"].as_str().unwrap_or_default();
    assert!(
        media.ends_with("image.manifest.v1+json") || media.ends_with("manifest.v2+json"),
        "{repo}:{tag} is not a single image manifest: {manifest}"
    );
    let config = manifest["config"]["digest"].as_str().unwrap();
    let c = registry_creds();
    let url = format!(
        "http://{}/v2/{}/blobs/{config}",
        repo.registry, repo.repository
    );
    let r = reqwest::Client::new()
        .get(url)
        .basic_auth(c.username, Some(c.password))
        .send()
        .await
        .unwrap();
    assert!(r.status().is_success(), "config blob: {}", r.status());
    r.json().await.unwrap()
}

/// Registry's own manifest digest, read independently of our registry module.
pub async fn registry_digest(repo: &ImageName, tag: &str) -> Option<String> {
    let r = manifest_request(reqwest::Method::HEAD, repo, tag).await;
    if r.status() == 404 {
        return None;
    }
    assert!(
        r.status().is_success(),
        "registry HEAD answered {}",
        r.status()
    );
    r.headers()
        .get("Docker-Content-Digest")
        .map(|v| v.to_str().unwrap().to_string())
}

/// Runs /usr/bin/docker with args, returning stdout (panics on failure).
pub fn docker(args: &[&str]) -> String {
    let out = std::process::Command::new("/usr/bin/docker")
        .args(args)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "docker {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).to_string()
}
