//! The image reference grammar, in one place: distribution/reference's names, tags and
//! digests, and Docker's split of a name into registry and repository. Repository inputs, FROM
//! lines, cache references and pushes all parse through it.

use std::sync::OnceLock;

use regex::Regex;

/// A reference split into its parts, as `reference.ParseNormalizedNamed` returns it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Parts {
    /// Registry host, `docker.io` for Docker Hub.
    pub domain: String,
    /// Repository path, `library/alpine` for official images.
    pub path: String,
    /// Tag, if given.
    pub tag: Option<String>,
    /// Digest, if given (any algorithm BuildKit accepts).
    pub digest: Option<String>,
}

/// Splits off the registry the way Docker does: a first component with `.` or `:`, or
/// `localhost`, or with uppercase letters, is a host.
pub(crate) fn split_domain(name: &str) -> (String, String) {
    let (mut domain, mut rest) = match name.split_once('/') {
        Some((first, rest))
            if first.contains(['.', ':'])
                || first == "localhost"
                || first.to_lowercase() != first =>
        {
            (first.to_string(), rest.to_string())
        }
        _ => (DOCKER_HUB.to_string(), name.to_string()),
    };
    if domain == "index.docker.io" {
        domain = DOCKER_HUB.into();
    }
    if domain == DOCKER_HUB && !rest.contains('/') {
        rest = format!("library/{rest}");
    }
    (domain, rest)
}

/// Docker Hub's canonical registry name.
pub(crate) const DOCKER_HUB: &str = "docker.io";

/// Checks a split name against the distribution reference grammar; the reason says what to fix.
pub(crate) fn validate_name(input: &str, registry: &str, path: &str) -> Result<(), String> {
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

/// `[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}`; the reason says what a tag may hold.
pub(crate) fn validate_tag(tag: &str) -> Result<(), String> {
    let ok = tag.len() <= 128
        && tag
            .chars()
            .next()
            .is_some_and(|c| c.is_ascii_alphanumeric() || c == '_')
        && tag
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-'));
    if ok {
        Ok(())
    } else {
        Err(format!(
            "tag {tag:?} must be 1-128 letters, digits, '_', '.' or '-' and not start with '.' or '-'"
        ))
    }
}

fn reference_regex() -> &'static Regex {
    static RE: OnceLock<Regex> = OnceLock::new();
    RE.get_or_init(|| {
        let alnum = "[a-z0-9]+";
        let sep = "(?:[._]|__|[-]+)";
        let component = format!("{alnum}(?:{sep}{alnum})*");
        let domain_component = "(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])";
        let domain_name = format!("{domain_component}(?:\\.{domain_component})*");
        let host = format!("(?:{domain_name}|\\[(?:[a-fA-F0-9:]+)\\])");
        let domain = format!("{host}(?::[0-9]+)?");
        let name = format!("(?:{domain}/)?{component}(?:/{component})*");
        let tag = "[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}";
        let digest = "[A-Za-z][A-Za-z0-9]*(?:[-_+.][A-Za-z][A-Za-z0-9]*)*:[0-9a-fA-F]{32,}";
        Regex::new(&format!("^({name})(?::({tag}))?(?:@({digest}))?$")).expect("reference regex")
    })
}

/// `reference.ParseNormalizedNamed`.
pub(crate) fn parse_normalized(s: &str) -> Result<Parts, String> {
    if s.len() == 64
        && s.bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
    {
        return Err(format!(
            "invalid repository name ({s}), cannot specify 64-byte hexadecimal strings"
        ));
    }
    let (domain, remainder) = split_domain(s);
    let remote = remainder.split(':').next().unwrap_or_default();
    if remote.to_lowercase() != remote {
        return Err(format!(
            "invalid reference format: repository name ({remote}) must be lowercase"
        ));
    }
    let full = format!("{domain}/{remainder}");
    let caps = reference_regex()
        .captures(&full)
        .ok_or_else(|| "invalid reference format".to_string())?;
    let name = &caps[1];
    if name.len() > 255 {
        return Err("repository name must not be more than 255 characters".into());
    }
    let digest = caps.get(3).map(|m| m.as_str().to_string());
    if let Some(d) = &digest {
        check_digest(d)?;
    }
    let (domain, path) = split_domain(name);
    Ok(Parts {
        domain,
        path,
        tag: caps.get(2).map(|m| m.as_str().to_string()),
        digest,
    })
}

fn check_digest(d: &str) -> Result<(), String> {
    let (alg, hex) = d.split_once(':').unwrap_or((d, ""));
    let len = match alg {
        "sha256" => 64,
        "sha384" => 96,
        "sha512" => 128,
        _ => return Err(format!("unsupported digest algorithm in {d}")),
    };
    if hex.len() != len
        || !hex
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
    {
        return Err(format!("invalid checksum digest format in {d}"));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn domains_split_as_docker_does() {
        let split = |s: &str| split_domain(s);
        assert_eq!(
            split("busybox"),
            ("docker.io".into(), "library/busybox".into())
        );
        assert_eq!(split("team/app"), ("docker.io".into(), "team/app".into()));
        assert_eq!(
            split("index.docker.io/x"),
            ("docker.io".into(), "library/x".into())
        );
        assert_eq!(split("localhost/app"), ("localhost".into(), "app".into()));
        assert_eq!(
            split("127.0.0.1:5000/a/b:t"),
            ("127.0.0.1:5000".into(), "a/b:t".into())
        );
        assert_eq!(split("Team/app"), ("Team".into(), "app".into()));
    }

    #[test]
    fn tags_and_names() {
        assert!(validate_tag("v1.2-rc_3").is_ok());
        for bad in ["", "-x", ".x", "a/b", "a b", &"a".repeat(129)] {
            assert!(validate_tag(bad).is_err(), "{bad:?}");
        }
        assert!(validate_name("a/b", "docker.io", "a/b").is_ok());
        assert!(validate_name("x", "bad_host", "x").is_err());
        assert!(validate_name("A", "docker.io", "library/A").is_err());
    }

    #[test]
    fn normalized_parts() {
        let d = format!("sha256:{}", "a".repeat(64));
        let p = parse_normalized(&format!("localhost:5000/team/app:v1@{d}")).unwrap();
        assert_eq!(
            (p.domain.as_str(), p.path.as_str(), p.tag.as_deref()),
            ("localhost:5000", "team/app", Some("v1"))
        );
        assert_eq!(p.digest, Some(d));
        assert!(parse_normalized("alpine@sha256:abc").is_err());
    }
}
