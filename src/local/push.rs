//! Pushing one tag through the daemon, with byte progress, auth-error detection (a wrong password
//! answers HTTP 200 and fails inside the stream) and retries of transient failures.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use bytes::BytesMut;
use futures::StreamExt;
use http_body_util::BodyExt;
use serde::Deserialize;
use tokio::sync::mpsc::UnboundedSender;
use tokio_util::sync::CancellationToken;

use super::api::empty;
use super::daemon::{body_text, encode, DaemonAddr};
use super::{LocalError, ProgressEvent};
use crate::redact::Redactor;
use crate::registry::{ImageName, RegistryError, ResolvedCredentials};

const ATTEMPTS: u32 = 3;

#[derive(Deserialize)]
struct PushLine {
    #[serde(default)]
    id: Option<String>,
    #[serde(default)]
    status: Option<String>,
    #[serde(default, rename = "progressDetail")]
    progress: Option<Detail>,
    #[serde(default, rename = "errorDetail")]
    error_detail: Option<ErrDetail>,
    #[serde(default)]
    error: Option<String>,
}

#[derive(Deserialize)]
struct Detail {
    #[serde(default)]
    current: Option<u64>,
}

#[derive(Deserialize)]
struct ErrDetail {
    #[serde(default)]
    message: Option<String>,
}

enum Failure {
    Auth(String),
    Transient(String),
    Fatal(String),
}

fn classify(msg: &str) -> Failure {
    let l = msg.to_ascii_lowercase();
    if [
        "unauthorized",
        "authentication required",
        "no basic auth credentials",
        "denied",
        "403 forbidden",
    ]
    .iter()
    .any(|k| l.contains(k))
    {
        Failure::Auth(msg.to_string())
    } else if [
        "connection reset",
        "connection refused",
        "timeout",
        "timed out",
        "broken pipe",
        "eof",
        "502 bad gateway",
        "503 service unavailable",
        "504 gateway",
        "500 internal server error",
        "too many requests",
        "tls handshake",
        "i/o timeout",
    ]
    .iter()
    .any(|k| l.contains(k))
    {
        Failure::Transient(msg.to_string())
    } else {
        Failure::Fatal(msg.to_string())
    }
}

/// X-Registry-Auth value (base64url JSON); "e30=" (`{}`) when anonymous.
fn auth_header(name: &ImageName, creds: &ResolvedCredentials) -> String {
    use base64::Engine as _;
    let v = match &creds.credentials {
        Some(c) => {
            serde_json::json!({"username": c.username, "password": c.password, "serveraddress": name.registry})
        }
        None => serde_json::json!({}),
    };
    base64::engine::general_purpose::URL_SAFE.encode(v.to_string())
}

/// The layers a push uploaded, by the daemon's short id (the digest's first 12 hex digits), with
/// the bytes its progress lines counted. Engine 29 reports small uploads as "Pushed" with no
/// byte count: the caller completes those from the pushed manifest.
#[derive(Debug, Default)]
pub(crate) struct UploadedLayers(pub(crate) HashMap<String, u64>);

impl UploadedLayers {
    /// Bytes the progress lines counted.
    pub(crate) fn counted(&self) -> u64 {
        self.0.values().sum()
    }

    /// Bytes uploaded, given the pushed manifest's layers: each uploaded layer counts at least
    /// its manifest size.
    pub(crate) fn total_with(&self, layers: &[(String, u64)]) -> u64 {
        let size_of = |id: &str| {
            layers
                .iter()
                .find(|(digest, _)| digest.trim_start_matches("sha256:").starts_with(id))
                .map_or(0, |(_, size)| *size)
        };
        self.0.iter().map(|(id, seen)| size_of(id).max(*seen)).sum()
    }
}

/// Pushes `name:tag`, retrying transient failures; says which layers it uploaded.
#[allow(clippy::too_many_arguments)]
pub(crate) async fn push(
    addr: &DaemonAddr,
    prefix: &str,
    name: &ImageName,
    tag: &str,
    creds: &ResolvedCredentials,
    redactor: &Redactor,
    progress: &UnboundedSender<ProgressEvent>,
    cancel: &CancellationToken,
) -> Result<UploadedLayers, LocalError> {
    let reference = name.with_tag(tag);
    let mut last = String::new();
    let mut uploaded = UploadedLayers::default();
    for attempt in 1..=ATTEMPTS {
        match push_once(
            addr,
            prefix,
            name,
            tag,
            creds,
            progress,
            cancel,
            &mut uploaded,
        )
        .await?
        {
            None => return Ok(uploaded),
            Some(Failure::Auth(msg)) => {
                return Err(LocalError::Registry(RegistryError::Auth {
                    registry: name.registry.clone(),
                    source_tried: creds.source.to_string(),
                    detail: format!("push of {reference} refused: {}", redactor.apply(&msg)),
                }))
            }
            Some(Failure::Fatal(msg)) => {
                return Err(LocalError::Push {
                    reference,
                    attempts: attempt,
                    detail: redactor.apply(&msg),
                })
            }
            Some(Failure::Transient(msg)) => {
                last = redactor.apply(&msg);
                if attempt < ATTEMPTS {
                    let _ = progress.send(ProgressEvent::Log(format!(
                        "push of {reference} failed ({last}); retrying"
                    )));
                    tokio::select! {
                        _ = tokio::time::sleep(Duration::from_secs(1 << (attempt - 1))) => {}
                        _ = cancel.cancelled() => return Err(LocalError::Cancelled),
                    }
                }
            }
        }
    }
    Err(LocalError::Push {
        reference,
        attempts: ATTEMPTS,
        detail: last,
    })
}

#[allow(clippy::too_many_arguments)]
async fn push_once(
    addr: &DaemonAddr,
    prefix: &str,
    name: &ImageName,
    tag: &str,
    creds: &ResolvedCredentials,
    progress: &UnboundedSender<ProgressEvent>,
    cancel: &CancellationToken,
    uploaded: &mut UploadedLayers,
) -> Result<Option<Failure>, LocalError> {
    let req = http::Request::post(format!(
        "{prefix}/images/{}/push?tag={}",
        encode(&name.to_string()),
        encode(tag)
    ))
    .header("Host", "docker")
    .header("X-Registry-Auth", auth_header(name, creds))
    .body(empty())
    .map_err(|e| LocalError::Invalid(e.to_string()))?;
    let (resp, guard) = match addr.request(req).await {
        Ok(x) => x,
        Err(LocalError::DaemonUnreachable { detail, .. }) => {
            return Ok(Some(Failure::Transient(detail)))
        }
        Err(e) => return Err(e),
    };
    if !resp.status().is_success() {
        let s = resp.status();
        let text = body_text(resp).await;
        return Ok(Some(classify(&format!("HTTP {s}: {text}"))));
    }
    let mut body = resp.into_body().into_data_stream();
    let mut buf = BytesMut::new();
    let layers = &mut uploaded.0;
    let mut reported = 0u64;
    let mut last_report = Instant::now();
    loop {
        let chunk = tokio::select! {
            c = body.next() => c,
            _ = cancel.cancelled() => { drop(guard); return Err(LocalError::Cancelled) }
        };
        let Some(chunk) = chunk else { break };
        let chunk = match chunk {
            Ok(c) => c,
            Err(e) => return Ok(Some(Failure::Transient(e.to_string()))),
        };
        buf.extend_from_slice(&chunk);
        while let Some(pos) = buf.iter().position(|b| *b == b'\n') {
            let line = buf.split_to(pos + 1);
            let Ok(l) = serde_json::from_slice::<PushLine>(line.trim_ascii()) else {
                continue;
            };
            if let Some(msg) = l.error_detail.and_then(|d| d.message).or(l.error) {
                return Ok(Some(classify(&msg)));
            }
            if let (Some(id), Some("Pushed")) = (&l.id, l.status.as_deref()) {
                layers.entry(id.clone()).or_default();
            }
            if let (Some(id), Some(cur)) = (l.id, l.progress.and_then(|p| p.current)) {
                let e = layers.entry(id).or_default();
                *e = (*e).max(cur);
                let total: u64 = layers.values().sum();
                if total > reported && last_report.elapsed() >= Duration::from_millis(200) {
                    reported = total;
                    last_report = Instant::now();
                    let _ = progress.send(ProgressEvent::Pushing { bytes: total });
                }
            }
        }
    }
    let total: u64 = layers.values().sum();
    if total > reported {
        let _ = progress.send(ProgressEvent::Pushing { bytes: total });
    }
    Ok(None)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uploaded_layers_without_byte_counts_take_the_manifest_size() {
        let uploaded = UploadedLayers(HashMap::from([
            ("8c6c40770d40".to_string(), 0),
            ("509f85d5e534".to_string(), 70),
        ]));
        let layers = [
            ("sha256:8c6c40770d40aa".to_string(), 101),
            ("sha256:509f85d5e534bb".to_string(), 60),
            ("sha256:ffffffffffffcc".to_string(), 5000),
        ];
        assert_eq!(uploaded.counted(), 70);
        assert_eq!(
            uploaded.total_with(&layers),
            171,
            "never less than counted, never unpushed layers"
        );
    }

    #[test]
    fn classifies_push_errors() {
        assert!(matches!(
            classify("unauthorized: authentication required"),
            Failure::Auth(_)
        ));
        assert!(matches!(
            classify("denied: requested access to the resource is denied"),
            Failure::Auth(_)
        ));
        assert!(matches!(
            classify("Put \"http://r/v2/x/blobs/uploads/\": read: connection reset by peer"),
            Failure::Transient(_)
        ));
        assert!(matches!(
            classify("received unexpected HTTP status: 503 Service Unavailable"),
            Failure::Transient(_)
        ));
        assert!(matches!(
            classify("manifest invalid: manifest invalid"),
            Failure::Fatal(_)
        ));
    }

    #[test]
    fn auth_header_is_base64url_json() {
        use base64::Engine as _;
        let name = ImageName::parse("127.0.0.1:5000/a").unwrap();
        let creds = ResolvedCredentials {
            credentials: Some(crate::registry::BasicCredentials {
                username: "u".into(),
                password: "p".into(),
            }),
            source: crate::registry::CredentialSource::Explicit,
        };
        let raw = base64::engine::general_purpose::URL_SAFE
            .decode(auth_header(&name, &creds))
            .unwrap();
        let v: serde_json::Value = serde_json::from_slice(&raw).unwrap();
        assert_eq!(v["serveraddress"], "127.0.0.1:5000");
        assert_eq!(v["username"], "u");
    }
}
