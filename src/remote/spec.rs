//! What a remote build needs: archive location, target repository, project, build options, secret references.

use std::collections::BTreeMap;

use crate::registry::ImageName;

use super::error::RemoteError;
use crate::context::is_context_hash;

/// Where a build secret's value lives; CodeBuild resolves it inside the build, so it never travels in plaintext.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SecretKind {
    /// An SSM Parameter Store name (CodeBuild type PARAMETER_STORE).
    ParameterStore,
    /// A Secrets Manager reference `secret-id[:json-key[:stage[:version]]]` (type SECRETS_MANAGER).
    SecretsManager,
}

/// A BuildKit secret: `RUN --mount=type=secret,id=<id>` in the Dockerfile sees the referenced value.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct RemoteSecret {
    /// BuildKit secret id, also the build's environment variable name (`[A-Za-z_][A-Za-z0-9_]*`).
    pub id: String,
    /// Which store holds it.
    pub kind: SecretKind,
    /// Parameter name or Secrets Manager reference (not the value).
    pub reference: String,
}

/// Which CodeBuild project runs the build.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ProjectChoice {
    /// A project the user manages; builds override its source, buildspec and artifacts.
    Existing(String),
    /// One shared project per platform (`imagebuild-<os>-<arch>`), created or updated to these settings.
    Managed {
        /// IAM role CodeBuild assumes (needs S3 read of the context, ECR push, logs).
        service_role_arn: String,
        /// e.g. `BUILD_GENERAL1_SMALL`.
        compute_type: String,
        /// Build image with Docker, e.g. `aws/codebuild/standard:7.0`.
        image: String,
    },
}

/// Where a named context (`--build-context NAME=...`) of a remote build comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RemoteContextSource {
    /// A directory inside the context archive (`context::named_archive_dirs`), e.g. `.imagebuild-contexts/0`.
    Archive(String),
    /// An image reference, `docker-image://` stripped.
    Image(String),
}

/// A named context of a remote build; the build then needs docker buildx (Docker 23+).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RemoteNamedContext {
    /// The name the Dockerfile uses (`FROM name`, `COPY --from=name`).
    pub name: String,
    /// Its content.
    pub source: RemoteContextSource,
}

/// One remote build: the uploaded context, what to build, where to push, and on which project.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RemoteBuildSpec {
    /// Context hash (64 lowercase hex); part of the idempotency token.
    pub context_hash: String,
    /// `s3://bucket/key` of the uploaded archive (`UploadOutcome::object_uri`).
    pub context_object: String,
    /// Repository to push to; its registry host is the one logged in to (ECR).
    pub repository: ImageName,
    /// Tag pushed, normally the context hash.
    pub hash_tag: String,
    /// Dockerfile path inside the archive, e.g. `Dockerfile`.
    pub dockerfile: String,
    /// Project to run on.
    pub project: ProjectChoice,
    /// Target platform, e.g. `linux/amd64`; also picks the managed project. None = the builder's own.
    pub platform: Option<String>,
    /// Build stage to stop at.
    pub target: Option<String>,
    /// Build arguments (not secret: they appear in the buildspec).
    pub build_args: BTreeMap<String, String>,
    /// CodeBuild build timeout in minutes (5..=2160).
    pub timeout_minutes: u32,
    /// Registry cache image, e.g. `<repo>:buildcache`.
    pub cache_ref: Option<String>,
    /// Secrets passed as PARAMETER_STORE / SECRETS_MANAGER variables.
    pub secrets: Vec<RemoteSecret>,
    /// Named contexts; empty = the plain BuildKit build (no buildx needed).
    pub named_contexts: Vec<RemoteNamedContext>,
}

/// True for a portable shell variable name.
pub(crate) fn is_env_name(s: &str) -> bool {
    let mut bytes = s.bytes();
    matches!(bytes.next(), Some(b'A'..=b'Z' | b'a'..=b'z' | b'_'))
        && bytes.all(|b| b.is_ascii_alphanumeric() || b == b'_')
}

fn no_control(what: &str, value: &str) -> Result<(), RemoteError> {
    if value.chars().any(|c| c.is_control()) {
        return Err(RemoteError::Invalid(format!(
            "{what} {value:?} contains control characters"
        )));
    }
    Ok(())
}

/// A relative path inside the archive, without `..` or empty components.
fn is_archive_dir(path: &str) -> bool {
    !path.is_empty()
        && !path.starts_with('/')
        && path
            .split('/')
            .all(|c| !c.is_empty() && c != "." && c != "..")
}

fn validate_named(named: &[RemoteNamedContext]) -> Result<(), RemoteError> {
    let mut names: Vec<&str> = Vec::new();
    for context in named {
        let name = &context.name;
        if name.is_empty() || name.contains('=') || name.chars().any(char::is_whitespace) {
            return bad(format!(
                "named context {name:?} needs a name without spaces or `=` (it becomes `--build-context NAME=...`)"
            ));
        }
        no_control(&format!("named context {name}"), name)?;
        match &context.source {
            RemoteContextSource::Archive(dir) if !is_archive_dir(dir) => {
                return bad(format!(
                    "named context {name}: {dir:?} is not a relative directory inside the context archive"
                ));
            }
            RemoteContextSource::Archive(dir) => no_control(&format!("named context {name}"), dir)?,
            RemoteContextSource::Image(image) if image.is_empty() => {
                return bad(format!("named context {name} has an empty image reference"));
            }
            RemoteContextSource::Image(image) => {
                no_control(&format!("named context {name}"), image)?
            }
        }
        names.push(name);
    }
    names.sort_unstable();
    if let Some(w) = names.windows(2).find(|w| w[0] == w[1]) {
        return bad(format!("named context {} is given twice", w[0]));
    }
    Ok(())
}

/// An invalid-input error with message `m`.
fn bad(m: String) -> Result<(), RemoteError> {
    Err(RemoteError::Invalid(m))
}

impl RemoteBuildSpec {
    /// Checks every input that ends up in the buildspec or the StartBuild request.
    pub fn validate(&self) -> Result<(), RemoteError> {
        self.validate_target()?;
        self.validate_build_args()?;
        self.validate_secrets()?;
        validate_named(&self.named_contexts)?;
        for (what, value) in [
            ("platform", &self.platform),
            ("target", &self.target),
            ("cache ref", &self.cache_ref),
        ] {
            if let Some(v) = value {
                no_control(what, v)?;
            }
        }
        match &self.project {
            ProjectChoice::Existing(name) if name.is_empty() => {
                bad("CodeBuild project name is empty".into())
            }
            ProjectChoice::Managed {
                service_role_arn, ..
            } if !service_role_arn.starts_with("arn:") => bad(format!(
                "service role {service_role_arn:?} is not an IAM role ARN"
            )),
            _ => Ok(()),
        }
    }

    /// What is built and where it goes: the hash, the context object, the repository and tag,
    /// the Dockerfile path and the timeout.
    fn validate_target(&self) -> Result<(), RemoteError> {
        if !is_context_hash(&self.context_hash) {
            return bad(format!(
                "context hash {:?} is not 64 lowercase hex digits",
                self.context_hash
            ));
        }
        if !self.context_object.starts_with("s3://") {
            return bad(format!(
                "context object {:?} is not an s3:// URI",
                self.context_object
            ));
        }
        if self.repository.registry.is_empty() || self.repository.repository.is_empty() {
            return bad("repository needs a registry host and a path".into());
        }
        if crate::registry::grammar::validate_tag(&self.hash_tag).is_err() {
            return bad(format!("tag {:?} is not a valid image tag", self.hash_tag));
        }
        if self.dockerfile.is_empty()
            || self.dockerfile.starts_with('/')
            || self.dockerfile.split('/').any(|c| c == "..")
        {
            return bad(format!(
                "dockerfile {:?} must be a relative path inside the context archive",
                self.dockerfile
            ));
        }
        if !(5..=2160).contains(&self.timeout_minutes) {
            return bad(format!(
                "build timeout {} minutes is outside CodeBuild's 5..2160",
                self.timeout_minutes
            ));
        }
        Ok(())
    }

    /// Build arg names become shell variable names; values must hold no control characters.
    fn validate_build_args(&self) -> Result<(), RemoteError> {
        for (k, v) in &self.build_args {
            if !is_env_name(k) {
                return bad(format!(
                    "build arg name {k:?} must match [A-Za-z_][A-Za-z0-9_]*"
                ));
            }
            no_control(&format!("build arg {k}"), v)?;
        }
        Ok(())
    }

    /// Secret ids become the build's environment variables: valid, not reserved, unique.
    fn validate_secrets(&self) -> Result<(), RemoteError> {
        for secret in &self.secrets {
            if !is_env_name(&secret.id)
                || secret.id.starts_with("CODEBUILD_")
                || secret.id.starts_with("IB_")
            {
                return bad(format!(
                    "secret id {:?} must match [A-Za-z_][A-Za-z0-9_]* and not start with CODEBUILD_ or IB_ (it becomes the build's environment variable)",
                    secret.id
                ));
            }
            if secret.reference.is_empty() {
                return bad(format!("secret {} has an empty reference", secret.id));
            }
        }
        let mut ids: Vec<&str> = self.secrets.iter().map(|s| s.id.as_str()).collect();
        ids.sort_unstable();
        if let Some(w) = ids.windows(2).find(|w| w[0] == w[1]) {
            return bad(format!("secret id {} is given twice", w[0]));
        }
        Ok(())
    }
}
