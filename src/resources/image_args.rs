//! Build inputs shared by both image resources: context, Dockerfile, args, target, platform, labels.

use super::inputs::{Failure, Field, InputReader};
use super::{CheckResult, Services};
use crate::context::DockerfileSource;
use crate::plan::{BaseLookup, NamedContextSource, PlanRequest};
use crate::registry::BasicCredentials;
use crate::registry::{ImageName, RegistryConfig};
use crate::values::{PropertyMap, Value};
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;

/// Input names read by [`read_build_inputs`].
pub const BUILD_INPUT_NAMES: [&str; 8] = [
    "context",
    "dockerfile",
    "dockerfileInline",
    "buildArgs",
    "target",
    "platform",
    "labels",
    "contexts",
];

/// The inputs that decide what is built (and so enter the context hash).
#[derive(Clone, Debug, PartialEq)]
pub struct BuildInputs {
    /// The context directory.
    pub context: PathBuf,
    /// The Dockerfile: a path, or inline text.
    pub dockerfile: DockerfileSource,
    /// Build args (never secret: those are refused by Check).
    pub build_args: BTreeMap<String, String>,
    /// The target stage.
    pub target: Option<String>,
    /// The platform, e.g. `linux/arm64`.
    pub platform: String,
    /// Image labels.
    pub labels: BTreeMap<String, String>,
    /// Named contexts (`--build-context name=...`).
    pub contexts: BTreeMap<String, NamedContextSource>,
}

impl BuildInputs {
    /// The build plan request: every input that changes the image enters the hash.
    /// `cache_dir` is the provider's hash cache (`cacheDir`), None for the default.
    pub fn plan_request(&self, cache_dir: Option<PathBuf>) -> PlanRequest {
        PlanRequest {
            context: self.context.clone(),
            dockerfile: self.dockerfile.clone(),
            build_args: self.build_args.clone(),
            target: self.target.clone(),
            platform: self.platform.clone(),
            labels: self.labels.clone(),
            contexts: self.contexts.clone(),
            cache_dir,
        }
    }
}

/// The platform of the machine running the provider, as Docker names it.
pub fn default_platform() -> String {
    crate::plan::host_platform()
}

/// Reads and validates the build inputs; `None` when some are not known yet or invalid
/// (failures are recorded in `r`).
pub fn read_build_inputs(r: &mut InputReader) -> Option<BuildInputs> {
    let context = r.string("context");
    let dockerfile = r.string("dockerfile");
    let inline = r.string("dockerfileInline");
    let build_args = r.string_map("buildArgs");
    let target = r.string("target");
    let platform = r.string("platform");
    let labels = r.string_map("labels");
    let contexts = read_named_contexts(r);

    refuse_secret_entries(r);
    if let Field::Known(p) = &platform {
        if let Err(reason) = validate_platform(p) {
            r.fail("platform", reason);
        }
    }
    let context = match context {
        Field::Known(c) => Some(check_context_dir(r, &c)?),
        Field::Absent => {
            r.fail(
                "context",
                "`context` is required: the directory sent to the build, e.g. \"./app\"",
            );
            None
        }
        Field::Unknown => None,
    };
    let dockerfile = read_dockerfile(r, dockerfile, inline, context.as_ref())?;
    Some(BuildInputs {
        context: context?,
        dockerfile,
        build_args: build_args.or_default_known(BTreeMap::new())?,
        target: match target {
            Field::Known(t) if !t.is_empty() => Some(t),
            Field::Unknown => return None,
            _ => None,
        },
        platform: platform.or_default_known(default_platform())?,
        labels: labels.or_default_known(BTreeMap::new())?,
        contexts: contexts?,
    })
}

/// Records a failure for each secret build arg or label: both end up in plain text in the image.
fn refuse_secret_entries(r: &mut InputReader) {
    for name in r.secret_entries("buildArgs") {
        r.fail(
            format!("buildArgs.{name}"),
            format!(
                "build arg `{name}` is a secret, but build args are recorded in the image history; \
                 pass it in `secrets` instead and read it with `RUN --mount=type=secret,id={name}`"
            ),
        );
    }
    for name in r.secret_entries("labels") {
        r.fail(
            format!("labels.{name}"),
            format!(
                "label `{name}` is a secret, but labels are stored in plain text in the image \
                 config (and the registry serves it to anyone who can pull); drop the label, or \
                 pass the value in `secrets` and read it with `RUN --mount=type=secret,id={name}`"
            ),
        );
    }
}

/// The Dockerfile: a path (`dockerfile`, default `<context>/Dockerfile`) or inline text, checked.
fn read_dockerfile(
    r: &mut InputReader,
    dockerfile: Field<String>,
    inline: Field<String>,
    context: Option<&PathBuf>,
) -> Option<DockerfileSource> {
    let source = match (dockerfile, inline) {
        (Field::Known(_), Field::Known(_)) => {
            r.fail(
                "dockerfileInline",
                "set either `dockerfile` (a path) or `dockerfileInline` (the text), not both",
            );
            return None;
        }
        (_, Field::Known(text)) if text.trim().is_empty() => {
            r.fail(
                "dockerfileInline",
                "`dockerfileInline` is empty: give the Dockerfile's text (at least a FROM line), \
                 or set `dockerfile` to its path",
            );
            return None;
        }
        (_, Field::Known(text)) => DockerfileSource::Inline(text),
        (Field::Known(path), Field::Absent) => {
            DockerfileSource::Path(check_dockerfile(r, PathBuf::from(path), "dockerfile")?)
        }
        (Field::Absent, Field::Absent) => {
            let default = context?.join("Dockerfile");
            DockerfileSource::Path(check_dockerfile(r, default, "dockerfile")?)
        }
        _ => return None,
    };
    Some(source)
}

/// Reads `contexts` ({name: directory | "docker-image://REF"}); `None` while unknown.
fn read_named_contexts(r: &mut InputReader) -> Option<BTreeMap<String, NamedContextSource>> {
    let raw = r.string_map("contexts").or_default_known(BTreeMap::new())?;
    let mut out = BTreeMap::new();
    for (name, value) in raw {
        if name.is_empty() || name.chars().any(char::is_whitespace) {
            r.fail(
                "contexts",
                format!(
                    "named context {name:?} needs a name without spaces, as `FROM name` uses it"
                ),
            );
            continue;
        }
        match NamedContextSource::parse(&value) {
            Ok(source) => {
                out.insert(name, source);
            }
            Err(reason) => r.fail(format!("contexts.{name}"), reason),
        }
    }
    Some(out)
}

/// Where an image resource builds, which decides where its base images are looked up.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BuildSite {
    /// On the provider's Docker daemon (its local images count), or its BuildKit `builder`.
    LocalDaemon,
    /// Elsewhere (CodeBuild): only registries count.
    Remote,
}

/// How base images are looked up for the resource whose inputs are `news`: the resource's
/// `registryAuth` for its own repository's registry, the provider's credentials elsewhere.
pub fn base_lookup(services: &Services, site: BuildSite, news: &PropertyMap) -> BaseLookup {
    let mut r = InputReader::new(news);
    let own_host = match r.string("repository") {
        Field::Known(repo) => ImageName::parse(&repo).ok().map(|n| n.registry),
        _ => None,
    };
    let own_auth = read_registry_auth(&mut r).flatten();
    let config = services.config.clone();
    BaseLookup {
        // A standalone BuildKit builder sees no Docker daemon's images: registries only.
        daemon: match site {
            BuildSite::LocalDaemon if config.builder.is_none() => Some(config.docker_host.clone()),
            BuildSite::LocalDaemon | BuildSite::Remote => None,
        },
        registry_for: Arc::new(move |host: &str| RegistryConfig {
            explicit: match (&own_host, &own_auth) {
                (Some(h), Some(auth)) if h == host => Some(auth.clone()),
                _ => config.credentials_for(host),
            },
            ecr_endpoint: config.ecr_endpoint.clone(),
            aws_region: config.region.clone(),
        }),
    }
}

/// The build plan for Create/Update: its warnings go to the resource's row.
pub async fn plan_for(
    services: &Services,
    call: &super::Call,
    site: BuildSite,
    build: &BuildInputs,
    news: &PropertyMap,
) -> Result<crate::plan::Plan, super::ResourceError> {
    let lookup = base_lookup(services, site, news);
    let plan = services
        .snapshots
        .get(&build.plan_request(services.config.cache_path()), &lookup)
        .await
        .map_err(|f| super::ResourceError::Failed(f.reason))?;
    for warning in &plan.warnings {
        call.reporter.warn(warning);
    }
    Ok(plan)
}

/// Completes Check for an image resource: fills `defaults` (and the platform), stores secrets
/// as secrets, and adds the context hash when the inputs are valid and known.
pub async fn finish_check(
    services: &Services,
    site: BuildSite,
    news: &PropertyMap,
    mut failures: Vec<Failure>,
    build: Option<BuildInputs>,
    defaults: &[(&str, Value)],
) -> CheckResult {
    let mut checked = news.clone();
    let platform = ("platform", Value::String(default_platform()));
    for (name, value) in defaults.iter().chain(std::iter::once(&platform)) {
        if matches!(checked.get(*name), None | Some(Value::Null)) {
            checked.insert(name.to_string(), value.clone());
        }
    }
    // ContainerImage's `secrets` are the values; FastContainerImage's are references (SSM
    // parameter and Secrets Manager names), secret only where the program made them so.
    mark_secret_inputs(&mut checked, site == BuildSite::LocalDaemon);
    if let (Some(build), true) = (build, failures.is_empty()) {
        let lookup = base_lookup(services, site, news);
        let request = build.plan_request(services.config.cache_path());
        match services.snapshots.get(&request, &lookup).await {
            Ok(plan) => {
                checked.insert("contextHash".into(), plan.snapshot.hash.clone().into());
            }
            Err(failure) => failures.push(Failure {
                property: failure.property,
                reason: failure.reason,
            }),
        }
    }
    CheckResult {
        inputs: checked,
        failures,
    }
}

/// The inputs in `names` (except `skip`) as given, secret wrappers kept: the echoed outputs.
pub fn echo_inputs(news: &PropertyMap, names: &[&str], skip: &[&str]) -> PropertyMap {
    news.iter()
        .filter(|(k, _)| names.contains(&k.as_str()) && !skip.contains(&k.as_str()))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect()
}

/// Registry passwords, and build secrets when `secrets_are_values`, are stored as secrets even
/// if the program passed plain text.
pub fn mark_secret_inputs(inputs: &mut PropertyMap, secrets_are_values: bool) {
    if let Some(v) = inputs.remove("secrets") {
        inputs.insert("secrets".into(), v.secret_if(secrets_are_values));
    }
    if let Some(Value::Object(mut auth)) = inputs.remove("registryAuth").map(|v| v.reveal()) {
        if let Some(pw) = auth.remove("password") {
            auth.insert("password".into(), pw.secret_if(true));
        }
        inputs.insert("registryAuth".into(), Value::Object(auth));
    }
}

/// Reads `registryAuth` ({username, password}); `None` while unknown.
pub fn read_registry_auth(r: &mut InputReader) -> Option<Option<BasicCredentials>> {
    let auth = match r.object("registryAuth") {
        Field::Known(m) => m,
        Field::Absent => return Some(None),
        Field::Unknown => return None,
    };
    let fields = ["username", "password"];
    let (username, password) = r.nested("registryAuth", &auth, &fields, |inner| {
        (inner.string("username"), inner.string("password"))
    });
    match (username, password) {
        (Field::Known(username), Field::Known(password)) => {
            Some(Some(BasicCredentials { username, password }))
        }
        (Field::Unknown, _) | (_, Field::Unknown) => None,
        _ => {
            r.fail(
                "registryAuth",
                "`registryAuth` needs both `username` and `password`",
            );
            Some(None)
        }
    }
}

fn check_context_dir(r: &mut InputReader, dir: &str) -> Option<PathBuf> {
    let path = PathBuf::from(dir);
    if path.is_dir() {
        return Some(path);
    }
    let cwd = std::env::current_dir().unwrap_or_default();
    let what = if path.exists() {
        format!("`{dir}` is a file, not a directory")
    } else {
        format!(
            "context directory `{dir}` does not exist (relative paths are resolved from the \
             Pulumi project directory {})",
            cwd.display()
        )
    };
    r.fail(
        "context",
        format!("{what}; point `context` at the directory holding the sources"),
    );
    None
}

fn check_dockerfile(r: &mut InputReader, path: PathBuf, property: &str) -> Option<PathBuf> {
    match std::fs::metadata(&path) {
        Ok(m) if m.is_file() && m.len() == 0 => {
            r.fail(
                property,
                format!(
                    "Dockerfile `{}` is empty: it needs at least a FROM line",
                    path.display()
                ),
            );
            return None;
        }
        Ok(m) if m.is_file() => return Some(path),
        _ => {}
    }
    r.fail(
        property,
        format!(
            "Dockerfile `{}` does not exist; set `dockerfile` to its path or give its text in \
             `dockerfileInline`",
            path.display()
        ),
    );
    None
}

const KNOWN_OS: [&str; 3] = ["linux", "windows", "freebsd"];
const KNOWN_ARCH: [&str; 9] = [
    "amd64", "arm64", "arm", "386", "ppc64le", "s390x", "riscv64", "mips64le", "loong64",
];

/// Checks a platform string `os/arch[/variant]`.
pub fn validate_platform(p: &str) -> Result<(), String> {
    let parts: Vec<&str> = p.split('/').collect();
    let ok = matches!(parts.len(), 2 | 3)
        && KNOWN_OS.contains(&parts[0])
        && KNOWN_ARCH.contains(&parts[1])
        && parts.get(2).is_none_or(|v| is_simple_word(v));
    if ok {
        Ok(())
    } else {
        Err(format!(
            "`platform` must be os/arch[/variant] such as \"linux/amd64\" or \"linux/arm64\", got \"{p}\""
        ))
    }
}

fn is_simple_word(s: &str) -> bool {
    !s.is_empty() && s.chars().all(|c| c.is_ascii_alphanumeric())
}

/// Checks an image repository reference without tag or digest, e.g. `host:5000/team/app`.
pub fn validate_repository(repo: &str) -> Result<(), String> {
    ImageName::parse(repo).map(|_| ()).map_err(|e| {
        format!(
            "`repository` must be a repository without tag or digest, like \
             \"123456789012.dkr.ecr.us-east-1.amazonaws.com/team/app\" or \"localhost:5000/app\": {e}"
        )
    })
}

/// Checks a tag name (not a full reference).
pub fn validate_tag(tag: &str) -> Result<(), String> {
    crate::registry::grammar::validate_tag(tag)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn failures_for(news: PropertyMap) -> Vec<Failure> {
        let mut r = InputReader::new(&news);
        let _ = read_build_inputs(&mut r);
        r.into_failures()
    }

    #[test]
    fn secret_labels_and_build_args_are_refused_naming_the_entry() {
        let secret = |s: &str| Value::Secret(Box::new(Value::String(s.into())));
        let mut news = PropertyMap::new();
        news.insert("context".into(), ".".into());
        news.insert("dockerfileInline".into(), "FROM scratch\n".into());
        let mut labels = PropertyMap::new();
        labels.insert("team".into(), "infra".into());
        labels.insert("token".into(), secret("s3cr3t"));
        news.insert("labels".into(), Value::Object(labels));
        let mut args = PropertyMap::new();
        args.insert("A".into(), "1".into());
        news.insert(
            "buildArgs".into(),
            Value::Secret(Box::new(Value::Object(args))),
        );
        let failures = failures_for(news);
        let props: Vec<&str> = failures.iter().map(|f| f.property.as_str()).collect();
        assert_eq!(props, ["buildArgs.A", "labels.token"], "{failures:?}");
        assert!(failures[1]
            .reason
            .contains("plain text in the image config"));
        assert!(failures.iter().all(|f| !f.reason.contains("s3cr3t")));
    }

    #[test]
    fn empty_dockerfiles_and_a_file_as_context_fail_naming_the_property() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("Dockerfile"), "").unwrap();
        std::fs::write(dir.path().join("file.txt"), "x").unwrap();
        let root = dir.path().display().to_string();
        let inputs = |pairs: &[(&str, String)]| -> PropertyMap {
            pairs
                .iter()
                .map(|(k, v)| (k.to_string(), Value::String(v.clone())))
                .collect()
        };
        let empty_file = failures_for(inputs(&[("context", root.clone())]));
        assert_eq!(empty_file[0].property, "dockerfile");
        assert!(empty_file[0].reason.contains("is empty"), "{empty_file:?}");
        let empty_inline = failures_for(inputs(&[
            ("context", root.clone()),
            ("dockerfileInline", " \n".into()),
        ]));
        assert_eq!(empty_inline[0].property, "dockerfileInline");
        let file = format!("{root}/file.txt");
        let a_file = failures_for(inputs(&[
            ("context", file),
            ("dockerfileInline", "FROM x".into()),
        ]));
        assert_eq!(a_file[0].property, "context");
        assert!(
            a_file[0].reason.contains("is a file, not a directory"),
            "{a_file:?}"
        );
    }

    #[test]
    fn platforms() {
        assert!(validate_platform("linux/amd64").is_ok());
        assert!(validate_platform("linux/arm64/v8").is_ok());
        assert!(validate_platform("linux").is_err());
        assert!(validate_platform("linux/amd65").is_err());
        assert!(validate_platform("Linux/amd64").is_err());
    }

    #[test]
    fn repositories() {
        assert!(validate_repository("127.0.0.1:5000/team/app").is_ok());
        assert!(validate_repository("123.dkr.ecr.us-east-1.amazonaws.com/a-b/c_d").is_ok());
        assert!(validate_repository("app").is_ok());
        assert!(validate_repository("localhost:5000/App").is_err());
        assert!(validate_repository("localhost:5000/app:latest").is_err());
        assert!(validate_repository("").is_err());
    }

    #[test]
    fn tags() {
        assert!(validate_tag("latest").is_ok());
        assert!(validate_tag("v1.2-rc_3").is_ok());
        assert!(validate_tag("-x").is_err());
        assert!(validate_tag("a/b").is_err());
    }

    #[test]
    fn secret_inputs_are_wrapped_in_checked_inputs() {
        let mut inputs = PropertyMap::new();
        let mut auth = PropertyMap::new();
        auth.insert("username".into(), "u".into());
        auth.insert("password".into(), "p".into());
        inputs.insert("registryAuth".into(), Value::Object(auth));
        inputs.insert("secrets".into(), Value::Object(PropertyMap::new()));
        mark_secret_inputs(&mut inputs, true);
        assert!(matches!(inputs["secrets"], Value::Secret(_)));
        let Value::Object(auth) = &inputs["registryAuth"] else {
            panic!()
        };
        assert!(matches!(auth["password"], Value::Secret(_)));
        assert_eq!(auth["username"], Value::from("u"));
    }
}
