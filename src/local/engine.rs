//! `LocalEngine::publish`: adopt if the hash tag exists, else build while a build slot is held,
//! then push while a push slot is held (a second, separate bound) and read the digest back from
//! the registry. Builds compete for the daemon's CPU and disk, pushes for the network: a finished
//! build gives its slot to the next one instead of holding it through a slow upload.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use tokio::sync::mpsc::UnboundedSender;
use tokio_util::sync::CancellationToken;

use super::api::{self, DaemonVersion};
use super::buildkitd::OnBuilder;
use super::buildkitd_addr::BuilderAddr;
use super::daemon::DaemonAddr;
use super::engine_build::{BuildInputs, BuiltImage};
use super::engine_push::{push_all, PushTarget};
use super::limiter::{Limiter, Permit};
use super::{ssh, LocalConfig, LocalError, ProgressEvent, PublishSpec, Published};
use crate::registry::grammar;
use crate::registry::{BasicCredentials, Registry, RegistryConfig};

/// The process-wide build engine; holds the build and push limiters. Share one per process.
pub struct LocalEngine {
    pub(super) cfg: LocalConfig,
    limiter: Limiter,
    push_limiter: Limiter,
    version: Mutex<Option<DaemonVersion>>,
    /// Whether the daemon keeps images in containerd's store, once asked (like `version`).
    containerd_store: Mutex<Option<bool>>,
    pub(super) no_buildkit: AtomicBool,
    pub(super) classic_logged: AtomicBool,
    pub(super) builds_started: AtomicU64,
}

impl std::fmt::Debug for LocalEngine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LocalEngine")
            .field("cfg", &self.cfg)
            .field("max_parallel_builds", &self.limiter.max())
            .field("max_parallel_pushes", &self.push_limiter.max())
            .finish()
    }
}

/// Default bound: one build per core, at least 4, at most 8. Builds mix CPU with I/O waits
/// (context transfer, layer commits, exports): on 2 CPUs, 2 slots made a cold six-image deploy
/// 1.31x the all-at-once loop while 4 slots matched it (benches/monorepo/slots.py, README).
pub fn default_parallelism() -> usize {
    std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(4)
        .clamp(4, 8)
}

/// Default bound on pushes: uploads wait on the network and the registry, not on local cores, but
/// each one keeps the daemon reading and compressing layers; four at once keep a link busy
/// without flooding a registry that throttles.
pub const DEFAULT_PARALLEL_PUSHES: usize = 4;

/// `IMAGEBUILD_LOCAL_BUILDER=classic` forces the classic builder (diagnosis, and tests of the fallback).
pub(super) fn force_classic() -> bool {
    std::env::var("IMAGEBUILD_LOCAL_BUILDER").is_ok_and(|v| v.eq_ignore_ascii_case("classic"))
}

/// Registry host of an image reference such as `host:5000/a/b:tag` (Docker Hub when none).
fn reference_host(reference: &str) -> String {
    grammar::split_domain(reference).0
}

fn valid_tag(t: &str) -> bool {
    grammar::validate_tag(t).is_ok()
}

/// Refuses a hash tag or extra tag outside the registry's tag grammar before anything starts.
fn check_tags(spec: &PublishSpec) -> Result<(), LocalError> {
    let repo = &spec.repository;
    for t in std::iter::once(&spec.hash_tag).chain(spec.extra_tags.iter()) {
        if !valid_tag(t) {
            return Err(LocalError::Invalid(format!(
                "invalid tag {t:?} for {repo}: use up to 128 letters, digits, '_', '.' or '-'"
            )));
        }
    }
    Ok(())
}

/// What a build on the daemon made, before any push: tagged locally, no digest yet.
fn unpushed(spec: &PublishSpec, built: BuiltImage) -> Published {
    Published {
        image_id: built.image_id,
        digest: None,
        image_uri: None,
        tags: std::iter::once(&spec.hash_tag)
            .chain(&spec.extra_tags)
            .map(|t| spec.repository.with_tag(t))
            .collect(),
        adopted: false,
        build_seconds: built.build_seconds,
        context_bytes_sent: built.context_bytes_sent,
        steps: built.steps,
        pushed_bytes: 0,
        transfers: built.transfers,
    }
}

/// The time stamped on progress events.
pub(super) fn now() -> Instant {
    Instant::now()
}

impl LocalEngine {
    /// An engine with its own limiters (`max_parallel_builds`, 0 = `default_parallelism()`;
    /// `max_parallel_pushes`, 0 = `DEFAULT_PARALLEL_PUSHES`).
    pub fn new(cfg: LocalConfig) -> Self {
        let max = if cfg.max_parallel_builds == 0 {
            default_parallelism()
        } else {
            cfg.max_parallel_builds
        };
        let pushes = if cfg.max_parallel_pushes == 0 {
            DEFAULT_PARALLEL_PUSHES
        } else {
            cfg.max_parallel_pushes
        };
        LocalEngine {
            cfg,
            limiter: Limiter::new(max),
            push_limiter: Limiter::new(pushes),
            version: Mutex::new(None),
            containerd_store: Mutex::new(None),
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

    /// The configured bound on concurrent pushes.
    pub fn max_parallel_pushes(&self) -> usize {
        self.push_limiter.max()
    }

    /// Whether the daemon uses containerd's image store: asked once (`/info`), then remembered,
    /// so every Check and build of a `cacheTo` image does not ask again.
    pub(super) async fn daemon_uses_containerd_store(
        &self,
        addr: &DaemonAddr,
        version: &DaemonVersion,
    ) -> Result<bool, LocalError> {
        if let Some(known) = self.containerd_store.lock().ok().and_then(|g| *g) {
            return Ok(known);
        }
        let known = api::uses_containerd_store(addr, &version.prefix()).await?;
        if let Ok(mut g) = self.containerd_store.lock() {
            *g = Some(known);
        }
        Ok(known)
    }

    /// The daemon's `/version`: asked once, then remembered.
    pub(super) async fn daemon_version(
        &self,
        addr: &DaemonAddr,
    ) -> Result<DaemonVersion, LocalError> {
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
        check_tags(&spec)?;
        let builder = self.builder()?;
        let registry = spec.push.then(|| Registry::new(spec.registry.clone()));
        if let Some(reg) = &registry {
            if let Some(p) = self.adopt(&spec, reg, &progress, &cancel).await? {
                return Ok(p);
            }
        }
        // Checked before any build starts: a missing agent is an input error, not a build failure.
        let agents = ssh::resolve(&spec.build.ssh).await?;
        if let Some(builder) = &builder {
            let on = OnBuilder {
                builder,
                registry: registry.as_ref(),
                ssh: agents,
                progress: &progress,
                cancel: &cancel,
            };
            return self.publish_on_builder(&spec, on).await;
        }
        let addr = DaemonAddr::resolve(self.cfg.docker_host.as_deref())?;
        let built = {
            let _slot = self.build_slot(&progress, &cancel).await?;
            let _ = progress.send(ProgressEvent::Started { at: now() });
            let inputs = BuildInputs {
                addr: &addr,
                registry: registry.as_ref(),
                ssh: agents,
                progress: &progress,
                cancel: &cancel,
            };
            let built = self.build_image(&spec, inputs).await?;
            let _ = progress.send(ProgressEvent::Built { at: now() });
            built
        };
        let (prefix, redactor) = (built.prefix.clone(), built.redactor.clone());
        let published = unpushed(&spec, built);
        let Some(reg) = registry else {
            let _ = progress.send(ProgressEvent::Done { at: now() });
            return Ok(published);
        };
        let _slot = self
            .slot(&self.push_limiter, &progress, &cancel, |ahead| {
                ProgressEvent::PushQueued { ahead }
            })
            .await?;
        let _ = progress.send(ProgressEvent::PushStarted { at: now() });
        let target = PushTarget {
            addr: &addr,
            prefix: &prefix,
            registry: &reg,
            redactor: &redactor,
        };
        let published = push_all(target, &spec, published, &progress, &cancel).await?;
        let _ = progress.send(ProgressEvent::Done { at: now() });
        Ok(published)
    }

    /// The configured standalone BuildKit builder, parsed (None: builds go to the Docker daemon).
    pub(super) fn builder(&self) -> Result<Option<BuilderAddr>, LocalError> {
        let Some(cfg) = &self.cfg.builder else {
            return Ok(None);
        };
        BuilderAddr::parse(cfg)
            .map(Some)
            .map_err(LocalError::Invalid)
    }

    /// Waits for a build slot, reporting the queue position.
    pub(super) async fn build_slot(
        &self,
        progress: &UnboundedSender<ProgressEvent>,
        cancel: &CancellationToken,
    ) -> Result<Permit, LocalError> {
        self.slot(&self.limiter, progress, cancel, |ahead| {
            ProgressEvent::Queued { ahead }
        })
        .await
    }

    /// Waits for a slot of `limiter`, reporting the queue position with `queued`.
    async fn slot(
        &self,
        limiter: &Limiter,
        progress: &UnboundedSender<ProgressEvent>,
        cancel: &CancellationToken,
        queued: impl Fn(usize) -> ProgressEvent,
    ) -> Result<Permit, LocalError> {
        tokio::select! {
            p = limiter.acquire(|ahead| { let _ = progress.send(queued(ahead)); }) => Ok(p),
            _ = cancel.cancelled() => Err(LocalError::Cancelled),
        }
    }

    /// When the registry already has the hash tag: points the extra tags at it and returns it.
    async fn adopt(
        &self,
        spec: &PublishSpec,
        reg: &Registry,
        progress: &UnboundedSender<ProgressEvent>,
        cancel: &CancellationToken,
    ) -> Result<Option<Published>, LocalError> {
        let repo = &spec.repository;
        let found = tokio::select! {
            r = reg.manifest_digest(repo, &spec.hash_tag) => r?,
            _ = cancel.cancelled() => return Err(LocalError::Cancelled),
        };
        let Some(digest) = found else {
            return Ok(None);
        };
        for t in &spec.extra_tags {
            reg.put_tag(repo, &digest, t).await?;
        }
        let image_id = reg.config_digest(repo, &digest).await.unwrap_or_default();
        let _ = progress.send(ProgressEvent::Adopted);
        let _ = progress.send(ProgressEvent::Done { at: now() });
        Ok(Some(Published {
            image_id: image_id.unwrap_or_default(),
            image_uri: Some(repo.with_digest(&digest)),
            digest: Some(digest),
            tags: std::iter::once(&spec.hash_tag)
                .chain(&spec.extra_tags)
                .map(|t| repo.with_tag(t))
                .collect(),
            adopted: true,
            build_seconds: 0.0,
            context_bytes_sent: 0,
            steps: Default::default(),
            pushed_bytes: 0,
            transfers: Vec::new(),
        }))
    }

    /// Credentials BuildKit may ask for: the target registry's, each cache-from registry's and
    /// the cache-to registry's.
    pub(super) async fn build_credentials(
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
        let cache_to = spec
            .build
            .cache_to
            .iter()
            .map(|c| c.reference.registry.clone());
        let hosts: Vec<String> = spec
            .build
            .cache_from
            .iter()
            .map(|r| reference_host(r))
            .chain(cache_to)
            .collect();
        for host in hosts {
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
