//! OCI distribution registry access: credentials (explicit, ECR, Docker config), manifest digests, deletes.

mod client;
mod credentials;
mod docker_config;
mod ecr;
mod error;
mod name;

pub use client::Registry;
pub use credentials::{BasicCredentials, CredentialSource, RegistryConfig, ResolvedCredentials};
pub use error::RegistryError;
pub use name::ImageName;
