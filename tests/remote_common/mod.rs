//! Shared set-up for tests/remote_*.rs: service checks, clients, unique names, context archives, registry digests.
#![allow(dead_code)]

use std::io;
use std::path::Path;
use std::time::Duration;

use bytes::Bytes;
use futures::Stream;
use imagebuild::context::{
    snapshot_async, tar_stream, ContextRequest, ContextSnapshot, DockerfileSource,
};
use imagebuild::local::dockerfile_in_tar;
use imagebuild::registry::ImageName;
use imagebuild::remote::{AwsEndpoints, RemoteClients};

/// Test service addresses, from scripts/env.sh's variables with the same defaults.
pub struct Services {
    pub moto: String,
    pub codebuild: String,
    pub registry: String,
    pub registry_user: String,
    pub registry_password: String,
}

fn var(name: &str, default: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| default.to_string())
}

/// Checks every service answers; panics with the reason and the fix otherwise (never skips).
pub async fn services() -> Services {
    std::env::set_var("AWS_ACCESS_KEY_ID", var("AWS_ACCESS_KEY_ID", "testing"));
    std::env::set_var(
        "AWS_SECRET_ACCESS_KEY",
        var("AWS_SECRET_ACCESS_KEY", "testing"),
    );
    let s = Services {
        moto: var("IMAGEBUILD_TEST_MOTO_ENDPOINT", "http://127.0.0.1:5050"),
        codebuild: var(
            "IMAGEBUILD_TEST_CODEBUILD_ENDPOINT",
            "http://127.0.0.1:5060",
        ),
        registry: var("IMAGEBUILD_TEST_REGISTRY", "127.0.0.1:5000"),
        registry_user: var("IMAGEBUILD_TEST_REGISTRY_USER", "imagebuild"),
        registry_password: var(
            "IMAGEBUILD_TEST_REGISTRY_PASSWORD",
            "imagebuild-test-password",
        ),
    };
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(5))
        .build()
        .unwrap();
    for (what, url, fix) in [
        (
            "moto",
            format!("{}/moto-api/", s.moto),
            "run scripts/start-services.sh",
        ),
        (
            "CodeBuild double",
            format!("{}/__double/health", s.codebuild),
            "run tests/codebuild_double/start.sh",
        ),
        (
            "registry",
            format!("http://{}/v2/", s.registry),
            "run scripts/start-services.sh",
        ),
    ] {
        let ok = http.get(&url).send().await.map(|r| r.status().as_u16());
        // The registry answers 401 to anonymous /v2/: it is up.
        assert!(
            matches!(ok, Ok(200) | Ok(401)),
            "{what} is not reachable at {url} ({ok:?}): {fix} (and source scripts/env.sh)"
        );
    }
    s
}

/// Clients against moto (S3, Logs, ECR) and the CodeBuild double, with few retries (moto answers some errors with 500).
pub async fn clients(s: &Services) -> RemoteClients {
    RemoteClients::new(&endpoints(s)).await.expect("clients")
}

/// Endpoints of moto and the double.
pub fn endpoints(s: &Services) -> AwsEndpoints {
    AwsEndpoints {
        region: Some("us-east-1".into()),
        s3: Some(s.moto.clone()),
        codebuild: Some(s.codebuild.clone()),
        logs: Some(s.moto.clone()),
        ecr: Some(s.moto.clone()),
        max_attempts: Some(2),
    }
}

/// A name unique to this test run.
pub fn unique(prefix: &str) -> String {
    format!(
        "{prefix}-{}",
        &uuid::Uuid::new_v4().simple().to_string()[..12]
    )
}

/// Creates a fresh bucket.
pub async fn bucket(c: &RemoteClients) -> String {
    let name = unique("ctx");
    c.s3.create_bucket()
        .bucket(&name)
        .send()
        .await
        .expect("create bucket");
    name
}

/// The context engine's snapshot of `dir` (Dockerfile from `dir/Dockerfile`, or inline text).
pub async fn snapshot_of(dir: &Path, inline_dockerfile: Option<&str>) -> ContextSnapshot {
    let dockerfile = match inline_dockerfile {
        Some(text) => DockerfileSource::Inline(text.to_string()),
        None => DockerfileSource::Path(dir.join("Dockerfile")),
    };
    snapshot_async(ContextRequest {
        extra_inputs: Vec::new(),
        cache_dir: Some(std::env::temp_dir().join("imagebuild-remote-tests-cache")),
        ..ContextRequest::new(dir.to_path_buf(), dockerfile)
    })
    .await
    .expect("context snapshot")
}

/// The archive the resource uploads: `context::tar_stream` (gzip) plus the Dockerfile when it
/// is not in the context; returns the Dockerfile's path inside the archive and the body.
pub fn archive(
    snap: &ContextSnapshot,
) -> (
    String,
    impl Stream<Item = io::Result<Bytes>> + Send + 'static,
) {
    let (dockerfile, extra) = dockerfile_in_tar(snap);
    (
        dockerfile,
        tar_stream(snap, extra.into_iter().collect(), true),
    )
}

/// Writes files into a fresh temp dir: (relative path, contents, executable).
pub fn context_dir(files: &[(&str, &str, bool)]) -> tempfile::TempDir {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    for (path, contents, exec) in files {
        let p = dir.path().join(path);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(&p, contents).unwrap();
        let mode = if *exec { 0o755 } else { 0o644 };
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(mode)).unwrap();
    }
    dir
}

/// The registry's digest for `name:tag` (HEAD manifest), as the oracle for the build's reported digest.
pub async fn registry_digest(s: &Services, name: &ImageName, tag: &str) -> Option<String> {
    let url = format!(
        "http://{}/v2/{}/manifests/{tag}",
        name.registry, name.repository
    );
    let resp = reqwest::Client::new()
        .head(url)
        .basic_auth(&s.registry_user, Some(&s.registry_password))
        .header(
            "Accept",
            "application/vnd.docker.distribution.manifest.v2+json, application/vnd.docker.distribution.manifest.list.v2+json, application/vnd.oci.image.manifest.v1+json, application/vnd.oci.image.index.v1+json",
        )
        .send()
        .await
        .expect("registry HEAD");
    if resp.status().as_u16() == 404 {
        return None;
    }
    assert!(
        resp.status().is_success(),
        "registry answered {}",
        resp.status()
    );
    resp.headers()
        .get("Docker-Content-Digest")
        .map(|v| v.to_str().unwrap().to_string())
}

/// Ages every idempotency token the double knows past CodeBuild's 5-minute window.
pub async fn expire_idempotency_tokens(s: &Services) {
    let resp = reqwest::Client::new()
        .post(format!("{}/__double/expire-tokens", s.codebuild))
        .send()
        .await
        .expect("double expire-tokens");
    assert!(
        resp.status().is_success(),
        "expire-tokens: {}",
        resp.status()
    );
}

/// Every StartBuild body the double received (its request record).
pub async fn recorded_start_builds(s: &Services) -> Vec<serde_json::Value> {
    let v: Vec<serde_json::Value> = reqwest::get(format!("{}/__double/requests", s.codebuild))
        .await
        .expect("double requests")
        .json()
        .await
        .expect("double requests json");
    v.into_iter().map(|r| r["body"].clone()).collect()
}

/// One AWS JSON 1.1 call to moto (e.g. SSM, Secrets Manager), routed by the credential scope's service.
pub async fn moto_call(
    s: &Services,
    service: &str,
    target: &str,
    body: serde_json::Value,
) -> serde_json::Value {
    let resp = reqwest::Client::new()
        .post(&s.moto)
        .header("X-Amz-Target", target)
        .header("Content-Type", "application/x-amz-json-1.1")
        .header(
            "Authorization",
            format!("AWS4-HMAC-SHA256 Credential=testing/20250101/us-east-1/{service}/aws4_request, SignedHeaders=host, Signature=0"),
        )
        .body(body.to_string())
        .send()
        .await
        .expect("moto call");
    let status = resp.status();
    let text = resp.text().await.unwrap_or_default();
    assert!(
        status.is_success(),
        "moto {target} answered {status}: {text}"
    );
    serde_json::from_str(&text).unwrap_or(serde_json::Value::Null)
}
