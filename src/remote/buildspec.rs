//! The generated buildspec: fetch and unpack the context tar.gz, ECR login, BuildKit build, push, export the digest.
//!
//! A build with named contexts moves each archived named directory out of the unpacked context
//! (so `COPY .` never sees them) and builds with `docker buildx build --build-context`; it fails
//! early, saying why, when the build image has no buildx. Without named contexts nothing changes.
//!
//! Rendered as JSON, which is valid YAML, so no value can break the document. Values go
//! into `env.variables` and commands only reference them, so no value is ever parsed by the
//! shell; secrets are not in the buildspec at all (they are typed environment variables).

use serde_json::{json, Map, Value};

use std::collections::BTreeSet;

use super::spec::{RemoteBuildSpec, RemoteContextSource};
use super::status::{DIGEST_MARKER, DIGEST_VARIABLE};

/// Renders the buildspec for `spec` (assumed validated).
pub fn render(spec: &RemoteBuildSpec) -> String {
    let doc = json!({
        "version": "0.2",
        "env": {
            "variables": Value::Object(variables(spec)),
            "exported-variables": [DIGEST_VARIABLE],
        },
        "phases": {
            "pre_build": { "commands": pre_build_commands(spec) },
            "build": { "commands": build_commands(spec) },
        },
    });
    serde_json::to_string_pretty(&doc).unwrap_or_default()
}

/// `env.variables`: every value the commands use, so none is ever parsed by the shell.
fn variables(spec: &RemoteBuildSpec) -> Map<String, Value> {
    let mut vars = Map::new();
    let mut set = |k: &str, v: &str| {
        vars.insert(k.to_string(), Value::String(v.to_string()));
    };
    let registry = &spec.repository.registry;
    set("DOCKER_BUILDKIT", "1");
    set("IB_CONTEXT_URI", &spec.context_object);
    set("IB_REGISTRY", registry);
    set(
        "IB_IMAGE",
        &format!("{}/{}", registry, spec.repository.repository),
    );
    set("IB_TAG", &spec.hash_tag);
    set("IB_DOCKERFILE", &spec.dockerfile);
    if let Some(region) = ecr_region(registry) {
        set("IB_ECR_REGION", region);
    }
    if let Some(p) = &spec.platform {
        set("IB_PLATFORM", p);
    }
    if let Some(t) = &spec.target {
        set("IB_TARGET", t);
    }
    if let Some(c) = &spec.cache_ref {
        set("IB_CACHE_REF", c);
    }
    for (i, (_, v)) in spec.build_args.iter().enumerate() {
        set(&format!("IB_BUILD_ARG_{i}"), v);
    }
    for (i, named) in spec.named_contexts.iter().enumerate() {
        set(&format!("IB_CONTEXT_NAME_{i}"), &named.name);
        match &named.source {
            RemoteContextSource::Archive(dir) => set(&format!("IB_CONTEXT_DIR_{i}"), dir),
            RemoteContextSource::Image(image) => set(&format!("IB_CONTEXT_IMAGE_{i}"), image),
        }
    }
    for (j, root) in archive_roots(spec).iter().enumerate() {
        set(&format!("IB_CONTEXT_ROOT_{j}"), root);
    }
    vars
}

/// Fetch and unpack the context, log in to the registry, and probe for buildx.
fn pre_build_commands(spec: &RemoteBuildSpec) -> Vec<String> {
    let login_region = if ecr_region(&spec.repository.registry).is_some() {
        "$IB_ECR_REGION"
    } else {
        "$AWS_REGION"
    };
    let mut pre_build = vec![
        r#"IB_WORK="$CODEBUILD_SRC_DIR/imagebuild" && rm -rf "$IB_WORK" && mkdir -p "$IB_WORK/context""#.to_string(),
        r#"aws s3 cp --quiet "$IB_CONTEXT_URI" "$IB_WORK/context.tar.gz""#.to_string(),
        // tar (not a ZIP source) keeps executable bits and symlinks exactly as hashed.
        r#"tar -xzf "$IB_WORK/context.tar.gz" -C "$IB_WORK/context" && rm -f "$IB_WORK/context.tar.gz""#.to_string(),
    ];
    pre_build.extend(unpack_named(spec));
    pre_build.push(format!(r#"aws ecr get-login-password --region "{login_region}" | docker login --username AWS --password-stdin "$IB_REGISTRY""#));
    if !spec.named_contexts.is_empty() {
        pre_build.push(NEED_BUILDX.to_string());
    }
    pre_build.push(buildx_probe(spec.cache_ref.is_some()));
    pre_build
}

/// The flags every build command shares: Dockerfile, platform, target, build args, secrets.
fn common_flags(spec: &RemoteBuildSpec) -> String {
    let mut common = String::from(r#"-f "$IB_WORK/context/$IB_DOCKERFILE""#);
    if spec.platform.is_some() {
        common.push_str(r#" --platform "$IB_PLATFORM""#);
    }
    if spec.target.is_some() {
        common.push_str(r#" --target "$IB_TARGET""#);
    }
    for (i, (k, _)) in spec.build_args.iter().enumerate() {
        common.push_str(&format!(r#" --build-arg "{k}=$IB_BUILD_ARG_{i}""#));
    }
    for s in &spec.secrets {
        common.push_str(&format!(r#" --secret "id={0},src=$IB_SECRETS/{0}""#, s.id));
    }
    common
}

/// Write the secret files, build, push, and export the pushed digest.
fn build_commands(spec: &RemoteBuildSpec) -> Vec<String> {
    let mut build = Vec::new();
    if !spec.secrets.is_empty() {
        // Secret files live only for the build command, in a private directory.
        let mut write = String::from(r#"IB_SECRETS=$(mktemp -d) && chmod 700 "$IB_SECRETS""#);
        for s in &spec.secrets {
            write.push_str(&format!(
                r#" && printf '%s' "${0}" > "$IB_SECRETS/{0}""#,
                s.id
            ));
        }
        build.push(write);
    }
    build.push(build_command(spec));
    build.push(
        r#"if [ "$IB_BUILDX" = 0 ]; then docker push "$IB_IMAGE:$IB_TAG" > "$IB_WORK/push.log" 2>&1; IB_RC=$?; cat "$IB_WORK/push.log"; [ "$IB_RC" = 0 ]; fi"#
            .to_string(),
    );
    build.push(format!(
        r#"if [ "$IB_BUILDX" = 1 ]; then {DIGEST_VARIABLE}=$(grep -o '"containerimage.digest": *"sha256:[0-9a-f]*"' "$IB_WORK/metadata.json" | grep -o 'sha256:[0-9a-f]*'); else {DIGEST_VARIABLE}=$(sed -n 's/.*digest: \(sha256:[0-9a-f]\{{64\}}\).*/\1/p' "$IB_WORK/push.log" | tail -n 1); fi; export {DIGEST_VARIABLE}"#
    ));
    build.push(format!(
        r#"if [ -z "${DIGEST_VARIABLE}" ]; then echo "imagebuild: could not read the pushed digest" >&2; exit 1; fi; echo "{DIGEST_MARKER}${DIGEST_VARIABLE}""#
    ));
    if spec.cache_ref.is_some() {
        // Inline cache lives in the image itself, so the cache ref is the image under another name.
        build.push(
            r#"if [ "$IB_BUILDX" = 0 ]; then docker tag "$IB_IMAGE:$IB_TAG" "$IB_CACHE_REF" && docker push "$IB_CACHE_REF" > /dev/null || echo "imagebuild: warning: could not push the cache image $IB_CACHE_REF"; fi"#
                .to_string(),
        );
    }
    build
}

/// The one build command: buildx when the build image has it, else the plain docker CLI.
fn build_command(spec: &RemoteBuildSpec) -> String {
    let common = common_flags(spec);
    let cached = spec.cache_ref.is_some();
    let buildx_cache = if cached {
        r#" --cache-from "type=registry,ref=$IB_CACHE_REF" --cache-to "type=registry,ref=$IB_CACHE_REF,mode=max,image-manifest=true,oci-mediatypes=true""#
    } else {
        ""
    };
    let inline_cache = if cached {
        r#" --build-arg BUILDKIT_INLINE_CACHE=1 --cache-from "$IB_CACHE_REF""#
    } else {
        " --build-arg BUILDKIT_INLINE_CACHE=1"
    };
    let cleanup = if spec.secrets.is_empty() {
        ""
    } else {
        r#"; rm -rf "$IB_SECRETS""#
    };
    if spec.named_contexts.is_empty() {
        return format!(
            r#"if [ "$IB_BUILDX" = 1 ]; then docker buildx build --progress=plain {common}{buildx_cache} --metadata-file "$IB_WORK/metadata.json" --push -t "$IB_IMAGE:$IB_TAG" "$IB_WORK/context"; else docker build --progress=plain {common}{inline_cache} -t "$IB_IMAGE:$IB_TAG" "$IB_WORK/context"; fi; IB_RC=$?{cleanup}; [ "$IB_RC" = 0 ]"#
        );
    }
    // buildx's default builder (the daemon's BuildKit) loads the image; `docker push` follows
    // as on the plain path. No provenance attestation: it would make the pushed image an index.
    let named = named_flags(spec);
    format!(
        r#"if [ "$IB_BUILDX" = 1 ]; then docker buildx build --progress=plain {common}{named}{buildx_cache} --provenance=false --metadata-file "$IB_WORK/metadata.json" --push -t "$IB_IMAGE:$IB_TAG" "$IB_WORK/context"; else docker buildx build --builder default --progress=plain {common}{named}{inline_cache} --provenance=false --load -t "$IB_IMAGE:$IB_TAG" "$IB_WORK/context"; fi; IB_RC=$?{cleanup}; [ "$IB_RC" = 0 ]"#
    )
}

/// Fails the build early, naming the reason and the fix, when named contexts meet a build image without buildx.
const NEED_BUILDX: &str = r#"if ! docker buildx version >/dev/null 2>&1; then echo "imagebuild: this build uses named contexts (the contexts input), which need docker buildx (Docker 23 or later); the build image has no buildx: use a build image with Docker 23+ and buildx (e.g. aws/codebuild/standard:7.0 or later)" >&2; exit 1; fi"#;

/// The top-level archive directories holding named contexts (normally one).
fn archive_roots(spec: &RemoteBuildSpec) -> BTreeSet<&str> {
    spec.named_contexts
        .iter()
        .filter_map(|named| match &named.source {
            RemoteContextSource::Archive(dir) => dir.split('/').next(),
            RemoteContextSource::Image(_) => None,
        })
        .collect()
}

/// Moves each archived named context out of the unpacked main context (so `COPY .` does not see
/// it) to `$IB_WORK/named/<i>`, made empty when nothing was read from it.
fn unpack_named(spec: &RemoteBuildSpec) -> Option<String> {
    let roots = archive_roots(spec).len();
    if roots == 0 {
        return None;
    }
    let mut command = String::from(r#"mkdir -p "$IB_WORK/named""#);
    for (i, named) in spec.named_contexts.iter().enumerate() {
        if let RemoteContextSource::Archive(_) = &named.source {
            command.push_str(&format!(
                r#" && if [ -d "$IB_WORK/context/$IB_CONTEXT_DIR_{i}" ]; then mv "$IB_WORK/context/$IB_CONTEXT_DIR_{i}" "$IB_WORK/named/{i}"; else mkdir "$IB_WORK/named/{i}"; fi"#
            ));
        }
    }
    for j in 0..roots {
        command.push_str(&format!(
            r#" && rm -rf "$IB_WORK/context/$IB_CONTEXT_ROOT_{j}""#
        ));
    }
    Some(command)
}

/// `--build-context` flags; names and references are only referenced as variables.
fn named_flags(spec: &RemoteBuildSpec) -> String {
    let mut flags = String::new();
    for (i, named) in spec.named_contexts.iter().enumerate() {
        flags.push_str(&match &named.source {
            RemoteContextSource::Archive(_) => {
                format!(r#" --build-context "$IB_CONTEXT_NAME_{i}=$IB_WORK/named/{i}""#)
            }
            RemoteContextSource::Image(_) => {
                format!(r#" --build-context "$IB_CONTEXT_NAME_{i}=docker-image://$IB_CONTEXT_IMAGE_{i}""#)
            }
        });
    }
    flags
}

/// Sets IB_BUILDX=1 when the registry cache can be exported: buildx present and a
/// docker-container builder created (buildx's default docker driver cannot export a
/// registry cache). Without a cache ref the plain BuildKit path is used: it needs nothing extra.
fn buildx_probe(cached: bool) -> String {
    if !cached {
        return r#"IB_BUILDX=0; echo "imagebuild: no cache ref, plain BuildKit build with inline cache""#.to_string();
    }
    r#"if docker buildx version >/dev/null 2>&1 && docker buildx create --use --name imagebuild --driver docker-container >/dev/null 2>&1; then IB_BUILDX=1; else IB_BUILDX=0; fi; echo "imagebuild: buildx registry cache: $IB_BUILDX""#.to_string()
}

/// The region of an ECR registry host (`<account>.dkr.ecr.<region>.amazonaws.com[.cn]`).
pub(crate) fn ecr_region(host: &str) -> Option<&str> {
    ecr_parts(host).map(|(_, region)| region)
}

/// The account id of an ECR registry host.
pub(crate) fn ecr_account(host: &str) -> Option<&str> {
    ecr_parts(host).map(|(account, _)| account)
}

fn ecr_parts(host: &str) -> Option<(&str, &str)> {
    let host = host.split(':').next()?;
    let mut it = host.splitn(5, '.');
    let account = it.next()?;
    let (dkr, ecr, region, rest) = (it.next()?, it.next()?, it.next()?, it.next()?);
    let ok = account.len() == 12
        && account.bytes().all(|b| b.is_ascii_digit())
        && dkr == "dkr"
        && (ecr == "ecr" || ecr == "ecr-fips")
        && !region.is_empty()
        && rest.starts_with("amazonaws.com");
    ok.then_some((account, region))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::registry::ImageName;
    use crate::remote::spec::{
        ProjectChoice, RemoteContextSource, RemoteNamedContext, RemoteSecret, SecretKind,
    };

    fn spec() -> RemoteBuildSpec {
        RemoteBuildSpec {
            context_hash: "a".repeat(64),
            context_object: "s3://b/k.tar.gz".into(),
            repository: ImageName {
                registry: "123456789012.dkr.ecr.eu-west-1.amazonaws.com".into(),
                repository: "team/app".into(),
            },
            hash_tag: "a".repeat(64),
            dockerfile: "Dockerfile".into(),
            project: ProjectChoice::Existing("p".into()),
            platform: Some("linux/arm64".into()),
            target: None,
            build_args: [("V".to_string(), "it's $HOME \"x\"".to_string())].into(),
            timeout_minutes: 30,
            cache_ref: Some("123456789012.dkr.ecr.eu-west-1.amazonaws.com/team/app:cache".into()),
            secrets: vec![RemoteSecret {
                id: "NPM_TOKEN".into(),
                kind: SecretKind::ParameterStore,
                reference: "/ci/npm".into(),
            }],
            named_contexts: Vec::new(),
        }
    }

    fn with_named() -> RemoteBuildSpec {
        RemoteBuildSpec {
            cache_ref: None,
            named_contexts: vec![
                RemoteNamedContext {
                    name: "shared".into(),
                    source: RemoteContextSource::Archive(".imagebuild-contexts/0".into()),
                },
                RemoteNamedContext {
                    name: "docker.io/library/python:3.12".into(),
                    source: RemoteContextSource::Image("python@sha256:abc $(x)".into()),
                },
            ],
            ..spec()
        }
    }

    fn commands(doc: &Value, phase: &str) -> Vec<String> {
        doc["phases"][phase]["commands"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| c.as_str().unwrap().to_string())
            .collect()
    }

    #[test]
    fn without_named_contexts_the_buildspec_is_exactly_the_previous_one() {
        // Rendered before named contexts existed; the plain and the cached path must not move.
        assert_eq!(
            render(&spec()),
            include_str!("testdata/buildspec-cached.json")
        );
        let plain = RemoteBuildSpec {
            cache_ref: None,
            secrets: Vec::new(),
            ..spec()
        };
        assert_eq!(
            render(&plain),
            include_str!("testdata/buildspec-plain.json")
        );
    }

    #[test]
    fn named_contexts_build_with_buildx_and_fail_early_without_it() {
        let doc: Value = serde_json::from_str(&render(&with_named())).unwrap();
        let vars = &doc["env"]["variables"];
        assert_eq!(vars["IB_CONTEXT_NAME_0"], "shared");
        assert_eq!(vars["IB_CONTEXT_DIR_0"], ".imagebuild-contexts/0");
        assert_eq!(vars["IB_CONTEXT_NAME_1"], "docker.io/library/python:3.12");
        assert_eq!(vars["IB_CONTEXT_IMAGE_1"], "python@sha256:abc $(x)");
        assert_eq!(vars["IB_CONTEXT_ROOT_0"], ".imagebuild-contexts");
        let text = render(&with_named());
        assert!(
            !text.contains("commands\": [\"python@"),
            "values live only in env.variables"
        );

        let pre = commands(&doc, "pre_build");
        let unpack = pre
            .iter()
            .position(|c| c.contains("$IB_WORK/named"))
            .unwrap();
        let untar = pre.iter().position(|c| c.starts_with("tar -xzf")).unwrap();
        assert_eq!(
            unpack,
            untar + 1,
            "named dirs leave the context right after unpacking"
        );
        assert_eq!(
            pre[unpack],
            r#"mkdir -p "$IB_WORK/named" && if [ -d "$IB_WORK/context/$IB_CONTEXT_DIR_0" ]; then mv "$IB_WORK/context/$IB_CONTEXT_DIR_0" "$IB_WORK/named/0"; else mkdir "$IB_WORK/named/0"; fi && rm -rf "$IB_WORK/context/$IB_CONTEXT_ROOT_0""#
        );
        let need = pre
            .iter()
            .position(|c| c.contains("need docker buildx"))
            .unwrap();
        assert!(pre[need].starts_with("if ! docker buildx version"));
        assert!(pre[need].contains("Docker 23 or later") && pre[need].ends_with("exit 1; fi"));
        assert!(need < pre.len() - 1 && pre.last().unwrap().starts_with("IB_BUILDX=0"));

        let build = commands(&doc, "build");
        let flags = r#" --build-context "$IB_CONTEXT_NAME_0=$IB_WORK/named/0" --build-context "$IB_CONTEXT_NAME_1=docker-image://$IB_CONTEXT_IMAGE_1""#;
        let main = build.iter().find(|c| c.contains("buildx build")).unwrap();
        assert!(
            main.contains(&format!(
                r#"; else docker buildx build --builder default --progress=plain -f "$IB_WORK/context/$IB_DOCKERFILE" --platform "$IB_PLATFORM" --build-arg "V=$IB_BUILD_ARG_0" --secret "id=NPM_TOKEN,src=$IB_SECRETS/NPM_TOKEN"{flags} --build-arg BUILDKIT_INLINE_CACHE=1 --provenance=false --load -t "$IB_IMAGE:$IB_TAG" "$IB_WORK/context"; fi"#
            )),
            "{main}"
        );
        assert!(
            !build.iter().any(|c| c.contains("docker build ")),
            "no plain docker build"
        );
        assert!(build
            .iter()
            .all(|c| !c.contains("--build-context") || c.contains("--provenance=false")));
        // The image is pushed and its digest read exactly as on the plain path.
        let plain: Value = serde_json::from_str(&render(&RemoteBuildSpec {
            cache_ref: None,
            ..spec()
        }))
        .unwrap();
        assert_eq!(
            build[build.len() - 3..],
            commands(&plain, "build")[build.len() - 3..]
        );
    }

    #[test]
    fn named_contexts_with_a_cache_ref_keep_the_registry_cache_probe() {
        let doc: Value = serde_json::from_str(&render(&RemoteBuildSpec {
            cache_ref: spec().cache_ref,
            ..with_named()
        }))
        .unwrap();
        let pre = commands(&doc, "pre_build");
        assert!(pre.last().unwrap().contains("--driver docker-container"));
        let build = commands(&doc, "build").join("\n");
        assert!(build.contains(
            r#"--build-context "$IB_CONTEXT_NAME_1=docker-image://$IB_CONTEXT_IMAGE_1" --cache-from "type=registry"#
        ));
    }

    #[test]
    fn image_only_named_contexts_need_no_unpacking() {
        let spec = RemoteBuildSpec {
            named_contexts: vec![RemoteNamedContext {
                name: "base".into(),
                source: RemoteContextSource::Image("busybox:1".into()),
            }],
            ..spec()
        };
        let doc: Value = serde_json::from_str(&render(&spec)).unwrap();
        assert!(!commands(&doc, "pre_build")
            .iter()
            .any(|c| c.contains("$IB_WORK/named")));
        assert!(commands(&doc, "pre_build")
            .iter()
            .any(|c| c.contains("need docker buildx")));
    }

    #[test]
    fn named_context_names_are_checked() {
        for (name, dir) in [
            ("a=b", ".imagebuild-contexts/0"),
            ("a b", ".imagebuild-contexts/0"),
            ("ok", "../x"),
            ("ok", "/abs"),
        ] {
            let spec = RemoteBuildSpec {
                named_contexts: vec![RemoteNamedContext {
                    name: name.into(),
                    source: RemoteContextSource::Archive(dir.into()),
                }],
                ..spec()
            };
            assert!(spec.validate().is_err(), "{name} {dir}");
        }
        assert!(with_named().validate().is_ok());
    }

    #[test]
    fn parses_as_yaml_shaped_json_with_values_only_in_env() {
        let text = render(&spec());
        let doc: Value = serde_json::from_str(&text).unwrap();
        assert_eq!(doc["version"], "0.2");
        assert_eq!(doc["env"]["exported-variables"][0], DIGEST_VARIABLE);
        assert_eq!(
            doc["env"]["variables"]["IB_BUILD_ARG_0"],
            "it's $HOME \"x\""
        );
        assert_eq!(doc["env"]["variables"]["IB_ECR_REGION"], "eu-west-1");
        let build = doc["phases"]["build"]["commands"].to_string();
        assert!(build.contains("--build-arg \\\"V=$IB_BUILD_ARG_0\\\""));
        assert!(build.contains("image-manifest=true,oci-mediatypes=true"));
        assert!(build.contains("id=NPM_TOKEN,src=$IB_SECRETS/NPM_TOKEN"));
        assert!(build.contains("--platform"));
        assert!(
            !text.contains("/ci/npm"),
            "secret references travel as typed variables, not in the buildspec"
        );
        assert!(!build.contains("--target"));
    }

    #[test]
    fn registry_cache_needs_a_docker_container_builder() {
        let with = render(&spec());
        assert!(with.contains("--driver docker-container"));
        let without = render(&RemoteBuildSpec {
            cache_ref: None,
            ..spec()
        });
        assert!(!without.contains("buildx create"));
        assert!(!without.contains("--cache-from"));
        assert!(without.contains("BUILDKIT_INLINE_CACHE=1"));
    }

    #[test]
    fn ecr_hosts() {
        assert_eq!(
            ecr_region("123456789012.dkr.ecr.us-east-1.amazonaws.com"),
            Some("us-east-1")
        );
        assert_eq!(
            ecr_account("123456789012.dkr.ecr.cn-north-1.amazonaws.com.cn"),
            Some("123456789012")
        );
        assert_eq!(ecr_region("127.0.0.1:5000"), None);
        assert_eq!(ecr_region("ghcr.io"), None);
    }
}
