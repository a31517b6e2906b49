//! The CodeBuild project a build runs on: a user's own, or one managed project per platform kept up to date.

use aws_sdk_codebuild::types::{
    ArtifactsType, CloudWatchLogsConfig, ComputeType, EnvironmentType, LogsConfig,
    LogsConfigStatusType, Project, ProjectArtifacts, ProjectEnvironment, ProjectSource, SourceType,
};

use super::clients::RemoteClients;
use super::error::RemoteError;
use super::spec::ProjectChoice;

/// A managed project's settings, compared against what CodeBuild has before updating it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ManagedSettings {
    service_role_arn: String,
    compute_type: String,
    image: String,
    environment_type: String,
}

// Builds always override the buildspec; this one only explains a build started by hand.
const PLACEHOLDER_BUILDSPEC: &str = "version: 0.2\nphases:\n  build:\n    commands:\n      - echo 'This project is managed by imagebuild; its builds carry their own buildspec.' && exit 1\n";

/// The managed project name for a platform: `imagebuild-linux-amd64` (default platform linux/amd64).
pub fn managed_project_name(platform: Option<&str>) -> String {
    let platform = platform.unwrap_or("linux/amd64");
    let slug: String = platform
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() {
                c.to_ascii_lowercase()
            } else {
                '-'
            }
        })
        .collect();
    format!("imagebuild-{}", slug.trim_matches('-'))
}

fn environment_type(platform: Option<&str>) -> &'static str {
    match platform.and_then(|p| p.split('/').nth(1)) {
        Some("arm64") | Some("arm") => "ARM_CONTAINER",
        _ => "LINUX_CONTAINER",
    }
}

/// Returns the project name to build on, creating or updating the managed project if needed.
pub async fn ensure_project(
    clients: &RemoteClients,
    choice: &ProjectChoice,
    platform: Option<&str>,
) -> Result<String, RemoteError> {
    let (service_role_arn, compute_type, image) = match choice {
        ProjectChoice::Existing(name) => return Ok(name.clone()),
        ProjectChoice::Managed {
            service_role_arn,
            compute_type,
            image,
        } => (service_role_arn, compute_type, image),
    };
    let name = managed_project_name(platform);
    let wanted = ManagedSettings {
        service_role_arn: service_role_arn.clone(),
        compute_type: compute_type.clone(),
        image: image.clone(),
        environment_type: environment_type(platform).to_string(),
    };
    // Held across the calls: one process never races itself on CreateProject.
    let mut ensured = clients.ensured.lock().await;
    if ensured.get(&name) == Some(&wanted) {
        return Ok(name);
    }
    match get_project(clients, &name).await? {
        Some(existing) if settings_of(&existing) == wanted => {}
        Some(_) => update_project(clients, &name, &wanted).await?,
        None => match create_project(clients, &name, &wanted).await {
            Ok(()) => {}
            // Another process created it between our read and create: bring it to our settings.
            Err(e) if e.aws_code() == Some("ResourceAlreadyExistsException") => {
                update_project(clients, &name, &wanted).await?
            }
            Err(e) => return Err(e),
        },
    }
    ensured.insert(name.clone(), wanted);
    Ok(name)
}

async fn get_project(clients: &RemoteClients, name: &str) -> Result<Option<Project>, RemoteError> {
    let out = clients
        .codebuild
        .batch_get_projects()
        .names(name)
        .send()
        .await
        .map_err(|e| RemoteError::from_sdk("codebuild:BatchGetProjects", name, e))?;
    Ok(out
        .projects()
        .iter()
        .find(|p| p.name() == Some(name))
        .cloned())
}

fn settings_of(p: &Project) -> ManagedSettings {
    let env = p.environment();
    ManagedSettings {
        service_role_arn: p.service_role().unwrap_or_default().to_string(),
        compute_type: env
            .map(|e| e.compute_type().as_str().to_string())
            .unwrap_or_default(),
        image: env.map(|e| e.image().to_string()).unwrap_or_default(),
        environment_type: env
            .map(|e| e.r#type().as_str().to_string())
            .unwrap_or_default(),
    }
}

struct Parts {
    source: ProjectSource,
    artifacts: ProjectArtifacts,
    environment: ProjectEnvironment,
    logs: LogsConfig,
}

fn parts(name: &str, s: &ManagedSettings) -> Result<Parts, RemoteError> {
    let invalid = |e: aws_smithy_types::error::operation::BuildError| {
        RemoteError::Invalid(format!("CodeBuild project {name}: {e}"))
    };
    Ok(Parts {
        source: ProjectSource::builder()
            .r#type(SourceType::NoSource)
            .buildspec(PLACEHOLDER_BUILDSPEC)
            .build()
            .map_err(invalid)?,
        artifacts: ProjectArtifacts::builder()
            .r#type(ArtifactsType::NoArtifacts)
            .build()
            .map_err(invalid)?,
        environment: ProjectEnvironment::builder()
            .r#type(EnvironmentType::from(s.environment_type.as_str()))
            .image(&s.image)
            .compute_type(ComputeType::from(s.compute_type.as_str()))
            // Docker builds need the daemon that privileged mode starts.
            .privileged_mode(true)
            .build()
            .map_err(invalid)?,
        logs: LogsConfig::builder()
            .cloud_watch_logs(
                CloudWatchLogsConfig::builder()
                    .status(LogsConfigStatusType::Enabled)
                    .build()
                    .map_err(invalid)?,
            )
            .build(),
    })
}

async fn create_project(
    clients: &RemoteClients,
    name: &str,
    s: &ManagedSettings,
) -> Result<(), RemoteError> {
    let p = parts(name, s)?;
    clients
        .codebuild
        .create_project()
        .name(name)
        .description("Container image builds started by the imagebuild Pulumi provider")
        .source(p.source)
        .artifacts(p.artifacts)
        .environment(p.environment)
        .logs_config(p.logs)
        .service_role(&s.service_role_arn)
        .send()
        .await
        .map_err(|e| RemoteError::from_sdk("codebuild:CreateProject", name, e))?;
    Ok(())
}

async fn update_project(
    clients: &RemoteClients,
    name: &str,
    s: &ManagedSettings,
) -> Result<(), RemoteError> {
    let p = parts(name, s)?;
    clients
        .codebuild
        .update_project()
        .name(name)
        .source(p.source)
        .artifacts(p.artifacts)
        .environment(p.environment)
        .logs_config(p.logs)
        .service_role(&s.service_role_arn)
        .send()
        .await
        .map_err(|e| RemoteError::from_sdk("codebuild:UpdateProject", name, e))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_types_per_platform() {
        assert_eq!(managed_project_name(None), "imagebuild-linux-amd64");
        assert_eq!(
            managed_project_name(Some("linux/arm64/v8")),
            "imagebuild-linux-arm64-v8"
        );
        assert_eq!(environment_type(Some("linux/arm64")), "ARM_CONTAINER");
        assert_eq!(environment_type(None), "LINUX_CONTAINER");
    }
}
