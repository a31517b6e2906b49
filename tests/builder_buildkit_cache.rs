//! A registry cache round trip on the standalone BuildKit daemon: `cacheTo` exports every layer
//! to the registry, the builder's own cache is emptied (`buildctl prune --all`), and a build with
//! `cacheFrom` then serves the expensive step from the registry instead of running it. Its own
//! test binary: the prune must not race the other builder suites' cache assertions.

mod builder_common;
mod local_common;

use builder_common::*;
use imagebuild::local::{CacheMode, CacheTo, ProgressEvent};
use local_common::*;
use tokio_util::sync::CancellationToken;

/// Empties the builder's cache with the set-up's buildctl.
fn prune_builder_cache() {
    let buildctl = env("IMAGEBUILD_TEST_BUILDCTL");
    let out = std::process::Command::new(&buildctl)
        .args([
            "--addr",
            &env("IMAGEBUILD_TEST_BUILDKIT_HOST"),
            "prune",
            "--all",
        ])
        .output()
        .unwrap_or_else(|e| panic!("run {buildctl}: {e}"));
    assert!(
        out.status.success(),
        "buildctl prune: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[tokio::test]
async fn a_registry_cache_serves_a_step_after_the_builders_cache_is_gone() {
    require_builder().await;
    let id = uuid::Uuid::new_v4().simple().to_string();
    // The output line `RAN-42` is not in the step's text: it shows only when the step runs.
    let df = format!(
        "FROM {}\nRUN echo {id} > /stamp && echo RAN-$((40+2))\nCOPY a.txt /a\n",
        base()
    );
    let repo = unique_repo("bk-cache");
    let cache = CacheTo {
        reference: repo.clone(),
        tag: "buildcache".into(),
        mode: CacheMode::Max,
    };
    let ran = |ev: &[(std::time::Instant, ProgressEvent)]| {
        ev.iter()
            .any(|(_, e)| matches!(e, ProgressEvent::Log(l) if l.contains("RAN-42")))
    };

    let dir = write_tree(&[("a.txt", "one")]);
    let mut first = build_spec(snapshot(dir.path(), &df, None, &id));
    first.cache_to = Some(cache.clone());
    let spec = publish_spec(first, repo.clone());
    let (r, ev) = publish(
        &builder_engine(builder_unix(), 1),
        spec,
        CancellationToken::new(),
    )
    .await;
    r.unwrap_or_else(|e| panic!("build exporting the cache: {e}"));
    assert!(ran(&ev), "the first build runs the step");
    let manifest = registry_manifest(&repo, "buildcache").await;
    assert!(
        manifest["layers"].as_array().is_some_and(|l| !l.is_empty()),
        "{manifest}"
    );

    prune_builder_cache();
    std::fs::write(dir.path().join("a.txt"), "two").unwrap();
    let mut second = build_spec(snapshot(dir.path(), &df, None, &id));
    second.cache_from = vec![cache.reference_text()];
    let spec = publish_spec(second, repo.clone());
    let hash_tag = spec.hash_tag.clone();
    let (r, ev) = publish(
        &builder_engine(builder_unix(), 1),
        spec,
        CancellationToken::new(),
    )
    .await;
    let p = r.unwrap_or_else(|e| panic!("build importing the cache: {e}"));
    assert!(!ran(&ev), "the step came from the registry cache");
    assert!(p.steps.cached >= 1, "{:?}", p.steps);
    let top = top_layer_files(&repo, &hash_tag).await;
    assert_eq!(top.get("a").map(String::as_str), Some("two"), "{top:?}");
}
