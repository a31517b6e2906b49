//! Image references as FROM lines write them: `name[:tag][@digest]`, normalized as Docker does.

use std::fmt;

use super::grammar::{split_domain, validate_name, validate_tag};
use super::{Digest, ImageName, RegistryError};

/// A parsed image reference: repository plus tag and/or digest (`latest` when neither is given).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ImageRef {
    /// Registry and repository, Docker Hub names normalized (`python` -> `docker.io/library/python`).
    pub name: ImageName,
    /// The tag; `None` only when a digest is given without one.
    pub tag: Option<String>,
    /// The pinned digest, when the reference carries `@sha256:...`.
    pub digest: Option<Digest>,
}

impl ImageRef {
    /// Parses `python`, `python:3.12`, `host:5000/a/b:v1@sha256:...` or `name@sha256:...`.
    pub fn parse(input: &str) -> Result<ImageRef, RegistryError> {
        let bad = |reason: String| RegistryError::InvalidName {
            input: input.to_string(),
            reason,
        };
        let s = input.trim();
        let (named, digest) = match s.split_once('@') {
            Some((n, d)) => (n, Some(Digest::parse(d).map_err(bad)?)),
            None => (s, None),
        };
        let (registry, rest) = split_domain(named);
        let (path, tag) = match rest.rsplit_once(':') {
            Some((p, t)) => (p.to_string(), Some(t.to_string())),
            None => (rest, None),
        };
        if let Some(t) = &tag {
            validate_tag(t).map_err(bad)?;
        }
        validate_name(named, &registry, &path).map_err(bad)?;
        // Docker's TagNameOnly: a bare name means `latest`; a digest alone stays tagless.
        let tag = tag.or_else(|| digest.is_none().then(|| "latest".to_string()));
        Ok(ImageRef {
            name: ImageName {
                registry,
                repository: path,
            },
            tag,
            digest,
        })
    }

    /// What the registry API is asked for: the digest when pinned (the tag is then ignored, as
    /// BuildKit does), else the tag.
    pub fn api_reference(&self) -> &str {
        match (&self.digest, &self.tag) {
            (Some(d), _) => d.as_str(),
            (None, Some(t)) => t,
            (None, None) => "latest",
        }
    }

    /// The form a Docker daemon resolves the same way BuildKit does: `name@digest` or `name:tag`
    /// (fully qualified, so an image-id prefix can never match instead).
    pub fn daemon_reference(&self) -> String {
        match &self.digest {
            Some(d) => self.name.with_digest(d.as_str()),
            None => self.name.with_tag(self.api_reference()),
        }
    }
}

impl fmt::Display for ImageRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.name)?;
        if let Some(t) = &self.tag {
            write!(f, ":{t}")?;
        }
        if let Some(d) = &self.digest {
            write!(f, "@{d}")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hex() -> String {
        "0123456789abcdef".repeat(4)
    }

    fn parts(s: &str) -> (String, String, Option<String>, Option<String>) {
        let r = ImageRef::parse(s).unwrap_or_else(|e| panic!("{s}: {e}"));
        (
            r.name.registry,
            r.name.repository,
            r.tag,
            r.digest.map(|d| d.to_string()),
        )
    }

    #[test]
    fn docker_hub_normalization() {
        let t = |s: &str| Some(s.to_string());
        assert_eq!(
            parts("python"),
            (
                "docker.io".into(),
                "library/python".into(),
                t("latest"),
                None
            )
        );
        assert_eq!(
            parts("python:3.12"),
            ("docker.io".into(), "library/python".into(), t("3.12"), None)
        );
        assert_eq!(
            parts("imagebuild-base/busybox:latest"),
            (
                "docker.io".into(),
                "imagebuild-base/busybox".into(),
                t("latest"),
                None
            )
        );
        assert_eq!(parts("docker.io/python").1, "library/python");
        assert_eq!(parts("index.docker.io/library/python").0, "docker.io");
        let r = ImageRef::parse("python:3.12").unwrap();
        assert_eq!(r.to_string(), "docker.io/library/python:3.12");
        assert_eq!(r.name.api_host(), "registry-1.docker.io");
    }

    #[test]
    fn hosts_ports_tags_and_digests() {
        let h = hex();
        let (reg, repo, tag, dig) = parts(&format!("127.0.0.1:5000/team/app:v1@sha256:{h}"));
        assert_eq!(
            (reg.as_str(), repo.as_str()),
            ("127.0.0.1:5000", "team/app")
        );
        assert_eq!(tag.as_deref(), Some("v1"));
        assert_eq!(dig, Some(format!("sha256:{h}")));
        let r = ImageRef::parse(&format!("localhost/app@sha256:{h}")).unwrap();
        assert_eq!(r.tag, None);
        assert_eq!(r.api_reference(), format!("sha256:{h}"));
        assert_eq!(r.daemon_reference(), format!("localhost/app@sha256:{h}"));
        let r = ImageRef::parse("localhost:5000/app").unwrap();
        assert_eq!(r.api_reference(), "latest");
        assert_eq!(r.daemon_reference(), "localhost:5000/app:latest");
        // No slash: `localhost:5000` is Docker Hub's library/localhost at tag 5000, as Docker reads it.
        assert_eq!(parts("localhost:5000").1, "library/localhost");
        assert_eq!(parts("[::1]:5000/app").0, "[::1]:5000");
        assert_eq!(parts("Registry.Example/app").0, "Registry.Example");
        assert_eq!(parts("a/b__c/d-e--f.g:v_1.2-3").1, "a/b__c/d-e--f.g");
    }

    #[test]
    fn rejects_bad_references_with_reasons() {
        let h = hex();
        for (input, needle) in [
            ("", "empty"),
            ("Python", "lowercase"),
            ("python:", "tag"),
            ("python:-x", "tag"),
            ("python@sha256:abc", "64"),
            ("python@md5:abc", "algorithm"),
            ("a//b", "component"),
            ("a/-b", "component"),
            ("a/b...c", "component"),
            ("host:port:x/app", "registry host"),
            ("-host.io/app", "registry host"),
            ("[zz]:5000/app", "registry host"),
        ] {
            let e = ImageRef::parse(input).expect_err(input).to_string();
            assert!(
                e.contains(needle) && e.contains(&format!("{input:?}")),
                "{input}: {e}"
            );
        }
        assert!(ImageRef::parse(&h).is_err(), "64-hex id is not a name");
        let long = format!("a/{}", "b".repeat(260));
        assert!(ImageRef::parse(&long).is_err());
        assert!(ImageRef::parse(&format!("app:{}", "t".repeat(129))).is_err());
    }
}
