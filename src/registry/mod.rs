//! OCI distribution registry access: credentials (explicit, ECR, Docker config), manifest digests,
//! deletes, and base image resolution per platform (without pulling).

mod blob_cache;
mod client;
mod credentials;
mod digest;
mod docker_config;
mod ecr;
mod error;
pub(crate) mod grammar;
mod manifest;
mod name;
mod platform;
mod reference;
mod resolve;
mod tombstone;

pub use client::{ImageParts, Registry};
pub use credentials::{BasicCredentials, CredentialSource, RegistryConfig, ResolvedCredentials};
pub use digest::Digest;
pub use error::RegistryError;
pub use name::ImageName;
pub use platform::Platform;
pub use reference::ImageRef;
pub use resolve::ResolvedImage;
