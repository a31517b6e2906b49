//! ContainerImage's engine on a standalone BuildKit daemon (provider setting `builder`): the
//! local engine's scenarios against buildkitd on its unix socket and on loopback TCP with mTLS.
//! Build and push with the digest read back, adopt, secrets, cache mounts, named contexts, what
//! a rebuild sends, a failing step, cancel, the parallel bound, and the connection errors.

mod builder_common;
mod local_common;

use std::time::{Duration, Instant};

use builder_common::*;
use imagebuild::local::{BuilderConfig, LocalError, ProgressEvent};
use local_common::*;
use tokio_util::sync::CancellationToken;

fn logs(events: &[(Instant, ProgressEvent)]) -> Vec<String> {
    events
        .iter()
        .filter_map(|(_, e)| match e {
            ProgressEvent::Log(l) => Some(l.clone()),
            _ => None,
        })
        .collect()
}

#[tokio::test]
async fn builds_over_mtls_pushes_every_tag_and_reads_the_digest_back() {
    require_builder().await;
    let id = uuid::Uuid::new_v4().simple().to_string();
    let dir = write_tree(&[("a.txt", "hello from the builder\n"), ("unused.bin", "x")]);
    let df = format!(
        "FROM {}\nCOPY a.txt /a.txt\nRUN cat /a.txt > /copied && echo {id}\n",
        base()
    );
    let repo = unique_repo("bk-push");
    let mut spec = publish_spec(
        build_spec(snapshot(dir.path(), &df, None, &id)),
        repo.clone(),
    );
    spec.extra_tags = vec!["latest".into()];
    spec.build.labels.insert("team".into(), "infra".into());
    let eng = builder_engine(builder_tcp(), 2);
    let (r, ev) = publish(&eng, spec.clone(), CancellationToken::new()).await;
    let p = r.unwrap_or_else(|e| panic!("build on the builder failed: {e}"));
    assert!(!p.adopted);
    let digest = p.digest.clone().expect("a pushed digest");
    assert_eq!(
        registry_digest(&repo, &spec.hash_tag).await.as_deref(),
        Some(digest.as_str())
    );
    assert_eq!(
        registry_digest(&repo, "latest").await.as_deref(),
        Some(digest.as_str())
    );
    assert_eq!(
        p.image_uri.as_deref(),
        Some(repo.with_digest(&digest).as_str())
    );
    assert_eq!(
        p.tags,
        vec![repo.with_tag(&spec.hash_tag), repo.with_tag("latest")]
    );
    // One image manifest (what Lambda takes), its config our image id, our label in it.
    let config = registry_single_image_config(&repo, &spec.hash_tag).await;
    assert_eq!(config["config"]["Labels"]["team"], "infra", "{config}");
    let manifest = registry_manifest(&repo, &spec.hash_tag).await;
    assert_eq!(
        manifest["config"]["digest"].as_str(),
        Some(p.image_id.as_str())
    );
    // The RUN step's file is the top layer; the COPY one below it got only a.txt.
    let top = top_layer_files(&repo, &spec.hash_tag).await;
    assert_eq!(
        top.get("copied").map(String::as_str),
        Some("hello from the builder\n"),
        "{top:?}"
    );
    let sent: Vec<&String> = p.transfers.iter().flat_map(|t| &t.files_sent).collect();
    assert!(sent.iter().any(|f| f.as_str() == "a.txt"), "{sent:?}");
    assert!(sent.iter().all(|f| f.as_str() != "unused.bin"), "{sent:?}");
    assert!(p.context_bytes_sent >= 23, "{}", p.context_bytes_sent);
    assert!(ev
        .iter()
        .any(|(_, e)| matches!(e, ProgressEvent::Built { .. })));
}

#[tokio::test]
async fn a_hash_already_in_the_registry_is_adopted_without_a_solve() {
    require_builder().await;
    let id = uuid::Uuid::new_v4().simple().to_string();
    let dir = write_tree(&[("a.txt", "a")]);
    let df = format!("FROM {}\nCOPY a.txt /a\n", base());
    let spec = publish_spec(
        build_spec(snapshot(dir.path(), &df, None, &id)),
        unique_repo("bk-adopt"),
    );
    let (r, _) = publish(
        &builder_engine(builder_unix(), 1),
        spec.clone(),
        CancellationToken::new(),
    )
    .await;
    let built = r.unwrap_or_else(|e| panic!("first build: {e}"));
    let second = builder_engine(builder_unix(), 1);
    let (r, _) = publish(&second, spec, CancellationToken::new()).await;
    let adopted = r.unwrap_or_else(|e| panic!("adopt: {e}"));
    assert!(adopted.adopted);
    assert_eq!(adopted.digest, built.digest);
    assert_eq!(second.builds_started(), 0, "adopting must not build");
}

#[tokio::test]
async fn a_rebuild_after_one_edit_sends_only_that_file() {
    require_builder().await;
    let id = uuid::Uuid::new_v4().simple().to_string();
    let big = "y".repeat(200_000);
    let dir = write_tree(&[("big.bin", &big), ("handler.py", "v = 1\n")]);
    let df = format!("FROM {}\nCOPY . /app/\n", base());
    let eng = builder_engine(builder_unix(), 1);
    let mut sent_per_build = Vec::new();
    for (round, text) in [("1", "v = 1\n"), ("2", "v = 2\n")] {
        std::fs::write(dir.path().join("handler.py"), text).unwrap();
        let mut spec = publish_spec(
            build_spec(snapshot(dir.path(), &df, None, &format!("{id}-{round}"))),
            unique_repo("bk-edit"),
        );
        spec.push = false;
        let (r, _) = publish(&eng, spec, CancellationToken::new()).await;
        let p = r.unwrap_or_else(|e| panic!("build {round}: {e}"));
        let context: Vec<String> = p
            .transfers
            .iter()
            .filter(|t| t.dir == "context")
            .flat_map(|t| t.files_sent.clone())
            .collect();
        sent_per_build.push((context, p.context_bytes_sent));
    }
    let (first, first_bytes) = &sent_per_build[0];
    assert!(first.contains(&"big.bin".to_string()), "{first:?}");
    assert!(*first_bytes >= 200_000, "{first_bytes}");
    let (second, second_bytes) = &sent_per_build[1];
    assert_eq!(
        second,
        &vec!["handler.py".to_string()],
        "only the edited file is sent again"
    );
    assert!(*second_bytes < 1_000, "{second_bytes}");
}

#[tokio::test]
async fn a_secret_reaches_its_step_and_never_the_image_or_the_events() {
    require_builder().await;
    let secret = format!("s3cr3t-{}", uuid::Uuid::new_v4().simple());
    // A secret is not part of a step's cache key: the step must differ per run to run at all.
    let run = uuid::Uuid::new_v4().simple().to_string();
    let dir = write_tree(&[("x", "x")]);
    let df = format!(
        "FROM {}\nRUN --mount=type=secret,id=token --mount=type=secret,id=expected \
         test \"$(cat /run/secrets/token)\" = \"$(cat /run/secrets/expected)\" && echo secret-ok \
         && echo leaked: $(cat /run/secrets/token) {run}\n",
        base()
    );
    let repo = unique_repo("bk-secret");
    let mut b = build_spec(snapshot(dir.path(), &df, None, &secret));
    b.secrets.insert("token".into(), secret.clone());
    b.secrets.insert("expected".into(), secret.clone());
    let spec = publish_spec(b, repo.clone());
    let (r, ev) = publish(
        &builder_engine(builder_unix(), 1),
        spec.clone(),
        CancellationToken::new(),
    )
    .await;
    r.unwrap_or_else(|e| panic!("secret build: {e}"));
    let lines = logs(&ev);
    assert!(lines.iter().any(|l| l.contains("secret-ok")), "{lines:?}");
    assert!(lines.iter().any(|l| l.contains("leaked: ***")), "{lines:?}");
    for (_, e) in &ev {
        assert!(
            !format!("{e:?}").contains(&secret),
            "event leaks the secret: {e:?}"
        );
    }
    let config = registry_single_image_config(&repo, &spec.hash_tag).await;
    assert!(!config.to_string().contains(&secret), "{config}");
    assert!(
        config.to_string().contains("/run/secrets/token"),
        "history names the step"
    );
}

#[tokio::test]
async fn a_cache_mount_is_reused_across_builds() {
    require_builder().await;
    let id = uuid::Uuid::new_v4().simple().to_string();
    let df = format!(
        "FROM {}\nARG RUN_ID\n\
         RUN --mount=type=cache,target=/cache,id=bk-{id} \
         if [ -f /cache/marker ]; then echo CACHE-HIT $(cat /cache/marker); \
         else echo CACHE-MISS; echo first > /cache/marker; fi; echo run $RUN_ID\n",
        base()
    );
    let dir = write_tree(&[("x", "x")]);
    let eng = builder_engine(builder_unix(), 1);
    let mut seen = Vec::new();
    for run in ["1", "2"] {
        let mut b = build_spec(snapshot(dir.path(), &df, None, run));
        b.build_args.insert("RUN_ID".into(), format!("{id}-{run}"));
        let mut spec = publish_spec(b, unique_repo("bk-cachemount"));
        spec.push = false;
        let (r, ev) = publish(&eng, spec, CancellationToken::new()).await;
        r.unwrap_or_else(|e| panic!("build {run}: {e}"));
        seen.push(logs(&ev));
    }
    assert!(
        seen[0].iter().any(|l| l.contains("CACHE-MISS")),
        "{:?}",
        seen[0]
    );
    assert!(
        seen[1].iter().any(|l| l.contains("CACHE-HIT first")),
        "{:?}",
        seen[1]
    );
}

#[tokio::test]
async fn a_failing_step_reports_its_exit_code_and_last_lines() {
    require_builder().await;
    let id = uuid::Uuid::new_v4().simple().to_string();
    let df = format!(
        "FROM {}\nRUN echo ok-{id}\nRUN for i in $(seq 1 40); do echo line-$i; done; echo bad; exit 3\n",
        base()
    );
    let dir = write_tree(&[("x", "x")]);
    let spec = publish_spec(
        build_spec(snapshot(dir.path(), &df, None, &id)),
        unique_repo("bk-fail"),
    );
    let (r, _) = publish(
        &builder_engine(builder_unix(), 1),
        spec.clone(),
        CancellationToken::new(),
    )
    .await;
    match r.expect_err("exit 3 must fail the build") {
        LocalError::StepFailed {
            step,
            exit_code,
            log_tail,
            ..
        } => {
            assert!(step.contains("RUN for i in"), "{step}");
            assert_eq!(exit_code, Some(3));
            assert_eq!(log_tail.last().map(String::as_str), Some("bad"));
            assert_eq!(log_tail.len(), 30, "{log_tail:?}");
        }
        other => panic!("expected StepFailed, got {other:?}"),
    }
    assert_eq!(
        registry_digest(&spec.repository, &spec.hash_tag).await,
        None,
        "nothing pushed"
    );
}

#[tokio::test]
async fn cancel_stops_the_solve_and_the_builder_stays_usable() {
    require_builder().await;
    let id = uuid::Uuid::new_v4().simple().to_string();
    let df = format!("FROM {}\nRUN echo start-{id} && sleep 600\n", base());
    let dir = write_tree(&[("x", "x")]);
    let spec = publish_spec(
        build_spec(snapshot(dir.path(), &df, None, &id)),
        unique_repo("bk-cancel"),
    );
    let eng = builder_engine(builder_unix(), 1);
    let cancel = CancellationToken::new();
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    let trigger = cancel.clone();
    let watcher = tokio::spawn(async move {
        while let Some(e) = rx.recv().await {
            if matches!(&e, ProgressEvent::Log(l) if l.contains("start-")) {
                trigger.cancel();
            }
        }
    });
    // Far below the step's 600 s: only a cancelled solve returns in time.
    let r = tokio::time::timeout(
        Duration::from_secs(120),
        eng.publish(spec, tx, cancel.clone()),
    )
    .await
    .expect("a cancelled build must return");
    watcher.await.unwrap();
    assert!(cancel.is_cancelled(), "the step never started: {r:?}");
    assert!(matches!(r, Err(LocalError::Cancelled)), "{r:?}");
    // The builder builds the next image right away.
    let df = format!("FROM {}\nRUN echo after-{id}\n", base());
    let mut next = publish_spec(
        build_spec(snapshot(dir.path(), &df, None, &id)),
        unique_repo("bk-after"),
    );
    next.push = false;
    let (r, _) = publish(&eng, next, CancellationToken::new()).await;
    r.unwrap_or_else(|e| panic!("build after cancel: {e}"));
}

#[tokio::test]
async fn builds_never_exceed_the_parallel_bound() {
    require_builder().await;
    let id = uuid::Uuid::new_v4().simple().to_string();
    let eng = std::sync::Arc::new(builder_engine(builder_unix(), 2));
    let mut jobs = Vec::new();
    for n in 0..4 {
        let dir = write_tree(&[("x", "x")]);
        let df = format!("FROM {}\nRUN echo {id}-{n} && sleep 2\n", base());
        let mut spec = publish_spec(
            build_spec(snapshot(dir.path(), &df, None, &format!("{id}-{n}"))),
            unique_repo("bk-bound"),
        );
        spec.push = false;
        let eng = eng.clone();
        jobs.push(tokio::spawn(async move {
            let _dir = dir;
            publish(&eng, spec, CancellationToken::new()).await
        }));
    }
    let mut spans = Vec::new();
    for j in jobs {
        let (r, ev) = j.await.unwrap();
        r.unwrap_or_else(|e| panic!("bounded build: {e}"));
        let at = |want: fn(&ProgressEvent) -> Option<Instant>| ev.iter().find_map(|(_, e)| want(e));
        let start = at(|e| match e {
            ProgressEvent::Started { at } => Some(*at),
            _ => None,
        });
        let end = at(|e| match e {
            ProgressEvent::Built { at } => Some(*at),
            _ => None,
        });
        spans.push((start.expect("Started"), end.expect("Built")));
    }
    for (s, _) in &spans {
        let running = spans.iter().filter(|(a, b)| a <= s && s < b).count();
        assert!(
            running <= 2,
            "{running} builds at once with a bound of 2: {spans:?}"
        );
    }
    let queued = spans
        .iter()
        .filter(|(s, _)| spans.iter().any(|(_, b)| b <= s))
        .count();
    assert!(
        queued >= 2,
        "with 4 builds and 2 slots, 2 wait for a slot: {spans:?}"
    );
}

#[tokio::test]
async fn a_connection_without_an_accepted_client_certificate_is_refused() {
    require_builder().await;
    let dir = write_tree(&[("x", "x")]);
    let df = format!("FROM {}\nRUN true\n", base());
    let no_cert = BuilderConfig {
        cert: None,
        key: None,
        ..builder_tcp()
    };
    let other_ca = BuilderConfig {
        cert: Some(env("IMAGEBUILD_TEST_BUILDKIT_WRONG_CERT").into()),
        key: Some(env("IMAGEBUILD_TEST_BUILDKIT_WRONG_KEY").into()),
        ..builder_tcp()
    };
    for (what, cfg) in [
        ("no client certificate", no_cert),
        ("a certificate of another CA", other_ca),
    ] {
        let eng = builder_engine(cfg, 1);
        let spec = publish_spec(
            build_spec(snapshot(dir.path(), &df, None, what)),
            unique_repo("bk-mtls"),
        );
        let (r, _) = publish(&eng, spec, CancellationToken::new()).await;
        let e = r.expect_err(what);
        assert!(
            matches!(e, LocalError::BuilderRefused { .. }),
            "{what}: {e:?}"
        );
        let text = e.to_string();
        assert!(
            text.contains(&env("IMAGEBUILD_TEST_BUILDKIT_TCP")),
            "{text}"
        );
        assert!(text.contains("imagebuild:builderCert"), "{text}");
    }
}

#[tokio::test]
async fn an_unreachable_builder_is_an_error_naming_its_address() {
    require_registry();
    let dir = write_tree(&[("x", "x")]);
    let df = "FROM scratch\nCOPY x /x\n";
    let gone = format!(
        "unix:///tmp/imagebuild-no-builder-{}.sock",
        uuid::Uuid::new_v4().simple()
    );
    // A port nothing listens on: bind one, then free it.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    for address in [gone, format!("tcp://127.0.0.1:{port}")] {
        let cfg = BuilderConfig {
            address: address.clone(),
            ..BuilderConfig::default()
        };
        let mut spec = publish_spec(
            build_spec(snapshot(dir.path(), df, None, &address)),
            unique_repo("bk-gone"),
        );
        spec.push = false;
        let (r, _) = publish(&builder_engine(cfg, 1), spec, CancellationToken::new()).await;
        let e = r.expect_err("no builder there");
        assert!(matches!(e, LocalError::BuilderUnreachable { .. }), "{e:?}");
        let text = e.to_string();
        assert!(
            text.contains(&address) && text.contains("imagebuild:builder"),
            "{text}"
        );
    }
}

#[tokio::test]
async fn a_named_context_is_served_over_the_builders_session() {
    use imagebuild::context::DockerfileSource;
    use imagebuild::plan::{make_plan, BaseLookup, NamedContextSource, PlanRequest};
    use imagebuild::registry::RegistryConfig;
    require_builder().await;
    let id = uuid::Uuid::new_v4().simple().to_string();
    let shared = write_tree(&[
        ("lib/a.py", "a = 1\n"),
        ("lib/b.py", "b = 2\n"),
        ("big.bin", "z"),
    ]);
    let app = write_tree(&[("app.py", &format!("print('{id}')\n"))]);
    let df = format!(
        "FROM {}\nCOPY app.py /app.py\nCOPY --from=shared lib/a.py /a.py\n",
        base()
    );
    let req = PlanRequest {
        context: app.path().to_path_buf(),
        dockerfile: DockerfileSource::Inline(df),
        build_args: Default::default(),
        target: None,
        platform: imagebuild::plan::host_platform(),
        labels: Default::default(),
        contexts: [(
            "shared".to_string(),
            NamedContextSource::Dir(shared.path().to_path_buf()),
        )]
        .into(),
        cache_dir: Some(std::env::temp_dir().join("imagebuild-builder-tests-cache")),
    };
    // As ContainerImage plans for a builder: base images from registries only.
    let lookup = BaseLookup {
        daemon: None,
        registry_for: std::sync::Arc::new(|_| RegistryConfig {
            explicit: Some(registry_creds()),
            ..RegistryConfig::default()
        }),
    };
    let plan = make_plan(&req, &lookup)
        .await
        .unwrap_or_else(|e| panic!("plan: {e}"));
    assert_eq!(plan.snapshot.named.len(), 1, "the plan reads `shared`");
    let repo = unique_repo("bk-named");
    // The base is pinned to its registry digest, and built so, as a ContainerImage does.
    let pinned = plan
        .build_dockerfile
        .clone()
        .expect("the base pinned by digest");
    assert!(String::from_utf8_lossy(&pinned).contains("@sha256:"));
    let mut build = build_spec(plan.snapshot.clone());
    build.dockerfile_text = Some(pinned);
    let spec = publish_spec(build, repo.clone());
    let (r, _) = publish(
        &builder_engine(builder_unix(), 1),
        spec.clone(),
        CancellationToken::new(),
    )
    .await;
    let p = r.unwrap_or_else(|e| panic!("named-context build: {e}"));
    let from_shared: Vec<&String> = p
        .transfers
        .iter()
        .filter(|t| t.dir == "shared")
        .flat_map(|t| &t.files_sent)
        .collect();
    assert_eq!(from_shared, vec!["lib/a.py"], "only the named path is sent");
    let top = top_layer_files(&repo, &spec.hash_tag).await;
    assert_eq!(
        top.get("a.py").map(String::as_str),
        Some("a = 1\n"),
        "{top:?}"
    );
}

#[tokio::test]
async fn an_ssh_agent_is_forwarded_over_the_builders_session() {
    use imagebuild::local::SshSpec;
    use std::os::unix::fs::PermissionsExt;
    require_builder().await;
    let tmp = tempfile::tempdir().unwrap();
    let id = uuid::Uuid::new_v4().simple().to_string();
    let comment = format!("imagebuild-bk-{}", &id[..12]);
    let sock = tmp.path().join("agent.sock");
    let mut agent = std::process::Command::new("ssh-agent")
        .args(["-D", "-a"])
        .arg(&sock)
        .stdout(std::process::Stdio::null())
        .spawn()
        .expect("start ssh-agent (apt install openssh-client)");
    let deadline = Instant::now() + Duration::from_secs(10);
    while !sock.exists() {
        assert!(Instant::now() < deadline, "ssh-agent never made its socket");
        std::thread::sleep(Duration::from_millis(50));
    }
    let key = tmp.path().join("id_ed25519");
    let ok = |c: &mut std::process::Command| assert!(c.status().unwrap().success(), "{c:?}");
    ok(std::process::Command::new("ssh-keygen")
        .args(["-q", "-t", "ed25519", "-N", "", "-C", &comment, "-f"])
        .arg(&key));
    ok(std::process::Command::new("ssh-add")
        .env("SSH_AUTH_SOCK", &sock)
        .arg(&key));
    // The host's ssh-add runs in the Debian Python base (same release, same libraries).
    let dir = write_tree(&[]);
    std::fs::copy("/usr/bin/ssh-add", dir.path().join("ssh-add")).unwrap();
    std::fs::set_permissions(
        dir.path().join("ssh-add"),
        std::fs::Permissions::from_mode(0o755),
    )
    .unwrap();
    let df = format!(
        "FROM {}\nCOPY ssh-add /usr/local/bin/ssh-add\nRUN --mount=type=ssh ssh-add -l; echo list-{id}\n",
        env("IMAGEBUILD_BASE_PYTHON_REGISTRY")
    );
    let mut build = build_spec(snapshot(dir.path(), &df, None, &id));
    build.ssh = vec![SshSpec {
        id: String::new(),
        paths: vec![sock.clone()],
    }];
    let mut spec = publish_spec(build, unique_repo("bk-ssh"));
    spec.push = false;
    let (r, ev) = publish(
        &builder_engine(builder_unix(), 1),
        spec,
        CancellationToken::new(),
    )
    .await;
    let _ = agent.kill();
    let _ = agent.wait();
    r.unwrap_or_else(|e| panic!("ssh build on the builder: {e}"));
    let lines = logs(&ev);
    assert!(
        lines
            .iter()
            .any(|l| l.contains(&comment) && l.contains("ED25519")),
        "{lines:?}"
    );
}
