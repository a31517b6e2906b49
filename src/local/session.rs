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

use bollard::moby::filesync::v1::file_sync_server::FileSyncServer;
use bollard::moby::sshforward::v1::ssh_server::SshServer;
use tokio_util::sync::CancellationToken;

use super::daemon::{body_text, DaemonAddr};
use super::filesync::FileSyncService;
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

/// Opens session `id` with `shared_key` (see `syncdirs::shared_key`) serving `services`.
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
        .header("Upgrade", "h2c")
        .header("X-Docker-Expose-Session-Uuid", id)
        .header("X-Docker-Expose-Session-Name", "imagebuild")
        .header("X-Docker-Expose-Session-Sharedkey", shared_key);
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
    // Served on this task (not tonic's serve_with_incoming, which spawns a detached task per
    // connection): aborting the task must drop the connection so the daemon ends the session.
    let cancel = CancellationToken::new();
    let routes = routes(services, &cancel);
    let task = tokio::spawn(async move {
        let _keep_conn_driver = guard;
        let _ = hyper::server::conn::http2::Builder::new(TokioExecutor::new())
            .serve_connection(upgraded, TowerToHyperService::new(routes))
            .await;
    });
    Ok(Session { task, cancel })
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
