//! Image references as distribution/reference's `ParseNormalizedNamed` reads them: the
//! frontend validates every base name with it and matches named contexts on the
//! "familiar" form (`alpine`, `team/app:1`, `ghcr.io/x/y`).

use std::sync::OnceLock;

use regex::Regex;

use super::error::Msg;

/// A parsed, normalized reference.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Reference {
    /// Registry host, `docker.io` for Docker Hub.
    pub domain: String,
    /// Repository path, `library/alpine` for official images.
    pub path: String,
    /// Tag, if given.
    pub tag: Option<String>,
    /// Digest, if given.
    pub digest: Option<String>,
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

/// Splits off the registry the way Docker does: a first component with `.` or `:`, or
/// `localhost`, or with uppercase letters, is a host.
fn split_domain(name: &str) -> (String, String) {
    let (mut domain, mut rest) = match name.split_once('/') {
        Some((first, rest))
            if first.contains(['.', ':'])
                || first == "localhost"
                || first.to_lowercase() != first =>
        {
            (first.to_string(), rest.to_string())
        }
        _ => ("docker.io".to_string(), name.to_string()),
    };
    if domain == "index.docker.io" {
        domain = "docker.io".into();
    }
    if domain == "docker.io" && !rest.contains('/') {
        rest = format!("library/{rest}");
    }
    (domain, rest)
}

/// `reference.ParseNormalizedNamed`.
pub(crate) fn parse_normalized(s: &str) -> Msg<Reference> {
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
    Ok(Reference {
        domain,
        path,
        tag: caps.get(2).map(|m| m.as_str().to_string()),
        digest,
    })
}

fn check_digest(d: &str) -> Msg<()> {
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

impl Reference {
    /// `reference.TagNameOnly(ref).String()`: the full name, `:latest` added when neither tag
    /// nor digest is given.
    pub(crate) fn normalized(&self) -> String {
        let tag = match (&self.tag, &self.digest) {
            (None, None) => Some("latest".to_string()),
            (t, _) => t.clone(),
        };
        let mut s = format!("{}/{}", self.domain, self.path);
        if let Some(t) = tag {
            s.push(':');
            s.push_str(&t);
        }
        if let Some(d) = &self.digest {
            s.push('@');
            s.push_str(d);
        }
        s
    }

    /// The name a named context must have to replace this reference: the familiar form of
    /// the normalized name, without a trailing `:latest`.
    pub(crate) fn context_name(&self) -> String {
        let mut name = if self.domain == "docker.io" {
            match self.path.strip_prefix("library/") {
                Some(rest) if !rest.contains('/') => rest.to_string(),
                _ => self.path.clone(),
            }
        } else {
            format!("{}/{}", self.domain, self.path)
        };
        let tag = self
            .tag
            .clone()
            .or_else(|| self.digest.is_none().then(|| "latest".into()));
        if let Some(t) = tag {
            name.push(':');
            name.push_str(&t);
        }
        if let Some(d) = &self.digest {
            name.push('@');
            name.push_str(d);
        }
        name.strip_suffix(":latest")
            .map(str::to_string)
            .unwrap_or(name)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normalization_and_familiar_names() {
        let r = parse_normalized("alpine").unwrap();
        assert_eq!(r.normalized(), "docker.io/library/alpine:latest");
        assert_eq!(r.context_name(), "alpine");
        let r = parse_normalized("docker.io/library/python:3.11").unwrap();
        assert_eq!(r.context_name(), "python:3.11");
        let r = parse_normalized("imagebuild-base/busybox").unwrap();
        assert_eq!(r.normalized(), "docker.io/imagebuild-base/busybox:latest");
        assert_eq!(r.context_name(), "imagebuild-base/busybox");
        let r = parse_normalized("localhost:5000/team/app:v1").unwrap();
        assert_eq!(r.domain, "localhost:5000");
        assert_eq!(r.context_name(), "localhost:5000/team/app:v1");
        let d = format!("sha256:{}", "a".repeat(64));
        let r = parse_normalized(&format!("alpine@{d}")).unwrap();
        assert_eq!(r.normalized(), format!("docker.io/library/alpine@{d}"));
    }

    #[test]
    fn invalid_references() {
        for bad in [
            "Alpine",
            "alpine:",
            "-alpine",
            "a//b",
            "alpine@sha256:abc",
            "$X",
            &"a".repeat(64).replace('a', "b"),
        ] {
            assert!(parse_normalized(bad).is_err(), "{bad:?}");
        }
        assert!(parse_normalized("my.registry/Team/app").is_err());
    }
}
