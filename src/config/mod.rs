//! Provider configuration: from Configure's arguments, falling back to the usual environment variables.

use crate::local::{BuilderConfig, LocalConfig};
use crate::registry::BasicCredentials;
use crate::resources::inputs::{Failure, Field, InputReader};
use crate::values::{PropertyMap, Value};

mod unknown_keys;
pub use unknown_keys::unknown_key_warnings;

/// Configuration keys the provider accepts (schema `config.variables`).
pub const CONFIG_NAMES: [&str; 14] = [
    "region",
    "ecrEndpoint",
    "s3Endpoint",
    "codebuildEndpoint",
    "logsEndpoint",
    "dockerHost",
    "maxParallelBuilds",
    "maxParallelPushes",
    "registryAuth",
    "cacheDir",
    "builder",
    "builderCaCert",
    "builderCert",
    "builderKey",
];

/// Default credentials for one registry host.
#[derive(Clone, Debug)]
pub struct RegistryAuth {
    /// The registry host, e.g. `ghcr.io` or `127.0.0.1:5000`.
    pub address: String,
    /// Username and password (Debug redacts the password).
    pub credentials: BasicCredentials,
}

/// The provider's configuration after defaults and environment are applied.
#[derive(Clone, Debug, Default)]
pub struct ProviderConfig {
    /// AWS region (`region`, else AWS_REGION / AWS_DEFAULT_REGION).
    pub region: Option<String>,
    /// ECR API endpoint override (`ecrEndpoint`, else AWS_ENDPOINT_URL_ECR).
    pub ecr_endpoint: Option<String>,
    /// S3 endpoint override (`s3Endpoint`, else AWS_ENDPOINT_URL_S3).
    pub s3_endpoint: Option<String>,
    /// CodeBuild endpoint override (`codebuildEndpoint`, else AWS_ENDPOINT_URL_CODEBUILD).
    pub codebuild_endpoint: Option<String>,
    /// CloudWatch Logs endpoint override (`logsEndpoint`, else AWS_ENDPOINT_URL_CLOUDWATCH_LOGS).
    pub logs_endpoint: Option<String>,
    /// Docker daemon address (`dockerHost`, else DOCKER_HOST).
    pub docker_host: Option<String>,
    /// At most this many local builds run at once (`maxParallelBuilds`, else IMAGEBUILD_MAX_PARALLEL_BUILDS).
    pub max_parallel_builds: usize,
    /// At most this many pushes run at once (`maxParallelPushes`, else
    /// IMAGEBUILD_MAX_PARALLEL_PUSHES; 0 = the engine's default).
    pub max_parallel_pushes: usize,
    /// Default registry credentials (`registryAuth`, else IMAGEBUILD_REGISTRY_ADDRESS/USERNAME/PASSWORD).
    pub registry_auth: Vec<RegistryAuth>,
    /// Where context hashes are cached (`cacheDir`, else IMAGEBUILD_CACHE_DIR).
    pub cache_dir: Option<String>,
    /// A standalone BuildKit daemon ContainerImage builds on instead of Docker (`builder`, else
    /// BUILDKIT_HOST; TLS files `builderCaCert`, `builderCert`, `builderKey`).
    pub builder: Option<BuilderConfig>,
}

impl ProviderConfig {
    /// Reads `args` (Configure or CheckConfig), falling back to the environment.
    pub fn from_args(args: &PropertyMap) -> Result<Self, Vec<Failure>> {
        Self::from_args_and_env(args, &|k| std::env::var(k).ok())
    }

    /// Like [`from_args`](Self::from_args) with an explicit environment (for tests).
    pub fn from_args_and_env(
        args: &PropertyMap,
        env: &dyn Fn(&str) -> Option<String>,
    ) -> Result<Self, Vec<Failure>> {
        let mut args = args.clone();
        // Pulumi's internal keys (e.g. `version`) arrive alongside ours.
        args.retain(|k, _| CONFIG_NAMES.contains(&k.as_str()));
        let mut r = InputReader::new(&args);
        let text = |r: &mut InputReader, name: &str, vars: &[&str]| {
            r.string(name)
                .known()
                .or_else(|| vars.iter().find_map(|v| env(v).filter(|s| !s.is_empty())))
        };
        let config = ProviderConfig {
            region: text(&mut r, "region", &["AWS_REGION", "AWS_DEFAULT_REGION"]),
            ecr_endpoint: text(
                &mut r,
                "ecrEndpoint",
                &["AWS_ENDPOINT_URL_ECR", "AWS_ENDPOINT_URL"],
            ),
            s3_endpoint: text(
                &mut r,
                "s3Endpoint",
                &["AWS_ENDPOINT_URL_S3", "AWS_ENDPOINT_URL"],
            ),
            codebuild_endpoint: text(
                &mut r,
                "codebuildEndpoint",
                &["AWS_ENDPOINT_URL_CODEBUILD", "AWS_ENDPOINT_URL"],
            ),
            logs_endpoint: text(
                &mut r,
                "logsEndpoint",
                &["AWS_ENDPOINT_URL_CLOUDWATCH_LOGS", "AWS_ENDPOINT_URL"],
            ),
            docker_host: text(&mut r, "dockerHost", &["DOCKER_HOST"]),
            max_parallel_builds: read_parallel(&mut r, env),
            max_parallel_pushes: read_count(
                &mut r,
                env,
                "maxParallelPushes",
                "IMAGEBUILD_MAX_PARALLEL_PUSHES",
            ),
            registry_auth: read_registry_auth(&mut r, &args, env),
            cache_dir: text(&mut r, "cacheDir", &["IMAGEBUILD_CACHE_DIR"]),
            builder: None,
        };
        let builder = read_builder(&mut r, env);
        let mut failures = r.into_failures();
        let config = match builder {
            Ok(builder) => ProviderConfig { builder, ..config },
            Err(f) => {
                failures.push(f);
                config
            }
        };
        if failures.is_empty() {
            Ok(config)
        } else {
            Err(failures)
        }
    }

    /// The local build engine's configuration.
    pub fn local_config(&self) -> LocalConfig {
        LocalConfig {
            docker_host: self.docker_host.clone(),
            max_parallel_builds: self.max_parallel_builds,
            max_parallel_pushes: self.max_parallel_pushes,
            builder: self.builder.clone(),
        }
    }

    /// The hash cache directory (`cacheDir`), None for the default.
    pub fn cache_path(&self) -> Option<std::path::PathBuf> {
        self.cache_dir
            .as_deref()
            .filter(|d| !d.is_empty())
            .map(std::path::PathBuf::from)
    }

    /// Default credentials configured for `registry_host`, if any.
    pub fn credentials_for(&self, registry_host: &str) -> Option<BasicCredentials> {
        self.registry_auth
            .iter()
            .find(|a| a.address == registry_host)
            .map(|a| a.credentials.clone())
    }
}

fn read_parallel(r: &mut InputReader, env: &dyn Fn(&str) -> Option<String>) -> usize {
    let from_env =
        || env("IMAGEBUILD_MAX_PARALLEL_BUILDS").and_then(|s| s.trim().parse::<usize>().ok());
    match r.count("maxParallelBuilds") {
        Field::Known(0) => {
            r.fail(
                "maxParallelBuilds",
                "`maxParallelBuilds` must be at least 1 (the number of images built at once)",
            );
            1
        }
        Field::Known(n) => n as usize,
        _ => from_env()
            .filter(|n| *n > 0)
            .unwrap_or_else(crate::local::default_parallelism),
    }
}

/// A positive count from config or its environment variable; 0 when neither sets one.
fn read_count(
    r: &mut InputReader,
    env: &dyn Fn(&str) -> Option<String>,
    name: &str,
    var: &str,
) -> usize {
    match r.count(name) {
        Field::Known(0) => {
            r.fail(name, format!("`{name}` must be at least 1"));
            0
        }
        Field::Known(n) => n as usize,
        _ => env(var)
            .and_then(|s| s.trim().parse::<usize>().ok())
            .unwrap_or(0),
    }
}

/// `builder` (else BUILDKIT_HOST) and its TLS files, checked: a bad address or a half-given
/// client certificate is a failure on `builder`, naming the fix.
fn read_builder(
    r: &mut InputReader,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<Option<BuilderConfig>, Failure> {
    let address = r
        .string("builder")
        .known()
        .or_else(|| env("BUILDKIT_HOST"))
        .filter(|s| !s.trim().is_empty());
    let mut path = |name: &str| {
        r.string(name)
            .known()
            .filter(|s| !s.is_empty())
            .map(Into::into)
    };
    let (ca_cert, cert, key) = (
        path("builderCaCert"),
        path("builderCert"),
        path("builderKey"),
    );
    let Some(address) = address else {
        if ca_cert.is_some() || cert.is_some() || key.is_some() {
            return Err(Failure {
                property: "builder".into(),
                reason: "imagebuild:builderCaCert, builderCert and builderKey are set but \
                         imagebuild:builder is not: set it to the BuildKit daemon's tcp://host:port \
                         (or remove the certificate settings)"
                    .into(),
            });
        }
        return Ok(None);
    };
    let builder = BuilderConfig {
        address,
        ca_cert,
        cert,
        key,
    };
    builder.validate().map_err(|reason| Failure {
        property: "builder".into(),
        reason,
    })?;
    Ok(Some(builder))
}

fn read_registry_auth(
    r: &mut InputReader,
    args: &PropertyMap,
    env: &dyn Fn(&str) -> Option<String>,
) -> Vec<RegistryAuth> {
    let mut out = Vec::new();
    let items = match args.get("registryAuth").map(Value::reveal) {
        // Stack config for the default provider arrives as JSON text.
        Some(Value::String(json)) => match serde_json::from_str::<serde_json::Value>(&json) {
            Ok(v) => json_items(&v),
            Err(e) => {
                r.fail(
                    "registryAuth",
                    format!(
                        "`registryAuth` must be a list of {{address, username, password}}: {e}"
                    ),
                );
                return out;
            }
        },
        Some(Value::Array(items)) => items
            .iter()
            .map(|item| match item {
                Value::Object(m) => [
                    field(m, "address"),
                    field(m, "username"),
                    field(m, "password"),
                ],
                _ => [None, None, None],
            })
            .collect(),
        Some(Value::Null) | None => Vec::new(),
        Some(other) => {
            r.fail(
                "registryAuth",
                format!(
                    "`registryAuth` must be a list of {{address, username, password}}, got {}",
                    other.type_name()
                ),
            );
            return out;
        }
    };
    for (i, [address, username, password]) in items.into_iter().enumerate() {
        match (address, username, password) {
            (Some(address), Some(username), Some(password)) => out.push(RegistryAuth {
                address,
                credentials: BasicCredentials { username, password },
            }),
            _ => r.fail(
                format!("registryAuth[{i}]"),
                "each `registryAuth` entry needs `address`, `username` and `password`",
            ),
        }
    }
    let from_env = (
        env("IMAGEBUILD_REGISTRY_ADDRESS"),
        env("IMAGEBUILD_REGISTRY_USERNAME"),
        env("IMAGEBUILD_REGISTRY_PASSWORD"),
    );
    if let (Some(address), Some(username), Some(password)) = from_env {
        out.push(RegistryAuth {
            address,
            credentials: BasicCredentials { username, password },
        });
    }
    out
}

fn field(m: &PropertyMap, name: &str) -> Option<String> {
    match m.get(name).map(Value::reveal) {
        Some(Value::String(s)) => Some(s),
        _ => None,
    }
}

fn json_items(v: &serde_json::Value) -> Vec<[Option<String>; 3]> {
    let get =
        |item: &serde_json::Value, k: &str| item.get(k).and_then(|s| s.as_str()).map(String::from);
    v.as_array()
        .map(|items| {
            items
                .iter()
                .map(|i| [get(i, "address"), get(i, "username"), get(i, "password")])
                .collect()
        })
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {

    #[test]
    fn builder_reads_its_env_fallback_and_refuses_half_given_settings() {
        let env = |k: &str| (k == "BUILDKIT_HOST").then(|| "tcp://10.0.0.9:1234".to_string());
        let c = ProviderConfig::from_args_and_env(&PropertyMap::new(), &env).unwrap();
        assert_eq!(c.builder.unwrap().address, "tcp://10.0.0.9:1234");
        let no_env = |_: &str| None;
        let mut args = PropertyMap::new();
        args.insert("builderCert".into(), Value::String("c.pem".into()));
        let f = ProviderConfig::from_args_and_env(&args, &no_env).unwrap_err();
        assert!(
            f[0].property == "builder" && f[0].reason.contains("imagebuild:builder is not"),
            "{f:?}"
        );
        args.insert("builder".into(), Value::String("tcp://bk:1234".into()));
        let f = ProviderConfig::from_args_and_env(&args, &no_env).unwrap_err();
        assert!(f[0].reason.contains("builderCaCert"), "{f:?}");
        args.insert("builder".into(), Value::String("ssh://bk".into()));
        let f = ProviderConfig::from_args_and_env(&args, &no_env).unwrap_err();
        assert!(
            f[0].reason.contains("not a supported BuildKit address"),
            "{f:?}"
        );
    }
    use super::*;

    fn no_env(_: &str) -> Option<String> {
        None
    }

    #[test]
    fn strings_from_stack_config_are_coerced() {
        let mut args = PropertyMap::new();
        args.insert("maxParallelBuilds".into(), "3".into());
        args.insert(
            "registryAuth".into(),
            Value::Secret(Box::new(
                r#"[{"address":"r:5000","username":"u","password":"p"}]"#.into(),
            )),
        );
        args.insert("version".into(), "0.1.0".into());
        let c = ProviderConfig::from_args_and_env(&args, &no_env).unwrap();
        assert_eq!(c.max_parallel_builds, 3);
        assert_eq!(c.credentials_for("r:5000").unwrap().username, "u");
    }

    #[test]
    fn environment_is_the_fallback() {
        let env = |k: &str| match k {
            "AWS_DEFAULT_REGION" => Some("eu-west-1".to_string()),
            "DOCKER_HOST" => Some("tcp://10.0.0.1:2375".to_string()),
            "IMAGEBUILD_MAX_PARALLEL_BUILDS" => Some("5".to_string()),
            _ => None,
        };
        let c = ProviderConfig::from_args_and_env(&PropertyMap::new(), &env).unwrap();
        assert_eq!(c.region.as_deref(), Some("eu-west-1"));
        assert_eq!(c.docker_host.as_deref(), Some("tcp://10.0.0.1:2375"));
        assert_eq!(c.max_parallel_builds, 5);
    }

    #[test]
    fn zero_parallel_builds_is_refused() {
        let mut args = PropertyMap::new();
        args.insert("maxParallelBuilds".into(), Value::Number(0.0));
        let f = ProviderConfig::from_args_and_env(&args, &no_env).unwrap_err();
        assert_eq!(f[0].property, "maxParallelBuilds");
    }
}
