//! Context upload against moto's S3 (skip when present, private + SSE) and the ECR tag lookup against moto's ECR.

mod remote_common;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use imagebuild::registry::ImageName;
use imagebuild::remote::{
    ecr_tag_digest, upload_context, RemoteError, UploadOptions, UploadTarget,
};
use remote_common::*;

#[tokio::test]
async fn second_upload_is_skipped_and_never_produces_the_archive() {
    let s = services().await;
    let c = clients(&s).await;
    let bucket = bucket(&c).await;
    let dir = context_dir(&[
        ("Dockerfile", "FROM scratch\n", false),
        ("run.sh", "#!/bin/sh\n", true),
    ]);
    let snap = snapshot_of(dir.path(), None).await;
    let target = UploadTarget {
        bucket: bucket.clone(),
        prefix: "contexts/".into(),
        context_hash: snap.hash.clone(),
    };

    let first = upload_context(&c, &target, UploadOptions::default(), || archive(&snap).1)
        .await
        .expect("first upload");
    assert!(!first.skipped);
    assert!(first.bytes > 0);
    assert_eq!(first.parts, 0, "a small archive goes in one PutObject");
    assert_eq!(
        first.object_uri,
        format!("s3://{bucket}/contexts/{}.tar.gz", target.context_hash)
    );

    let produced = Arc::new(AtomicBool::new(false));
    let flag = produced.clone();
    let second = upload_context(&c, &target, UploadOptions::default(), move || {
        flag.store(true, Ordering::SeqCst);
        archive(&snap).1
    })
    .await
    .expect("second upload");
    assert!(
        second.skipped,
        "HeadObject found the content-addressed object"
    );
    assert_eq!(second.bytes, first.bytes);
    assert!(
        !produced.load(Ordering::SeqCst),
        "a skipped upload must not build the archive"
    );

    // Private (owner-only grant) and encrypted at rest.
    let key = target.key();
    let head =
        c.s3.head_object()
            .bucket(&bucket)
            .key(&key)
            .send()
            .await
            .unwrap();
    assert_eq!(
        head.server_side_encryption().map(|e| e.as_str()),
        Some("AES256")
    );
    assert_eq!(
        head.metadata()
            .and_then(|m| m.get("imagebuild-context-hash"))
            .map(String::as_str),
        Some(target.context_hash.as_str())
    );
    let acl =
        c.s3.get_object_acl()
            .bucket(&bucket)
            .key(&key)
            .send()
            .await
            .unwrap();
    assert_eq!(
        acl.grants().len(),
        1,
        "only the owner's grant: {:?}",
        acl.grants()
    );
    assert_eq!(
        acl.grants()[0].permission().map(|p| p.as_str()),
        Some("FULL_CONTROL")
    );
}

#[tokio::test]
async fn invalid_hash_and_missing_bucket_are_named() {
    let s = services().await;
    let c = clients(&s).await;
    let bad = UploadTarget {
        bucket: "b".into(),
        prefix: String::new(),
        context_hash: "../../etc".into(),
    };
    let err = upload_context(&c, &bad, UploadOptions::default(), || {
        futures::stream::empty()
    })
    .await
    .unwrap_err();
    assert!(matches!(err, RemoteError::Invalid(_)), "{err}");

    let missing = UploadTarget {
        bucket: unique("no-such-bucket"),
        prefix: String::new(),
        context_hash: "0".repeat(64),
    };
    let err = upload_context(&c, &missing, UploadOptions::default(), || {
        futures::stream::iter([Ok(bytes::Bytes::from_static(b"x"))])
    })
    .await
    .unwrap_err();
    let text = err.to_string();
    assert!(
        text.contains(&missing.bucket),
        "error names the bucket: {text}"
    );
}

#[tokio::test]
async fn ecr_tag_lookup_finds_the_digest_or_none() {
    let s = services().await;
    let c = clients(&s).await;
    let repo = unique("team/app");
    c.ecr
        .create_repository()
        .repository_name(&repo)
        .send()
        .await
        .expect("create repo");
    let manifest = serde_json::json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.docker.distribution.manifest.v2+json",
        "config": {"mediaType": "application/vnd.docker.container.image.v1+json", "size": 2, "digest": format!("sha256:{}", "1".repeat(64))},
        "layers": []
    })
    .to_string();
    let put = c
        .ecr
        .put_image()
        .repository_name(&repo)
        .image_manifest(&manifest)
        .image_tag("abc")
        .send()
        .await
        .expect("put image");
    let expected = put
        .image()
        .and_then(|i| i.image_id())
        .and_then(|i| i.image_digest())
        .unwrap()
        .to_string();

    let name = ImageName {
        registry: "123456789012.dkr.ecr.us-east-1.amazonaws.com".into(),
        repository: repo.clone(),
    };
    assert_eq!(
        ecr_tag_digest(&c, &name, "abc").await.unwrap(),
        Some(expected)
    );
    assert_eq!(ecr_tag_digest(&c, &name, "nope").await.unwrap(), None);

    let gone = ImageName {
        repository: unique("missing/repo"),
        ..name
    };
    let err = ecr_tag_digest(&c, &gone, "abc").await.unwrap_err();
    assert!(err.to_string().contains(&gone.repository), "{err}");
}
