//! The generated buildspec: fetch and unpack the context tar.gz, ECR login, BuildKit build, push, export the digest.
//!
//! Rendered as JSON, which is valid YAML, so no value can break the document. Values go
//! into `env.variables` and commands only reference them, so no value is ever parsed by the
//! shell; secrets are not in the buildspec at all (they are typed environment variables).

use serde_json::{json, Map, Value};

use super::spec::RemoteBuildSpec;
use super::status::{DIGEST_MARKER, DIGEST_VARIABLE};

/// Renders the buildspec for `spec` (assumed validated).
pub fn render(spec: &RemoteBuildSpec) -> String {
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
    let login_region = if ecr_region(registry).is_some() {
        "$IB_ECR_REGION"
    } else {
        "$AWS_REGION"
    };

    let pre_build = vec![
        r#"IB_WORK="$CODEBUILD_SRC_DIR/imagebuild" && rm -rf "$IB_WORK" && mkdir -p "$IB_WORK/context""#.to_string(),
        r#"aws s3 cp --quiet "$IB_CONTEXT_URI" "$IB_WORK/context.tar.gz""#.to_string(),
        // tar (not a ZIP source) keeps executable bits and symlinks exactly as hashed.
        r#"tar -xzf "$IB_WORK/context.tar.gz" -C "$IB_WORK/context" && rm -f "$IB_WORK/context.tar.gz""#.to_string(),
        format!(r#"aws ecr get-login-password --region "{login_region}" | docker login --username AWS --password-stdin "$IB_REGISTRY""#),
        buildx_probe(cached),
    ];

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
    let cleanup = if spec.secrets.is_empty() {
        ""
    } else {
        r#"; rm -rf "$IB_SECRETS""#
    };
    build.push(format!(
        r#"if [ "$IB_BUILDX" = 1 ]; then docker buildx build --progress=plain {common}{buildx_cache} --metadata-file "$IB_WORK/metadata.json" --push -t "$IB_IMAGE:$IB_TAG" "$IB_WORK/context"; else docker build --progress=plain {common}{inline_cache} -t "$IB_IMAGE:$IB_TAG" "$IB_WORK/context"; fi; IB_RC=$?{cleanup}; [ "$IB_RC" = 0 ]"#
    ));
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
    if cached {
        // Inline cache lives in the image itself, so the cache ref is the image under another name.
        build.push(
            r#"if [ "$IB_BUILDX" = 0 ]; then docker tag "$IB_IMAGE:$IB_TAG" "$IB_CACHE_REF" && docker push "$IB_CACHE_REF" > /dev/null || echo "imagebuild: warning: could not push the cache image $IB_CACHE_REF"; fi"#
                .to_string(),
        );
    }

    let doc = json!({
        "version": "0.2",
        "env": {
            "variables": Value::Object(vars),
            "exported-variables": [DIGEST_VARIABLE],
        },
        "phases": {
            "pre_build": { "commands": pre_build },
            "build": { "commands": build },
        },
    });
    serde_json::to_string_pretty(&doc).unwrap_or_default()
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
    use crate::remote::spec::{ProjectChoice, RemoteSecret, SecretKind};

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
        }
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
