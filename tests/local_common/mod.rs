//! Shared helpers for the local engine's integration tests (real dockerd + registry).
//! Includes a hand-made ContextSnapshot until the context engine lands.
#![allow(dead_code)]

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use imagebuild::local::{
    BuildSpec, ContextSnapshot, Entry, EntryKind, LocalConfig, LocalEngine, ProgressEvent,
    PublishSpec, Published,
};
use imagebuild::registry::{BasicCredentials, ImageName, RegistryConfig};
use sha2::Digest;
use tokio_util::sync::CancellationToken;

pub const BUSYBOX: &str = "imagebuild-base/busybox:latest";

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

/// Panics with the reason when dockerd, the registry or the base image is missing.
pub fn require_services() {
    let sock = "/var/run/docker.sock";
    if std::os::unix::net::UnixStream::connect(sock).is_err() {
        panic!("dockerd is not reachable at unix://{sock}: run scripts/start-services.sh");
    }
    let addr = registry_addr();
    if std::net::TcpStream::connect(&addr).is_err() {
        panic!("the test registry is not reachable at {addr}: run scripts/start-services.sh");
    }
    let out = std::process::Command::new("/usr/bin/docker")
        .args(["image", "inspect", "-f", "{{.Id}}", BUSYBOX])
        .output()
        .expect("run /usr/bin/docker");
    if !out.status.success() {
        panic!("base image {BUSYBOX} is missing: run scripts/make-base-images.sh");
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

fn walk(root: &Path, rel: &str, out: &mut Vec<Entry>) {
    let dir = if rel.is_empty() {
        root.to_path_buf()
    } else {
        root.join(rel)
    };
    let mut names: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().to_string())
        .collect();
    names.sort();
    for n in names {
        let p = if rel.is_empty() {
            n.clone()
        } else {
            format!("{rel}/{n}")
        };
        let meta = std::fs::symlink_metadata(root.join(&p)).unwrap();
        if meta.is_dir() {
            out.push(Entry {
                path: p.clone(),
                kind: EntryKind::Dir,
            });
            walk(root, &p, out);
        } else if meta.file_type().is_symlink() {
            let t = std::fs::read_link(root.join(&p)).unwrap();
            out.push(Entry {
                path: p,
                kind: EntryKind::Symlink {
                    target: t.to_string_lossy().to_string(),
                },
            });
        } else {
            use std::os::unix::fs::PermissionsExt;
            let bytes = std::fs::read(root.join(&p)).unwrap();
            out.push(Entry {
                path: p,
                kind: EntryKind::File {
                    exec: meta.permissions().mode() & 0o111 != 0,
                    size: bytes.len() as u64,
                    digest: sha2::Sha256::digest(&bytes).into(),
                },
            });
        }
    }
}

/// Hand-made snapshot of every file under `root` (stand-in for the context engine; no .dockerignore).
/// `dockerfile_in_context` names the Dockerfile's path when it is one of the files; else it is inline.
pub fn snapshot(
    root: &Path,
    dockerfile: &str,
    dockerfile_in_context: Option<&str>,
    salt: &str,
) -> ContextSnapshot {
    let mut entries = Vec::new();
    walk(root, "", &mut entries);
    let mut h = sha2::Sha256::new();
    let mut files = 0;
    let mut bytes = 0;
    for e in &entries {
        h.update(e.path.as_bytes());
        if let EntryKind::File { digest, size, .. } = &e.kind {
            h.update(digest);
            files += 1;
            bytes += size;
        }
    }
    h.update(dockerfile.as_bytes());
    h.update(salt.as_bytes());
    ContextSnapshot {
        hash: hex::encode(h.finalize()),
        files,
        bytes,
        root: PathBuf::from(root),
        entries: Arc::new(entries),
        dockerfile_contents: Arc::new(dockerfile.as_bytes().to_vec()),
        dockerfile_in_context: dockerfile_in_context.map(str::to_string),
    }
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
        secrets: BTreeMap::new(),
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
    })
}

/// Registry's own manifest digest, read independently of our registry module.
pub async fn registry_digest(repo: &ImageName, tag: &str) -> Option<String> {
    let c = registry_creds();
    let url = format!(
        "http://{}/v2/{}/manifests/{tag}",
        repo.registry, repo.repository
    );
    let r = reqwest::Client::new()
        .head(url)
        .basic_auth(c.username, Some(c.password))
        .header(
            "Accept",
            "application/vnd.docker.distribution.manifest.v2+json, application/vnd.docker.distribution.manifest.list.v2+json, application/vnd.oci.image.manifest.v1+json, application/vnd.oci.image.index.v1+json",
        )
        .send()
        .await
        .unwrap();
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
