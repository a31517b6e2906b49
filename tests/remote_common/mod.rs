//! Shared set-up for tests/remote_*.rs: service checks, clients, unique names, a context tar stand-in, registry digests.
#![allow(dead_code)]

use std::io::{self, Write};
use std::path::Path;
use std::time::Duration;

use bytes::Bytes;
use futures::Stream;
use imagebuild::registry::ImageName;
use imagebuild::remote::{AwsEndpoints, RemoteClients};
use sha2::{Digest, Sha256};

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
    RemoteClients::new(&AwsEndpoints {
        region: Some("us-east-1".into()),
        s3: Some(s.moto.clone()),
        codebuild: Some(s.codebuild.clone()),
        logs: Some(s.moto.clone()),
        ecr: Some(s.moto.clone()),
        max_attempts: Some(2),
    })
    .await
    .expect("clients")
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

/// Stand-in for `context::tar_stream(snap, extra, gzip=true)` until the context engine lands:
/// a deterministic tar.gz of `dir` (sorted, mtime 0, uid 0, modes and symlinks kept),
/// produced on a blocking thread into a bounded channel.
pub fn tar_gz_stream(dir: &Path) -> impl Stream<Item = io::Result<Bytes>> + Send + 'static {
    let (tx, rx) = tokio::sync::mpsc::channel::<io::Result<Bytes>>(4);
    let dir = dir.to_path_buf();
    tokio::task::spawn_blocking(move || {
        let writer = ChannelWriter { tx: tx.clone() };
        let result = (|| {
            let gz = flate2::write::GzEncoder::new(writer, flate2::Compression::fast());
            let mut tar = tar::Builder::new(gz);
            tar.follow_symlinks(false);
            append_dir(&mut tar, &dir, "")?;
            tar.into_inner()?.finish()?.flush()
        })();
        if let Err(e) = result {
            let _ = tx.blocking_send(Err(e));
        }
    });
    futures::stream::unfold(rx, |mut rx| async move {
        rx.recv().await.map(|item| (item, rx))
    })
}

fn append_dir<W: Write>(tar: &mut tar::Builder<W>, root: &Path, rel: &str) -> io::Result<()> {
    let mut names: Vec<_> = std::fs::read_dir(root.join(rel))?
        .map(|e| e.map(|e| e.file_name().to_string_lossy().into_owned()))
        .collect::<Result<_, _>>()?;
    names.sort();
    for name in names {
        let path = if rel.is_empty() {
            name.clone()
        } else {
            format!("{rel}/{name}")
        };
        let full = root.join(&path);
        let meta = std::fs::symlink_metadata(&full)?;
        let mut h = tar::Header::new_gnu();
        h.set_metadata_in_mode(&meta, tar::HeaderMode::Deterministic);
        h.set_mtime(0);
        h.set_uid(0);
        h.set_gid(0);
        if meta.file_type().is_symlink() {
            let target = std::fs::read_link(&full)?;
            tar.append_link(&mut h, &path, target)?;
        } else if meta.is_dir() {
            tar.append_data(&mut h, format!("{path}/"), io::empty())?;
            append_dir(tar, root, &path)?;
        } else {
            tar.append_data(&mut h, &path, std::fs::File::open(&full)?)?;
        }
    }
    Ok(())
}

struct ChannelWriter {
    tx: tokio::sync::mpsc::Sender<io::Result<Bytes>>,
}

impl Write for ChannelWriter {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.tx
            .blocking_send(Ok(Bytes::copy_from_slice(buf)))
            .map_err(|_| io::Error::new(io::ErrorKind::BrokenPipe, "receiver dropped"))?;
        Ok(buf.len())
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// Stand-in context hash: sha256 of the stand-in archive (the real one comes from the context engine).
pub async fn stand_in_hash(dir: &Path) -> String {
    use futures::StreamExt;
    let mut h = Sha256::new();
    let mut s = Box::pin(tar_gz_stream(dir));
    while let Some(chunk) = s.next().await {
        h.update(chunk.expect("tar"));
    }
    hex::encode(h.finalize())
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
