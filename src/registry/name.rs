//! Image names: `host[:port]/path` split into registry and repository.

use std::fmt;

use super::grammar::{split_domain, validate_name, DOCKER_HUB};
use super::RegistryError;

/// A repository in a registry, without tag or digest.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ImageName {
    /// host[:port]; `docker.io` for Docker Hub.
    pub registry: String,
    /// Repository path, e.g. `team/app`.
    pub repository: String,
}

impl ImageName {
    /// Parses `127.0.0.1:5000/team/app` (a tag or digest suffix is rejected).
    pub fn parse(input: &str) -> Result<ImageName, RegistryError> {
        let bad = |reason: &str| RegistryError::InvalidName {
            input: input.to_string(),
            reason: reason.to_string(),
        };
        let s = input.trim();
        if s.contains('@') {
            return Err(bad("give the repository without a digest (no @sha256:...)"));
        }
        let (registry, path) = split_domain(s);
        if path.contains(':') {
            return Err(bad(
                "give the repository without a tag (tags are set separately)",
            ));
        }
        validate_name(s, &registry, &path).map_err(|r| bad(&r))?;
        Ok(ImageName {
            registry,
            repository: path,
        })
    }

    /// `registry/repository:tag`.
    pub fn with_tag(&self, tag: &str) -> String {
        format!("{self}:{tag}")
    }

    /// `registry/repository@digest`.
    pub fn with_digest(&self, digest: &str) -> String {
        format!("{self}@{digest}")
    }

    /// Host to use for HTTP API calls (Docker Hub's API lives elsewhere).
    pub(crate) fn api_host(&self) -> &str {
        if self.registry == DOCKER_HUB {
            "registry-1.docker.io"
        } else {
            &self.registry
        }
    }
}

impl fmt::Display for ImageName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.registry, self.repository)
    }
}

/// Loopback registries speak plain HTTP, as Docker allows for 127.0.0.0/8.
pub(crate) fn is_insecure_host(registry: &str) -> bool {
    let host = match registry.rsplit_once(':') {
        Some((h, port)) if port.chars().all(|c| c.is_ascii_digit()) => h,
        _ => registry,
    };
    let host = host.trim_start_matches('[').trim_end_matches(']');
    host == "localhost"
        || host == "::1"
        || host
            .parse::<std::net::Ipv4Addr>()
            .map(|ip| ip.is_loopback())
            .unwrap_or(false)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_host_port_and_path() {
        let n = ImageName::parse("127.0.0.1:5000/team/app").unwrap();
        assert_eq!(n.registry, "127.0.0.1:5000");
        assert_eq!(n.repository, "team/app");
        assert_eq!(n.with_tag("x"), "127.0.0.1:5000/team/app:x");
    }

    #[test]
    fn docker_hub_defaults() {
        let n = ImageName::parse("busybox").unwrap();
        assert_eq!(n.registry, "docker.io");
        assert_eq!(n.repository, "library/busybox");
        assert_eq!(n.api_host(), "registry-1.docker.io");
    }

    #[test]
    fn rejects_tags_digests_and_caps() {
        assert!(ImageName::parse("127.0.0.1:5000/app:v1").is_err());
        assert!(ImageName::parse("127.0.0.1:5000/app@sha256:00").is_err());
        assert!(ImageName::parse("127.0.0.1:5000/App").is_err());
        assert!(ImageName::parse("").is_err());
    }

    #[test]
    fn insecure_hosts() {
        assert!(is_insecure_host("127.0.0.1:5000"));
        assert!(is_insecure_host("localhost:5000"));
        assert!(!is_insecure_host("1234.dkr.ecr.us-east-1.amazonaws.com"));
    }
}
