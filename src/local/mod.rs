//! Local builds through the Docker Engine API (BuildKit with our own session, classic fallback),
//! bounded parallelism, progress events, tag and push with a verified registry digest.

mod api;
mod builder;
mod context_body;
pub mod context_standin;
mod daemon;
mod engine;
mod error;
mod limiter;
mod progress;
mod push;
mod session;
mod types;

// TEMPORARY: switch to `crate::context::{...}` when src/context lands (same names and fields).
pub use context_standin::{tar_stream, ContextSnapshot, Entry, EntryKind, ExtraFile};

pub use context_body::{dockerfile_in_tar, INJECTED_DOCKERFILE};
pub use daemon::DEFAULT_DOCKER_HOST;
pub use engine::LocalEngine;
pub use error::LocalError;
pub use limiter::{Limiter, Permit};
pub use types::{BuildSpec, LocalConfig, ProgressEvent, PublishSpec, Published};
