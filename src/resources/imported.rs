//! Import (`pulumi import`, or the `import` resource option): a Read that is given only an id
//! describes an image already in a registry, from the registry alone and without writing to it.
//!
//! The id is what Create returns, `registry/repository@sha256:<digest>`, or a tag,
//! `registry/repository:<tag>`. A registry does not record how an image was built, so the
//! imported inputs are what the image shows (its repository, its platform, the id's tag) and
//! Check's defaults; the program sets `context` and the rest. A tag that is a context hash (the
//! hash tag every push carries) becomes the state's `contextHash`, so the program that built the
//! image diffs to nothing; without it, that program's first `up` updates the resource, adopting
//! the image the registry holds for its hash when there is one. The claim tag waits for the
//! first refresh or update.

use super::image_args::default_platform;
use super::pushed_image::registry_config;
use super::state::{Built, ComputedOutputs, State};
use super::stored::StoredImage;
use super::{Call, Found, ResourceError, Services};
use crate::context::is_context_hash;
use crate::registry::{ImageRef, Platform, Registry, RegistryError};
use crate::values::{PropertyMap, Value};

/// An image found in its registry for an import id.
#[derive(Debug, Clone, PartialEq)]
pub struct ImportedImage {
    /// `registry/repository`, as the resources' `repository` input writes it.
    pub repository: String,
    /// The manifest digest the id names or its tag points at.
    pub digest: String,
    /// The config digest of the platform's image manifest (`imageId`).
    pub image_id: String,
    /// The platform the image config declares, when it declares one.
    pub platform: Option<String>,
    /// The id's tag when it is a context hash.
    pub context_hash: Option<String>,
    /// The id's tag when it is not a context hash: one of the image's extra `tags`.
    pub tag: Option<String>,
}

impl ImportedImage {
    /// `repository@digest`: the id Create gives an image it pushed.
    pub fn image_uri(&self) -> String {
        format!("{}@{}", self.repository, self.digest)
    }

    /// The inputs the registry shows (the repository, the platform, the id's tag when it is not
    /// the hash tag), plus `defaults`: the resource's defaults of what only the program knows.
    pub fn inputs(&self, defaults: &[(&str, Value)]) -> PropertyMap {
        let mut inputs = PropertyMap::new();
        inputs.insert("repository".into(), self.repository.clone().into());
        inputs.insert("platform".into(), self.platform().into());
        if let Some(tag) = &self.tag {
            inputs.insert("tags".into(), vec![tag.clone()].into());
        }
        for (name, value) in defaults {
            inputs.insert((*name).into(), value.clone());
        }
        inputs
    }

    /// The engine's answer: the state of `computed` and the inputs with `defaults`, whose
    /// outputs echo them as `echo` says.
    pub fn answer(
        &self,
        defaults: &[(&str, Value)],
        echo: fn(&PropertyMap) -> PropertyMap,
        computed: Box<dyn ComputedOutputs>,
    ) -> Found {
        let inputs = self.inputs(defaults);
        let imported = Built {
            id: self.image_uri(),
            state: State::new(echo(&inputs), &inputs, computed),
        };
        Found {
            resource: imported.into_created(),
            inputs: Some(inputs),
        }
    }

    /// The platform built for: the config's, else the default.
    pub fn platform(&self) -> String {
        self.platform.clone().unwrap_or_else(default_platform)
    }

    /// The extra tags as the `tags` output lists them (full references).
    pub fn tag_references(&self) -> Vec<String> {
        self.tag
            .iter()
            .map(|t| format!("{}:{t}", self.repository))
            .collect()
    }

    /// What the user is told: what was found and what the program must add.
    pub fn note(&self) -> String {
        let next = match &self.context_hash {
            Some(_) => {
                "the first `up` then has nothing to do when the program builds the same \
                        content (the id's tag is that content's hash)"
            }
            None => {
                "the first `up` then updates it, adopting the image the registry holds for \
                     the program's hash when there is one (import by the hash tag, \
                     `repository:<contextHash>`, to start with no change)"
            }
        };
        format!(
            "imported {}: a registry does not record how an image was built; set `context` (and \
             `dockerfile`) to what it was built from: {next}",
            self.image_uri()
        )
    }
}

/// The inputs an imported state's Diff compares (those [`ImportedImage::inputs`] records); the
/// others are the program's to set and are taken as given. The hash is compared as always.
pub const COMPARED_AFTER_IMPORT: [&str; 6] = [
    "repository",
    "platform",
    "tags",
    "push",
    "wait",
    "deleteOnDestroy",
];

/// True when stored inputs were recorded by an import: every resource requires `context`, which
/// no registry shows.
pub fn was_imported(inputs: &PropertyMap) -> bool {
    !inputs.contains_key("context")
}

/// True when Read is given no stored state to refresh: an import.
pub fn is_import(outputs: &PropertyMap) -> bool {
    let stored = StoredImage::parse(outputs);
    stored.repository.is_none() && stored.digest.is_none() && stored.context_hash.is_none()
}

/// [`look_up`], then tells the user what the program must add to the imported resource.
pub async fn find(
    services: &Services,
    call: &Call,
    id: &str,
) -> Result<Option<ImportedImage>, ResourceError> {
    let found = look_up(services, id).await?;
    if let Some(image) = &found {
        call.reporter.info(&image.note());
    }
    Ok(found)
}

/// Looks the import `id` up in its registry with the provider's credentials for that host.
/// `None` when the registry has no such tag or digest (the engine then says it does not exist).
pub async fn look_up(
    services: &Services,
    id: &str,
) -> Result<Option<ImportedImage>, ResourceError> {
    let reference = parse_id(id)?;
    let name = &reference.name;
    let registry = Registry::new(registry_config(services, name, None));
    // A lone manifest is used whatever its platform; an index is read for the default one.
    let platform = Platform::parse(&default_platform()).expect("the default platform parses");
    let resolved = registry
        .resolve_platform(&reference, &platform)
        .await
        .map_err(|e| lookup_failed(id, e))?;
    let Some(resolved) = resolved else {
        return Ok(None);
    };
    let digest = resolved
        .index_digest
        .unwrap_or(resolved.manifest_digest)
        .as_str()
        .to_string();
    Ok(Some(ImportedImage {
        repository: name.to_string(),
        digest,
        image_id: resolved.config_digest.as_str().to_string(),
        platform: resolved.platform.map(|p| p.to_string()),
        context_hash: reference.tag.clone().filter(|t| is_context_hash(t)),
        tag: reference.tag.filter(|t| !is_context_hash(t)),
    }))
}

/// The id as an image reference; an id that is none names the forms that work.
fn parse_id(id: &str) -> Result<ImageRef, ResourceError> {
    let explain = |reason: String| {
        ResourceError::Invalid(format!(
            "import id {id:?} is not an image reference ({reason}): give the image as Create \
             records it, `registry/repository@sha256:<digest>`, or by a tag, \
             `registry/repository:<tag>`"
        ))
    };
    if id.trim().is_empty() {
        return Err(explain("it is empty".into()));
    }
    if !id.contains('/') {
        return Err(explain("it names no registry".into()));
    }
    ImageRef::parse(id).map_err(|e| explain(e.to_string()))
}

fn lookup_failed(id: &str, error: RegistryError) -> ResourceError {
    let fix = match error {
        RegistryError::Auth { .. } => {
            "; give the provider credentials for that registry (`imagebuild:registryAuth`, \
             `docker login`, or AWS credentials for ECR)"
        }
        _ => "",
    };
    ResourceError::Failed(format!("import of {id}: {error}{fix}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_id_that_is_no_image_reference_names_the_forms_that_work() {
        for id in [
            "",
            "app",
            "reg.example/app:bad tag",
            "reg.example/app@sha256:xyz",
        ] {
            let Err(ResourceError::Invalid(m)) = parse_id(id) else {
                panic!("{id:?} parsed");
            };
            assert!(m.contains("registry/repository@sha256:<digest>"), "{m}");
            assert!(m.contains(&format!("{id:?}")), "{m}");
        }
        let by_tag = parse_id("localhost:5000/team/app:v1").unwrap();
        assert_eq!(by_tag.name.to_string(), "localhost:5000/team/app");
        assert_eq!(by_tag.tag.as_deref(), Some("v1"));
    }

    #[test]
    fn a_state_with_anything_stored_is_a_refresh_not_an_import() {
        assert!(is_import(&PropertyMap::new()));
        let mut stored = PropertyMap::new();
        stored.insert("repository".into(), "reg.example/app".into());
        assert!(!is_import(&stored));
    }
}
