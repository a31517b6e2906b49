//! `cacheTo`: a registry build cache. On Engine 29 (containerd image store) the build exports
//! its cache as one OCI image manifest (what ECR accepts), and after the daemon's own cache of a
//! step is gone, a build naming that reference in `cache_from` takes the step from the registry
//! (a fresh CI runner). On Engine 20.10 the build is refused before it starts, naming
//! `cacheTo` and the engine.

mod local_common;

use imagebuild::local::{CacheMode, CacheTo, LocalError, ProgressEvent};
use local_common::*;
use tokio_util::sync::CancellationToken;

const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
const CACHE_CONFIG: &str = "application/vnd.buildkit.cacheconfig.v0";

fn cache_to(repo: &imagebuild::registry::ImageName) -> CacheTo {
    CacheTo {
        reference: repo.clone(),
        tag: "buildcache".into(),
        mode: CacheMode::Max,
    }
}

/// The daemon's build-cache records.
fn cache_records(host: &str) -> Vec<serde_json::Value> {
    let sock = host.strip_prefix("unix://").unwrap();
    let out = std::process::Command::new("curl")
        .args([
            "-sf",
            "--unix-socket",
            sock,
            "http://docker/system/df?type=build-cache",
        ])
        .output()
        .expect("run curl");
    assert!(out.status.success(), "GET /system/df on {host} failed");
    let df: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    df["BuildCache"].as_array().cloned().unwrap_or_default()
}

/// The records of the steps naming `marker`, and every record built on them, by id.
fn records_of(host: &str, marker: &str) -> Vec<String> {
    let records = cache_records(host);
    let parents = |r: &serde_json::Value| -> Vec<String> {
        // Engine 29 spells the key " Parents" (sic); older ones "Parents" or "Parent".
        [" Parents", "Parents", "Parent"]
            .iter()
            .flat_map(|k| match &r[*k] {
                serde_json::Value::Array(a) => a.clone(),
                serde_json::Value::String(p) => vec![serde_json::Value::String(p.clone())],
                _ => vec![],
            })
            .filter_map(|p| p.as_str().map(str::to_string))
            .collect()
    };
    let mut ids: Vec<String> = records
        .iter()
        .filter(|r| {
            r["Description"]
                .as_str()
                .is_some_and(|d| d.contains(marker))
        })
        .map(|r| r["ID"].as_str().unwrap().to_string())
        .collect();
    loop {
        let before = ids.len();
        for r in &records {
            let id = r["ID"].as_str().unwrap().to_string();
            if !ids.contains(&id) && parents(r).iter().any(|p| ids.contains(p)) {
                ids.push(id);
            }
        }
        if ids.len() == before {
            return ids;
        }
    }
}

/// Removes the daemon's own cache of the steps naming `marker` (and of the steps after them),
/// as a fresh machine lacks it; the records an image shares need `--all`.
fn forget_steps(host: &str, marker: &str) {
    let ids = records_of(host, marker);
    assert!(!ids.is_empty(), "no cache record names {marker}");
    // One id per prune (the daemon takes one value per filter), the steps built on it first.
    for id in ids.iter().rev() {
        docker_on(
            host,
            &["builder", "prune", "-af", "--filter", &format!("id={id}")],
        );
    }
    let left = records_of(host, marker);
    assert!(
        left.is_empty(),
        "the daemon kept its cache of the step: {left:?}"
    );
}

fn step_cached(events: &[(std::time::Instant, ProgressEvent)], prefix: &str) -> Option<bool> {
    events.iter().find_map(|(_, e)| match e {
        ProgressEvent::Step { name, cached, .. } if name.contains(prefix) => Some(*cached),
        _ => None,
    })
}

#[tokio::test]
async fn engine_29_exports_an_oci_cache_manifest_that_a_fresh_build_imports() {
    let host = engine29_host();
    let marker = format!("cachemark{}", uuid::Uuid::new_v4().simple());
    let df = format!("FROM {BUSYBOX}\nRUN echo {marker} > /step\nCOPY a.txt /a\n");
    let cache_repo = unique_repo("cache");
    let dir = write_tree(&[("a.txt", "one")]);
    let mut build = build_spec(snapshot(dir.path(), &df, None, "cache-one"));
    build.cache_to = Some(cache_to(&cache_repo));
    let spec = publish_spec(build, unique_repo("cache-app"));
    let (r, _) = publish(&engine_on(&host), spec, CancellationToken::new()).await;
    r.unwrap_or_else(|e| panic!("build with cacheTo: {e}"));

    let manifest = registry_manifest(&cache_repo, "buildcache").await;
    assert_eq!(manifest["mediaType"], OCI_MANIFEST, "{manifest}");
    assert_eq!(manifest["config"]["mediaType"], CACHE_CONFIG, "{manifest}");
    assert!(
        !manifest["layers"].as_array().unwrap().is_empty(),
        "no layers in the cache: {manifest}"
    );

    // A fresh machine: the daemon no longer has the RUN step; another context hash.
    forget_steps(&host, &marker);
    std::fs::write(dir.path().join("a.txt"), "two").unwrap();
    let mut build = build_spec(snapshot(dir.path(), &df, None, "cache-two"));
    build.cache_from = vec![cache_repo.with_tag("buildcache")];
    let spec = publish_spec(build, unique_repo("cache-app"));
    let (r, events) = publish(&engine_on(&host), spec, CancellationToken::new()).await;
    r.unwrap_or_else(|e| panic!("build with the registry cache: {e}"));
    assert_eq!(
        step_cached(&events, &format!("RUN echo {marker}")),
        Some(true),
        "the RUN step was not taken from the registry cache: {events:?}"
    );
    assert_eq!(step_cached(&events, "COPY a.txt"), Some(false));
}

#[tokio::test]
async fn engine_20_10_refuses_cache_to_naming_the_engine() {
    let host = engine20_host();
    let dir = write_tree(&[("a.txt", "a")]);
    let df = format!("FROM {BUSYBOX}\nCOPY a.txt /a\n");
    let mut build = build_spec(snapshot(dir.path(), &df, None, "cache-old"));
    build.cache_to = Some(cache_to(&unique_repo("cache")));
    let spec = publish_spec(build, unique_repo("cache-old"));
    let eng = engine_on(&host);
    let (r, _) = publish(&eng, spec, CancellationToken::new()).await;
    let e = r.expect_err("Engine 20.10 cannot export a registry cache");
    assert!(
        matches!(e, LocalError::CacheExportUnsupported { .. }),
        "{e:?}"
    );
    let msg = e.to_string();
    for part in [
        "`cacheTo`",
        "Engine 20.10",
        "containerd image store",
        "dockerHost",
    ] {
        assert!(msg.contains(part), "{part:?} missing from: {msg}");
    }
    assert_eq!(eng.builds_started(), 0, "a build was sent to the daemon");
    let asked = eng.cache_export_supported().await;
    assert!(
        matches!(asked, Err(LocalError::CacheExportUnsupported { .. })),
        "{asked:?}"
    );
    let e29 = engine_on(&engine29_host()).cache_export_supported().await;
    assert!(matches!(e29, Ok(true)), "{e29:?}");
}
