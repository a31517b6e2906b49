//! A client of the daemon's BuildKit Control API (`moby.buildkit.v1.Control`): dockerd serves it
//! on `POST /grpc` upgraded to `h2c` (as buildx's docker driver dials it), and speaks HTTP/2 with
//! prior knowledge on the upgraded connection. The connection lives as long as the value:
//! dropping it closes the socket, which cancels every call still running on the daemon.

use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};

use bollard::moby::buildkit::v1::control_client::ControlClient;
use hyper::client::conn::http2::SendRequest;
use hyper_util::rt::{TokioExecutor, TokioTimer};

use super::api;
use super::daemon::{body_text, ConnGuard, DaemonAddr};
use super::LocalError;

/// Largest message accepted from the daemon (status updates carry step output).
const MAX_MESSAGE: usize = 64 << 20;
/// HTTP/2 pings on an idle connection: a builder across a network (or a NAT) that went away is
/// noticed instead of waited on for ever.
const KEEP_ALIVE: std::time::Duration = std::time::Duration::from_secs(30);

/// The HTTP/2 stream sender as the tower service tonic's generated client calls.
#[derive(Clone)]
pub(crate) struct H2(SendRequest<tonic14::body::Body>);

type ResponseFuture = Pin<
    Box<dyn Future<Output = Result<http::Response<hyper::body::Incoming>, hyper::Error>> + Send>,
>;

impl tonic14::codegen::Service<http::Request<tonic14::body::Body>> for H2 {
    type Response = http::Response<hyper::body::Incoming>;
    type Error = hyper::Error;
    type Future = ResponseFuture;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.0.poll_ready(cx)
    }

    fn call(&mut self, req: http::Request<tonic14::body::Body>) -> Self::Future {
        Box::pin(self.0.send_request(req))
    }
}

/// An open Control API connection.
pub(crate) struct ControlConn {
    /// The generated client (cheap to clone: each clone shares the connection).
    pub(crate) client: ControlClient<H2>,
    driver: tokio::task::JoinHandle<()>,
    /// Why the connection ended, once it did with an error (a TLS alert, a reset).
    closed_by: Arc<Mutex<Option<String>>>,
    _upgrade: Option<ConnGuard>,
}

impl ControlConn {
    /// The transport error that closed the connection, if it closed with one.
    pub(crate) fn closed_by(&self) -> Option<String> {
        self.closed_by.lock().ok().and_then(|g| g.clone())
    }
}

impl Drop for ControlConn {
    fn drop(&mut self) {
        self.driver.abort();
    }
}

/// Opens `/grpc` on the daemon and starts HTTP/2 on it.
pub(crate) async fn connect(
    addr: &DaemonAddr,
    api_prefix: &str,
) -> Result<ControlConn, LocalError> {
    let failed = |detail: String| LocalError::Daemon {
        host: addr.display.clone(),
        what: "open BuildKit's Control API (/grpc)".into(),
        detail,
    };
    let req = http::Request::builder()
        .method("POST")
        .uri(format!("{api_prefix}/grpc"))
        .header("Host", "docker")
        .header("Connection", "Upgrade")
        .header("Upgrade", "h2c")
        .body(api::empty())
        .map_err(|e| LocalError::Invalid(format!("cannot form the /grpc request: {e}")))?;
    let (resp, guard) = addr.request(req).await?;
    if resp.status() != http::StatusCode::SWITCHING_PROTOCOLS {
        let status = resp.status();
        return Err(failed(format!("HTTP {status}: {}", body_text(resp).await)));
    }
    let upgraded = hyper::upgrade::on(resp)
        .await
        .map_err(|e| failed(e.to_string()))?;
    over_io(upgraded, Some(guard), "http://docker")
        .await
        .map_err(|e| failed(format!("HTTP/2 handshake: {e}")))
}

/// Starts HTTP/2 with prior knowledge on `io` (an upgraded `/grpc`, or a BuildKit daemon's
/// socket) and returns the Control client on it; `guard` is kept as long as the connection.
pub(crate) async fn over_io<I>(
    io: I,
    guard: Option<ConnGuard>,
    origin: &'static str,
) -> Result<ControlConn, hyper::Error>
where
    I: hyper::rt::Read + hyper::rt::Write + Send + Unpin + 'static,
{
    let (sender, conn) = hyper::client::conn::http2::Builder::new(TokioExecutor::new())
        .timer(TokioTimer::new())
        .keep_alive_interval(KEEP_ALIVE)
        .handshake(io)
        .await?;
    let closed_by = Arc::new(Mutex::new(None));
    let record = closed_by.clone();
    let driver = tokio::spawn(async move {
        if let Err(e) = conn.await {
            if let Ok(mut slot) = record.lock() {
                *slot = Some(error_chain(&e));
            }
        }
    });
    let client = ControlClient::with_origin(H2(sender), http::Uri::from_static(origin))
        .max_decoding_message_size(MAX_MESSAGE)
        .max_encoding_message_size(MAX_MESSAGE);
    Ok(ControlConn {
        client,
        driver,
        closed_by,
        _upgrade: guard,
    })
}

/// An error with its sources (hyper's and tonic's outer messages alone say little).
pub(crate) fn error_chain(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        text.push_str(": ");
        text.push_str(&s.to_string());
        source = s.source();
    }
    text
}
