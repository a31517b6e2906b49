//! imagebuild: a Pulumi resource provider that builds container images and skips unchanged contexts.

pub mod context;
pub mod local;
pub mod registry;
pub mod remote;
