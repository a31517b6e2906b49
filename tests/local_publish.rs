//! Build, push, digest and adopt against the real dockerd and registry.

mod local_common;

use imagebuild::local::ProgressEvent;
use local_common::*;
use tokio_util::sync::CancellationToken;

#[tokio::test]
async fn builds_pushes_and_returns_the_registry_digest_then_adopts() {
    require_services();
    let unique = format!("hello {}\n", uuid::Uuid::new_v4());
    let dir = write_tree(&[("hello.txt", unique.as_str())]);
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
    // FROM, COPY, RUN; the COPY of a new file cannot be cached, nor what follows it.
    assert_eq!(p.steps.total, 3, "{:?}", p.steps);
    assert!(p.steps.cached <= 1, "{:?}", p.steps);
    assert!(p.pushed_bytes > unique.len() as u64, "{}", p.pushed_bytes);
    let kinds: Vec<_> = events.iter().map(|(_, e)| e.clone()).collect();
    assert!(kinds
        .iter()
        .any(|e| matches!(e, ProgressEvent::Started { .. })));
    assert!(kinds
        .iter()
        .any(|e| matches!(e, ProgressEvent::Step { name, .. } if name.starts_with("RUN cat"))));
    assert!(kinds
        .iter()
        .any(|e| matches!(e, ProgressEvent::Log(l) if l.contains("hello"))));
    assert!(kinds
        .iter()
        .any(|e| matches!(e, ProgressEvent::Pushing { .. })));
    assert!(matches!(kinds.last(), Some(ProgressEvent::Done { .. })));

    // Second publish of the same hash: adopted, no build call, no push, same digest.
    let (r, events) = publish(&eng, spec, CancellationToken::new()).await;
    let p2 = r.unwrap();
    assert!(p2.adopted);
    assert_eq!(p2.digest.as_deref(), Some(digest.as_str()));
    assert_eq!(p2.image_id, p.image_id);
    assert_eq!(eng.builds_started(), 1, "the adopt path must not build");
    assert_eq!(
        (p2.steps.total, p2.pushed_bytes),
        (0, 0),
        "adopted: nothing built or pushed"
    );
    let kinds: Vec<_> = events.into_iter().map(|(_, e)| e).collect();
    assert!(
        matches!(
            kinds.as_slice(),
            [ProgressEvent::Adopted, ProgressEvent::Done { .. }]
        ),
        "{kinds:?}"
    );
}

#[tokio::test]
async fn wrong_password_is_an_auth_error_naming_registry_and_source() {
    require_services();
    let dir = write_tree(&[("a.txt", "a\n")]);
    let snap = snapshot(
        dir.path(),
        &format!("FROM {BUSYBOX}\nCOPY a.txt /a\n"),
        None,
        "wrongpw",
    );
    let repo = unique_repo("wrongpw");
    let mut spec = publish_spec(build_spec(snap), repo.clone());
    let secret = "definitely-wrong-pw-7731";
    spec.registry.explicit.as_mut().unwrap().password = secret.into();
    let eng = engine(2);
    let (r, events) = publish(&eng, spec, CancellationToken::new()).await;
    let e = r.expect_err("wrong password must fail");
    let msg = e.to_string();
    assert!(msg.contains(&repo.registry), "{msg}");
    assert!(msg.contains("explicit username/password"), "{msg}");
    assert!(!msg.contains(secret), "{msg}");
    assert!(!format!("{e:?}").contains(secret));
    assert!(events
        .iter()
        .all(|(_, e)| !format!("{e:?}").contains(secret)));
    assert_eq!(eng.builds_started(), 0, "auth is checked before building");
}

#[tokio::test]
async fn wrong_password_in_the_push_stream_is_an_auth_error() {
    require_services();
    // The daemon answers 200 to the push and reports the refusal inside the stream.
    let repo = unique_repo("wrongpw-stream");
    docker(&["tag", BUSYBOX, &repo.with_tag("t1")]);
    let creds = imagebuild::registry::ResolvedCredentials {
        credentials: Some(imagebuild::registry::BasicCredentials {
            username: registry_creds().username,
            password: "nope-wrong-4242".into(),
        }),
        source: imagebuild::registry::CredentialSource::Explicit,
    };
    let e = imagebuild::local::push_existing(None, &repo, "t1", &creds)
        .await
        .expect_err("push with a wrong password must fail");
    let msg = e.to_string();
    docker(&["rmi", &repo.with_tag("t1")]);
    assert!(
        matches!(e, imagebuild::local::LocalError::Registry(_)),
        "{msg}"
    );
    assert!(
        msg.contains(&repo.registry) && msg.contains("explicit"),
        "{msg}"
    );
    assert!(!msg.contains("nope-wrong-4242"), "{msg}");
}

#[tokio::test]
async fn unreachable_daemon_says_so() {
    let dir = write_tree(&[("a.txt", "a\n")]);
    let snap = snapshot(
        dir.path(),
        "FROM scratch\nCOPY a.txt /a\n",
        None,
        "nodaemon",
    );
    let mut spec = publish_spec(build_spec(snap), unique_repo("nodaemon"));
    spec.push = false;
    let eng = imagebuild::local::LocalEngine::new(imagebuild::local::LocalConfig {
        docker_host: Some("unix:///tmp/imagebuild-no-such-docker.sock".into()),
        max_parallel_builds: 1,
        max_parallel_pushes: 0,
        builder: None,
    });
    let (r, _) = publish(&eng, spec, CancellationToken::new()).await;
    let msg = r.expect_err("must fail").to_string();
    assert!(
        msg.starts_with("cannot reach Docker at unix:///tmp/imagebuild-no-such-docker.sock: "),
        "{msg}"
    );
    assert!(msg.ends_with("is dockerd running?"), "{msg}");
}

#[tokio::test]
async fn foreign_os_platform_is_a_clear_error() {
    require_services();
    let dir = write_tree(&[("a.txt", "a\n")]);
    let snap = snapshot(
        dir.path(),
        &format!("FROM {BUSYBOX}\nCOPY a.txt /a\n"),
        None,
        "plat",
    );
    let mut b = build_spec(snap);
    b.platform = Some("windows/amd64".into());
    let mut spec = publish_spec(b, unique_repo("plat"));
    spec.push = false;
    let (r, _) = publish(&engine(1), spec, CancellationToken::new()).await;
    let msg = r.expect_err("must fail").to_string();
    assert!(
        msg.contains("cannot build for platform windows/amd64"),
        "{msg}"
    );
    assert!(msg.contains("linux/"), "{msg}");
}

#[tokio::test]
async fn pushed_images_carry_inline_cache_and_cache_from_uses_the_authenticated_registry() {
    require_services();
    let dir = write_tree(&[("a.txt", "inline\n")]);
    let df = format!("FROM {BUSYBOX}\nCOPY a.txt /a\nRUN echo built > /b\n");
    let snap = snapshot(dir.path(), &df, None, "inline");
    let repo = unique_repo("inline");
    let spec = publish_spec(build_spec(snap.clone()), repo.clone());
    let (r, _) = publish(&engine(1), spec.clone(), CancellationToken::new()).await;
    let p = r.unwrap_or_else(|e| panic!("{e}"));
    // The image config in the registry holds BuildKit's inline cache metadata.
    let config = registry_single_image_config(&repo, p.digest.as_deref().unwrap()).await;
    assert!(
        config.to_string().contains("moby.buildkit.cache.v0"),
        "no inline cache in config: {config}"
    );

    // A second image naming the first as cache-from builds (BuildKit fetched it with our session's credentials).
    let snap2 = snapshot(dir.path(), &df, None, "inline-2");
    let mut b2 = build_spec(snap2);
    b2.cache_from = vec![repo.with_tag(&spec.hash_tag)];
    let spec2 = publish_spec(b2, unique_repo("inline-user"));
    let (r2, ev) = publish(&engine(1), spec2, CancellationToken::new()).await;
    r2.unwrap_or_else(|e| panic!("cache-from build failed: {e}"));
    assert!(ev
        .iter()
        .any(|(_, e)| matches!(e, ProgressEvent::Step { cached: true, .. })));
}

/// A real linux/arm64 build on this amd64 machine: RUN runs under QEMU, the pushed artifact is
/// one arm64 image manifest, and what RUN saw inside was aarch64.
#[tokio::test]
async fn arm64_builds_run_under_emulation_and_push_an_arm64_image() {
    require_services();
    let dir = write_tree(&[("n", "n")]);
    let df = format!("FROM {BUSYBOX_ARM64}\nCOPY n /n\nRUN uname -m > /arch\n");
    let mut b = build_spec(snapshot(dir.path(), &df, None, "arm64"));
    b.platform = Some("linux/arm64".into());
    let repo = unique_repo("arm64");
    let spec = publish_spec(b, repo.clone());
    let tag = spec.hash_tag.clone();
    let (r, _) = publish(&engine(1), spec, CancellationToken::new()).await;
    let p = r.unwrap_or_else(|e| panic!("arm64 build failed: {e}"));
    let config = registry_single_image_config(&repo, &tag).await;
    assert_eq!(config["architecture"], "arm64", "{config}");
    assert_eq!(config["os"], "linux", "{config}");
    let image = p.image_uri.unwrap();
    let arch = docker(&[
        "run",
        "--rm",
        "--platform",
        "linux/arm64",
        &image,
        "cat",
        "/arch",
    ]);
    assert_eq!(arch.trim(), "aarch64", "RUN did not run as arm64");
    let _ = std::process::Command::new("/usr/bin/docker")
        .args(["rmi", "-f", &image, &repo.with_tag(&tag)])
        .output();

    // No base image and no RUN: BuildKit builds any platform without emulation.
    let mut b = build_spec(snapshot(
        dir.path(),
        "FROM scratch\nCOPY n /n\n",
        None,
        "arm-scratch",
    ));
    b.platform = Some("linux/arm64".into());
    let mut spec = publish_spec(b, unique_repo("arm"));
    spec.push = false;
    let (r, _) = publish(&engine(1), spec, CancellationToken::new()).await;
    r.unwrap_or_else(|e| panic!("{e}"));
}

/// A 64-byte ELF header for IA-64, an architecture no QEMU emulates: exec gives ENOEXEC.
fn ia64_elf() -> Vec<u8> {
    let mut h = vec![0u8; 64];
    h[..8].copy_from_slice(&[0x7f, b'E', b'L', b'F', 2, 1, 1, 0]);
    h[0x10] = 2; // ET_EXEC
    h[0x12] = 0x32; // EM_IA_64
    h
}

/// A platform the machine cannot run: the RUN step's "exec format error" becomes an error that
/// names the platform and how to enable emulation.
#[tokio::test]
async fn an_unemulated_platform_names_it_and_how_to_enable_emulation() {
    require_services();
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("sh"), ia64_elf()).unwrap();
    let mut base = build_spec(snapshot(
        dir.path(),
        "FROM scratch\nCOPY --chmod=755 sh /bin/sh\n",
        None,
        "ia64-base",
    ));
    base.platform = Some("linux/ia64".into());
    let mut spec = publish_spec(base, unique_repo("ia64-base"));
    spec.push = false;
    let base_image = spec.repository.with_tag(&spec.hash_tag);
    let (r, _) = publish(&engine(1), spec, CancellationToken::new()).await;
    r.unwrap_or_else(|e| panic!("a COPY-only linux/ia64 image builds anywhere: {e}"));

    let mut b = build_spec(snapshot(
        dir.path(),
        &format!("FROM {base_image}\nRUN echo never\n"),
        None,
        "ia64-run",
    ));
    b.platform = Some("linux/ia64".into());
    let mut spec = publish_spec(b, unique_repo("ia64"));
    spec.push = false;
    let (r, _) = publish(&engine(1), spec, CancellationToken::new()).await;
    let _ = std::process::Command::new("/usr/bin/docker")
        .args(["rmi", "-f", &base_image])
        .output();
    let msg = r.expect_err("nothing runs IA-64 binaries here").to_string();
    for part in [
        "cannot build for platform linux/ia64",
        "exec format error",
        "register an emulator for it with binfmt_misc",
        "qemu-user-static",
    ] {
        assert!(msg.contains(part), "{part:?} not in: {msg}");
    }
}

/// A TCP proxy to the registry that closes every connection for `outage` after the first one
/// arrives, then relays. A time window rather than a count: Engine 20.10 gives up after its
/// HTTPS and HTTP tries, while Engine 29's resolver retries a few times on its own first.
async fn flaky_registry_proxy(outage: std::time::Duration) -> std::net::SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let upstream = registry_addr();
    tokio::spawn(async move {
        let mut outage_ends = None;
        loop {
            let Ok((mut conn, _)) = listener.accept().await else {
                return;
            };
            let ends = *outage_ends.get_or_insert_with(|| std::time::Instant::now() + outage);
            if std::time::Instant::now() < ends {
                drop(conn);
                continue;
            }
            let upstream = upstream.clone();
            tokio::spawn(async move {
                if let Ok(mut up) = tokio::net::TcpStream::connect(upstream).await {
                    let _ = tokio::io::copy_bidirectional(&mut conn, &mut up).await;
                }
            });
        }
    });
    addr
}

#[tokio::test]
async fn transient_push_failures_are_retried() {
    require_services();
    let proxy = flaky_registry_proxy(std::time::Duration::from_millis(1500)).await;
    let id = uuid::Uuid::new_v4().simple().to_string();
    let repo =
        imagebuild::registry::ImageName::parse(&format!("{proxy}/itest/retry-{}", &id[..10]))
            .unwrap();
    docker(&["tag", BUSYBOX, &repo.with_tag("t1")]);
    let creds = imagebuild::registry::ResolvedCredentials {
        credentials: Some(registry_creds()),
        source: imagebuild::registry::CredentialSource::Explicit,
    };
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    let r = imagebuild::local::push_existing_with_progress(None, &repo, "t1", &creds, tx).await;
    docker(&["rmi", &repo.with_tag("t1")]);
    let mut logs = Vec::new();
    while let Ok(e) = rx.try_recv() {
        if let ProgressEvent::Log(l) = e {
            logs.push(l);
        }
    }
    r.unwrap_or_else(|e| panic!("push through a flaky link failed: {e}; logs {logs:?}"));
    assert!(
        logs.iter().any(|l| l.contains("retrying")),
        "no retry reported: {logs:?}"
    );
    // The image really is in the registry behind the proxy.
    let real =
        imagebuild::registry::ImageName::parse(&format!("{}/{}", registry_addr(), repo.repository))
            .unwrap();
    assert!(registry_digest(&real, "t1").await.is_some());
}
