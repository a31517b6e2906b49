//! Build, push, digest and adopt against the real dockerd and registry.

mod local_common;

use imagebuild::local::ProgressEvent;
use local_common::*;
use tokio_util::sync::CancellationToken;

#[tokio::test]
async fn builds_pushes_and_returns_the_registry_digest_then_adopts() {
    require_services();
    let dir = write_tree(&[("hello.txt", "hello\n")]);
    let dockerfile = format!("FROM {BUSYBOX}\nCOPY hello.txt /hello.txt\nRUN cat /hello.txt\n");
    let snap = snapshot(dir.path(), &dockerfile, None, "publish");
    let repo = unique_repo("publish");
    let eng = engine(2);
    let mut spec = publish_spec(build_spec(snap), repo.clone());
    spec.extra_tags = vec!["latest".into()];
    let (r, events) = publish(&eng, spec.clone(), CancellationToken::new()).await;
    let p = r.unwrap_or_else(|e| panic!("publish failed: {e}"));
    assert!(!p.adopted);
    assert_eq!(eng.builds_started(), 1);
    let digest = p.digest.clone().unwrap();
    assert_eq!(
        Some(digest.clone()),
        registry_digest(&repo, &spec.hash_tag).await
    );
    assert_eq!(Some(digest.clone()), registry_digest(&repo, "latest").await);
    assert_eq!(
        p.image_uri.as_deref(),
        Some(repo.with_digest(&digest).as_str())
    );
    assert!(p.image_id.starts_with("sha256:"));
    let kinds: Vec<_> = events.iter().map(|(_, e)| e.clone()).collect();
    assert!(kinds.contains(&ProgressEvent::Started));
    assert!(kinds
        .iter()
        .any(|e| matches!(e, ProgressEvent::Step { name, .. } if name.starts_with("RUN cat"))));
    assert!(kinds
        .iter()
        .any(|e| matches!(e, ProgressEvent::Log(l) if l.contains("hello"))));
    assert!(kinds
        .iter()
        .any(|e| matches!(e, ProgressEvent::Pushing { .. })));
    assert_eq!(kinds.last(), Some(&ProgressEvent::Done));

    // Second publish of the same hash: adopted, no build call, no push, same digest.
    let (r, events) = publish(&eng, spec, CancellationToken::new()).await;
    let p2 = r.unwrap();
    assert!(p2.adopted);
    assert_eq!(p2.digest.as_deref(), Some(digest.as_str()));
    assert_eq!(p2.image_id, p.image_id);
    assert_eq!(eng.builds_started(), 1, "the adopt path must not build");
    let kinds: Vec<_> = events.into_iter().map(|(_, e)| e).collect();
    assert_eq!(kinds, vec![ProgressEvent::Adopted, ProgressEvent::Done]);
}
