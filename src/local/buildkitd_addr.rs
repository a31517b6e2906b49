//! A standalone BuildKit daemon's address: `unix:///path` or `tcp://host:port`, with TLS (and a
//! client certificate for mTLS) when certificate files are configured. Parsed once; every error
//! names the provider setting to fix.

use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::sync::Arc;

use super::daemon::{tls_client_config, Io};
use super::{BuilderConfig, LocalError};

/// How the builder is reached.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum BuilderEndpoint {
    /// A unix socket path.
    Unix(PathBuf),
    /// host:port without TLS.
    Tcp(String),
    /// host:port over TLS, trusting `ca`, presenting `client` (certificate, key) when given.
    Tls {
        /// host:port.
        addr: String,
        /// The CA's PEM file.
        ca: PathBuf,
        /// Client certificate and key files.
        client: Option<(PathBuf, PathBuf)>,
    },
}

/// A parsed builder address.
#[derive(Debug, Clone)]
pub(crate) struct BuilderAddr {
    /// The address as configured.
    pub(crate) display: String,
    /// How to connect.
    pub(crate) endpoint: BuilderEndpoint,
}

impl BuilderConfig {
    /// Checks the address and certificate settings (Configure and CheckConfig report it).
    pub fn validate(&self) -> Result<(), String> {
        BuilderAddr::parse(self).map(|_| ())
    }
}

impl BuilderAddr {
    /// Parses `cfg`; the error names the setting and the fix.
    pub(crate) fn parse(cfg: &BuilderConfig) -> Result<BuilderAddr, String> {
        let raw = cfg.address.trim();
        let tls_given = cfg.ca_cert.is_some() || cfg.cert.is_some() || cfg.key.is_some();
        let endpoint = if let Some(path) = raw.strip_prefix("unix://") {
            if !path.starts_with('/') {
                return Err(format!(
                    "imagebuild:builder {raw:?}: a unix socket needs an absolute path, e.g. \
                     unix:///run/buildkit/buildkitd.sock"
                ));
            }
            if tls_given {
                return Err(format!(
                    "imagebuild:builderCaCert, builderCert and builderKey apply to tcp:// builders; \
                     remove them for the unix socket {raw:?}"
                ));
            }
            BuilderEndpoint::Unix(PathBuf::from(path))
        } else if let Some(rest) = raw.strip_prefix("tcp://") {
            let addr = rest.trim_end_matches('/').to_string();
            if addr
                .rsplit_once(':')
                .is_none_or(|(h, p)| h.is_empty() || p.parse::<u16>().is_err())
            {
                return Err(format!(
                    "imagebuild:builder {raw:?}: expected tcp://host:port, e.g. tcp://buildkitd:1234"
                ));
            }
            if tls_given {
                tls_endpoint(addr, cfg)?
            } else {
                BuilderEndpoint::Tcp(addr)
            }
        } else {
            return Err(format!(
                "imagebuild:builder {raw:?} is not a supported BuildKit address: use \
                 unix:///path/to/buildkitd.sock or tcp://host:port (with imagebuild:builderCaCert, \
                 builderCert and builderKey for mTLS)"
            ));
        };
        Ok(BuilderAddr {
            display: raw.to_string(),
            endpoint,
        })
    }

    /// A new connection to the builder (TLS offers HTTP/2 by ALPN, as gRPC servers require).
    pub(crate) async fn connect(&self) -> Result<Pin<Box<dyn Io>>, LocalError> {
        let unreachable = |detail: String| LocalError::BuilderUnreachable {
            address: self.display.clone(),
            detail,
        };
        match &self.endpoint {
            BuilderEndpoint::Unix(p) => tokio::net::UnixStream::connect(p)
                .await
                .map(|s| Box::pin(s) as Pin<Box<dyn Io>>)
                .map_err(|e| unreachable(e.to_string())),
            BuilderEndpoint::Tcp(addr) => {
                let tcp = tokio::net::TcpStream::connect(addr)
                    .await
                    .map_err(|e| unreachable(e.to_string()))?;
                let _ = tcp.set_nodelay(true);
                Ok(Box::pin(tcp))
            }
            BuilderEndpoint::Tls { addr, ca, client } => {
                let connector = connector(ca, client.as_ref())?;
                let tcp = tokio::net::TcpStream::connect(addr)
                    .await
                    .map_err(|e| unreachable(e.to_string()))?;
                let _ = tcp.set_nodelay(true);
                let host = addr.rsplit_once(':').map_or(addr.as_str(), |(h, _)| h);
                let name = rustls_pki_types::ServerName::try_from(
                    host.trim_matches(['[', ']']).to_string(),
                )
                .map_err(|e| {
                    LocalError::Invalid(format!("imagebuild:builder host {host:?}: {e}"))
                })?;
                connector
                    .connect(name, tcp)
                    .await
                    .map(|s| Box::pin(s) as Pin<Box<dyn Io>>)
                    .map_err(|e| LocalError::BuilderRefused {
                        address: self.display.clone(),
                        detail: format!("TLS handshake failed: {e}"),
                    })
            }
        }
    }
}

/// The TLS endpoint of `cfg`: the CA is required, certificate and key go together.
fn tls_endpoint(addr: String, cfg: &BuilderConfig) -> Result<BuilderEndpoint, String> {
    let Some(ca) = cfg.ca_cert.clone() else {
        return Err(
            "imagebuild:builderCaCert is required for a TLS builder: set it to the PEM file of \
             the CA that signed the builder's certificate"
                .into(),
        );
    };
    let client = match (&cfg.cert, &cfg.key) {
        (Some(c), Some(k)) => Some((c.clone(), k.clone())),
        (None, None) => None,
        (Some(_), None) => {
            return Err(
                "imagebuild:builderCert is set without imagebuild:builderKey: set both \
                        (the client certificate and its key, PEM files)"
                    .into(),
            )
        }
        (None, Some(_)) => {
            return Err(
                "imagebuild:builderKey is set without imagebuild:builderCert: set both \
                        (the client certificate and its key, PEM files)"
                    .into(),
            )
        }
    };
    Ok(BuilderEndpoint::Tls { addr, ca, client })
}

/// A connector for the files of a TLS endpoint; an unreadable file names its setting.
fn connector(
    ca: &Path,
    client: Option<&(PathBuf, PathBuf)>,
) -> Result<tokio_rustls::TlsConnector, LocalError> {
    let pair = client.map(|(c, k)| (c.as_path(), k.as_path()));
    let mut config = tls_client_config(ca, pair).map_err(|e| {
        LocalError::Invalid(format!(
            "cannot use the builder's TLS files (imagebuild:builderCaCert, builderCert, \
             builderKey): {e}"
        ))
    })?;
    config.alpn_protocols = vec![b"h2".to_vec()];
    Ok(tokio_rustls::TlsConnector::from(Arc::new(config)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg(address: &str) -> BuilderConfig {
        BuilderConfig {
            address: address.into(),
            ..BuilderConfig::default()
        }
    }

    #[test]
    fn unix_and_plain_tcp_parse() {
        let a = BuilderAddr::parse(&cfg("unix:///run/buildkit/buildkitd.sock")).unwrap();
        assert_eq!(
            a.endpoint,
            BuilderEndpoint::Unix("/run/buildkit/buildkitd.sock".into())
        );
        let a = BuilderAddr::parse(&cfg("tcp://10.0.0.5:1234")).unwrap();
        assert_eq!(a.endpoint, BuilderEndpoint::Tcp("10.0.0.5:1234".into()));
    }

    #[test]
    fn tls_needs_a_ca_and_both_client_files() {
        let mut c = cfg("tcp://bk:1234");
        c.cert = Some("c.pem".into());
        let e = BuilderAddr::parse(&c).unwrap_err();
        assert!(e.contains("builderCaCert"), "{e}");
        c.ca_cert = Some("ca.pem".into());
        let e = BuilderAddr::parse(&c).unwrap_err();
        assert!(e.contains("builderKey"), "{e}");
        c.key = Some("k.pem".into());
        let a = BuilderAddr::parse(&c).unwrap();
        assert!(matches!(
            a.endpoint,
            BuilderEndpoint::Tls {
                client: Some(_),
                ..
            }
        ));
    }

    #[test]
    fn other_schemes_and_bad_addresses_name_the_setting() {
        for bad in [
            "docker-container://bk",
            "ssh://me@host",
            "tcp://nohost",
            "unix://rel.sock",
            "",
        ] {
            let e = BuilderAddr::parse(&cfg(bad)).unwrap_err();
            assert!(e.contains("imagebuild:builder"), "{bad}: {e}");
        }
        let mut c = cfg("unix:///x.sock");
        c.ca_cert = Some("ca.pem".into());
        assert!(BuilderAddr::parse(&c).unwrap_err().contains("tcp://"));
    }
}
