//! The ResourceProvider gRPC service: decodes requests, routes them by type token, encodes answers.
//! It knows nothing of Docker or AWS: resources do the work.

// tonic::Status is large by design and every RPC returns it; boxing would only add noise.
#![allow(clippy::result_large_err)]

use crate::config::{unknown_key_warnings, ProviderConfig, CONFIG_NAMES};
use crate::engine_log::EngineLog;
use crate::proto::resource_provider_server::ResourceProvider;
use crate::proto::{self as rpc, diff_response::DiffChanges, property_diff::Kind};
use crate::resources::diff::{diff_properties, Changes, DiffKind, DiffResult};
use crate::resources::{Call, CheckResult, Created, Resource, ResourceError, Services, RESOURCES};
use crate::values::{from_struct, to_struct, PropertyMap};
use prost::Message;
use std::sync::{Arc, OnceLock};
use std::time::Duration;
use tonic::{Request, Response, Status};

/// The provider's version, reported to the engine.
pub const VERSION: &str = env!("CARGO_PKG_VERSION");

/// The package schema, embedded so GetSchema needs no files.
pub const SCHEMA: &str = include_str!("../schema.json");

/// The gRPC service.
pub struct Provider {
    log: EngineLog,
    services: Arc<OnceLock<Arc<Services>>>,
    cancel: tokio_util::sync::CancellationToken,
}

impl Provider {
    /// A provider that logs to the engine at `engine_address` (None: stderr only).
    pub fn new(engine_address: Option<String>) -> Self {
        Self {
            log: EngineLog::start(engine_address),
            services: Arc::new(OnceLock::new()),
            cancel: tokio_util::sync::CancellationToken::new(),
        }
    }

    /// The configured services, or services configured from the environment alone when the
    /// engine has not sent Configure (e.g. a bare GetSchema or a test).
    fn services(&self) -> Arc<Services> {
        self.services
            .get_or_init(|| {
                let config = ProviderConfig::from_args(&PropertyMap::new()).unwrap_or_default();
                Arc::new(Services::new(config, self.cancel.clone()))
            })
            .clone()
    }

    /// The token Cancel trips; the process also trips it when asked to shut down.
    pub fn cancel_handle(&self) -> tokio_util::sync::CancellationToken {
        self.cancel.clone()
    }

    /// What the process says as it shuts down: the run's totals on the stack's row.
    pub fn closing_report(&self) -> ClosingReport {
        ClosingReport {
            log: self.log.clone(),
            services: self.services.clone(),
        }
    }

    fn call(&self, urn: &str, timeout: f64) -> Call {
        Call {
            urn: urn.to_string(),
            reporter: self.log.reporter(urn),
            timeout: (timeout > 0.0).then(|| Duration::from_secs_f64(timeout)),
        }
    }
}

/// Sends the stack's closing message. The engine asks a plugin to stop (SIGINT) only after the
/// deployment's last step, while it still records diagnostics: the one moment that knows every
/// image's outcome.
pub struct ClosingReport {
    log: EngineLog,
    services: Arc<OnceLock<Arc<Services>>>,
}

impl ClosingReport {
    /// Logs the run's totals to the stack (when any image was seen) and waits for delivery.
    pub async fn send(self) {
        let message = self.services.get().and_then(|s| s.tally.stack_message());
        if let Some((stack_urn, text)) = message {
            self.log.info(&stack_urn, &text);
            self.log.flush(Duration::from_secs(2)).await;
        }
    }
}

/// The resource a request is for: its type field, else the type in its URN, looked up in
/// [`RESOURCES`].
fn resource_for(type_field: &str, urn: &str) -> Result<&'static dyn Resource, Status> {
    let token = if type_field.is_empty() {
        type_from_urn(urn)
    } else {
        type_field
    };
    RESOURCES
        .iter()
        .copied()
        .find(|r| r.token() == token)
        .ok_or_else(|| {
            let served: Vec<&str> = RESOURCES.iter().map(|r| r.token()).collect();
            Status::invalid_argument(format!(
                "imagebuild does not know the resource type `{token}` (it serves {})",
                served.join(" and ")
            ))
        })
}

/// The type token of a URN: `urn:pulumi:stack::project::parent$type::name` -> `type`.
fn type_from_urn(urn: &str) -> &str {
    urn.split("::")
        .nth(2)
        .and_then(|qualified| qualified.rsplit('$').next())
        .unwrap_or("")
}

fn check_response(result: CheckResult) -> rpc::CheckResponse {
    rpc::CheckResponse {
        inputs: Some(to_struct(&result.inputs)),
        failures: result
            .failures
            .into_iter()
            .map(|f| rpc::CheckFailure {
                property: f.property,
                reason: f.reason,
            })
            .collect(),
    }
}

fn diff_response(d: DiffResult) -> rpc::DiffResponse {
    let changes = match d.changes {
        Changes::Unknown => DiffChanges::DiffUnknown,
        Changes::None => DiffChanges::DiffNone,
        Changes::Some => DiffChanges::DiffSome,
    };
    rpc::DiffResponse {
        replaces: d.replaces(),
        stables: Vec::new(),
        delete_before_replace: false,
        changes: changes as i32,
        diffs: d.detailed.keys().cloned().collect(),
        detailed_diff: d
            .detailed
            .iter()
            .map(|(k, kind)| {
                let kind = match kind {
                    DiffKind::Add => Kind::Add,
                    DiffKind::AddReplace => Kind::AddReplace,
                    DiffKind::Delete => Kind::Delete,
                    DiffKind::DeleteReplace => Kind::DeleteReplace,
                    DiffKind::Update => Kind::Update,
                    DiffKind::UpdateReplace => Kind::UpdateReplace,
                };
                let diff = rpc::PropertyDiff {
                    kind: kind as i32,
                    input_diff: true,
                };
                (k.clone(), diff)
            })
            .collect(),
        has_detailed_diff: true,
    }
}

/// The wire form of google.rpc.Status, which carries error details in gRPC trailers.
#[derive(Clone, PartialEq, prost::Message)]
struct RpcStatus {
    #[prost(int32, tag = "1")]
    code: i32,
    #[prost(string, tag = "2")]
    message: String,
    #[prost(message, repeated, tag = "3")]
    details: Vec<prost_types::Any>,
}

/// Maps a resource failure to the gRPC status the engine expects.
fn status(error: ResourceError, inputs: &PropertyMap) -> Status {
    match error {
        ResourceError::Invalid(m) => Status::invalid_argument(m),
        // Not Unknown/Internal: those would make the engine think something may exist.
        ResourceError::Failed(m) => Status::aborted(m),
        ResourceError::Cancelled(m) => Status::cancelled(m),
        ResourceError::Partial {
            id,
            outputs,
            reasons,
        } => {
            let message = reasons.join("; ");
            let detail = rpc::ErrorResourceInitFailed {
                id,
                properties: Some(to_struct(&outputs)),
                reasons,
                inputs: Some(to_struct(inputs)),
            };
            let body = RpcStatus {
                code: tonic::Code::Unknown as i32,
                message: message.clone(),
                details: vec![prost_types::Any {
                    type_url: "type.googleapis.com/pulumirpc.ErrorResourceInitFailed".into(),
                    value: detail.encode_to_vec(),
                }],
            };
            Status::with_details(tonic::Code::Unknown, message, body.encode_to_vec().into())
        }
    }
}

/// Runs one RPC and writes how long it took, and how it ended, to stderr, which the engine keeps
/// in its debug log (`pulumi up --logtostderr -v=9`): where the provider's share of a slow `up`
/// goes, failures included.
async fn timed<T>(
    rpc: &str,
    urn: &str,
    work: impl std::future::Future<Output = Result<T, Status>>,
) -> Result<T, Status> {
    let started = std::time::Instant::now();
    let result = work.await;
    let ms = started.elapsed().as_secs_f64() * 1000.0;
    match &result {
        Ok(_) => eprintln!("imagebuild: {rpc} {urn} took {ms:.1} ms"),
        Err(e) => eprintln!(
            "imagebuild: {rpc} {urn} took {ms:.1} ms and failed ({:?})",
            e.code()
        ),
    }
    result
}

fn created(c: Created) -> (String, Option<prost_types::Struct>) {
    (c.id, Some(to_struct(&c.outputs)))
}

type Rpc<T> = Result<Response<T>, Status>;

#[tonic::async_trait]
impl ResourceProvider for Provider {
    async fn handshake(
        &self,
        _: Request<rpc::ProviderHandshakeRequest>,
    ) -> Rpc<rpc::ProviderHandshakeResponse> {
        Ok(Response::new(rpc::ProviderHandshakeResponse {
            accept_secrets: true,
            accept_resources: true,
            accept_outputs: false,
        }))
    }

    async fn parameterize(
        &self,
        _: Request<rpc::ParameterizeRequest>,
    ) -> Rpc<rpc::ParameterizeResponse> {
        Err(Status::unimplemented("imagebuild is not parameterizable"))
    }

    async fn get_schema(&self, _: Request<rpc::GetSchemaRequest>) -> Rpc<rpc::GetSchemaResponse> {
        Ok(Response::new(rpc::GetSchemaResponse {
            schema: SCHEMA.to_string(),
        }))
    }

    async fn check_config(&self, req: Request<rpc::CheckRequest>) -> Rpc<rpc::CheckResponse> {
        let req = req.into_inner();
        timed("CheckConfig", &req.urn, async {
            let news = from_struct(req.news.as_ref());
            let reporter = self.log.reporter(&req.urn);
            for warning in unknown_key_warnings(&news) {
                reporter.warn(&warning);
            }
            let failures = ProviderConfig::from_args(&news).err().unwrap_or_default();
            Ok(Response::new(check_response(CheckResult {
                inputs: news,
                failures,
            })))
        })
        .await
    }

    async fn diff_config(&self, req: Request<rpc::DiffRequest>) -> Rpc<rpc::DiffResponse> {
        let req = req.into_inner();
        timed("DiffConfig", &req.urn, async {
            let old_inputs = from_struct(req.old_inputs.as_ref());
            let olds = if old_inputs.is_empty() {
                from_struct(req.olds.as_ref())
            } else {
                old_inputs
            };
            let news = from_struct(req.news.as_ref());
            // A changed key is an update, so the engine configures this run's provider with the
            // new values (a "no change" answer left the first `up` after a change on the old
            // ones). Nothing replaces the provider: that would replace every image it manages.
            let result = diff_properties(&olds, &news, &CONFIG_NAMES, &[]);
            Ok(Response::new(diff_response(result)))
        })
        .await
    }

    async fn configure(&self, req: Request<rpc::ConfigureRequest>) -> Rpc<rpc::ConfigureResponse> {
        timed("Configure", "provider", async {
            let args = from_struct(req.into_inner().args.as_ref());
            let config = ProviderConfig::from_args(&args).map_err(|failures| {
                let text: Vec<String> = failures
                    .into_iter()
                    .map(|f| format!("imagebuild:{}: {}", f.property, f.reason))
                    .collect();
                Status::invalid_argument(text.join("; "))
            })?;
            let services = Arc::new(Services::new(config, self.cancel.clone()));
            if self.services.set(services).is_err() {
                return Err(Status::failed_precondition(
                    "imagebuild was already configured in this process",
                ));
            }
            Ok(Response::new(rpc::ConfigureResponse {
                accept_secrets: true,
                supports_preview: true,
                accept_resources: true,
                accept_outputs: false,
            }))
        })
        .await
    }

    async fn invoke(&self, _: Request<rpc::InvokeRequest>) -> Rpc<rpc::InvokeResponse> {
        Err(Status::unimplemented("imagebuild has no functions"))
    }

    async fn call(&self, _: Request<rpc::CallRequest>) -> Rpc<rpc::CallResponse> {
        Err(Status::unimplemented("imagebuild has no methods"))
    }

    async fn check(&self, req: Request<rpc::CheckRequest>) -> Rpc<rpc::CheckResponse> {
        let req = req.into_inner();
        timed("Check", &req.urn, async {
            let resource = resource_for(&req.r#type, &req.urn)?;
            let news = from_struct(req.news.as_ref());
            let result = resource.check(&self.services(), &news).await;
            Ok(Response::new(check_response(result)))
        })
        .await
    }

    async fn diff(&self, req: Request<rpc::DiffRequest>) -> Rpc<rpc::DiffResponse> {
        let req = req.into_inner();
        timed("Diff", &req.urn, async {
            let resource = resource_for(&req.r#type, &req.urn)?;
            let olds = from_struct(req.olds.as_ref());
            let old_inputs = from_struct(req.old_inputs.as_ref());
            let news = from_struct(req.news.as_ref());
            let call = self.call(&req.urn, 0.0);
            let services = self.services();
            let result = resource
                .diff(&services, &call, &olds, &old_inputs, &news)
                .await;
            Ok(Response::new(diff_response(result)))
        })
        .await
    }

    async fn create(&self, req: Request<rpc::CreateRequest>) -> Rpc<rpc::CreateResponse> {
        let req = req.into_inner();
        timed("Create", &req.urn, async {
            let resource = resource_for(&req.r#type, &req.urn)?;
            let news = from_struct(req.properties.as_ref());
            let call = self.call(&req.urn, req.timeout);
            let result = resource
                .create(&self.services(), &call, &news, req.preview)
                .await;
            let (id, properties) = created(result.map_err(|e| status(e, &news))?);
            Ok(Response::new(rpc::CreateResponse { id, properties }))
        })
        .await
    }

    async fn read(&self, req: Request<rpc::ReadRequest>) -> Rpc<rpc::ReadResponse> {
        let req = req.into_inner();
        timed("Read", &req.urn, async {
            let resource = resource_for(&req.r#type, &req.urn)?;
            let outputs = from_struct(req.properties.as_ref());
            let call = self.call(&req.urn, 0.0);
            let result = resource
                .read(&self.services(), &call, &req.id, &outputs)
                .await;
            let Some(found) = result.map_err(|e| status(e, &PropertyMap::new()))? else {
                return Ok(Response::new(rpc::ReadResponse::default()));
            };
            let inputs = match found.inputs {
                Some(imported) => Some(to_struct(&imported)),
                None => req.inputs.clone(),
            };
            let (id, properties) = created(found.resource);
            Ok(Response::new(rpc::ReadResponse {
                id,
                properties,
                inputs,
            }))
        })
        .await
    }

    async fn list(&self, _: Request<rpc::ListRequest>) -> Rpc<rpc::ListResponse> {
        Err(Status::unimplemented("imagebuild does not list resources"))
    }

    async fn update(&self, req: Request<rpc::UpdateRequest>) -> Rpc<rpc::UpdateResponse> {
        let req = req.into_inner();
        timed("Update", &req.urn, async {
            let resource = resource_for(&req.r#type, &req.urn)?;
            let news = from_struct(req.news.as_ref());
            let olds = from_struct(req.olds.as_ref());
            let call = self.call(&req.urn, req.timeout);
            let result = resource
                .update(&self.services(), &call, &olds, &news, req.preview)
                .await;
            let (_, properties) = created(result.map_err(|e| status(e, &news))?);
            Ok(Response::new(rpc::UpdateResponse { properties }))
        })
        .await
    }

    async fn delete(&self, req: Request<rpc::DeleteRequest>) -> Rpc<()> {
        let req = req.into_inner();
        timed("Delete", &req.urn, async {
            let resource = resource_for(&req.r#type, &req.urn)?;
            let outputs = from_struct(req.properties.as_ref());
            let call = self.call(&req.urn, req.timeout);
            resource
                .delete(&self.services(), &call, &outputs)
                .await
                .map_err(|e| status(e, &PropertyMap::new()))?;
            Ok(Response::new(()))
        })
        .await
    }

    async fn construct(&self, _: Request<rpc::ConstructRequest>) -> Rpc<rpc::ConstructResponse> {
        Err(Status::unimplemented(
            "imagebuild has no component resources",
        ))
    }

    async fn cancel(&self, _: Request<()>) -> Rpc<()> {
        // The engine does not cancel running RPCs for us: in-flight builds watch this token.
        self.cancel.cancel();
        Ok(Response::new(()))
    }

    async fn get_plugin_info(&self, _: Request<()>) -> Rpc<rpc::PluginInfo> {
        Ok(Response::new(rpc::PluginInfo {
            version: VERSION.to_string(),
        }))
    }

    async fn attach(&self, _: Request<rpc::PluginAttach>) -> Rpc<()> {
        Err(Status::unimplemented(
            "imagebuild is started by the engine, not attached",
        ))
    }

    async fn get_mapping(
        &self,
        _: Request<rpc::GetMappingRequest>,
    ) -> Rpc<rpc::GetMappingResponse> {
        Err(Status::unimplemented("imagebuild has no mappings"))
    }

    async fn get_mappings(
        &self,
        _: Request<rpc::GetMappingsRequest>,
    ) -> Rpc<rpc::GetMappingsResponse> {
        Err(Status::unimplemented("imagebuild has no mappings"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn type_tokens_come_from_the_type_field_or_the_urn() {
        let urn = "urn:pulumi:dev::proj::imagebuild:index:ContainerImage::app";
        let token = crate::resources::container_image::TOKEN;
        assert_eq!(type_from_urn(urn), token);
        let nested = "urn:pulumi:dev::proj::my:comp:Thing$imagebuild:index:ContainerImage::app";
        assert_eq!(type_from_urn(nested), token);
        assert_eq!(resource_for("", urn).unwrap().token(), token);
        let fast = crate::resources::fast_container_image::TOKEN;
        assert_eq!(resource_for(fast, urn).unwrap().token(), fast);
        let unknown = resource_for("imagebuild:index:Nope", urn).err().unwrap();
        assert!(unknown.message().contains(token) && unknown.message().contains(fast));
    }

    #[test]
    fn partial_failures_carry_the_init_failed_detail() {
        let s = status(
            ResourceError::Partial {
                id: "r@sha256:1".into(),
                outputs: PropertyMap::new(),
                reasons: vec!["tagging failed".into()],
            },
            &PropertyMap::new(),
        );
        assert_eq!(s.code(), tonic::Code::Unknown);
        let body = RpcStatus::decode(s.details()).unwrap();
        assert!(body.details[0]
            .type_url
            .ends_with("pulumirpc.ErrorResourceInitFailed"));
        let detail =
            rpc::ErrorResourceInitFailed::decode(body.details[0].value.as_slice()).unwrap();
        assert_eq!(detail.id, "r@sha256:1");
    }
}
