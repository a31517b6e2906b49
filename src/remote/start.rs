//! StartBuild: generated buildspec, typed secret variables, and an idempotency token derived from the inputs.

use aws_sdk_codebuild::types::{
    ArtifactsType, EnvironmentVariable, EnvironmentVariableType, ProjectArtifacts, SortOrderType,
    SourceType, StatusType,
};
use sha2::{Digest, Sha256};

use super::buildspec;
use super::clients::RemoteClients;
use super::error::RemoteError;
use super::project::ensure_project;
use super::spec::{RemoteBuildSpec, SecretKind};
use super::status::console_logs_url;

/// A build CodeBuild accepted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StartedBuild {
    /// CodeBuild build id (`project:uuid`).
    pub build_id: String,
    /// Project it runs on.
    pub project: String,
    /// Console link to its log.
    pub logs_url: String,
    /// The idempotency token sent (same inputs, same token).
    pub idempotency_token: String,
}

/// Ensures the project, then starts the build. A build of the same buildspec that is still
/// running is joined, however long ago it started; a repeat within CodeBuild's token window
/// (5 minutes) returns the same build too (which also covers two callers racing), unless that
/// build already ended without success: a retried `up` then starts a new one.
pub async fn start_build(
    clients: &RemoteClients,
    spec: &RemoteBuildSpec,
) -> Result<StartedBuild, RemoteError> {
    spec.validate()?;
    let project = ensure_project(clients, &spec.project, spec.platform.as_deref()).await?;
    let buildspec = buildspec::render(spec);
    let token = idempotency_token(&project, &buildspec, spec);
    if let Some(build_id) = running_build(clients, &project, &buildspec).await {
        return Ok(StartedBuild {
            logs_url: console_logs_url(clients.region(), &build_id),
            build_id,
            project,
            idempotency_token: token,
        });
    }
    let (started, status) = start_with_token(clients, spec, &project, &buildspec, &token).await?;
    if !ended_without_success(status.as_ref()) {
        return Ok(started);
    }
    // The token named a build that failed (or was stopped): a new token for a new attempt,
    // itself idempotent for retries of this same attempt.
    let retry = retry_token(&token, &started.build_id);
    let (again, _) = start_with_token(clients, spec, &project, &buildspec, &retry).await?;
    Ok(again)
}

/// Builds of a project looked at for one to join: a retried `up` comes soon after the first.
const JOIN_LOOKBACK: usize = 20;

/// The newest still-running build of `project` that runs exactly `buildspec` (so the same image
/// and hash tag). Not being allowed to list builds, or any other failure, just means none.
async fn running_build(clients: &RemoteClients, project: &str, buildspec: &str) -> Option<String> {
    let listed = clients
        .codebuild
        .list_builds_for_project()
        .project_name(project)
        .sort_order(SortOrderType::Descending)
        .send()
        .await
        .ok()?;
    let ids: Vec<String> = listed.ids().iter().take(JOIN_LOOKBACK).cloned().collect();
    if ids.is_empty() {
        return None;
    }
    let builds = clients
        .codebuild
        .batch_get_builds()
        .set_ids(Some(ids))
        .send()
        .await
        .ok()?;
    builds
        .builds()
        .iter()
        .filter(|b| b.build_status() == Some(&StatusType::InProgress))
        .find(|b| b.source().and_then(|s| s.buildspec()) == Some(buildspec))
        .and_then(|b| b.id().map(str::to_string))
}

/// True for a build status that is final and not SUCCEEDED.
fn ended_without_success(status: Option<&StatusType>) -> bool {
    matches!(
        status,
        Some(StatusType::Failed | StatusType::Fault | StatusType::Stopped | StatusType::TimedOut)
    )
}

/// The token of the attempt after the failed build `failed_build_id`.
fn retry_token(token: &str, failed_build_id: &str) -> String {
    let mut h = Sha256::new();
    for part in [token, failed_build_id] {
        h.update((part.len() as u64).to_le_bytes());
        h.update(part.as_bytes());
    }
    format!("imagebuild-{}", &hex::encode(h.finalize())[..40])
}

/// One StartBuild call with `token`; the build and the status CodeBuild reported for it.
async fn start_with_token(
    clients: &RemoteClients,
    spec: &RemoteBuildSpec,
    project: &str,
    buildspec: &str,
    token: &str,
) -> Result<(StartedBuild, Option<StatusType>), RemoteError> {
    let project = project.to_string();
    let env = secret_variables(spec)?;
    let artifacts = ProjectArtifacts::builder()
        .r#type(ArtifactsType::NoArtifacts)
        .build()
        .map_err(|e| RemoteError::Invalid(format!("artifacts override: {e}")))?;
    let out = clients
        .codebuild
        .start_build()
        .project_name(&project)
        // The context arrives through the buildspec's download step (tar keeps modes and symlinks).
        .source_type_override(SourceType::NoSource)
        .buildspec_override(buildspec)
        .artifacts_override(artifacts)
        .set_environment_variables_override(Some(env))
        .privileged_mode_override(true)
        .timeout_in_minutes_override(spec.timeout_minutes as i32)
        .idempotency_token(token)
        .send()
        .await
        .map_err(|e| RemoteError::from_sdk("codebuild:StartBuild", &project, e))?;
    let status = out.build_value().and_then(|b| b.build_status()).cloned();
    let build_id = out
        .build_value()
        .and_then(|b| b.id())
        .map(str::to_string)
        .ok_or_else(|| RemoteError::Aws {
            action: "codebuild:StartBuild".into(),
            resource: project.clone(),
            code: None,
            message: "the answer held no build id".into(),
        })?;
    let started = StartedBuild {
        logs_url: console_logs_url(clients.region(), &build_id),
        build_id,
        project,
        idempotency_token: token.to_string(),
    };
    Ok((started, status))
}

/// Secrets as PARAMETER_STORE / SECRETS_MANAGER variables: CodeBuild resolves them inside the build.
fn secret_variables(spec: &RemoteBuildSpec) -> Result<Vec<EnvironmentVariable>, RemoteError> {
    spec.secrets
        .iter()
        .map(|s| {
            let kind = match s.kind {
                SecretKind::ParameterStore => EnvironmentVariableType::ParameterStore,
                SecretKind::SecretsManager => EnvironmentVariableType::SecretsManager,
            };
            EnvironmentVariable::builder()
                .name(&s.id)
                .value(&s.reference)
                .r#type(kind)
                .build()
                .map_err(|e| RemoteError::Invalid(format!("secret {}: {e}", s.id)))
        })
        .collect()
}

/// Token = hash of everything the build request carries, so equal inputs never start two builds.
pub fn idempotency_token(project: &str, buildspec: &str, spec: &RemoteBuildSpec) -> String {
    let mut h = Sha256::new();
    for part in [
        "imagebuild-start-v1",
        project,
        &spec.context_hash,
        buildspec,
        &spec.timeout_minutes.to_string(),
    ] {
        h.update((part.len() as u64).to_le_bytes());
        h.update(part.as_bytes());
    }
    for s in &spec.secrets {
        for part in [&s.id, &format!("{:?}", s.kind), &s.reference] {
            h.update((part.len() as u64).to_le_bytes());
            h.update(part.as_bytes());
        }
    }
    format!("imagebuild-{}", &hex::encode(h.finalize())[..40])
}
