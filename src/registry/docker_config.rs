//! `~/.docker/config.json` (or `$DOCKER_CONFIG/config.json`): auths entries and credential helpers.

use std::collections::HashMap;
use std::path::PathBuf;

use base64::Engine as _;
use serde::Deserialize;

use super::{BasicCredentials, CredentialSource, RegistryError, ResolvedCredentials};

#[derive(Deserialize, Default)]
struct ConfigFile {
    #[serde(default)]
    auths: HashMap<String, AuthEntry>,
    #[serde(default, rename = "credHelpers")]
    cred_helpers: HashMap<String, String>,
    #[serde(default, rename = "credsStore")]
    creds_store: Option<String>,
}

#[derive(Deserialize, Default)]
struct AuthEntry {
    #[serde(default)]
    auth: Option<String>,
    #[serde(default)]
    username: Option<String>,
    #[serde(default)]
    password: Option<String>,
    #[serde(default)]
    identitytoken: Option<String>,
}

#[derive(Deserialize)]
struct HelperAnswer {
    #[serde(rename = "Username")]
    username: String,
    #[serde(rename = "Secret")]
    secret: String,
}

/// The config file Docker itself would read.
pub(crate) fn config_path() -> Option<PathBuf> {
    if let Some(dir) = std::env::var_os("DOCKER_CONFIG") {
        return Some(PathBuf::from(dir).join("config.json"));
    }
    std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".docker").join("config.json"))
}

/// Reduces `https://host/v1/` and friends to `host`, and Docker Hub aliases to `docker.io`.
fn normalize(key: &str) -> String {
    let k = key
        .trim_start_matches("https://")
        .trim_start_matches("http://");
    let k = k.split('/').next().unwrap_or(k);
    match k {
        "index.docker.io" | "registry-1.docker.io" | "docker.io" => "docker.io".to_string(),
        other => other.to_string(),
    }
}

/// Looks `registry` up in the Docker config; Ok(None) when the file or entry is absent.
pub(crate) async fn lookup(registry: &str) -> Result<Option<ResolvedCredentials>, RegistryError> {
    let Some(path) = config_path() else {
        return Ok(None);
    };
    let display = path.display().to_string();
    let text = match tokio::fs::read_to_string(&path).await {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => {
            return Err(RegistryError::DockerConfig {
                path: display,
                detail: e.to_string(),
            })
        }
    };
    let cfg: ConfigFile = serde_json::from_str(&text).map_err(|e| RegistryError::DockerConfig {
        path: display.clone(),
        detail: format!("not valid JSON: {e}"),
    })?;
    let want = normalize(registry);
    if let Some((_, helper)) = cfg.cred_helpers.iter().find(|(k, _)| normalize(k) == want) {
        return run_helper(helper, registry, &display).await.map(Some);
    }
    if let Some((_, entry)) = cfg.auths.iter().find(|(k, _)| normalize(k) == want) {
        if let Some(creds) = decode_entry(entry, &display)? {
            return Ok(Some(ResolvedCredentials {
                credentials: Some(creds),
                source: CredentialSource::DockerConfig(display),
            }));
        }
    }
    if let Some(store) = &cfg.creds_store {
        return match run_helper(store, registry, &display).await {
            Ok(found) => Ok(Some(found)),
            Err(_) => Ok(None),
        };
    }
    Ok(None)
}

fn decode_entry(entry: &AuthEntry, path: &str) -> Result<Option<BasicCredentials>, RegistryError> {
    if let (Some(u), Some(p)) = (&entry.username, &entry.password) {
        return Ok(Some(BasicCredentials {
            username: u.clone(),
            password: p.clone(),
        }));
    }
    if let Some(auth) = entry.auth.as_deref().filter(|a| !a.is_empty()) {
        let bad = || RegistryError::DockerConfig {
            path: path.to_string(),
            detail: "an auths entry's \"auth\" is not base64 of user:password".into(),
        };
        let raw = base64::engine::general_purpose::STANDARD
            .decode(auth.trim())
            .map_err(|_| bad())?;
        let text = String::from_utf8(raw).map_err(|_| bad())?;
        let (u, p) = text.split_once(':').ok_or_else(bad)?;
        return Ok(Some(BasicCredentials {
            username: u.to_string(),
            password: p.to_string(),
        }));
    }
    if let Some(tok) = &entry.identitytoken {
        return Ok(Some(BasicCredentials {
            username: "<token>".into(),
            password: tok.clone(),
        }));
    }
    Ok(None)
}

async fn run_helper(
    helper: &str,
    registry: &str,
    path: &str,
) -> Result<ResolvedCredentials, RegistryError> {
    use tokio::io::AsyncWriteExt;
    let err = |detail: String| RegistryError::DockerConfig {
        path: path.to_string(),
        detail: format!("docker-credential-{helper}: {detail}"),
    };
    let mut child = tokio::process::Command::new(format!("docker-credential-{helper}"))
        .arg("get")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .map_err(|e| err(format!("cannot start: {e}")))?;
    if let Some(mut stdin) = child.stdin.take() {
        stdin
            .write_all(registry.as_bytes())
            .await
            .map_err(|e| err(e.to_string()))?;
    }
    let out = child
        .wait_with_output()
        .await
        .map_err(|e| err(e.to_string()))?;
    if !out.status.success() {
        return Err(err(format!(
            "exited with {} for {registry}",
            out.status.code().unwrap_or(-1)
        )));
    }
    let ans: HelperAnswer = serde_json::from_slice(&out.stdout)
        .map_err(|_| err("answered something that is not JSON".into()))?;
    Ok(ResolvedCredentials {
        credentials: Some(BasicCredentials {
            username: ans.username,
            password: ans.secret,
        }),
        source: CredentialSource::CredentialHelper(helper.to_string()),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normalizes_keys() {
        assert_eq!(normalize("https://index.docker.io/v1/"), "docker.io");
        assert_eq!(normalize("http://127.0.0.1:5000"), "127.0.0.1:5000");
        assert_eq!(normalize("127.0.0.1:5000"), "127.0.0.1:5000");
    }

    #[test]
    fn decodes_auth_field() {
        let e = AuthEntry {
            auth: Some(base64::engine::general_purpose::STANDARD.encode("bob:pw:x")),
            ..Default::default()
        };
        let c = decode_entry(&e, "p").unwrap().unwrap();
        assert_eq!(c.username, "bob");
        assert_eq!(c.password, "pw:x");
    }
}
