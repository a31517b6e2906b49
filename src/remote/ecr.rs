//! "Does this tag exist in ECR, and with which digest" through the ECR API (DescribeImages).
//!
//! For non-ECR registries use `crate::registry::Registry::manifest_digest` instead.

use crate::registry::ImageName;

use super::buildspec::ecr_account;
use super::clients::RemoteClients;
use super::error::RemoteError;

/// The digest ECR holds for `repository:tag`, or None when the tag does not exist.
///
/// The registry id is the account in an ECR host name (`<account>.dkr.ecr.<region>...`);
/// other hosts (e.g. moto users' local names) use the caller's default registry.
pub async fn ecr_tag_digest(
    clients: &RemoteClients,
    repository: &ImageName,
    tag: &str,
) -> Result<Option<String>, RemoteError> {
    let resource = format!("{}/{}:{tag}", repository.registry, repository.repository);
    let out = clients
        .ecr
        .describe_images()
        .set_registry_id(ecr_account(&repository.registry).map(str::to_string))
        .repository_name(&repository.repository)
        .image_ids(
            aws_sdk_ecr::types::ImageIdentifier::builder()
                .image_tag(tag)
                .build(),
        )
        .send()
        .await;
    match out {
        Ok(out) => Ok(out
            .image_details()
            .iter()
            .find_map(|d| d.image_digest())
            .map(str::to_string)),
        Err(e) if e.as_service_error().is_some_and(|s| s.is_image_not_found_exception()) => {
            Ok(None)
        }
        Err(e) if e.as_service_error().is_some_and(|s| s.is_repository_not_found_exception()) => {
            Err(RemoteError::Invalid(format!(
                "ECR repository {} does not exist in registry {}; create it before building into it",
                repository.repository, repository.registry
            )))
        }
        Err(e) => Err(RemoteError::from_sdk("ecr:DescribeImages", &resource, e)),
    }
}
