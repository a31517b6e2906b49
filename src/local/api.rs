//! Small Docker Engine API calls over raw connections: version, tag, inspect.

use http_body_util::BodyExt;
use serde::Deserialize;

use super::daemon::{body_text, encode, DaemonAddr, RawBody};
use super::LocalError;

/// What `/version` says about the daemon.
#[derive(Debug, Clone, Deserialize)]
pub(crate) struct DaemonVersion {
    /// The engine's release, e.g. "20.10.24+dfsg1" or "29.8.0".
    #[serde(rename = "Version", default)]
    pub version: String,
    /// e.g. "1.41".
    #[serde(rename = "ApiVersion", default)]
    pub api_version: String,
    /// e.g. "linux".
    #[serde(rename = "Os", default)]
    pub os: String,
    /// e.g. "amd64".
    #[serde(rename = "Arch", default)]
    pub arch: String,
}

impl DaemonVersion {
    /// BuildKit through `/build?version=2` needs API 1.39+ on a Linux daemon.
    pub fn has_buildkit(&self) -> bool {
        self.os == "linux" && self.api() >= (1, 39)
    }

    /// Named build contexts (`context:NAME` frontend attributes on the Control API) need the
    /// Dockerfile frontend of BuildKit 0.10, built into Engine 23 (API 1.42) and later; Engine
    /// 20.10 (API 1.41) has BuildKit 0.8.
    pub fn has_named_contexts(&self) -> bool {
        self.has_buildkit() && self.api() >= (1, 42)
    }

    fn api(&self) -> (u32, u32) {
        let mut it = self.api_version.split('.');
        let major = it.next().and_then(|x| x.parse().ok()).unwrap_or(0);
        let minor = it.next().and_then(|x| x.parse().ok()).unwrap_or(0);
        (major, minor)
    }

    /// `/v1.41`, the prefix every later call uses (the daemon's own version: negotiated).
    pub fn prefix(&self) -> String {
        format!("/v{}", self.api_version)
    }
}

pub(crate) fn empty() -> RawBody {
    http_body_util::Empty::new()
        .map_err(|never| match never {})
        .boxed_unsync()
}

/// GET `/version` (unversioned, so it works with any daemon).
pub(crate) async fn version(addr: &DaemonAddr) -> Result<DaemonVersion, LocalError> {
    get_json(addr, "/version", "report its version").await
}

/// What `/info` says about where images live.
#[derive(Debug, Clone, Deserialize)]
struct DaemonInfo {
    /// Pairs such as `["driver-type", "io.containerd.snapshotter.v1"]`.
    #[serde(rename = "DriverStatus", default)]
    driver_status: Option<Vec<Vec<String>>>,
}

/// True when the daemon keeps images in containerd's store (new installs of Engine 24+ and
/// Docker Desktop), whose BuildKit can export caches; the classic graph-driver store cannot.
pub(crate) async fn uses_containerd_store(
    addr: &DaemonAddr,
    prefix: &str,
) -> Result<bool, LocalError> {
    let info: DaemonInfo = get_json(addr, &format!("{prefix}/info"), "report its info").await?;
    let status = info.driver_status.unwrap_or_default();
    Ok(status
        .iter()
        .any(|pair| pair.iter().any(|v| v == "io.containerd.snapshotter.v1")))
}

/// GET `path` and read its JSON answer; `what` names the call in errors.
async fn get_json<T: serde::de::DeserializeOwned>(
    addr: &DaemonAddr,
    path: &str,
    what: &str,
) -> Result<T, LocalError> {
    let req = http::Request::get(path)
        .header("Host", "docker")
        .body(empty())
        .map_err(|e| LocalError::Invalid(e.to_string()))?;
    let (resp, _g) = addr.request(req).await?;
    if !resp.status().is_success() {
        let s = resp.status();
        return Err(LocalError::Daemon {
            host: addr.display.clone(),
            what: what.into(),
            detail: format!("HTTP {s}: {}", body_text(resp).await),
        });
    }
    let bytes = resp
        .into_body()
        .collect()
        .await
        .map_err(|e| addr.unreachable(e))?
        .to_bytes();
    serde_json::from_slice(&bytes).map_err(|e| LocalError::Daemon {
        host: addr.display.clone(),
        what: what.into(),
        detail: format!("unreadable answer: {e}"),
    })
}

/// POST `/images/{image}/tag?repo=..&tag=..`.
pub(crate) async fn tag(
    addr: &DaemonAddr,
    prefix: &str,
    image: &str,
    repo: &str,
    tag: &str,
) -> Result<(), LocalError> {
    let req = http::Request::post(format!(
        "{prefix}/images/{}/tag?repo={}&tag={}",
        encode(image),
        encode(repo),
        encode(tag)
    ))
    .header("Host", "docker")
    .body(empty())
    .map_err(|e| LocalError::Invalid(e.to_string()))?;
    let (resp, _g) = addr.request(req).await?;
    if resp.status().is_success() {
        let _ = body_text(resp).await;
        return Ok(());
    }
    let s = resp.status();
    Err(LocalError::Daemon {
        host: addr.display.clone(),
        what: format!("tag {image} as {repo}:{tag}"),
        detail: format!("HTTP {s}: {}", body_text(resp).await),
    })
}

/// The image id (`sha256:...`) of a local image reference.
pub(crate) async fn image_id(
    addr: &DaemonAddr,
    prefix: &str,
    reference: &str,
) -> Result<String, LocalError> {
    #[derive(Deserialize)]
    struct Inspect {
        #[serde(rename = "Id")]
        id: String,
    }
    let Some(bytes) = inspect_image(addr, prefix, reference).await? else {
        return Err(LocalError::Daemon {
            host: addr.display.clone(),
            what: format!("inspect {reference}"),
            detail: "HTTP 404 Not Found: no such image".into(),
        });
    };
    let i: Inspect = serde_json::from_slice(&bytes).map_err(|e| LocalError::Daemon {
        host: addr.display.clone(),
        what: format!("inspect {reference}"),
        detail: e.to_string(),
    })?;
    Ok(i.id)
}

/// GET `/images/{reference}/json`: the raw inspect document, `None` when the daemon has no such image.
pub(crate) async fn inspect_image(
    addr: &DaemonAddr,
    prefix: &str,
    reference: &str,
) -> Result<Option<bytes::Bytes>, LocalError> {
    let req = http::Request::get(format!("{prefix}/images/{}/json", encode(reference)))
        .header("Host", "docker")
        .body(empty())
        .map_err(|e| LocalError::Invalid(e.to_string()))?;
    let (resp, _g) = addr.request(req).await?;
    if resp.status() == http::StatusCode::NOT_FOUND {
        let _ = body_text(resp).await;
        return Ok(None);
    }
    if !resp.status().is_success() {
        let s = resp.status();
        return Err(LocalError::Daemon {
            host: addr.display.clone(),
            what: format!("inspect {reference}"),
            detail: format!("HTTP {s}: {}", body_text(resp).await),
        });
    }
    let bytes = resp
        .into_body()
        .collect()
        .await
        .map_err(|e| addr.unreachable(e))?
        .to_bytes();
    Ok(Some(bytes))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn version(api: &str, os: &str) -> DaemonVersion {
        DaemonVersion {
            version: "x".into(),
            api_version: api.into(),
            os: os.into(),
            arch: "amd64".into(),
        }
    }

    #[test]
    fn named_contexts_need_api_1_42() {
        assert!(!version("1.41", "linux").has_named_contexts());
        assert!(version("1.41", "linux").has_buildkit());
        assert!(version("1.42", "linux").has_named_contexts());
        assert!(version("1.56", "linux").has_named_contexts());
        assert!(version("2.0", "linux").has_named_contexts());
        assert!(!version("1.56", "windows").has_named_contexts());
        assert!(!version("", "linux").has_named_contexts());
    }
}
