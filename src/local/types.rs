//! The engine's inputs, progress events and result.

use std::collections::BTreeMap;
use std::path::PathBuf;

use super::ContextSnapshot;
use crate::context::TransferFilter;
use crate::registry::{ImageName, RegistryConfig};

/// Engine-wide settings.
#[derive(Debug, Clone, Default)]
pub struct LocalConfig {
    /// Daemon address (`unix:///...`, `tcp://host:port`); None = $DOCKER_HOST, else the default socket.
    pub docker_host: Option<String>,
    /// Builds allowed at once in this process; 0 = a default from the machine's core count.
    pub max_parallel_builds: usize,
    /// Pushes allowed at once in this process (they run outside the build slots); 0 = a default.
    pub max_parallel_pushes: usize,
    /// A standalone BuildKit daemon that builds and pushes instead of the Docker daemon.
    pub builder: Option<BuilderConfig>,
}

/// Where a standalone BuildKit daemon listens, as configured (`builder`, `builderCaCert`,
/// `builderCert`, `builderKey`); checked by [`BuilderConfig::validate`].
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct BuilderConfig {
    /// `unix:///path/buildkitd.sock` or `tcp://host:port`.
    pub address: String,
    /// PEM file of the CA that signed the builder's server certificate (TLS on `tcp://`).
    pub ca_cert: Option<PathBuf>,
    /// PEM file of the client certificate the builder requires (mTLS).
    pub cert: Option<PathBuf>,
    /// PEM file of the client certificate's key.
    pub key: Option<PathBuf>,
}

/// One `docker build --ssh ID=PATH` entry: an SSH agent socket offered to `RUN --mount=type=ssh`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SshSpec {
    /// The id a mount asks for (`--mount=type=ssh,id=...`); empty means `default`.
    pub id: String,
    /// The agent socket: at most one path; none means `$SSH_AUTH_SOCK`. Key files are refused
    /// (add the key to an agent with `ssh-add`).
    pub paths: Vec<PathBuf>,
}

/// One image build.
#[derive(Debug, Clone)]
pub struct BuildSpec {
    /// Context files, Dockerfile and content hash.
    pub snapshot: ContextSnapshot,
    /// Stage to build (`--target`).
    pub target: Option<String>,
    /// `--build-arg` values.
    pub build_args: BTreeMap<String, String>,
    /// One platform, e.g. `linux/arm64`.
    pub platform: Option<String>,
    /// Image labels.
    pub labels: BTreeMap<String, String>,
    /// Ignore the build cache (also gives fresh cache mounts).
    pub no_cache: bool,
    /// Images whose layers may serve as cache (`--cache-from`): pushed images with inline cache,
    /// or registry caches that `cache_to` exported.
    pub cache_from: Vec<String>,
    /// Export the build cache to a registry (`--cache-to type=registry`).
    pub cache_to: Option<CacheTo>,
    /// BuildKit secrets, id -> value; never logged, never a build arg.
    pub secrets: BTreeMap<String, String>,
    /// SSH agents forwarded to the build, like `docker build --ssh`.
    pub ssh: Vec<SshSpec>,
    /// The Dockerfile bytes BuildKit receives when they differ from the snapshot's (base images
    /// pinned by digest); the snapshot's are what the hash covers.
    pub dockerfile_text: Option<std::sync::Arc<Vec<u8>>>,
    /// Image contexts the Dockerfile uses, name -> reference (`docker-image://` stripped), like
    /// `docker build --build-context name=docker-image://REF`. The named local directories are
    /// `snapshot.named`: served from the snapshot, so exactly what the hash covers is sent.
    pub image_contexts: BTreeMap<String, String>,
}

impl BuildSpec {
    /// True when the build reads named contexts (local directories or images).
    pub fn has_named_contexts(&self) -> bool {
        !self.snapshot.named.is_empty() || !self.image_contexts.is_empty()
    }

    /// True when the build must go through BuildKit's Control API: `/build` can pass neither
    /// named contexts nor a cache export.
    pub fn needs_control_api(&self) -> bool {
        self.has_named_contexts() || self.cache_to.is_some()
    }
}

/// A registry cache export, like `--cache-to type=registry,ref=REF,mode=MODE,image-manifest=true,
/// oci-mediatypes=true` (an OCI image manifest, which ECR accepts, rather than an index).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CacheTo {
    /// Where the cache goes, `registry/repository:tag`.
    pub reference: ImageName,
    /// The tag of `reference`.
    pub tag: String,
    /// Which layers are exported.
    pub mode: CacheMode,
}

impl CacheTo {
    /// `registry/repository:tag`.
    pub fn reference_text(&self) -> String {
        self.reference.with_tag(&self.tag)
    }
}

/// Which layers a cache export holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CacheMode {
    /// Only the final image's layers.
    Min,
    /// Every intermediate layer too (all stages): what a CI runner needs to skip rebuilding
    /// a builder stage.
    Max,
}

impl CacheMode {
    /// BuildKit's attribute value.
    pub fn as_str(self) -> &'static str {
        match self {
            CacheMode::Min => "min",
            CacheMode::Max => "max",
        }
    }
}

/// Build (unless adopted), tag and push one image.
#[derive(Debug, Clone)]
pub struct PublishSpec {
    /// What to build.
    pub build: BuildSpec,
    /// Target repository.
    pub repository: ImageName,
    /// Tag derived from the content hash (= snapshot.hash); its presence in the registry means adopt.
    pub hash_tag: String,
    /// Further tags to apply and push (e.g. `latest`).
    pub extra_tags: Vec<String>,
    /// Push to the registry (false = build and tag locally only, no registry access).
    pub push: bool,
    /// Credentials and ECR settings for the target registry.
    pub registry: RegistryConfig,
}

/// Structured progress of one publish, for status lines.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ProgressEvent {
    /// Waiting for a build slot; `ahead` builds are queued before this one.
    Queued {
        /// Builds waiting ahead of this one.
        ahead: usize,
    },
    /// A build slot was taken; the build starts now.
    Started {
        /// When the slot was taken (stamped by the engine, not by whoever reads the event).
        at: std::time::Instant,
    },
    /// The image is built and tagged; the build slot is given back (the push, if any, follows).
    Built {
        /// When the slot was released.
        at: std::time::Instant,
    },
    /// Waiting for a push slot; `ahead` pushes are queued before this one.
    PushQueued {
        /// Pushes waiting ahead of this one.
        ahead: usize,
    },
    /// A push slot was taken; the push starts now.
    PushStarted {
        /// When the slot was taken.
        at: std::time::Instant,
    },
    /// A Dockerfile step started (or was found in the cache).
    Step {
        /// Step number.
        n: u32,
        /// Step count.
        total: u32,
        /// Instruction text, e.g. `RUN pip install -r requirements.txt`.
        name: String,
        /// Served from the build cache.
        cached: bool,
    },
    /// One output line of a step, with secret values replaced by `***`.
    Log(String),
    /// Build context bytes sent to BuildKit so far in this build (file contents only).
    Sent {
        /// Total file bytes sent so far.
        bytes: u64,
    },
    /// Bytes uploaded so far by the push.
    Pushing {
        /// Total bytes pushed so far.
        bytes: u64,
    },
    /// The hash tag already exists in the registry: nothing was built or pushed.
    Adopted,
    /// Finished successfully: built and pushed (no slot is held any more), or adopted.
    Done {
        /// When the publish finished.
        at: std::time::Instant,
    },
}

/// What a publish produced.
#[derive(Debug, Clone, PartialEq)]
pub struct Published {
    /// The image config digest (`sha256:...`) when pushed, read from the registry's manifest on
    /// both the build and the adopt path; unpushed, the daemon's image id (the config digest on
    /// the classic store, the manifest digest on the containerd store).
    pub image_id: String,
    /// Manifest digest read back from the registry (None when not pushed).
    pub digest: Option<String>,
    /// `registry/repository@sha256:...` (None when not pushed).
    pub image_uri: Option<String>,
    /// Full references applied (`registry/repository:tag`), hash tag first.
    pub tags: Vec<String>,
    /// True when the image was adopted from the registry instead of built.
    pub adopted: bool,
    /// Wall time of the build itself (0 when adopted).
    pub build_seconds: f64,
    /// File bytes BuildKit asked for and received over the session (0 when adopted or classic).
    pub context_bytes_sent: u64,
    /// Dockerfile steps the build solved and how many the cache served (zero when adopted).
    pub steps: crate::steps::StepCounts,
    /// Layer bytes the push uploaded; layers the registry already had cost nothing (0 when
    /// adopted or not pushed).
    pub pushed_bytes: u64,
    /// Every directory request BuildKit made during the build, in arrival order.
    pub transfers: Vec<TransferRequest>,
}

/// One `FileSync/DiffCopy` request of a build, as BuildKit made it and as it was answered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TransferRequest {
    /// The directory name (`context`, `dockerfile`, or a named context).
    pub dir: String,
    /// Include patterns, exclude patterns and follow paths, as requested.
    pub filter: TransferFilter,
    /// Paths described to BuildKit (files, directories, links).
    pub entries_listed: usize,
    /// Files whose contents BuildKit asked for, in the order they were finished.
    pub files_sent: Vec<String>,
    /// Their bytes.
    pub bytes_sent: u64,
}
