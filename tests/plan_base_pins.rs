//! A base image a registry serves is pinned by digest: its digest enters the hash, a moved tag
//! rebuilds the dependent image, and the build uses exactly the digest that was hashed (the
//! Dockerfile BuildKit receives names it), not whatever the tag points at when the build runs.

mod local_common;

use std::collections::BTreeMap;
use std::sync::Arc;

use imagebuild::context::DockerfileSource;
use imagebuild::plan::{host_platform, make_plan, BaseLookup, Plan, PlanError, PlanRequest};
use imagebuild::registry::RegistryConfig;
use local_common::*;
use tokio_util::sync::CancellationToken;

fn lookup() -> BaseLookup {
    BaseLookup {
        daemon: Some(None),
        registry_for: Arc::new(|_| RegistryConfig {
            explicit: Some(registry_creds()),
            ..Default::default()
        }),
    }
}

async fn plan(dir: &std::path::Path) -> Plan {
    plan_for(dir, &host_platform())
        .await
        .unwrap_or_else(|e| panic!("plan: {e}"))
}

async fn plan_for(dir: &std::path::Path, platform: &str) -> Result<Plan, PlanError> {
    let req = PlanRequest {
        context: dir.to_path_buf(),
        dockerfile: DockerfileSource::Path(dir.join("Dockerfile")),
        build_args: BTreeMap::new(),
        target: None,
        platform: platform.to_string(),
        labels: BTreeMap::new(),
        contexts: BTreeMap::new(),
        cache_dir: Some(std::env::temp_dir().join("imagebuild-local-tests-cache")),
    };
    make_plan(&req, &lookup()).await
}

/// Builds a base image whose /marker holds `marker` and pushes it as `repo:tag`.
async fn push_base(repo: &imagebuild::registry::ImageName, marker: &str) -> String {
    let dir = write_tree(&[(
        "Dockerfile",
        &format!("FROM {BUSYBOX}\nRUN echo {marker} > /marker\n"),
    )]);
    let snap = snapshot(dir.path(), "", Some("Dockerfile"), marker);
    let mut spec = publish_spec(build_spec(snap), repo.clone());
    spec.hash_tag = marker.to_string();
    spec.extra_tags = vec!["base".to_string()];
    let (published, _) = publish(&engine(1), spec, CancellationToken::new()).await;
    published
        .unwrap_or_else(|e| panic!("base build: {e}"))
        .digest
        .expect("pushed")
}

/// Builds the dependent image (not pushed) and reads its /seen.
async fn build_and_read_marker(plan: &Plan) -> String {
    let mut build = build_spec(plan.snapshot.clone());
    build.dockerfile_text = plan.build_dockerfile.clone();
    let mut spec = publish_spec(build, unique_repo("pinned-app"));
    spec.push = false;
    let image = spec.repository.with_tag(&spec.hash_tag);
    let (published, _) = publish(&engine(1), spec, CancellationToken::new()).await;
    published.unwrap_or_else(|e| panic!("app build: {e}"));
    let out = docker(&["run", "--rm", &image, "cat", "/seen"]);
    docker(&["rmi", "-f", &image]);
    out.trim().to_string()
}

#[tokio::test]
async fn a_moved_base_tag_rebuilds_and_the_build_uses_the_hashed_digest() {
    require_services();
    let base = unique_repo("pinned-base");
    let first = push_base(&base, "first").await;
    let app = write_tree(&[(
        "Dockerfile",
        &format!("FROM {}\nRUN cat /marker > /seen\n", base.with_tag("base")),
    )]);
    let before = plan(app.path()).await;
    let text = String::from_utf8(before.build_dockerfile.as_deref().unwrap().clone()).unwrap();
    assert!(text.contains(&format!(":base@{first}")), "{text}");
    assert_eq!(build_and_read_marker(&before).await, "first");

    // The tag moves in the registry: a new hash, and the build uses the new digest.
    let second = push_base(&base, "second").await;
    assert_ne!(first, second);
    let after = plan(app.path()).await;
    assert_ne!(before.snapshot.hash, after.snapshot.hash);
    assert_eq!(build_and_read_marker(&after).await, "second");

    // The earlier plan still builds exactly what it hashed, though the tag has moved since.
    assert_eq!(build_and_read_marker(&before).await, "first");
}

/// A base image the daemon has only for another platform is a Check-time error naming the
/// image, both platforms and the fix, on both engines (Engine 29 would otherwise build an amd64
/// filesystem labelled arm64). The arm64 base of the same content plans fine.
#[tokio::test]
async fn a_base_missing_for_the_requested_platform_fails_the_plan() {
    require_services();
    let app = write_tree(&[("Dockerfile", &format!("FROM {BUSYBOX}\nRUN uname -m\n"))]);
    let e = plan_for(app.path(), "linux/arm64")
        .await
        .expect_err("an amd64-only base cannot serve linux/arm64");
    let msg = e.to_string();
    assert!(matches!(e, PlanError::BasePlatform { .. }), "{msg}");
    for part in [
        "line 1",
        &format!("base image docker.io/{BUSYBOX} has no linux/arm64 variant locally"),
        "the local image is linux/amd64",
        "build or load a linux/arm64 image under that name",
    ] {
        assert!(msg.contains(part), "{part:?} not in: {msg}");
    }

    let arm = write_tree(&[(
        "Dockerfile",
        &format!("FROM {BUSYBOX_ARM64}\nRUN uname -m\n"),
    )]);
    let p = plan_for(arm.path(), "linux/arm64")
        .await
        .unwrap_or_else(|e| panic!("the arm64 base must plan: {e}"));
    assert!(p.warnings.is_empty(), "{:?}", p.warnings);
}
