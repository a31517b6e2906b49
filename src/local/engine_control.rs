//! The build half for builds with named contexts: refused before any build on daemons whose
//! BuildKit cannot read them, else run through BuildKit's Control API ([`super::control`]) with
//! the named directories served by the session next to `context` and `dockerfile`.

use std::sync::atomic::Ordering;

use super::api::DaemonVersion;
use super::daemon::DaemonAddr;
use super::engine::{force_classic, LocalEngine};
use super::engine_build::{context_for, platform_error, Attempt, Outcome};
use super::progress::Tracker;
use super::{control, LocalError, PublishSpec};

impl LocalEngine {
    /// BuildKit's Control API (`/grpc`), for builds with named contexts: the session serves the
    /// named directories next to `context` and `dockerfile`.
    pub(super) async fn build_via_control(
        &self,
        spec: &PublishSpec,
        a: Attempt<'_>,
        tracker: &mut Tracker,
    ) -> Result<Outcome, LocalError> {
        let prefix = a.version.prefix();
        let (dockerfile, _, files) = context_for(true, spec, a.addr, &a.ssh, a.progress);
        let transfer_log = files.as_ref().map(|f| f.log.clone());
        let req = a.request(spec, &prefix, true, &dockerfile, files);
        self.builds_started.fetch_add(1, Ordering::SeqCst);
        match control::run(req, tracker, a.progress, a.cancel).await {
            Ok(id) => Ok((id, transfer_log)),
            Err(e) => Err(platform_error(spec, a.version, e)),
        }
    }

    /// Check's question: can the configured daemon build with named contexts (a builder can)? `Ok(true)` yes,
    /// `Err` (naming the engine) a definite no, `Ok(false)` unknown (the daemon did not answer:
    /// preview must not fail for that; the build asks again).
    pub async fn named_contexts_supported(&self) -> Result<bool, LocalError> {
        if self.cfg.builder.is_some() {
            return Ok(true);
        }
        let addr = DaemonAddr::resolve(self.cfg.docker_host.as_deref())?;
        let Ok(version) = self.daemon_version(&addr).await else {
            return Ok(false);
        };
        self.check_named_contexts(&addr, &version)?;
        Ok(true)
    }

    /// Named contexts need the Control API and a frontend that reads `context:NAME`: refused
    /// before any build on older daemons and with the classic builder.
    pub(super) fn check_named_contexts(
        &self,
        addr: &DaemonAddr,
        version: &DaemonVersion,
    ) -> Result<(), LocalError> {
        if !version.has_named_contexts() {
            return Err(LocalError::NamedContextsUnsupported {
                host: addr.display.clone(),
                engine: version.version.clone(),
                api: version.api_version.clone(),
            });
        }
        if force_classic() || self.no_buildkit.load(Ordering::SeqCst) {
            return Err(LocalError::Invalid(format!(
                "`contexts` (named build contexts) need BuildKit, but builds on the Docker daemon \
                 at {} use the classic builder{}; unset IMAGEBUILD_LOCAL_BUILDER or enable BuildKit",
                addr.display,
                if force_classic() {
                    " (IMAGEBUILD_LOCAL_BUILDER=classic)"
                } else {
                    ""
                }
            )));
        }
        Ok(())
    }

    /// Check's question for `cacheTo`: `Ok(true)` the daemon (or the builder) can export a registry cache, `Err`
    /// (naming the engine) a definite no, `Ok(false)` unknown (the daemon did not answer).
    pub async fn cache_export_supported(&self) -> Result<bool, LocalError> {
        if self.cfg.builder.is_some() {
            return Ok(true);
        }
        let addr = DaemonAddr::resolve(self.cfg.docker_host.as_deref())?;
        let Ok(version) = self.daemon_version(&addr).await else {
            return Ok(false);
        };
        self.check_cache_export(&addr, &version).await?;
        Ok(true)
    }

    /// A registry cache export needs the Control API and the containerd image store (the
    /// classic store's BuildKit exports inline cache only).
    pub(super) async fn check_cache_export(
        &self,
        addr: &DaemonAddr,
        version: &DaemonVersion,
    ) -> Result<(), LocalError> {
        let refused = |store: &str| LocalError::CacheExportUnsupported {
            host: addr.display.clone(),
            engine: version.version.clone(),
            store: store.to_string(),
        };
        if !version.has_named_contexts() || force_classic() {
            return Err(refused(""));
        }
        if !self.daemon_uses_containerd_store(addr, version).await? {
            return Err(refused(" with the classic image store"));
        }
        Ok(())
    }
}
