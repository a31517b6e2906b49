//! `LocalEngine::publish`: adopt if the hash tag exists, else wait for a slot, build, tag, push and
//! read the digest back from the registry.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use tokio::sync::mpsc::UnboundedSender;
use tokio_util::sync::CancellationToken;

use super::api::{self, DaemonVersion};
use super::builder::{self, BuildFailure, BuildRequest, SessionFiles};
use super::daemon::DaemonAddr;
use super::limiter::Limiter;
use super::progress::Tracker;
use super::syncdirs::{shared_key, SyncDirs};
use super::transferlog::TransferLog;
use super::{context_body, push, LocalConfig, LocalError, ProgressEvent, PublishSpec, Published};
use crate::redact::Redactor;
use crate::registry::{BasicCredentials, Registry, RegistryConfig};

/// The process-wide build engine; holds the build limiter. Share one per process.
pub struct LocalEngine {
    cfg: LocalConfig,
    limiter: Limiter,
    version: Mutex<Option<DaemonVersion>>,
    no_buildkit: AtomicBool,
    classic_logged: AtomicBool,
    builds_started: AtomicU64,
}

impl std::fmt::Debug for LocalEngine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LocalEngine")
            .field("cfg", &self.cfg)
            .field("max_parallel_builds", &self.limiter.max())
            .finish()
    }
}

/// Default bound: one build per core, at least 2, at most 8 (builds mix CPU and I/O waits).
pub fn default_parallelism() -> usize {
    std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(2)
        .clamp(2, 8)
}

/// `IMAGEBUILD_LOCAL_BUILDER=classic` forces the classic builder (diagnosis, and tests of the fallback).
fn force_classic() -> bool {
    std::env::var("IMAGEBUILD_LOCAL_BUILDER").is_ok_and(|v| v.eq_ignore_ascii_case("classic"))
}

/// Registry host of an image reference such as `host:5000/a/b:tag` (Docker Hub when none).
fn reference_host(reference: &str) -> String {
    match reference.split_once('/') {
        Some((first, _)) if first.contains('.') || first.contains(':') || first == "localhost" => {
            first.to_string()
        }
        _ => "docker.io".to_string(),
    }
}

fn valid_tag(t: &str) -> bool {
    !t.is_empty()
        && t.len() <= 128
        && t.chars()
            .next()
            .is_some_and(|c| c.is_ascii_alphanumeric() || c == '_')
        && t.chars()
            .all(|c| c.is_ascii_alphanumeric() || "_.-".contains(c))
}

impl LocalEngine {
    /// An engine with its own limiter (`max_parallel_builds`, 0 = `default_parallelism()`).
    pub fn new(cfg: LocalConfig) -> Self {
        let max = if cfg.max_parallel_builds == 0 {
            default_parallelism()
        } else {
            cfg.max_parallel_builds
        };
        LocalEngine {
            cfg,
            limiter: Limiter::new(max),
            version: Mutex::new(None),
            no_buildkit: AtomicBool::new(false),
            classic_logged: AtomicBool::new(false),
            builds_started: AtomicU64::new(0),
        }
    }

    /// Number of builds this engine has sent to the daemon (lets tests prove the adopt path built nothing).
    pub fn builds_started(&self) -> u64 {
        self.builds_started.load(Ordering::SeqCst)
    }

    /// The configured bound on concurrent builds.
    pub fn max_parallel_builds(&self) -> usize {
        self.limiter.max()
    }

    async fn daemon_version(&self, addr: &DaemonAddr) -> Result<DaemonVersion, LocalError> {
        if let Some(v) = self.version.lock().ok().and_then(|g| g.clone()) {
            return Ok(v);
        }
        let v = api::version(addr).await?;
        if let Ok(mut g) = self.version.lock() {
            *g = Some(v.clone());
        }
        Ok(v)
    }

    /// Adopts, or builds, tags and pushes one image, emitting progress; see the module docs.
    pub async fn publish(
        &self,
        spec: PublishSpec,
        progress: UnboundedSender<ProgressEvent>,
        cancel: CancellationToken,
    ) -> Result<Published, LocalError> {
        let repo = spec.repository.clone();
        for t in std::iter::once(&spec.hash_tag).chain(spec.extra_tags.iter()) {
            if !valid_tag(t) {
                return Err(LocalError::Invalid(format!(
                    "invalid tag {t:?} for {repo}: use up to 128 letters, digits, '_', '.' or '-'"
                )));
            }
        }
        let addr = DaemonAddr::resolve(self.cfg.docker_host.as_deref())?;
        let registry = spec.push.then(|| Registry::new(spec.registry.clone()));
        let mut tags = vec![repo.with_tag(&spec.hash_tag)];
        tags.extend(spec.extra_tags.iter().map(|t| repo.with_tag(t)));

        if let Some(reg) = &registry {
            let found = tokio::select! {
                r = reg.manifest_digest(&repo, &spec.hash_tag) => r?,
                _ = cancel.cancelled() => return Err(LocalError::Cancelled),
            };
            if let Some(digest) = found {
                for t in &spec.extra_tags {
                    reg.put_tag(&repo, &digest, t).await?;
                }
                let image_id = reg.config_digest(&repo, &digest).await.unwrap_or_default();
                let _ = progress.send(ProgressEvent::Adopted);
                let _ = progress.send(ProgressEvent::Done {
                    at: std::time::Instant::now(),
                });
                return Ok(Published {
                    image_id: image_id.unwrap_or_default(),
                    image_uri: Some(repo.with_digest(&digest)),
                    digest: Some(digest),
                    tags,
                    adopted: true,
                    build_seconds: 0.0,
                    context_bytes_sent: 0,
                    transfers: Vec::new(),
                });
            }
        }

        let _permit = tokio::select! {
            p = self.limiter.acquire(|ahead| { let _ = progress.send(ProgressEvent::Queued { ahead }); }) => p,
            _ = cancel.cancelled() => return Err(LocalError::Cancelled),
        };
        let _ = progress.send(ProgressEvent::Started {
            at: std::time::Instant::now(),
        });
        let build_start = Instant::now();
        let version = self.daemon_version(&addr).await?;
        let daemon_platform = format!("{}/{}", version.os, version.arch);
        if let Some(p) = &spec.build.platform {
            if p.split('/').next() != Some(version.os.as_str()) {
                return Err(LocalError::Platform {
                    platform: p.clone(),
                    daemon: daemon_platform,
                    detail: format!("the daemon runs {} containers only", version.os),
                });
            }
        }
        let creds = self.build_credentials(&spec, registry.as_ref()).await;
        let redactor = Redactor::new(spec.build.secrets.values());
        let mut tracker = Tracker::new(redactor.clone());
        let prefix = version.prefix();
        let tag_ref = repo.with_tag(&spec.hash_tag);
        let mut buildkit =
            version.has_buildkit() && !self.no_buildkit.load(Ordering::SeqCst) && !force_classic();
        let mut transfer_log: Option<Arc<TransferLog>>;
        let built_id = loop {
            if !buildkit {
                if !spec.build.secrets.is_empty() {
                    return Err(LocalError::Invalid(format!(
                        "the Docker daemon at {} has no BuildKit, and build secrets need BuildKit; \
                         enable BuildKit on the daemon (Docker 18.09+ on Linux)",
                        addr.display
                    )));
                }
                if !self.classic_logged.swap(true, Ordering::SeqCst) {
                    let msg = format!(
                        "the Docker daemon at {} has no BuildKit; using the classic builder \
                         (no cache mounts, no secrets, no inline cache)",
                        addr.display
                    );
                    eprintln!("imagebuild: {msg}");
                    let _ = progress.send(ProgressEvent::Log(msg));
                }
            }
            let snap = &spec.build.snapshot;
            let (dockerfile, body, files) = if buildkit {
                // BuildKit asks for what it needs over the session, as with the docker CLI.
                let (dirs, name) = SyncDirs::for_snapshot(snap);
                let log = Arc::new(TransferLog::new(progress.clone()));
                transfer_log = Some(log.clone());
                let files = SessionFiles {
                    dirs,
                    log,
                    shared_key: shared_key(&addr.display, snap),
                };
                (name, api::empty(), Some(files))
            } else {
                transfer_log = None;
                let (name, body) = context_body::body(snap, addr.is_remote());
                (name, body, None)
            };
            let req = BuildRequest {
                addr: &addr,
                api_prefix: &prefix,
                buildkit,
                spec: &spec.build,
                tag: &tag_ref,
                dockerfile: &dockerfile,
                files,
                creds: creds.clone(),
                inline_cache: spec.push,
            };
            self.builds_started.fetch_add(1, Ordering::SeqCst);
            match builder::run(req, body, &mut tracker, &progress, &cancel).await {
                Ok(id) => break id,
                Err(BuildFailure::NoBuildKit(_)) if buildkit => {
                    self.no_buildkit.store(true, Ordering::SeqCst);
                    buildkit = false;
                }
                Err(BuildFailure::NoBuildKit(msg)) => {
                    return Err(LocalError::BuildFailed {
                        message: redactor.apply(&msg),
                        log_tail: tracker.tail(),
                    })
                }
                Err(BuildFailure::Error(LocalError::Platform {
                    platform, detail, ..
                })) => {
                    return Err(LocalError::Platform {
                        platform,
                        daemon: daemon_platform,
                        detail,
                    })
                }
                Err(BuildFailure::Error(LocalError::BuildFailed { message, log_tail })) => {
                    // A foreign platform usually fails while resolving base images (only the
                    // daemon's own platform exists locally, and pulling may be impossible).
                    let foreign = spec
                        .build
                        .platform
                        .as_deref()
                        .filter(|p| *p != daemon_platform);
                    if let (Some(p), true) =
                        (foreign, message.contains("failed to create LLB definition"))
                    {
                        return Err(LocalError::Platform {
                            platform: p.to_string(),
                            daemon: daemon_platform,
                            detail: format!(
                                "no {p} variant of a base image is available: {message}"
                            ),
                        });
                    }
                    return Err(LocalError::BuildFailed { message, log_tail });
                }
                Err(BuildFailure::Error(e)) => return Err(e),
            }
        };
        let image_id = match built_id {
            Some(id) => id,
            None => api::image_id(&addr, &prefix, &tag_ref).await?,
        };
        let repo_str = repo.to_string();
        for t in &spec.extra_tags {
            api::tag(&addr, &prefix, &image_id, &repo_str, t).await?;
        }
        let build_seconds = build_start.elapsed().as_secs_f64();
        let (context_bytes_sent, transfers) = transfer_log
            .map(|l| (l.bytes(), l.requests()))
            .unwrap_or_default();
        let Some(reg) = registry else {
            let _ = progress.send(ProgressEvent::Done {
                at: std::time::Instant::now(),
            });
            return Ok(Published {
                image_id,
                digest: None,
                image_uri: None,
                tags,
                adopted: false,
                build_seconds,
                context_bytes_sent,
                transfers,
            });
        };

        let push_creds = reg.credentials(&repo.registry).await?;
        push::push(
            &addr,
            &prefix,
            &repo,
            &spec.hash_tag,
            &push_creds,
            &redactor,
            &progress,
            &cancel,
        )
        .await?;
        let mut published = Published {
            image_id,
            digest: None,
            image_uri: None,
            tags,
            adopted: false,
            build_seconds,
            context_bytes_sent,
            transfers,
        };
        let after = |published: &Published, e: LocalError| LocalError::AfterPush {
            published: Box::new(published.clone()),
            source: Box::new(e),
        };
        match reg.manifest_digest(&repo, &spec.hash_tag).await {
            Ok(Some(d)) => {
                published.image_uri = Some(repo.with_digest(&d));
                published.digest = Some(d);
            }
            Ok(None) => {
                return Err(after(
                    &published,
                    LocalError::Push {
                        reference: tag_ref.clone(),
                        attempts: 1,
                        detail: "the push finished but the registry does not serve the tag".into(),
                    },
                ))
            }
            Err(e) => return Err(after(&published, e.into())),
        }
        for t in &spec.extra_tags {
            if let Err(e) = push::push(
                &addr,
                &prefix,
                &repo,
                t,
                &push_creds,
                &redactor,
                &progress,
                &cancel,
            )
            .await
            {
                return Err(after(&published, e));
            }
        }
        let _ = progress.send(ProgressEvent::Done {
            at: std::time::Instant::now(),
        });
        Ok(published)
    }

    /// Credentials BuildKit may ask for: the target registry's, and each cache-from registry's.
    async fn build_credentials(
        &self,
        spec: &PublishSpec,
        registry: Option<&Registry>,
    ) -> Arc<HashMap<String, BasicCredentials>> {
        let mut out = HashMap::new();
        let target = Registry::new(spec.registry.clone());
        let target = registry.unwrap_or(&target);
        if let Ok(r) = target.credentials(&spec.repository.registry).await {
            if let Some(c) = r.credentials {
                out.insert(spec.repository.registry.clone(), c);
            }
        }
        let others = Registry::new(RegistryConfig {
            explicit: None,
            ..spec.registry.clone()
        });
        for reference in &spec.build.cache_from {
            let host = reference_host(reference);
            if out.contains_key(&host) {
                continue;
            }
            if let Ok(r) = others.credentials(&host).await {
                if let Some(c) = r.credentials {
                    out.insert(host, c);
                }
            }
        }
        Arc::new(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hosts_of_references() {
        assert_eq!(reference_host("127.0.0.1:5000/a/b:t"), "127.0.0.1:5000");
        assert_eq!(reference_host("busybox:latest"), "docker.io");
        assert_eq!(reference_host("library/busybox"), "docker.io");
    }

    #[test]
    fn tags() {
        assert!(valid_tag(&"a".repeat(64)));
        assert!(!valid_tag("-x"));
        assert!(!valid_tag("a b"));
    }
}
