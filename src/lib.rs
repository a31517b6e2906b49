//! imagebuild: a Pulumi resource provider that builds container images and skips unchanged contexts.
//!
//! Data flows one way: the engine's Struct becomes typed inputs ([`values`]), a resource
//! ([`resources`]) asks [`context`] for a hash, [`local`] or [`remote`] builds, [`registry`]
//! answers digests, and the resource turns the result back into outputs. [`provider`] is the
//! gRPC face and knows nothing of Docker.

#![deny(missing_docs)]

pub mod config;
pub mod context;
pub mod dockerfile;
pub mod engine_log;
pub mod local;
pub mod plan;
pub mod provider;
pub mod redact;
pub mod registry;
pub mod remote;
pub mod resources;
pub mod steps;
pub mod values;

/// Types generated from our subset of Pulumi's protocol (proto/).
#[allow(missing_docs, clippy::all)]
pub mod proto {
    tonic::include_proto!("pulumirpc");
}
