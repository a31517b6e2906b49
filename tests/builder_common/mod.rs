//! Shared helpers for the suites against the standalone BuildKit daemon of scripts/start-services.sh
//! (unix socket, and loopback TCP with mTLS): engines bound to it, its base image in the registry,
//! and an image's files read back from the registry, independently of our registry module.
#![allow(dead_code)]

use std::collections::BTreeMap;
use std::io::Read;
use std::path::PathBuf;

use imagebuild::local::{BuilderConfig, LocalConfig, LocalEngine};
use imagebuild::registry::ImageName;

use crate::local_common::{registry_creds, registry_digest, registry_manifest, require_registry};

/// An environment variable of scripts/env.sh; panics with the fix when unset.
pub fn env(name: &str) -> String {
    std::env::var(name)
        .ok()
        .filter(|v| !v.is_empty())
        .unwrap_or_else(|| panic!("{name} is not set: `source scripts/env.sh` first"))
}

/// The busybox base image as the builder sees it: in the test registry.
pub fn base() -> String {
    env("IMAGEBUILD_BASE_BUSYBOX_REGISTRY")
}

/// The builder's unix socket.
pub fn builder_unix() -> BuilderConfig {
    BuilderConfig {
        address: env("IMAGEBUILD_TEST_BUILDKIT_HOST"),
        ..BuilderConfig::default()
    }
}

/// The builder's TCP address with the CA and the client certificate it accepts.
pub fn builder_tcp() -> BuilderConfig {
    BuilderConfig {
        address: env("IMAGEBUILD_TEST_BUILDKIT_TCP"),
        ca_cert: Some(PathBuf::from(env("IMAGEBUILD_TEST_BUILDKIT_CA"))),
        cert: Some(PathBuf::from(env("IMAGEBUILD_TEST_BUILDKIT_CERT"))),
        key: Some(PathBuf::from(env("IMAGEBUILD_TEST_BUILDKIT_KEY"))),
    }
}

/// Panics with the reason when the builder, the registry or the base image there is missing.
pub async fn require_builder() {
    let sock = env("IMAGEBUILD_TEST_BUILDKIT_HOST");
    let path = sock
        .strip_prefix("unix://")
        .expect("a unix:// builder socket");
    if std::os::unix::net::UnixStream::connect(path).is_err() {
        panic!("no buildkitd answers at {sock}: run scripts/start-services.sh");
    }
    require_registry();
    let reference = base();
    let (name, tag) = reference
        .rsplit_once(':')
        .expect("the base reference has a tag");
    let repo = ImageName::parse(name).unwrap();
    if registry_digest(&repo, tag).await.is_none() {
        panic!(
            "{reference} is not in the registry: run scripts/setup.sh (it pushes the base images)"
        );
    }
}

/// An engine building on `builder` with at most `max` builds at once.
pub fn builder_engine(builder: BuilderConfig, max: usize) -> LocalEngine {
    LocalEngine::new(LocalConfig {
        docker_host: None,
        max_parallel_builds: max,
        max_parallel_pushes: 0,
        builder: Some(builder),
    })
}

/// The files (path -> content) of the top layer of `repo:tag`, read from the registry.
pub async fn top_layer_files(repo: &ImageName, tag: &str) -> BTreeMap<String, String> {
    let manifest = registry_manifest(repo, tag).await;
    let layers = manifest["layers"]
        .as_array()
        .expect("a single image manifest");
    let digest = layers.last().unwrap()["digest"].as_str().unwrap();
    let c = registry_creds();
    let url = format!(
        "http://{}/v2/{}/blobs/{digest}",
        repo.registry, repo.repository
    );
    let blob = reqwest::Client::new()
        .get(url)
        .basic_auth(c.username, Some(c.password))
        .send()
        .await
        .unwrap()
        .bytes()
        .await
        .unwrap();
    let mut archive = tar::Archive::new(flate2::read::GzDecoder::new(&blob[..]));
    let mut files = BTreeMap::new();
    for entry in archive.entries().unwrap() {
        let mut entry = entry.unwrap();
        if !entry.header().entry_type().is_file() {
            continue;
        }
        let path = entry.path().unwrap().display().to_string();
        let mut text = String::new();
        entry.read_to_string(&mut text).unwrap();
        files.insert(path, text);
    }
    files
}
