//! The classic-builder fallback, forced with IMAGEBUILD_LOCAL_BUILDER=classic (this test binary only).

mod local_common;

use imagebuild::local::{LocalError, ProgressEvent};
use local_common::*;
use tokio_util::sync::CancellationToken;

#[tokio::test]
async fn classic_builder_builds_pushes_reports_steps_and_failures() {
    require_services();
    std::env::set_var("IMAGEBUILD_LOCAL_BUILDER", "classic");
    let id = uuid::Uuid::new_v4().simple().to_string();
    let dir = write_tree(&[("a.txt", "a")]);
    let eng = engine(1);

    let df = format!("FROM {BUSYBOX}\nCOPY a.txt /a.txt\nRUN echo classic-{id}\n");
    let repo = unique_repo("classic");
    let spec = publish_spec(
        build_spec(snapshot(dir.path(), &df, None, &id)),
        repo.clone(),
    );
    let (r, ev) = publish(&eng, spec.clone(), CancellationToken::new()).await;
    let p = r.unwrap_or_else(|e| panic!("classic build failed: {e}"));
    assert_eq!(p.digest, registry_digest(&repo, &spec.hash_tag).await);
    let kinds: Vec<_> = ev.into_iter().map(|(_, e)| e).collect();
    assert!(kinds
        .iter()
        .any(|e| matches!(e, ProgressEvent::Log(l) if l.contains("no BuildKit"))));
    assert!(kinds.iter().any(|e| matches!(e, ProgressEvent::Step { n: 3, total: 3, name, .. } if name.starts_with("RUN echo classic"))));
    assert!(kinds
        .iter()
        .any(|e| matches!(e, ProgressEvent::Log(l) if l == &format!("classic-{id}"))));
    assert_eq!(p.steps.total, 3, "{:?}", p.steps);
    assert!(p.steps.cached <= 1, "the RUN is new: {:?}", p.steps);
    // The same Dockerfile again under another tag: the builder says "Using cache" for both
    // steps after FROM.
    let mut again = spec.clone();
    again.hash_tag = format!("{}-again", spec.hash_tag);
    let (r, _) = publish(&eng, again, CancellationToken::new()).await;
    let p = r.unwrap_or_else(|e| panic!("classic rebuild failed: {e}"));
    assert_eq!((p.steps.total, p.steps.cached), (3, 2), "{:?}", p.steps);

    let bad = format!("FROM {BUSYBOX}\nRUN echo {id}; echo boom; exit 4\n");
    let mut spec = publish_spec(
        build_spec(snapshot(dir.path(), &bad, None, &format!("{id}-bad"))),
        repo.clone(),
    );
    spec.push = false;
    let (r, _) = publish(&eng, spec, CancellationToken::new()).await;
    match r {
        Err(LocalError::StepFailed {
            step,
            exit_code,
            log_tail,
            ..
        }) => {
            assert!(step.contains("RUN echo"), "{step}");
            assert_eq!(exit_code, Some(4));
            assert!(log_tail.iter().any(|l| l == "boom"), "{log_tail:?}");
        }
        other => panic!("expected StepFailed, got {other:?}"),
    }

    let mut b = build_spec(snapshot(dir.path(), &df, None, &format!("{id}-secret")));
    b.secrets.insert("x".into(), "y".into());
    let mut spec = publish_spec(b, repo);
    spec.push = false;
    let (r, _) = publish(&eng, spec, CancellationToken::new()).await;
    let msg = r.expect_err("secrets need BuildKit").to_string();
    assert!(msg.contains("build secrets need BuildKit"), "{msg}");
}

/// A build whose Dockerfile text differs from the hashed one (FROM pinned by digest) uses that
/// text on the classic path too, whether the Dockerfile sits in the context or not.
#[tokio::test]
async fn classic_builder_uses_the_build_dockerfile_text() {
    require_services();
    std::env::set_var("IMAGEBUILD_LOCAL_BUILDER", "classic");
    let id = uuid::Uuid::new_v4().simple().to_string();
    let original = format!("FROM {BUSYBOX}\nRUN echo original-{id} > /which\n");
    let dir = write_tree(&[("Dockerfile", &original)]);
    let pinned = format!("FROM {BUSYBOX}\nRUN echo pinned-{id} > /which\n");
    for in_context in [Some("Dockerfile"), None] {
        let snap = snapshot(
            dir.path(),
            &original,
            in_context,
            &format!("{id}-{in_context:?}"),
        );
        let mut build = build_spec(snap);
        build.dockerfile_text = Some(std::sync::Arc::new(pinned.clone().into_bytes()));
        let mut spec = publish_spec(build, unique_repo("classic-pinned"));
        spec.push = false;
        let image = spec.repository.with_tag(&spec.hash_tag);
        let (r, _) = publish(&engine(1), spec, CancellationToken::new()).await;
        r.unwrap_or_else(|e| panic!("classic build ({in_context:?}): {e}"));
        let which = docker(&["run", "--rm", &image, "cat", "/which"]);
        docker(&["rmi", "-f", &image]);
        assert_eq!(which.trim(), format!("pinned-{id}"), "{in_context:?}");
    }
}
