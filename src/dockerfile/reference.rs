//! Image references as distribution/reference's `ParseNormalizedNamed` reads them: the
//! frontend validates every base name with it and matches named contexts on the
//! "familiar" form (`alpine`, `team/app:1`, `ghcr.io/x/y`).

use super::error::Msg;

/// A parsed, normalized reference: the crate's one grammar's parts.
pub(crate) use crate::registry::grammar::Parts as Reference;

/// `reference.ParseNormalizedNamed`, by the crate's one reference grammar.
pub(crate) fn parse_normalized(s: &str) -> Msg<Reference> {
    crate::registry::grammar::parse_normalized(s)
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
