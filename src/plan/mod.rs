//! The build plan of one image: what its Dockerfile reads ([`crate::dockerfile`]), from which
//! contexts, on which base images, and the context snapshot ([`crate::context`]) whose hash
//! decides whether anything must be built. Resources and the `context` command ask here, so
//! both compute the same hash for the same inputs.

mod base;
mod cli;
mod error;
mod named;
mod pins;
mod reads;
mod selfcheck;

use std::collections::{BTreeMap, BTreeSet};

use std::path::PathBuf;

use crate::context::{
    snapshot_async, ContextReads, ContextRequest, ContextSnapshot, DockerfileSource,
};
use crate::dockerfile::{self, Analysis, BuildFacts};

pub use base::{lookup_base, resolve_base, BasePin, LocalStore, REGISTRY_LOOKUP_TIMEOUT};
pub use cli::run_cli;
pub use error::PlanError;
pub use named::NamedContextSource;
pub use pins::BaseLookup;
pub use selfcheck::{check_transfers, record_read_miss, ReadMiss};

/// Everything that decides what an image build reads and produces.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlanRequest {
    /// The main build context directory.
    pub context: PathBuf,
    /// The Dockerfile: a path, or inline text.
    pub dockerfile: DockerfileSource,
    /// Build args.
    pub build_args: BTreeMap<String, String>,
    /// The target stage (None = the last one).
    pub target: Option<String>,
    /// The platform, e.g. `linux/arm64`.
    pub platform: String,
    /// Image labels.
    pub labels: BTreeMap<String, String>,
    /// Named contexts (`--build-context name=...`).
    pub contexts: BTreeMap<String, NamedContextSource>,
    /// Stat cache and manifest directory; None = the default.
    pub cache_dir: Option<PathBuf>,
}

/// The answer: the snapshot to hash and build, and what the user should be told.
#[derive(Debug, Clone)]
pub struct Plan {
    /// Hash, readable entries and Dockerfile of the build.
    pub snapshot: ContextSnapshot,
    /// The Dockerfile analysis the snapshot was made from.
    pub analysis: Analysis,
    /// Things worth a warning (e.g. a base image whose digest could not be resolved).
    pub warnings: Vec<String>,
    /// The Dockerfile text to build with when it differs from the hashed one: FROM images a
    /// registry pinned carry their digest, so the build uses exactly what was hashed.
    pub build_dockerfile: Option<std::sync::Arc<Vec<u8>>>,
    /// The image contexts (`docker-image://`) the Dockerfile reads, name -> the reference to
    /// build with: digest-pinned where a registry resolved the digest that was hashed.
    pub image_contexts: BTreeMap<String, String>,
}

impl PlanRequest {
    /// A stable key for memoizing plans within one process.
    pub fn memo_key(&self) -> String {
        format!("{self:?}")
    }

    /// The inputs that hash format 1 covered, in its naming.
    fn legacy_inputs(&self) -> Vec<(String, String)> {
        let mut out = vec![("platform".to_string(), self.platform.clone())];
        if let Some(target) = &self.target {
            out.push(("target".to_string(), target.clone()));
        }
        out.extend(
            self.build_args
                .iter()
                .map(|(k, v)| (format!("buildArg:{k}"), v.clone())),
        );
        out.extend(
            self.labels
                .iter()
                .map(|(k, v)| (format!("label:{k}"), v.clone())),
        );
        out
    }
}

/// Analyzes the Dockerfile, pins the images it builds on (looked up through `lookup`) and
/// snapshots exactly what the build can read.
pub async fn make_plan(req: &PlanRequest, lookup: &BaseLookup) -> Result<Plan, PlanError> {
    let text = read_dockerfile_text(&req.dockerfile).await?;
    let analysis = analyze(req, &text)?;
    let (named, image_contexts) = named::requests(req, &analysis).await?;
    let pinned = pins::pin_images(&analysis.images, &image_contexts, &req.platform, lookup).await?;
    let mut warnings = pinned.warnings;
    let build_dockerfile = pinned_dockerfile(&text, &pinned.from_pins, &mut warnings);
    let mut reads = reads::context_reads(&analysis.main);
    if let Some(image) = pinned.onbuild.first() {
        reads = ContextReads::whole(format!(
            "base image {image} has ONBUILD triggers, which may read any path"
        ));
    }
    if let Some(miss) = selfcheck::lookup(req, &text).await {
        reads = ContextReads::whole(miss.describe());
        warnings.push(format!(
            "hashing the whole build context: {}",
            miss.describe()
        ));
    }
    let mut request = ContextRequest::new(req.context.clone(), req.dockerfile.clone());
    request.extra_inputs = req.legacy_inputs();
    request.pins = pinned.pins;
    request.cache_dir = req.cache_dir.clone();
    request.reads = reads;
    request.named = named;
    let snapshot = snapshot_async(request).await.map_err(PlanError::Context)?;
    if snapshot.dockerfile_contents.as_slice() != text.as_slice() {
        return Err(PlanError::DockerfileChanged {
            path: dockerfile_name(&req.dockerfile),
        });
    }
    Ok(Plan {
        snapshot,
        analysis,
        warnings,
        build_dockerfile,
        image_contexts: pinned.image_contexts,
    })
}

/// The Dockerfile with registry-pinned FROM images, when there are any.
fn pinned_dockerfile(
    text: &[u8],
    pins: &BTreeMap<usize, String>,
    warnings: &mut Vec<String>,
) -> Option<std::sync::Arc<Vec<u8>>> {
    if pins.is_empty() {
        return None;
    }
    let text = std::str::from_utf8(text).ok()?;
    let (pinned, skipped) = dockerfile::pin_from_images(text, pins);
    for line in skipped {
        warnings.push(format!(
            "line {line}: the FROM image continues on the next line, so the build resolves its \
             tag again instead of using the digest that was hashed; put the image on the FROM line"
        ));
    }
    Some(std::sync::Arc::new(pinned.into_bytes()))
}

fn analyze(req: &PlanRequest, text: &[u8]) -> Result<Analysis, PlanError> {
    let names: BTreeSet<String> = req.contexts.keys().cloned().collect();
    let build_platform = host_platform();
    let facts = BuildFacts {
        build_args: &req.build_args,
        target: req.target.as_deref(),
        platform: &req.platform,
        build_platform: &build_platform,
        named_contexts: &names,
    };
    dockerfile::analyze(text, &facts).map_err(|e| PlanError::Dockerfile {
        path: dockerfile_name(&req.dockerfile),
        line: e.line,
        message: e.message,
    })
}

async fn read_dockerfile_text(src: &DockerfileSource) -> Result<Vec<u8>, PlanError> {
    match src {
        DockerfileSource::Inline(text) => Ok(text.clone().into_bytes()),
        DockerfileSource::Path(path) => {
            tokio::fs::read(path)
                .await
                .map_err(|source| PlanError::DockerfileUnreadable {
                    path: path.display().to_string(),
                    source,
                })
        }
    }
}

/// How messages name the Dockerfile.
fn dockerfile_name(src: &DockerfileSource) -> String {
    match src {
        DockerfileSource::Path(p) => p.display().to_string(),
        DockerfileSource::Inline(_) => "dockerfileInline".to_string(),
    }
}

/// The platform of the machine running the provider, as Docker names it (BUILDPLATFORM of a
/// local daemon, and the default target platform).
pub fn host_platform() -> String {
    let arch = match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        "x86" => "386",
        other => other,
    };
    format!("linux/{arch}")
}
