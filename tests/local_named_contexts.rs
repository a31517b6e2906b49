//! Named build contexts (`contexts: {name: dir | docker-image://REF}`) on local builds: they go
//! through BuildKit's Control API on the daemon (`/build` cannot pass them). On Engine 29 the
//! named directory is served over our session like `context` (its own .dockerignore, only the
//! paths the Dockerfile names, only changed files on a rebuild), an image context works, the
//! image is tagged and pushed as on the `/build` path, failures map the same way, and cancel
//! stops the build. On Engine 20.10 the build is refused, clearly, before it starts.

mod local_common;

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::time::{Duration, Instant};

use imagebuild::context::DockerfileSource;
use imagebuild::local::{LocalError, ProgressEvent, Published, TransferRequest};
use imagebuild::plan::{make_plan, BaseLookup, NamedContextSource, Plan, PlanRequest};
use local_common::*;
use tokio_util::sync::CancellationToken;

/// The cancel test counts this process's open files: it runs alone (write), the others together.
static FILES: tokio::sync::RwLock<()> = tokio::sync::RwLock::const_new(());

/// The plan a ContainerImage would make: the Dockerfile analysis decides what the hash (and so
/// the session) covers in each context.
async fn make(
    host: &str,
    context: &Path,
    dockerfile: &str,
    contexts: &[(&str, NamedContextSource)],
) -> Plan {
    let req = PlanRequest {
        context: context.to_path_buf(),
        dockerfile: DockerfileSource::Inline(dockerfile.to_string()),
        build_args: BTreeMap::new(),
        target: None,
        platform: imagebuild::plan::host_platform(),
        labels: BTreeMap::new(),
        contexts: contexts
            .iter()
            .map(|(n, s)| (n.to_string(), s.clone()))
            .collect(),
        cache_dir: Some(std::env::temp_dir().join("imagebuild-named-tests-cache")),
    };
    let lookup = BaseLookup::local_default(Some(host.to_string()));
    make_plan(&req, &lookup)
        .await
        .unwrap_or_else(|e| panic!("plan: {e}"))
}

/// A local (unpushed) publish of `plan` on `host`; returns the local image reference too.
async fn build_local(
    host: &str,
    plan: &Plan,
    image_contexts: &[(&str, &str)],
) -> (
    String,
    Result<Published, LocalError>,
    Vec<(Instant, ProgressEvent)>,
) {
    let mut build = build_spec(plan.snapshot.clone());
    build.image_contexts = image_contexts
        .iter()
        .map(|(n, r)| (n.to_string(), r.to_string()))
        .collect();
    let mut spec = publish_spec(build, unique_repo("named"));
    spec.push = false;
    let image = spec.repository.with_tag(&spec.hash_tag);
    let (r, ev) = publish(&engine_on(host), spec, CancellationToken::new()).await;
    (image, r, ev)
}

/// Every path below `/ctx` of `image` on `host` (directories end in `/`), with each file's
/// content, read through the CLI's local exporter.
fn ctx_files(host: &str, image: &str) -> BTreeMap<String, String> {
    let work = tempfile::tempdir().unwrap();
    let df = work.path().join("Dockerfile");
    std::fs::write(&df, format!("FROM {image}\n")).unwrap();
    let out = work.path().join("out");
    let dest = format!("type=local,dest={}", out.display());
    let (df, ctx) = (df.display().to_string(), work.path().display().to_string());
    docker_on(host, &["build", "-q", "-f", &df, "--output", &dest, &ctx]);
    let mut files = BTreeMap::new();
    walk(&out.join("ctx"), "", &mut files);
    files
}

fn walk(root: &Path, rel: &str, out: &mut BTreeMap<String, String>) {
    for e in std::fs::read_dir(root.join(rel)).unwrap().flatten() {
        let name = e.file_name().to_string_lossy().into_owned();
        let path = if rel.is_empty() {
            name
        } else {
            format!("{rel}/{name}")
        };
        if e.file_type().unwrap().is_dir() {
            out.insert(format!("{path}/"), String::new());
            walk(root, &path, out);
        } else {
            out.insert(path.clone(), std::fs::read_to_string(e.path()).unwrap());
        }
    }
}

/// The requests for the named directory `dir` proper (not the `.dockerignore` probe).
fn dir_requests<'a>(p: &'a Published, dir: &str) -> Vec<&'a TransferRequest> {
    p.transfers
        .iter()
        .filter(|t| t.dir == dir && t.filter.follow_paths != [".dockerignore"])
        .collect()
}

fn sent(p: &Published, dir: &str) -> BTreeSet<String> {
    dir_requests(p, dir)
        .iter()
        .flat_map(|t| t.files_sent.iter().cloned())
        .collect()
}

fn rmi(host: &str, images: &[&str]) {
    let _ = std::process::Command::new("/usr/bin/docker")
        .env("DOCKER_HOST", host)
        .args(["rmi", "-f"])
        .args(images)
        .output();
}

/// A shared-packages folder with an ignore file that ignores itself.
fn shared_dir() -> tempfile::TempDir {
    write_tree(&[
        (".dockerignore", "**/*.log\nsecret\n.dockerignore\n"),
        ("lib/a.py", "a = 1\n"),
        ("lib/b.py", "b = 2\n"),
        ("lib/debug.log", "noise\n"),
        ("tools/t.sh", "echo tool\n"),
        ("data/big.bin", &"x".repeat(300_000)),
        ("secret/key", "do not send\n"),
        ("top.txt", "top\n"),
    ])
}

#[tokio::test]
async fn from_named_directory_copies_exactly_its_dockerignored_files() {
    let _shared = FILES.read().await;
    let host = engine29_host();
    let id = uuid::Uuid::new_v4().simple().to_string();
    let shared = shared_dir();
    let app = write_tree(&[("app.py", "print('app')\n")]);
    let df = format!(
        "FROM shared AS pkgs\nFROM scratch\nCOPY --from=pkgs / /ctx/\nCOPY app.py /ctx/app.py\n# {id}\n"
    );
    let source = NamedContextSource::Dir(shared.path().to_path_buf());
    let plan = make(&host, app.path(), &df, &[("shared", source)]).await;
    assert_eq!(plan.snapshot.named.len(), 1, "the plan reads `shared`");
    let (image, r, _) = build_local(&host, &plan, &[]).await;
    let published = r.unwrap_or_else(|e| panic!("build: {e}"));
    let files = ctx_files(&host, &image);
    rmi(&host, &[&image]);
    let want: BTreeMap<String, String> = [
        ("app.py", "print('app')\n"),
        ("data/", ""),
        ("data/big.bin", &"x".repeat(300_000)),
        ("lib/", ""),
        ("lib/a.py", "a = 1\n"),
        ("lib/b.py", "b = 2\n"),
        ("tools/", ""),
        ("tools/t.sh", "echo tool\n"),
        ("top.txt", "top\n"),
    ]
    .iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect();
    assert_eq!(
        files.keys().collect::<Vec<_>>(),
        want.keys().collect::<Vec<_>>()
    );
    assert_eq!(files, want);
    // The ignored files never left this machine.
    let shared_sent = sent(&published, "shared");
    assert!(
        shared_sent
            .iter()
            .all(|f| !f.ends_with(".log") && !f.starts_with("secret")),
        "{shared_sent:?}"
    );
    assert!(shared_sent.contains("data/big.bin"), "{shared_sent:?}");
    assert!(published.context_bytes_sent >= 300_000);
}

#[tokio::test]
async fn copy_from_and_bind_mount_send_only_the_named_paths() {
    let _shared = FILES.read().await;
    let host = engine29_host();
    let id = uuid::Uuid::new_v4().simple().to_string();
    let shared = shared_dir();
    let app = write_tree(&[("app.py", "print('app')\n"), ("unread.txt", "u")]);
    let df = format!(
        "FROM {BUSYBOX}\n\
         COPY --from=shared lib /ctx/lib/\n\
         RUN --mount=type=bind,from=shared,source=tools,target=/tools cp -r /tools /ctx/tools\n\
         COPY app.py /ctx/\n\
         RUN echo {id}\n"
    );
    let source = || NamedContextSource::Dir(shared.path().to_path_buf());
    let first_plan = make(&host, app.path(), &df, &[("shared", source())]).await;
    let (first_image, r, events) = build_local(&host, &first_plan, &[]).await;
    let first = r.unwrap_or_else(|e| panic!("first build: {e}"));
    let files = ctx_files(&host, &first_image);
    let names: Vec<&str> = files.keys().map(String::as_str).collect();
    assert_eq!(
        names,
        [
            "app.py",
            "lib/",
            "lib/a.py",
            "lib/b.py",
            "tools/",
            "tools/t.sh"
        ]
    );
    assert_eq!(files["tools/t.sh"], "echo tool\n");
    for t in &first.transfers {
        eprintln!(
            "dir={} follow={:?} exclude={:?} sent={:?}",
            t.dir, t.filter.follow_paths, t.filter.exclude_patterns, t.files_sent
        );
    }
    // Only the paths the Dockerfile names were asked for and sent; the ignore rules travelled.
    let requests = dir_requests(&first, "shared");
    assert!(!requests.is_empty(), "{:?}", first.transfers);
    for t in &requests {
        assert!(
            !t.filter.follow_paths.is_empty()
                && t.filter
                    .follow_paths
                    .iter()
                    .all(|p| p == "lib" || p == "tools"),
            "{t:?}"
        );
        assert!(t.filter.exclude_patterns.contains(&"**/*.log".to_string()));
    }
    assert_eq!(
        sent(&first, "shared"),
        BTreeSet::from(["lib/a.py".into(), "lib/b.py".into(), "tools/t.sh".into()])
    );
    assert_eq!(sent(&first, "context"), BTreeSet::from(["app.py".into()]));
    // Progress came through the Control API's status stream.
    let steps: Vec<&String> = events
        .iter()
        .filter_map(|(_, e)| match e {
            ProgressEvent::Step { name, .. } => Some(name),
            _ => None,
        })
        .collect();
    assert!(
        steps.iter().any(|s| s.starts_with("RUN --mount=type=bind")),
        "{steps:?}"
    );
    assert!(events
        .iter()
        .any(|(_, e)| *e == ProgressEvent::Log(id.clone())));

    // The rebuild sends the changed file and nothing the Dockerfile does not name. BuildKit's
    // frontend makes one local source per instruction that reads `shared`, all under one shared
    // key: which of them gets which previous copy depends on scheduling, so with two readers a
    // rebuild may resend the other reader's files (buildx does the same). One reader: see
    // `a_rebuild_sends_only_the_changed_named_file`.
    std::fs::write(shared.path().join("lib/b.py"), "b = 3 # changed\n").unwrap();
    let second_plan = make(&host, app.path(), &df, &[("shared", source())]).await;
    assert_ne!(second_plan.snapshot.hash, first_plan.snapshot.hash);
    let (second_image, r, _) = build_local(&host, &second_plan, &[]).await;
    let second = r.unwrap_or_else(|e| panic!("second build: {e}"));
    let files = ctx_files(&host, &second_image);
    rmi(&host, &[&first_image, &second_image]);
    assert_eq!(files["lib/b.py"], "b = 3 # changed\n");
    let resent = sent(&second, "shared");
    assert!(resent.contains("lib/b.py"), "{:?}", second.transfers);
    assert!(resent.is_subset(&sent(&first, "shared")), "{resent:?}");
    assert!(
        sent(&second, "context").is_empty(),
        "{:?}",
        second.transfers
    );
}

#[tokio::test]
async fn a_rebuild_sends_only_the_changed_named_file() {
    let _shared = FILES.read().await;
    let host = engine29_host();
    let id = uuid::Uuid::new_v4().simple().to_string();
    let shared = shared_dir();
    let app = write_tree(&[("app.py", "print('app')\n")]);
    let df = format!("FROM {BUSYBOX}\nCOPY --from=shared lib tools /ctx/\nRUN echo {id}\n");
    let source = || NamedContextSource::Dir(shared.path().to_path_buf());
    let first_plan = make(&host, app.path(), &df, &[("shared", source())]).await;
    let (first_image, r, _) = build_local(&host, &first_plan, &[]).await;
    let first = r.unwrap_or_else(|e| panic!("first build: {e}"));
    assert_eq!(
        sent(&first, "shared"),
        BTreeSet::from(["lib/a.py".into(), "lib/b.py".into(), "tools/t.sh".into()])
    );
    std::fs::write(shared.path().join("lib/b.py"), "b = 3 # changed\n").unwrap();
    let second_plan = make(&host, app.path(), &df, &[("shared", source())]).await;
    let (second_image, r, _) = build_local(&host, &second_plan, &[]).await;
    let second = r.unwrap_or_else(|e| panic!("second build: {e}"));
    let files = ctx_files(&host, &second_image);
    rmi(&host, &[&first_image, &second_image]);
    assert_eq!(files["b.py"], "b = 3 # changed\n");
    assert_eq!(files["t.sh"], "echo tool\n");
    assert_eq!(
        sent(&second, "shared"),
        BTreeSet::from(["lib/b.py".into()]),
        "{:?}",
        second.transfers
    );
    let shared_bytes: u64 = dir_requests(&second, "shared")
        .iter()
        .map(|t| t.bytes_sent)
        .sum();
    assert_eq!(shared_bytes, "b = 3 # changed\n".len() as u64);
}

#[tokio::test]
async fn image_context_builds_and_pushes_like_the_build_endpoint() {
    let _shared = FILES.read().await;
    let host = engine29_host();
    let id = uuid::Uuid::new_v4().simple().to_string();
    let app = write_tree(&[("app.py", "print('app')\n")]);
    let df = format!("FROM base\nCOPY app.py /app/\nRUN echo {id} > /app/id\n");
    let source = NamedContextSource::Image(BUSYBOX.to_string());
    let plan = make(&host, app.path(), &df, &[("base", source)]).await;
    assert!(
        plan.snapshot.named.is_empty(),
        "an image context is no directory"
    );
    let mut build = build_spec(plan.snapshot.clone());
    build.image_contexts = BTreeMap::from([("base".to_string(), BUSYBOX.to_string())]);
    let repo = unique_repo("named-image");
    let mut spec = publish_spec(build, repo.clone());
    spec.extra_tags = vec!["latest".into()];
    let eng = engine_on(&host);
    let (r, _) = publish(&eng, spec.clone(), CancellationToken::new()).await;
    let p = r.unwrap_or_else(|e| panic!("publish: {e}"));
    assert!(!p.adopted);
    assert_eq!(eng.builds_started(), 1);
    // Tagged in the daemon as the /build path leaves it; imageId is the pushed config digest.
    let hash_ref = repo.with_tag(&spec.hash_tag);
    docker_on(&host, &["image", "inspect", "-f", "{{.Id}}", &hash_ref]);
    let manifest = registry_manifest(&repo, &spec.hash_tag).await;
    assert_eq!(
        manifest["config"]["digest"].as_str(),
        Some(p.image_id.as_str())
    );
    let run = docker_on(&host, &["run", "--rm", &hash_ref, "cat", "/app/id"]);
    assert_eq!(run.trim(), id);
    // Pushed: both tags serve one single-platform manifest (no index: Lambda refuses those).
    let digest = registry_digest(&repo, &spec.hash_tag).await;
    assert_eq!(digest, p.digest, "{p:?}");
    assert_eq!(registry_digest(&repo, "latest").await, p.digest);
    registry_single_image_config(&repo, &spec.hash_tag).await;
    rmi(&host, &[&hash_ref, &repo.with_tag("latest")]);
}

#[tokio::test]
async fn failing_step_maps_like_the_build_endpoint() {
    let _shared = FILES.read().await;
    let host = engine29_host();
    let id = uuid::Uuid::new_v4().simple().to_string();
    let shared = write_tree(&[("f.txt", "f")]);
    let app = write_tree(&[("n", "n")]);
    let run = format!("RUN echo out-{id} && exit 3\n");
    let with_named = format!("FROM {BUSYBOX}\nCOPY --from=shared f.txt /f\n{run}");
    let without = format!("FROM {BUSYBOX}\nCOPY n /f\n{run}");
    let source = NamedContextSource::Dir(shared.path().to_path_buf());
    let named_plan = make(&host, app.path(), &with_named, &[("shared", source)]).await;
    let plain_plan = make(&host, app.path(), &without, &[]).await;
    let mut errors = Vec::new();
    for p in [&named_plan, &plain_plan] {
        let (_, r, _) = build_local(&host, p, &[]).await;
        errors.push(r.expect_err("exit 3 must fail the build"));
    }
    for e in &errors {
        match e {
            LocalError::StepFailed {
                step,
                exit_code,
                log_tail,
                ..
            } => {
                assert!(step.contains("exit 3"), "{step}");
                assert_eq!(*exit_code, Some(3));
                assert!(log_tail.contains(&format!("out-{id}")), "{log_tail:?}");
            }
            other => panic!("expected a failed step, got {other:?}"),
        }
    }
    // Same step text apart from its position (the named build has one step more).
    let step = |e: &LocalError| match e {
        LocalError::StepFailed { step, .. } => step.split_once("] ").unwrap().1.to_string(),
        _ => unreachable!(),
    };
    assert_eq!(step(&errors[0]), step(&errors[1]));
}

#[tokio::test]
async fn a_named_file_changed_after_the_snapshot_fails_the_build_naming_it() {
    let _shared = FILES.read().await;
    let host = engine29_host();
    let id = uuid::Uuid::new_v4().simple().to_string();
    let shared = write_tree(&[("lib/keep.py", "k"), ("lib/edited.py", "original")]);
    let app = write_tree(&[("n", "n")]);
    let df = format!("FROM scratch\nCOPY --from=shared lib /ctx/\n# {id}\n");
    let source = NamedContextSource::Dir(shared.path().to_path_buf());
    let plan = make(&host, app.path(), &df, &[("shared", source)]).await;
    // Same size, other bytes: only the digest check while it is streamed can tell.
    std::fs::write(shared.path().join("lib/edited.py"), "ORIGINAL").unwrap();
    let (_, r, _) = build_local(&host, &plan, &[]).await;
    let e = r.expect_err("a changed named-context file must fail the build");
    assert!(
        matches!(&e, LocalError::ContextChanged { path, .. }
            if path.starts_with(&*shared.path().canonicalize().unwrap().to_string_lossy())
                && path.ends_with("lib/edited.py")),
        "{e:?}"
    );
}

/// Pids of host processes whose command line is exactly `sleep <secs>`.
fn sleepers(secs: &str) -> Vec<u32> {
    let mut out = Vec::new();
    for e in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(pid) = e.file_name().to_string_lossy().parse::<u32>() else {
            continue;
        };
        let Ok(cmd) = std::fs::read(format!("/proc/{pid}/cmdline")) else {
            continue;
        };
        let args: Vec<&[u8]> = cmd.split(|b| *b == 0).filter(|a| !a.is_empty()).collect();
        if args.len() == 2 && args[0].ends_with(b"sleep") && args[1] == secs.as_bytes() {
            out.push(pid);
        }
    }
    out
}

fn open_fds() -> usize {
    std::fs::read_dir("/proc/self/fd").unwrap().count()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cancel_mid_build_stops_the_solve_and_closes_the_connections() {
    let _alone = FILES.write().await;
    let host = engine29_host();
    // An odd duration: no other test's process matches it.
    let secs = "43";
    let id = uuid::Uuid::new_v4().simple().to_string();
    let shared = write_tree(&[("f.txt", "f")]);
    let app = write_tree(&[("n", "n")]);
    let df =
        format!("FROM {BUSYBOX}\nCOPY --from=shared f.txt /f\nRUN echo {id} && sleep {secs}\n");
    let source = NamedContextSource::Dir(shared.path().to_path_buf());
    let plan = make(&host, app.path(), &df, &[("shared", source)]).await;
    let mut spec = publish_spec(
        build_spec(plan.snapshot.clone()),
        unique_repo("named-cancel"),
    );
    spec.push = false;
    let eng = engine_on(&host);
    let fds_before = open_fds();
    let cancel = CancellationToken::new();
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    let c2 = cancel.clone();
    let watcher = tokio::spawn(async move {
        while let Some(e) = rx.recv().await {
            if matches!(&e, ProgressEvent::Step { name, .. } if name.contains("sleep")) {
                let deadline = Instant::now() + Duration::from_secs(20);
                while sleepers(secs).is_empty() && Instant::now() < deadline {
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
                assert!(!sleepers(secs).is_empty(), "the RUN step never started");
                c2.cancel();
            }
        }
    });
    let t0 = Instant::now();
    let r = eng.publish(spec, tx, cancel).await;
    watcher.await.unwrap();
    assert!(matches!(r, Err(LocalError::Cancelled)), "{r:?}");
    let deadline = Instant::now() + Duration::from_secs(10);
    while !sleepers(secs).is_empty() && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert!(
        sleepers(secs).is_empty(),
        "the solve still runs after cancel"
    );
    assert!(t0.elapsed() < Duration::from_secs(30), "{:?}", t0.elapsed());
    let deadline = Instant::now() + Duration::from_secs(5);
    while open_fds() > fds_before && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(
        open_fds() <= fds_before,
        "open files {fds_before} -> {}: the session or /grpc connection stayed open",
        open_fds()
    );
    // The daemon is left usable: the same named context builds right after.
    let quick = format!("FROM {BUSYBOX}\nCOPY --from=shared f.txt /ctx/f.txt\nRUN echo {id}\n");
    let source = NamedContextSource::Dir(shared.path().to_path_buf());
    let plan = make(&host, app.path(), &quick, &[("shared", source)]).await;
    let (image, r, _) = build_local(&host, &plan, &[]).await;
    r.unwrap_or_else(|e| panic!("build after cancel: {e}"));
    assert_eq!(ctx_files(&host, &image)["f.txt"], "f");
    rmi(&host, &[&image]);
}

#[tokio::test]
async fn engine_20_10_refuses_named_contexts_before_building() {
    let _shared = FILES.read().await;
    let host = engine20_host();
    require_registry();
    let shared = write_tree(&[("f.txt", "f")]);
    let app = write_tree(&[("n", "n")]);
    let id = uuid::Uuid::new_v4().simple().to_string();
    let df = format!("FROM {BUSYBOX}\nCOPY --from=shared f.txt /f\nRUN echo {id}\n");
    let source = NamedContextSource::Dir(shared.path().to_path_buf());
    let dir_plan = make(&host, app.path(), &df, &[("shared", source)]).await;
    let image_df = format!("FROM base\nRUN echo {id}\n");
    let image_source = NamedContextSource::Image(BUSYBOX.to_string());
    let image_plan = make(&host, app.path(), &image_df, &[("base", image_source)]).await;
    let cases = [(&dir_plan, vec![]), (&image_plan, vec![("base", BUSYBOX)])];
    for (plan, images) in cases {
        let mut build = build_spec(plan.snapshot.clone());
        build.image_contexts = images
            .iter()
            .map(|(n, r)| (n.to_string(), r.to_string()))
            .collect();
        // Pushing: the registry lookup (adopt) runs, the build never starts.
        let spec = publish_spec(build, unique_repo("named-old"));
        let eng = engine_on(&host);
        let (r, events) = publish(&eng, spec, CancellationToken::new()).await;
        let e = r.expect_err("Engine 20.10 cannot build named contexts");
        assert!(
            matches!(&e, LocalError::NamedContextsUnsupported { engine, api, .. }
                if engine.starts_with("20.10") && api == "1.41"),
            "{e:?}"
        );
        let msg = e.to_string();
        for part in ["`contexts`", "20.10", "Engine 23 or later", "dockerHost"] {
            assert!(msg.contains(part), "{part:?} missing from: {msg}");
        }
        assert_eq!(eng.builds_started(), 0, "a build was sent to the daemon");
        assert!(
            !events
                .iter()
                .any(|(_, e)| matches!(e, ProgressEvent::Step { .. })),
            "{events:?}"
        );
    }
}

/// Builds an image whose /marker holds `marker` on `host` and pushes it as `repo:base`.
async fn push_marker_image(host: &str, repo: &imagebuild::registry::ImageName, marker: &str) {
    let dir = write_tree(&[(
        "Dockerfile",
        &format!("FROM {BUSYBOX}\nRUN echo {marker} > /marker\n"),
    )]);
    let snap = snapshot(dir.path(), "", Some("Dockerfile"), marker);
    let mut spec = publish_spec(build_spec(snap), repo.clone());
    spec.hash_tag = marker.to_string();
    spec.extra_tags = vec!["base".to_string()];
    let (r, _) = publish(&engine_on(host), spec, CancellationToken::new()).await;
    r.unwrap_or_else(|e| panic!("base build: {e}"));
}

/// The plan of `FROM base` with `base=docker-image://<repo:base>`, resolved with the test
/// registry's credentials.
async fn plan_on_image_context(host: &str, app: &Path, reference: &str) -> Plan {
    let req = PlanRequest {
        context: app.to_path_buf(),
        dockerfile: DockerfileSource::Inline("FROM base\nRUN cat /marker > /seen\n".into()),
        build_args: BTreeMap::new(),
        target: None,
        platform: imagebuild::plan::host_platform(),
        labels: BTreeMap::new(),
        contexts: BTreeMap::from([
            (
                "base".to_string(),
                NamedContextSource::Image(reference.to_string()),
            ),
            (
                "unused".to_string(),
                NamedContextSource::Image("imagebuild.invalid/none:1".to_string()),
            ),
        ]),
        cache_dir: Some(std::env::temp_dir().join("imagebuild-named-tests-cache")),
    };
    let lookup = BaseLookup {
        daemon: Some(Some(host.to_string())),
        registry_for: std::sync::Arc::new(|_| imagebuild::registry::RegistryConfig {
            explicit: Some(registry_creds()),
            ..Default::default()
        }),
    };
    make_plan(&req, &lookup)
        .await
        .unwrap_or_else(|e| panic!("plan: {e}"))
}

/// Builds `plan` (not pushed) with its image contexts and reads /seen.
async fn build_and_read_seen(host: &str, plan: &Plan) -> String {
    let mut build = build_spec(plan.snapshot.clone());
    build.image_contexts = plan.image_contexts.clone();
    let mut spec = publish_spec(build, unique_repo("named-pinned-app"));
    spec.push = false;
    let image = spec.repository.with_tag(&spec.hash_tag);
    let (r, _) = publish(&engine_on(host), spec, CancellationToken::new()).await;
    r.unwrap_or_else(|e| panic!("app build: {e}"));
    let seen = docker_on(host, &["run", "--rm", &image, "cat", "/seen"]);
    rmi(host, &[&image]);
    seen.trim().to_string()
}

#[tokio::test]
async fn an_image_context_is_built_with_the_digest_that_was_hashed() {
    let _shared = FILES.read().await;
    let host = engine29_host();
    let repo = unique_repo("named-pinned-base");
    let reference = repo.with_tag("base");
    let app = write_tree(&[("n", "n")]);
    push_marker_image(&host, &repo, "first").await;
    let before = plan_on_image_context(&host, app.path(), &reference).await;
    let first = registry_digest(&repo, "base").await.expect("pushed");
    assert_eq!(
        before.image_contexts,
        BTreeMap::from([("base".to_string(), repo.with_digest(&first))]),
        "the build names the digest that was hashed, and only the contexts the Dockerfile reads"
    );
    assert_eq!(build_and_read_seen(&host, &before).await, "first");

    // The tag moves: a new hash, built with the new digest; the old plan still builds "first".
    push_marker_image(&host, &repo, "second").await;
    let after = plan_on_image_context(&host, app.path(), &reference).await;
    assert_ne!(before.snapshot.hash, after.snapshot.hash);
    assert_eq!(build_and_read_seen(&host, &after).await, "second");
    assert_eq!(build_and_read_seen(&host, &before).await, "first");
    rmi(&host, &[&reference]);
}
