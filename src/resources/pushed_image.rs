//! What both image resources do with an image already in a registry: check it on refresh,
//! and delete it on destroy when asked to.

use super::{Call, ResourceError, Services};
use crate::registry::{BasicCredentials, ImageName, Registry, RegistryConfig};
use crate::values::{PropertyMap, Value};

/// The registry configuration for `name`: explicit credentials, else the provider's for that host.
pub fn registry_config(
    services: &Services,
    name: &ImageName,
    explicit: Option<BasicCredentials>,
) -> RegistryConfig {
    RegistryConfig {
        explicit: explicit.or_else(|| services.config.credentials_for(&name.registry)),
        ecr_endpoint: services.config.ecr_endpoint.clone(),
        aws_region: services.config.region.clone(),
    }
}

/// A top-level string output, secret or not.
pub fn text(map: &PropertyMap, name: &str) -> Option<String> {
    match map.get(name).map(Value::reveal) {
        Some(Value::String(s)) if !s.is_empty() => Some(s),
        _ => None,
    }
}

/// The `registryAuth` credentials kept in the outputs, if any.
pub fn stored_credentials(outputs: &PropertyMap) -> Option<BasicCredentials> {
    match outputs.get("registryAuth").map(Value::reveal) {
        Some(Value::Object(m)) => match (m.get("username"), m.get("password")) {
            (Some(Value::String(u)), Some(Value::String(p))) => Some(BasicCredentials {
                username: u.clone(),
                password: p.clone(),
            }),
            _ => None,
        },
        _ => None,
    }
}

fn registry_for(
    services: &Services,
    outputs: &PropertyMap,
) -> Option<(ImageName, Registry, String)> {
    let repo = text(outputs, "repository")?;
    let digest = text(outputs, "digest")?;
    let name = ImageName::parse(&repo).ok()?;
    let config = registry_config(services, &name, stored_credentials(outputs));
    Some((name, Registry::new(config), digest))
}

/// True unless the registry answers a definite not-found for the pushed digest; an auth or
/// network error fails the refresh instead, so the resource is never dropped by mistake.
/// With nothing pushed there is nothing remote to check, and the resource stays.
pub async fn still_in_registry(
    services: &Services,
    outputs: &PropertyMap,
) -> Result<bool, ResourceError> {
    let Some((name, registry, digest)) = registry_for(services, outputs) else {
        return Ok(true);
    };
    match registry.manifest_digest(&name, &digest).await {
        Ok(found) => Ok(found.is_some()),
        Err(e) => Err(ResourceError::Failed(format!(
            "refresh could not check {}@{digest}: {e} (the resource is kept in state)",
            name.repository
        ))),
    }
}

/// Deletes the pushed image when `deleteOnDestroy` is set, unless a tag that is not this
/// resource's still points at the digest (then it warns and leaves it).
pub async fn delete(
    services: &Services,
    call: &Call,
    outputs: &PropertyMap,
) -> Result<(), ResourceError> {
    let wanted = matches!(
        outputs.get("deleteOnDestroy").map(Value::reveal),
        Some(Value::Bool(true))
    );
    let Some((name, registry, digest)) = registry_for(services, outputs).filter(|_| wanted) else {
        return Ok(());
    };
    let where_ = format!("{}/{}@{digest}", name.registry, name.repository);
    let ours = own_tags(outputs);
    let pointing = registry
        .tags_pointing_at(&name, &digest)
        .await
        .map_err(|e| ResourceError::Failed(format!("cannot list the tags of {where_}: {e}")))?;
    let foreign: Vec<&str> = pointing
        .iter()
        .filter(|t| !ours.contains(t))
        .map(String::as_str)
        .collect();
    if !foreign.is_empty() {
        call.reporter.warn(&format!(
            "left {where_} in place: other tags still point at it ({})",
            foreign.join(", ")
        ));
        return Ok(());
    }
    registry
        .delete_manifest(&name, &digest)
        .await
        .map_err(|e| ResourceError::Failed(format!("deleting {where_} failed: {e}")))
}

/// The tag names this resource pushed: the context hash and the extra tags.
fn own_tags(outputs: &PropertyMap) -> Vec<String> {
    let mut tags: Vec<String> = text(outputs, "contextHash").into_iter().collect();
    if let Some(Value::Array(items)) = outputs.get("tags").map(Value::reveal) {
        tags.extend(items.iter().filter_map(|v| match v {
            Value::String(s) => s.rsplit_once(':').map(|(_, t)| t.to_string()),
            _ => None,
        }));
    }
    tags
}
