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
    /// host:port over TLS with the client certificates in `cert_dir` (ca.pem, cert.pem, key.pem).
    Tls {
        /// host:port.
        addr: String,
        /// DOCKER_CERT_PATH, else ~/.docker.
        cert_dir: std::path::PathBuf,
    },
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
            let hp = hp.trim_end_matches('/').to_string();
            if tls {
                Endpoint::Tls {
                    addr: hp,
                    cert_dir: cert_dir(),
                }
            } else {
                Endpoint::Tcp(hp)
            }
        } else if let Some(hp) = raw.strip_prefix("https://") {
            Endpoint::Tls {
                addr: hp.trim_end_matches('/').to_string(),
                cert_dir: cert_dir(),
            }
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

    /// True when the daemon is reached over the network (worth compressing what is sent).
    pub fn is_remote(&self) -> bool {
        !matches!(self.endpoint, Endpoint::Unix(_))
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
            Endpoint::Tls { addr, cert_dir } => {
                let tcp = tokio::net::TcpStream::connect(addr)
                    .await
                    .map_err(|e| self.unreachable(e))?;
                let _ = tcp.set_nodelay(true);
                let connector = tls_connector(cert_dir).map_err(|e| {
                    LocalError::Invalid(format!(
                        "cannot use the Docker TLS certificates in {}: {e}",
                        cert_dir.display()
                    ))
                })?;
                let host = addr.rsplit_once(':').map(|(h, _)| h).unwrap_or(addr);
                let name = rustls_pki_types::ServerName::try_from(
                    host.trim_matches(['[', ']']).to_string(),
                )
                .map_err(|e| LocalError::Invalid(format!("bad Docker host name {host:?}: {e}")))?;
                connector
                    .connect(name, tcp)
                    .await
                    .map(|s| Box::pin(s) as Pin<Box<dyn Io>>)
                    .map_err(|e| self.unreachable(format!("TLS handshake failed: {e}")))
            }
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
        let guard = ConnGuard::new(task);
        let resp = sender
            .send_request(req)
            .await
            .map_err(|e| self.unreachable(format!("request failed: {e}")))?;
        Ok((resp, guard))
    }
}

/// DOCKER_CERT_PATH, else ~/.docker (as the Docker CLI does).
fn cert_dir() -> std::path::PathBuf {
    std::env::var_os("DOCKER_CERT_PATH")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| {
            std::path::PathBuf::from(std::env::var_os("HOME").unwrap_or_default()).join(".docker")
        })
}

/// A TLS connector trusting `ca.pem` and presenting `cert.pem`/`key.pem` when present.
fn tls_connector(dir: &std::path::Path) -> Result<tokio_rustls::TlsConnector, String> {
    let (cert, key) = (dir.join("cert.pem"), dir.join("key.pem"));
    let client = (cert.exists() && key.exists()).then_some((cert.as_path(), key.as_path()));
    let config = tls_client_config(&dir.join("ca.pem"), client)?;
    Ok(tokio_rustls::TlsConnector::from(std::sync::Arc::new(
        config,
    )))
}

/// A TLS client trusting the certificates in `ca` and presenting `client` (certificate chain,
/// key; PEM files) when given.
pub(crate) fn tls_client_config(
    ca: &std::path::Path,
    client: Option<(&std::path::Path, &std::path::Path)>,
) -> Result<rustls::ClientConfig, String> {
    use rustls_pki_types::pem::PemObject;
    use rustls_pki_types::{CertificateDer, PrivateKeyDer};
    let mut roots = rustls::RootCertStore::empty();
    for cert in CertificateDer::pem_file_iter(ca).map_err(|e| format!("{}: {e}", ca.display()))? {
        let cert = cert.map_err(|e| format!("{}: {e}", ca.display()))?;
        roots
            .add(cert)
            .map_err(|e| format!("{}: {e}", ca.display()))?;
    }
    let provider = std::sync::Arc::new(rustls::crypto::ring::default_provider());
    let builder = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| e.to_string())?
        .with_root_certificates(roots);
    let Some((cert, key)) = client else {
        return Ok(builder.with_no_client_auth());
    };
    let chain = CertificateDer::pem_file_iter(cert)
        .map_err(|e| format!("{}: {e}", cert.display()))?
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| format!("{}: {e}", cert.display()))?;
    let key_der =
        PrivateKeyDer::from_pem_file(key).map_err(|e| format!("{}: {e}", key.display()))?;
    builder
        .with_client_auth_cert(chain, key_der)
        .map_err(|e| e.to_string())
}

/// Owns a connection's driver task; dropping it closes the connection (which stops a build).
pub(crate) struct ConnGuard(Option<tokio::task::JoinHandle<()>>);

impl ConnGuard {
    /// Owns `task`: aborted when the guard is dropped.
    pub(crate) fn new(task: tokio::task::JoinHandle<()>) -> Self {
        ConnGuard(Some(task))
    }
}

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
        let a = DaemonAddr::resolve(Some("https://127.0.0.1:2376")).unwrap();
        assert!(matches!(a.endpoint, Endpoint::Tls { ref addr, .. } if addr == "127.0.0.1:2376"));
    }

    #[test]
    fn encodes_query() {
        assert_eq!(encode("a b/{\"x\"}"), "a%20b%2F%7B%22x%22%7D");
    }
}
