//! Named contexts (`--build-context name=value`): the grammar of a value, and which of them a
//! build reads (local directories are hashed like the main context; images are pinned).

use std::collections::BTreeMap;
use std::path::PathBuf;

use super::reads::context_reads;
use super::{PlanError, PlanRequest};
use crate::context::NamedRequest;
use crate::dockerfile::Analysis;

/// Where a named context comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NamedContextSource {
    /// A local directory (its own `.dockerignore` applies).
    Dir(PathBuf),
    /// An image, `docker-image://` stripped (e.g. `python:3.12@sha256:...`).
    Image(String),
}

impl NamedContextSource {
    /// Parses a value as `docker build --build-context` takes it: `docker-image://REF` or a
    /// local directory path. Other schemes (git, https, oci-layout, target) are refused with a
    /// reason, because their content cannot be hashed before the build.
    pub fn parse(value: &str) -> Result<Self, String> {
        if let Some(image) = value.strip_prefix("docker-image://") {
            if image.is_empty() {
                return Err("`docker-image://` needs an image reference after it".into());
            }
            return Ok(NamedContextSource::Image(image.to_string()));
        }
        for scheme in [
            "git@",
            "git://",
            "http://",
            "https://",
            "oci-layout://",
            "target:",
        ] {
            if value.starts_with(scheme) {
                return Err(format!(
                    "`{value}`: only local directories and `docker-image://` references are \
                     supported as named contexts (their content must be hashable before the build)"
                ));
            }
        }
        if value.is_empty() {
            return Err("give a local directory or `docker-image://REF`".into());
        }
        Ok(NamedContextSource::Dir(PathBuf::from(value)))
    }
}

/// The named directories the build reads (with what it reads from each), and the image
/// contexts it uses (name -> reference).
pub(super) async fn requests(
    req: &PlanRequest,
    analysis: &Analysis,
) -> Result<(Vec<NamedRequest>, BTreeMap<String, String>), PlanError> {
    let mut dirs = Vec::new();
    let mut images = BTreeMap::new();
    for (name, reads) in &analysis.named {
        match req.contexts.get(name) {
            Some(NamedContextSource::Dir(dir)) => {
                if !tokio::fs::metadata(dir).await.is_ok_and(|m| m.is_dir()) {
                    return Err(PlanError::NamedContext {
                        name: name.clone(),
                        reason: format!(
                            "directory `{}` does not exist (relative paths are resolved from the \
                             Pulumi project directory)",
                            dir.display()
                        ),
                    });
                }
                dirs.push(NamedRequest {
                    name: name.clone(),
                    dir: dir.clone(),
                    reads: context_reads(reads),
                });
            }
            Some(NamedContextSource::Image(image)) => {
                images.insert(name.clone(), image.clone());
            }
            None => {}
        }
    }
    Ok((dirs, images))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values() {
        assert_eq!(
            NamedContextSource::parse("docker-image://python:3.12"),
            Ok(NamedContextSource::Image("python:3.12".into()))
        );
        assert_eq!(
            NamedContextSource::parse("../shared"),
            Ok(NamedContextSource::Dir("../shared".into()))
        );
        assert!(NamedContextSource::parse("https://x/y.tar").is_err());
        assert!(NamedContextSource::parse("docker-image://").is_err());
        assert!(NamedContextSource::parse("").is_err());
    }
}
