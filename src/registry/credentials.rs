//! Credential resolution in the documented order: explicit, then ECR, then the Docker config.

use std::fmt;

use super::{docker_config, ecr, RegistryError};

/// A username/password pair; Debug never prints the password.
#[derive(Clone, PartialEq, Eq)]
pub struct BasicCredentials {
    /// Registry user name (`AWS` for ECR tokens).
    pub username: String,
    /// Password or token; secret.
    pub password: String,
}

impl fmt::Debug for BasicCredentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("BasicCredentials")
            .field("username", &self.username)
            .field("password", &"<redacted>")
            .finish()
    }
}

/// How the registry module finds credentials and reaches ECR.
#[derive(Debug, Clone, Default)]
pub struct RegistryConfig {
    /// Credentials given to the resource; tried first, for every registry this config is used with.
    pub explicit: Option<BasicCredentials>,
    /// ECR API endpoint override (tests point it at moto).
    pub ecr_endpoint: Option<String>,
    /// AWS region override; default is the region in the ECR host name.
    pub aws_region: Option<String>,
}

/// Where a set of credentials came from, for error messages.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CredentialSource {
    /// Given to the resource.
    Explicit,
    /// ECR GetAuthorizationToken.
    Ecr,
    /// `auths` entry of a Docker config file.
    DockerConfig(String),
    /// A docker-credential-* helper named in the Docker config.
    CredentialHelper(String),
    /// No credentials found; requests go anonymous.
    Anonymous,
}

impl fmt::Display for CredentialSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CredentialSource::Explicit => {
                write!(f, "the explicit username/password given to the resource")
            }
            CredentialSource::Ecr => write!(f, "an ECR authorization token (AWS credential chain)"),
            CredentialSource::DockerConfig(p) => write!(f, "the auths entry in {p}"),
            CredentialSource::CredentialHelper(h) => {
                write!(f, "the credential helper docker-credential-{h}")
            }
            CredentialSource::Anonymous => write!(f, "no credentials (anonymous access)"),
        }
    }
}

/// Credentials chosen for one registry, with their origin.
#[derive(Debug, Clone)]
pub struct ResolvedCredentials {
    /// None when anonymous.
    pub credentials: Option<BasicCredentials>,
    /// Where they came from.
    pub source: CredentialSource,
}

/// True for `<account>.dkr.ecr.<region>.amazonaws.com` (and the .cn partition).
pub(crate) fn ecr_region(registry: &str) -> Option<String> {
    let host = registry.split(':').next().unwrap_or(registry);
    let parts: Vec<&str> = host.split('.').collect();
    if parts.len() >= 6
        && parts[1] == "dkr"
        && parts[2] == "ecr"
        && parts[0].chars().all(|c| c.is_ascii_digit())
        && host.contains(".amazonaws.com")
    {
        Some(parts[3].to_string())
    } else {
        None
    }
}

/// Applies the order explicit -> ECR -> Docker config -> anonymous.
pub(crate) async fn resolve(
    cfg: &RegistryConfig,
    registry: &str,
) -> Result<ResolvedCredentials, RegistryError> {
    if let Some(c) = &cfg.explicit {
        return Ok(ResolvedCredentials {
            credentials: Some(c.clone()),
            source: CredentialSource::Explicit,
        });
    }
    if let Some(host_region) = ecr_region(registry) {
        let region = cfg.aws_region.clone().unwrap_or(host_region);
        let creds =
            ecr::authorization_token(registry, &region, cfg.ecr_endpoint.as_deref()).await?;
        return Ok(ResolvedCredentials {
            credentials: Some(creds),
            source: CredentialSource::Ecr,
        });
    }
    if let Some(found) = docker_config::lookup(registry).await? {
        return Ok(found);
    }
    Ok(ResolvedCredentials {
        credentials: None,
        source: CredentialSource::Anonymous,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_redacts_password() {
        let c = BasicCredentials {
            username: "u".into(),
            password: "hunter2".into(),
        };
        let cfg = RegistryConfig {
            explicit: Some(c.clone()),
            ..Default::default()
        };
        assert!(!format!("{c:?}").contains("hunter2"));
        assert!(!format!("{cfg:?}").contains("hunter2"));
    }

    #[test]
    fn detects_ecr_hosts() {
        assert_eq!(
            ecr_region("123456789012.dkr.ecr.eu-west-1.amazonaws.com").as_deref(),
            Some("eu-west-1")
        );
        assert_eq!(ecr_region("127.0.0.1:5000"), None);
        assert_eq!(ecr_region("ghcr.io"), None);
    }
}
