//! Our own BuildKit session over the daemon's `/session` endpoint. bollard 0.21's session offers no
//! secrets provider and stays open for the life of the process; this one serves health, secrets and
//! registry credentials, and closes when the build's handle is dropped.

use std::collections::{BTreeMap, HashMap};
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use bollard::health::health_server::{Health, HealthServer};
use bollard::health::{
    HealthCheckRequest, HealthCheckResponse, HealthListRequest, HealthListResponse,
};
use bollard::moby::buildkit::secrets::v1::secrets_server::{Secrets, SecretsServer};
use bollard::moby::buildkit::secrets::v1::{GetSecretRequest, GetSecretResponse};
use bollard::moby::filesync::v1::auth_server::{Auth, AuthServer};
use bollard::moby::filesync::v1::{
    CredentialsRequest, CredentialsResponse, FetchTokenRequest, FetchTokenResponse,
    GetTokenAuthorityRequest, GetTokenAuthorityResponse, VerifyTokenAuthorityRequest,
    VerifyTokenAuthorityResponse,
};
use http_body_util::BodyExt;
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tonic14::{Request, Response, Status};

use super::daemon::{body_text, DaemonAddr};
use super::LocalError;
use crate::registry::BasicCredentials;

/// Methods we serve; the daemon only calls what is announced in these headers.
const METHODS: &[&str] = &[
    "/grpc.health.v1.Health/Check",
    "/moby.buildkit.secrets.v1.Secrets/GetSecret",
    "/moby.filesync.v1.Auth/Credentials",
];

/// A live session; dropping it closes the connection and ends the session on the daemon.
pub(crate) struct Session {
    task: tokio::task::JoinHandle<()>,
}

impl Drop for Session {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Opens a session `id` that answers secrets and registry credentials (keyed by host).
pub(crate) async fn start(
    addr: &DaemonAddr,
    api_prefix: &str,
    id: &str,
    secrets: Arc<BTreeMap<String, String>>,
    creds: Arc<HashMap<String, BasicCredentials>>,
) -> Result<Session, LocalError> {
    let mut req = http::Request::builder()
        .method("POST")
        .uri(format!("{api_prefix}/session"))
        .header("Host", "docker")
        .header("Connection", "Upgrade")
        .header("Upgrade", "h2c")
        .header("X-Docker-Expose-Session-Uuid", id)
        .header("X-Docker-Expose-Session-Name", "imagebuild")
        .header("X-Docker-Expose-Session-Sharedkey", id);
    for m in METHODS {
        req = req.header("X-Docker-Expose-Session-Grpc-Method", *m);
    }
    let req = req
        .body(
            http_body_util::Empty::new()
                .map_err(|never| match never {})
                .boxed_unsync(),
        )
        .map_err(|e| LocalError::Invalid(format!("cannot form the session request: {e}")))?;
    let (resp, guard) = addr.request(req).await?;
    if resp.status() != http::StatusCode::SWITCHING_PROTOCOLS {
        let status = resp.status();
        return Err(LocalError::Daemon {
            host: addr.display.clone(),
            what: "open a BuildKit session".into(),
            detail: format!("HTTP {status}: {}", body_text(resp).await),
        });
    }
    let upgraded = hyper::upgrade::on(resp)
        .await
        .map_err(|e| LocalError::Daemon {
            host: addr.display.clone(),
            what: "open a BuildKit session".into(),
            detail: e.to_string(),
        })?;
    let io = SessionIo(TokioIo::new(upgraded));
    let task = tokio::spawn(async move {
        let _keep_conn_driver = guard;
        let router = tonic14::transport::Server::builder()
            .add_service(HealthServer::new(Healthy))
            .add_service(SecretsServer::new(SecretStore { secrets }))
            .add_service(AuthServer::new(CredentialStore { creds }));
        let _ = router
            .serve_with_incoming(futures::stream::iter(vec![Ok::<_, std::io::Error>(io)]))
            .await;
    });
    Ok(Session { task })
}

struct SessionIo(TokioIo<hyper::upgrade::Upgraded>);

impl tonic14::transport::server::Connected for SessionIo {
    type ConnectInfo = ();
    fn connect_info(&self) -> Self::ConnectInfo {}
}

impl AsyncRead for SessionIo {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.0).poll_read(cx, buf)
    }
}

impl AsyncWrite for SessionIo {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.0).poll_write(cx, buf)
    }
    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.0).poll_flush(cx)
    }
    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.0).poll_shutdown(cx)
    }
}

struct Healthy;

#[tonic14::async_trait]
impl Health for Healthy {
    async fn check(
        &self,
        _r: Request<HealthCheckRequest>,
    ) -> Result<Response<HealthCheckResponse>, Status> {
        Ok(Response::new(HealthCheckResponse {
            status: bollard::health::health_check_response::ServingStatus::Serving as i32,
        }))
    }
    async fn list(
        &self,
        _r: Request<HealthListRequest>,
    ) -> Result<Response<HealthListResponse>, Status> {
        Err(Status::unimplemented("list"))
    }
    type WatchStream = futures::stream::Empty<Result<HealthCheckResponse, Status>>;
    async fn watch(
        &self,
        _r: Request<HealthCheckRequest>,
    ) -> Result<Response<Self::WatchStream>, Status> {
        Err(Status::unimplemented("watch"))
    }
}

struct SecretStore {
    secrets: Arc<BTreeMap<String, String>>,
}

#[tonic14::async_trait]
impl Secrets for SecretStore {
    async fn get_secret(
        &self,
        r: Request<GetSecretRequest>,
    ) -> Result<Response<GetSecretResponse>, Status> {
        let id = &r.get_ref().id;
        match self.secrets.get(id) {
            Some(v) => Ok(Response::new(GetSecretResponse {
                data: v.as_bytes().to_vec(),
            })),
            None => Err(Status::not_found(format!(
                "secret {id:?} was not given to the build (add it to the resource's secrets)"
            ))),
        }
    }
}

struct CredentialStore {
    creds: Arc<HashMap<String, BasicCredentials>>,
}

fn hub_alias(host: &str) -> &str {
    match host {
        "registry-1.docker.io" | "index.docker.io" => "docker.io",
        h => h,
    }
}

#[tonic14::async_trait]
impl Auth for CredentialStore {
    async fn credentials(
        &self,
        r: Request<CredentialsRequest>,
    ) -> Result<Response<CredentialsResponse>, Status> {
        let host = hub_alias(&r.get_ref().host);
        Ok(Response::new(match self.creds.get(host) {
            Some(c) => CredentialsResponse {
                username: c.username.clone(),
                secret: c.password.clone(),
            },
            None => CredentialsResponse::default(),
        }))
    }
    async fn fetch_token(
        &self,
        _r: Request<FetchTokenRequest>,
    ) -> Result<Response<FetchTokenResponse>, Status> {
        Err(Status::unimplemented("fetch_token"))
    }
    async fn get_token_authority(
        &self,
        _r: Request<GetTokenAuthorityRequest>,
    ) -> Result<Response<GetTokenAuthorityResponse>, Status> {
        Err(Status::unimplemented("get_token_authority"))
    }
    async fn verify_token_authority(
        &self,
        _r: Request<VerifyTokenAuthorityRequest>,
    ) -> Result<Response<VerifyTokenAuthorityResponse>, Status> {
        Err(Status::unimplemented("verify_token_authority"))
    }
}
