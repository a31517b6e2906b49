//! Image names: `host[:port]/path` split into registry and repository.

use std::fmt;

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

/// Docker's domain split: the first component is a registry host when it has a `.` or `:`, is
/// `localhost` or holds uppercase; else the name is on Docker Hub (`library/` for one component).
pub(super) fn split_domain(s: &str) -> (String, String) {
    let (registry, path) = match s.split_once('/') {
        Some((first, rest))
            if first.contains(['.', ':'])
                || first == "localhost"
                || first.chars().any(|c| c.is_ascii_uppercase()) =>
        {
            (first.to_string(), rest.to_string())
        }
        _ => (DOCKER_HUB.to_string(), s.to_string()),
    };
    let registry = if registry == "index.docker.io" {
        DOCKER_HUB.to_string()
    } else {
        registry
    };
    if registry == DOCKER_HUB && !path.contains('/') {
        (registry, format!("library/{path}"))
    } else {
        (registry, path)
    }
}

/// Docker Hub's canonical registry name.
const DOCKER_HUB: &str = "docker.io";

/// Checks a split name against the distribution reference grammar; the reason says what to fix.
pub(super) fn validate_name(input: &str, registry: &str, path: &str) -> Result<(), String> {
    if input.is_empty() {
        return Err("empty name".into());
    }
    if input.len() == 64 && input.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err("a 64-digit hex string is an image id, not a repository name".into());
    }
    if !valid_domain(registry) {
        return Err(format!(
            "registry host {registry:?} must be host[:port] made of letters, digits, '.' and '-'"
        ));
    }
    if path.chars().any(|c| c.is_ascii_uppercase()) {
        return Err("repository names must be lowercase".into());
    }
    if !path.split('/').all(valid_component) {
        return Err(
            "each repository path component must be lowercase letters and digits, \
             separated inside by '.', '_', '__' or dashes"
                .into(),
        );
    }
    if registry.len() + 1 + path.len() > 255 {
        return Err("the repository name is longer than 255 characters".into());
    }
    Ok(())
}

/// `[a-z0-9]+((\.|_|__|-+)[a-z0-9]+)*`.
fn valid_component(c: &str) -> bool {
    let b = c.as_bytes();
    let alnum = |x: u8| x.is_ascii_lowercase() || x.is_ascii_digit();
    if b.is_empty() || !alnum(b[0]) || !alnum(b[b.len() - 1]) {
        return false;
    }
    let mut i = 0;
    while i < b.len() {
        if alnum(b[i]) {
            i += 1;
            continue;
        }
        let start = i;
        while i < b.len() && !alnum(b[i]) {
            i += 1;
        }
        let sep = &c[start..i];
        if !(sep == "." || sep == "_" || sep == "__" || sep.bytes().all(|x| x == b'-')) {
            return false;
        }
    }
    true
}

/// `host[:port]` or `[ipv6][:port]`, host labels of letters, digits and inner dashes.
fn valid_domain(d: &str) -> bool {
    let (host_ok, port) = if let Some(rest) = d.strip_prefix('[') {
        match rest.split_once(']') {
            Some((ip, tail)) => (ip.parse::<std::net::Ipv6Addr>().is_ok(), tail),
            None => return false,
        }
    } else {
        let (host, port) = match d.find(':') {
            Some(i) => d.split_at(i),
            None => (d, ""),
        };
        (host.split('.').all(valid_label), port)
    };
    let port_ok = port.is_empty()
        || port
            .strip_prefix(':')
            .is_some_and(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()));
    host_ok && port_ok
}

/// A DNS label: letters and digits, dashes only inside.
fn valid_label(l: &str) -> bool {
    let b = l.as_bytes();
    !b.is_empty()
        && b[0].is_ascii_alphanumeric()
        && b[b.len() - 1].is_ascii_alphanumeric()
        && b.iter().all(|x| x.is_ascii_alphanumeric() || *x == b'-')
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
