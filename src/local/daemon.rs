//! Reaching the Docker daemon: address from config or $DOCKER_HOST, a bollard client for plain API calls,
//! and fresh raw HTTP/1.1 connections for /session and /build (whose lifetime we must own).

use std::pin::Pin;

use bytes::Bytes;
use http_body_util::combinators::UnsyncBoxBody;
use hyper::body::Incoming;
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncRead, AsyncWrite};

use super::LocalError;

/// Default daemon address on Linux.
pub const DEFAULT_DOCKER_HOST: &str = "unix:///var/run/docker.sock";

/// Request body type for raw requests.
pub(crate) type RawBody = UnsyncBoxBody<Bytes, std::io::Error>;

/// Any duplex byte stream to the daemon.
pub(crate) trait Io: AsyncRead + AsyncWrite + Send + Unpin {}
impl<T: AsyncRead + AsyncWrite + Send + Unpin> Io for T {}

/// Where the daemon listens.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Endpoint {
    /// A unix socket path.
    Unix(String),
    /// host:port over plain TCP.
    Tcp(String),
}

/// A daemon address, as given and parsed.
#[derive(Debug, Clone)]
pub(crate) struct DaemonAddr {
    /// The address as the user would recognise it.
    pub display: String,
    /// Parsed endpoint.
    pub endpoint: Endpoint,
}

impl DaemonAddr {
    /// Config value, else $DOCKER_HOST, else the default socket.
    pub fn resolve(configured: Option<&str>) -> Result<DaemonAddr, LocalError> {
        let raw = configured
            .map(str::to_string)
            .or_else(|| std::env::var("DOCKER_HOST").ok().filter(|s| !s.is_empty()))
            .unwrap_or_else(|| DEFAULT_DOCKER_HOST.to_string());
        let tls = std::env::var("DOCKER_TLS_VERIFY")
            .map(|v| !v.is_empty() && v != "0")
            .unwrap_or(false);
        let endpoint = if let Some(p) = raw.strip_prefix("unix://") {
            Endpoint::Unix(p.to_string())
        } else if let Some(hp) = raw
            .strip_prefix("tcp://")
            .or_else(|| raw.strip_prefix("http://"))
        {
            if tls {
                return Err(LocalError::Invalid(format!(
                    "Docker host {raw} with DOCKER_TLS_VERIFY is not supported by the local builder yet; \
                     use a unix socket or an SSH tunnel to one"
                )));
            }
            Endpoint::Tcp(hp.trim_end_matches('/').to_string())
        } else if raw.starts_with('/') {
            Endpoint::Unix(raw.clone())
        } else {
            return Err(LocalError::Invalid(format!(
                "unsupported Docker host {raw:?}: use unix:///path/to/docker.sock or tcp://host:port"
            )));
        };
        Ok(DaemonAddr {
            display: raw,
            endpoint,
        })
    }

    /// The "is dockerd running?" error for this address.
    pub fn unreachable(&self, e: impl std::fmt::Display) -> LocalError {
        LocalError::DaemonUnreachable {
            host: self.display.clone(),
            detail: e.to_string(),
        }
    }

    /// A new connection to the daemon.
    pub async fn connect(&self) -> Result<Pin<Box<dyn Io>>, LocalError> {
        match &self.endpoint {
            Endpoint::Unix(p) => tokio::net::UnixStream::connect(p)
                .await
                .map(|s| Box::pin(s) as Pin<Box<dyn Io>>)
                .map_err(|e| self.unreachable(e)),
            Endpoint::Tcp(hp) => tokio::net::TcpStream::connect(hp)
                .await
                .map(|s| {
                    let _ = s.set_nodelay(true);
                    Box::pin(s) as Pin<Box<dyn Io>>
                })
                .map_err(|e| self.unreachable(e)),
        }
    }

    /// Sends one request on a fresh connection; the returned guard closes the connection when dropped.
    pub async fn request(
        &self,
        req: http::Request<RawBody>,
    ) -> Result<(http::Response<Incoming>, ConnGuard), LocalError> {
        let io = self.connect().await?;
        let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(io))
            .await
            .map_err(|e| self.unreachable(e))?;
        let task = tokio::spawn(async move {
            let _ = conn.with_upgrades().await;
        });
        let guard = ConnGuard(Some(task));
        let resp = sender
            .send_request(req)
            .await
            .map_err(|e| self.unreachable(format!("request failed: {e}")))?;
        Ok((resp, guard))
    }
}

/// Owns a connection's driver task; dropping it closes the connection (which stops a build).
pub(crate) struct ConnGuard(Option<tokio::task::JoinHandle<()>>);

impl Drop for ConnGuard {
    fn drop(&mut self) {
        if let Some(t) = self.0.take() {
            t.abort();
        }
    }
}

/// Percent-encodes a query component.
pub(crate) fn encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                out.push(b as char)
            }
            _ => out.push_str(&format!("%{b:02X}")),
        }
    }
    out
}

/// Reads a whole (small) response body as text.
pub(crate) async fn body_text(resp: http::Response<Incoming>) -> String {
    use http_body_util::BodyExt;
    match resp.into_body().collect().await {
        Ok(b) => {
            let bytes = b.to_bytes();
            let text = String::from_utf8_lossy(&bytes).to_string();
            serde_json::from_str::<serde_json::Value>(&text)
                .ok()
                .and_then(|v| {
                    v.get("message")
                        .and_then(|m| m.as_str())
                        .map(str::to_string)
                })
                .unwrap_or(text)
        }
        Err(e) => format!("(unreadable body: {e})"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_hosts() {
        let a = DaemonAddr::resolve(Some("unix:///tmp/x.sock")).unwrap();
        assert_eq!(a.endpoint, Endpoint::Unix("/tmp/x.sock".into()));
        let a = DaemonAddr::resolve(Some("tcp://127.0.0.1:2375")).unwrap();
        assert_eq!(a.endpoint, Endpoint::Tcp("127.0.0.1:2375".into()));
        assert!(DaemonAddr::resolve(Some("ssh://x")).is_err());
    }

    #[test]
    fn encodes_query() {
        assert_eq!(encode("a b/{\"x\"}"), "a%20b%2F%7B%22x%22%7D");
    }
}
