//! Our own BuildKit session over the daemon's `/session` endpoint. bollard 0.21's session offers no
//! secrets provider and stays open for the life of the process; this one serves health, secrets,
//! registry credentials and the build's files (FileSync), and closes when the build's handle is
//! dropped.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

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
use hyper_util::rt::TokioExecutor;
use hyper_util::service::TowerToHyperService;
use tonic14::{Request, Response, Status};

use bollard::moby::buildkit::v1::control_client::ControlClient;
use bollard::moby::filesync::v1::file_sync_server::FileSyncServer;
use bollard::moby::sshforward::v1::ssh_server::SshServer;
use tokio_util::sync::CancellationToken;

use super::control_conn::H2;
use super::daemon::{body_text, ConnGuard, DaemonAddr};
use super::filesync::FileSyncService;
use super::session_pipe::message_pipe;
use super::ssh::{SshAgents, SshService};
use super::syncdirs::SyncDirs;
use super::transferlog::TransferLog;
use super::LocalError;
use crate::registry::BasicCredentials;

/// Methods always served; the daemon only calls what is announced in the upgrade headers.
const METHODS: &[&str] = &[
    "/grpc.health.v1.Health/Check",
    "/moby.buildkit.secrets.v1.Secrets/GetSecret",
    "/moby.filesync.v1.Auth/Credentials",
];

/// Announced when the session serves the build's files.
const FILESYNC_METHODS: &[&str] = &["/moby.filesync.v1.FileSync/DiffCopy"];

/// Announced when the session forwards SSH agents.
const SSH_METHODS: &[&str] = &[
    "/moby.sshforward.v1.SSH/CheckAgent",
    "/moby.sshforward.v1.SSH/ForwardAgent",
];

/// What one session serves.
pub(crate) struct Services {
    /// BuildKit secrets by id.
    pub(crate) secrets: Arc<BTreeMap<String, String>>,
    /// Registry credentials by host.
    pub(crate) creds: Arc<HashMap<String, BasicCredentials>>,
    /// The build's directories and the log of their transfers (None: context sent as a tar body).
    pub(crate) files: Option<(SyncDirs, Arc<TransferLog>)>,
    /// SSH agents by id (empty: none forwarded).
    pub(crate) ssh: SshAgents,
}

/// A live session; dropping it closes the connection, ends the session on the daemon and stops
/// every transfer still running on it.
pub(crate) struct Session {
    task: tokio::task::JoinHandle<()>,
    cancel: CancellationToken,
}

impl Drop for Session {
    fn drop(&mut self) {
        self.cancel.cancel();
        self.task.abort();
    }
}

/// The upgrade headers (gRPC metadata on a builder's `Control.Session`) that name session `id`,
/// its shared key and the methods it serves.
fn session_headers(id: &str, shared_key: &str, services: &Services) -> Vec<(&'static str, String)> {
    let mut headers = vec![
        ("X-Docker-Expose-Session-Uuid", id.to_string()),
        ("X-Docker-Expose-Session-Name", "imagebuild".to_string()),
        ("X-Docker-Expose-Session-Sharedkey", shared_key.to_string()),
    ];
    let file_methods = if services.files.is_some() {
        FILESYNC_METHODS
    } else {
        &[]
    };
    let ssh_methods = if services.ssh.is_empty() {
        &[]
    } else {
        SSH_METHODS
    };
    for m in METHODS.iter().chain(file_methods).chain(ssh_methods) {
        headers.push(("X-Docker-Expose-Session-Grpc-Method", m.to_string()));
    }
    headers
}

/// Opens session `id` with `shared_key` (see `syncdirs::shared_key`) serving `services` over the
/// daemon's `/session` endpoint.
pub(crate) async fn start(
    addr: &DaemonAddr,
    api_prefix: &str,
    id: &str,
    shared_key: &str,
    services: Services,
) -> Result<Session, LocalError> {
    let mut req = http::Request::builder()
        .method("POST")
        .uri(format!("{api_prefix}/session"))
        .header("Host", "docker")
        .header("Connection", "Upgrade")
        .header("Upgrade", "h2c");
    for (name, value) in session_headers(id, shared_key, &services) {
        req = req.header(name, value);
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
    Ok(serve(upgraded, guard, services))
}

/// Opens session `id` on a standalone BuildKit daemon: its `Control.Session` call is a stream of
/// byte messages that carries the session's HTTP/2 connection (BuildKit's `grpchijack`), with the
/// upgrade headers as gRPC metadata. Serves `services` on it like [`start`].
pub(crate) fn start_on_builder(
    client: &ControlClient<H2>,
    id: &str,
    shared_key: &str,
    services: Services,
) -> Session {
    let headers = session_headers(id, shared_key, &services);
    let (conn, outgoing, incoming) = message_pipe();
    let mut request = tonic14::Request::new(outgoing);
    for (name, value) in headers {
        let key =
            tonic14::metadata::AsciiMetadataKey::from_bytes(name.to_ascii_lowercase().as_bytes());
        if let (Ok(k), Ok(v)) = (key, value.parse()) {
            request.metadata_mut().append(k, v);
        }
    }
    let mut client = client.clone();
    let call = tokio::spawn(async move {
        if let Ok(resp) = client.session(request).await {
            incoming.feed(resp.into_inner()).await;
        }
    });
    serve(conn, ConnGuard::new(call), services)
}

/// Serves `services` on `io` until the returned session is dropped (then `guard` goes too).
fn serve<I>(io: I, guard: ConnGuard, services: Services) -> Session
where
    I: hyper::rt::Read + hyper::rt::Write + Send + Unpin + 'static,
{
    // Served on this task (not tonic's serve_with_incoming, which spawns a detached task per
    // connection): aborting the task must drop the connection so the daemon ends the session.
    let cancel = CancellationToken::new();
    let routes = routes(services, &cancel);
    let task = tokio::spawn(async move {
        let _keep_conn_driver = guard;
        let _ = hyper::server::conn::http2::Builder::new(TokioExecutor::new())
            .serve_connection(io, TowerToHyperService::new(routes))
            .await;
    });
    Session { task, cancel }
}

/// The gRPC services of one session; transfers and forwarded agents stop when `cancel` fires.
fn routes(services: Services, cancel: &CancellationToken) -> tonic14::service::Routes {
    let mut routes = tonic14::service::Routes::new(HealthServer::new(Healthy))
        .add_service(SecretsServer::new(SecretStore {
            secrets: services.secrets,
        }))
        .add_service(AuthServer::new(CredentialStore {
            creds: services.creds,
        }));
    if let Some((dirs, log)) = services.files {
        let sync = FileSyncService::new(dirs, log, cancel.clone());
        routes = routes.add_service(FileSyncServer::new(sync));
    }
    if !services.ssh.is_empty() {
        let ssh = SshService::new(services.ssh, cancel.clone());
        routes = routes.add_service(SshServer::new(ssh));
    }
    routes.prepare()
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
