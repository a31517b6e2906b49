//! The `Solve` request of a Control API build: the Dockerfile frontend with the attributes the
//! daemon's `/build` endpoint would set for the same inputs (so both paths build the same image),
//! plus the named contexts `/build` cannot pass, and the daemon's own image exporter.

use std::collections::HashMap;

use bollard::moby::buildkit::v1::{CacheOptions, CacheOptionsEntry, Exporter, SolveRequest};

use super::builder::BuildRequest;
use super::syncdirs::NamedDir;
use super::{BuildSpec, CacheTo};

/// The Dockerfile frontend built into BuildKit.
const FRONTEND: &str = "dockerfile.v0";
/// The daemon's exporter: stores and names the image as `/build` does (on the containerd store
/// it wraps BuildKit's `image` exporter with `unpack=true` and moby's naming).
const EXPORTER: &str = "moby";

/// Frontend attributes: those `/build` derives from its query (filename, target, platform,
/// build args, labels, no-cache, cache-from, image resolve mode), then the named contexts.
pub(crate) fn frontend_attrs(
    spec: &BuildSpec,
    dockerfile: &str,
    inline_cache: bool,
    named: &[NamedDir],
) -> HashMap<String, String> {
    let mut attrs = HashMap::new();
    attrs.insert("filename".to_string(), dockerfile.to_string());
    if let Some(t) = &spec.target {
        attrs.insert("target".into(), t.clone());
    }
    if let Some(p) = &spec.platform {
        attrs.insert("platform".into(), p.clone());
    }
    let mut args = spec.build_args.clone();
    if inline_cache {
        args.insert("BUILDKIT_INLINE_CACHE".into(), "1".into());
    }
    for (k, v) in args {
        attrs.insert(format!("build-arg:{k}"), v);
    }
    for (k, v) in &spec.labels {
        attrs.insert(format!("label:{k}"), v.clone());
    }
    if spec.no_cache {
        attrs.insert("no-cache".into(), String::new());
    }
    attrs.insert("cache-from".into(), spec.cache_from.join(","));
    // `/build` without `pull`: local images first.
    attrs.insert("image-resolve-mode".into(), "default".into());
    for n in named {
        attrs.insert(format!("context:{}", n.name), format!("local:{}", n.dir));
        attrs.insert(format!("sharedkey:localdir:{}", n.name), n.key.clone());
    }
    for (name, reference) in &spec.image_contexts {
        attrs.insert(
            format!("context:{name}"),
            format!("docker-image://{reference}"),
        );
    }
    attrs
}

/// The whole request for build `build_ref` on session `session_id`, tagging `req.tag`.
pub(crate) fn solve_request(
    req: &BuildRequest<'_>,
    named: &[NamedDir],
    build_ref: &str,
    session_id: &str,
) -> SolveRequest {
    let exporter_attrs: HashMap<String, String> =
        HashMap::from([("name".to_string(), req.tag.to_string())]);
    let mut exports = Vec::new();
    if req.inline_cache {
        exports.push(CacheOptionsEntry {
            r#type: "inline".into(),
            attrs: HashMap::new(),
        });
    }
    if let Some(cache_to) = &req.spec.cache_to {
        exports.push(registry_cache_export(cache_to));
    }
    SolveRequest {
        r#ref: build_ref.to_string(),
        session: session_id.to_string(),
        frontend: FRONTEND.into(),
        frontend_attrs: frontend_attrs(req.spec, req.dockerfile, req.inline_cache, named),
        exporters: vec![Exporter {
            r#type: EXPORTER.into(),
            attrs: exporter_attrs.clone(),
        }],
        // BuildKit before v0.13 (Engine 23 to 25) reads only these; later ones use `exporters`.
        exporter_deprecated: EXPORTER.into(),
        exporter_attrs_deprecated: exporter_attrs,
        cache: Some(CacheOptions {
            exports,
            ..CacheOptions::default()
        }),
        ..SolveRequest::default()
    }
}

/// BuildKit's image exporter, for a standalone builder: it pushes the image to the registry
/// itself (the builder's own store is of no use to the user).
const IMAGE_EXPORTER: &str = "image";

/// The `Solve` request of a build on a standalone BuildKit daemon: the same frontend attributes
/// as on a Docker daemon; with `push`, the image exporter pushing every one of `names` (full
/// references) with inline cache metadata; without, the image stays in the builder's cache.
pub(crate) fn builder_solve_request(
    spec: &BuildSpec,
    dockerfile: &str,
    names: &[String],
    push: bool,
    named: &[NamedDir],
    ids: (&str, &str),
) -> SolveRequest {
    let (build_ref, session_id) = ids;
    let exporter_attrs: HashMap<String, String> = HashMap::from([
        ("name".to_string(), names.join(",")),
        ("push".to_string(), "true".to_string()),
    ]);
    let mut exports = Vec::new();
    if push {
        exports.push(CacheOptionsEntry {
            r#type: "inline".into(),
            attrs: HashMap::new(),
        });
    }
    exports.extend(spec.cache_to.iter().map(registry_cache_export));
    let (exporters, deprecated) = if push {
        let exporter = Exporter {
            r#type: IMAGE_EXPORTER.into(),
            attrs: exporter_attrs.clone(),
        };
        (vec![exporter], (IMAGE_EXPORTER.to_string(), exporter_attrs))
    } else {
        (Vec::new(), (String::new(), HashMap::new()))
    };
    SolveRequest {
        r#ref: build_ref.to_string(),
        session: session_id.to_string(),
        frontend: FRONTEND.into(),
        frontend_attrs: frontend_attrs(spec, dockerfile, push, named),
        exporters,
        exporter_deprecated: deprecated.0,
        exporter_attrs_deprecated: deprecated.1,
        cache: Some(CacheOptions {
            exports,
            ..CacheOptions::default()
        }),
        ..SolveRequest::default()
    }
}

/// The registry cache export: an OCI image manifest (`image-manifest=true`, OCI media types),
/// the layout ECR accepts, where BuildKit's default is an index.
pub(crate) fn registry_cache_export(cache_to: &CacheTo) -> CacheOptionsEntry {
    let attrs = [
        ("ref", cache_to.reference_text()),
        ("mode", cache_to.mode.as_str().to_string()),
        ("image-manifest", "true".to_string()),
        ("oci-mediatypes", "true".to_string()),
    ];
    CacheOptionsEntry {
        r#type: "registry".into(),
        attrs: attrs.into_iter().map(|(k, v)| (k.to_string(), v)).collect(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::local::daemon::DaemonAddr;
    use crate::local::BuildSpec;
    use std::collections::BTreeMap;
    use std::sync::Arc;

    fn spec() -> BuildSpec {
        BuildSpec {
            snapshot: crate::context::ContextSnapshot {
                hash: "0".repeat(64),
                legacy_hash: "1".repeat(64),
                files: 0,
                bytes: 0,
                root: "/ctx".into(),
                entries: Arc::new(Vec::new()),
                used: Arc::new(Vec::new()),
                reads: crate::context::ContextReads::whole("test"),
                ignore_file: None,
                dockerfile_contents: Arc::new(b"FROM x\n".to_vec()),
                dockerfile_path: None,
                dockerfile_in_context: None,
                named: Vec::new(),
            },
            target: Some("app".into()),
            build_args: BTreeMap::from([("A".into(), "1".into())]),
            platform: Some("linux/amd64".into()),
            labels: BTreeMap::from([("team".into(), "x".into())]),
            no_cache: true,
            cache_from: vec!["r/a:1".into(), "r/b:2".into()],
            cache_to: None,
            secrets: BTreeMap::from([("tok".into(), "s3cr3t".into())]),
            ssh: vec![],
            dockerfile_text: None,
            image_contexts: BTreeMap::from([("base".into(), "busybox:latest".into())]),
        }
    }

    /// The request for `spec` with the Dockerfile `app.Dockerfile`, tagging `reg/app:abc`.
    fn request<'a>(
        spec: &'a BuildSpec,
        addr: &'a DaemonAddr,
        inline_cache: bool,
    ) -> BuildRequest<'a> {
        BuildRequest {
            addr,
            api_prefix: "/v1.56",
            buildkit: true,
            spec,
            tag: "reg/app:abc",
            dockerfile: "app.Dockerfile",
            files: None,
            creds: Arc::default(),
            inline_cache,
        }
    }

    #[test]
    fn attrs_match_the_build_endpoint_plus_named_contexts() {
        let spec = spec();
        let addr = DaemonAddr::resolve(Some("unix:///x.sock")).unwrap();
        let req = request(&spec, &addr, true);
        let named = [NamedDir {
            name: "shared".into(),
            dir: "shared".into(),
            key: "k1".into(),
        }];
        let r = solve_request(&req, &named, "ref1", "sess1");
        let a = &r.frontend_attrs;
        let want = [
            ("filename", "app.Dockerfile"),
            ("target", "app"),
            ("platform", "linux/amd64"),
            ("build-arg:A", "1"),
            ("build-arg:BUILDKIT_INLINE_CACHE", "1"),
            ("label:team", "x"),
            ("no-cache", ""),
            ("cache-from", "r/a:1,r/b:2"),
            ("image-resolve-mode", "default"),
            ("context:shared", "local:shared"),
            ("sharedkey:localdir:shared", "k1"),
            ("context:base", "docker-image://busybox:latest"),
        ];
        for (k, v) in want {
            assert_eq!(a.get(k).map(String::as_str), Some(v), "{k}");
        }
        assert_eq!(a.len(), want.len(), "{a:?}");
        // Secrets travel only through the session.
        assert!(!format!("{r:?}").contains("s3cr3t"));
        assert_eq!((r.r#ref.as_str(), r.session.as_str()), ("ref1", "sess1"));
        assert_eq!(r.frontend, "dockerfile.v0");
        assert_eq!(r.exporters.len(), 1);
        assert_eq!(r.exporters[0].r#type, "moby");
        assert_eq!(r.exporters[0].attrs["name"], "reg/app:abc");
        assert_eq!(r.exporter_deprecated, "moby");
        let cache = r.cache.unwrap();
        assert_eq!(cache.exports.len(), 1);
        assert_eq!(cache.exports[0].r#type, "inline");
    }

    #[test]
    fn a_builder_solve_pushes_every_name_with_the_image_exporter() {
        let spec = spec();
        let names = ["reg/app:abc".to_string(), "reg/app:latest".to_string()];
        let r = builder_solve_request(&spec, "app.Dockerfile", &names, true, &[], ("r1", "s1"));
        assert_eq!(r.exporters.len(), 1);
        assert_eq!(r.exporters[0].r#type, "image");
        assert_eq!(r.exporters[0].attrs["name"], "reg/app:abc,reg/app:latest");
        assert_eq!(r.exporters[0].attrs["push"], "true");
        assert_eq!(r.frontend_attrs["build-arg:BUILDKIT_INLINE_CACHE"], "1");
        assert_eq!(r.frontend_attrs["filename"], "app.Dockerfile");
        assert!(!format!("{r:?}").contains("s3cr3t"));
        let local =
            builder_solve_request(&spec, "app.Dockerfile", &names, false, &[], ("r1", "s1"));
        assert!(local.exporters.is_empty() && local.exporter_deprecated.is_empty());
        assert!(!local
            .frontend_attrs
            .contains_key("build-arg:BUILDKIT_INLINE_CACHE"));
    }

    #[test]
    fn cache_to_adds_an_oci_registry_cache_export() {
        let mut spec = spec();
        spec.cache_to = Some(CacheTo {
            reference: crate::registry::ImageName::parse("reg.example/app").unwrap(),
            tag: "buildcache".into(),
            mode: crate::local::CacheMode::Max,
        });
        let addr = DaemonAddr::resolve(Some("unix:///x.sock")).unwrap();
        let req = request(&spec, &addr, false);
        let exports = solve_request(&req, &[], "ref1", "sess1")
            .cache
            .unwrap()
            .exports;
        assert_eq!(exports.len(), 1, "{exports:?}");
        assert_eq!(exports[0].r#type, "registry");
        let want = [
            ("ref", "reg.example/app:buildcache"),
            ("mode", "max"),
            ("image-manifest", "true"),
            ("oci-mediatypes", "true"),
        ];
        for (k, v) in want {
            assert_eq!(exports[0].attrs.get(k).map(String::as_str), Some(v), "{k}");
        }
    }
}
