//! BuildKit features through the engine: cache mounts, secrets, failing steps, what `COPY .` sees.

mod local_common;

use std::collections::BTreeSet;

use imagebuild::local::{LocalError, ProgressEvent};
use local_common::*;
use tokio_util::sync::CancellationToken;

fn logs(events: &[(std::time::Instant, ProgressEvent)]) -> Vec<String> {
    events
        .iter()
        .filter_map(|(_, e)| match e {
            ProgressEvent::Log(l) => Some(l.clone()),
            _ => None,
        })
        .collect()
}

#[tokio::test]
async fn cache_mount_is_reused_across_builds() {
    require_services();
    let id = uuid::Uuid::new_v4().simple().to_string();
    let df = format!(
        "FROM {BUSYBOX}\nARG RUN_ID\n\
         RUN --mount=type=cache,target=/cache,id=itest-{id} \
         if [ -f /cache/marker ]; then echo CACHE-HIT $(cat /cache/marker); \
         else echo CACHE-MISS; echo first > /cache/marker; fi; echo run $RUN_ID\n"
    );
    let dir = write_tree(&[("x", "x")]);
    let eng = engine(2);
    let mut seen = Vec::new();
    for run in ["1", "2"] {
        let mut b = build_spec(snapshot(dir.path(), &df, None, run));
        // Newer BuildKit leaves a cache mount's id out of the step's cache key: the build arg
        // must be unique per test run, or the second run of this test finds the step cached.
        b.build_args.insert("RUN_ID".into(), format!("{id}-{run}"));
        let mut spec = publish_spec(b, unique_repo("cachemount"));
        spec.push = false;
        let (r, ev) = publish(&eng, spec, CancellationToken::new()).await;
        r.unwrap_or_else(|e| panic!("build {run} failed: {e}"));
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
async fn secret_is_usable_and_never_visible() {
    require_services();
    let secret = format!("s3cr3t-{}", uuid::Uuid::new_v4().simple());
    let dir = write_tree(&[("x", "x")]);
    let repo = unique_repo("secret");
    let run = uuid::Uuid::new_v4().simple().to_string();
    // Compared against a second secret so the value appears nowhere but in the secrets map.
    let df_ok = format!(
        "FROM {BUSYBOX}\n\
         RUN --mount=type=secret,id=token --mount=type=secret,id=expected \
         test \"$(cat /run/secrets/token)\" = \"$(cat /run/secrets/expected)\" && echo secret-ok && echo leaked: $(cat /run/secrets/token) {run}\n\
         RUN ls /run/secrets 2>&1; echo after\n"
    );
    let mut b = build_spec(snapshot(dir.path(), &df_ok, None, &secret));
    b.secrets.insert("token".into(), secret.clone());
    b.secrets.insert("expected".into(), secret.clone());
    let mut spec = publish_spec(b, repo.clone());
    spec.push = false;
    let (r, ev) = publish(&engine(1), spec.clone(), CancellationToken::new()).await;
    r.unwrap_or_else(|e| panic!("secret build failed: {e}"));
    let lines = logs(&ev);
    assert!(lines.iter().any(|l| l.contains("secret-ok")), "{lines:?}");
    assert!(lines.iter().any(|l| l.contains("leaked: ***")), "{lines:?}");

    // A failing step that prints the secret: the error and its log tail are redacted too.
    let df_bad = format!("FROM {BUSYBOX}\nRUN --mount=type=secret,id=token cat /run/secrets/token; echo; echo {run}; exit 1\n");
    let mut b = build_spec(snapshot(
        dir.path(),
        &df_bad,
        None,
        &format!("{secret}-bad"),
    ));
    b.secrets.insert("token".into(), secret.clone());
    let mut bad = publish_spec(b, repo.clone());
    bad.push = false;
    let (r, ev_bad) = publish(&engine(1), bad, CancellationToken::new()).await;
    let e = r.expect_err("exit 1 must fail");
    assert!(
        matches!(&e, LocalError::StepFailed { log_tail, .. } if log_tail.iter().any(|l| l == "***")),
        "{e:?}"
    );
    assert!(!e.to_string().contains(&secret) && !format!("{e:?}").contains(&secret));

    for (_, e) in ev.iter().chain(ev_bad.iter()) {
        assert!(
            !format!("{e:?}").contains(&secret),
            "event leaks the secret: {e:?}"
        );
    }
    let image = repo.with_tag(&spec.hash_tag);
    let history = docker(&["history", "--no-trunc", &image]);
    assert!(!history.contains(&secret), "{history}");
    assert!(history.contains("cat /run/secrets/token"), "{history}");
    let inspect = docker(&["image", "inspect", &image]);
    assert!(!inspect.contains(&secret), "{inspect}");
    let inside = docker(&[
        "run",
        "--rm",
        &image,
        "sh",
        "-c",
        "ls -la /run/secrets 2>&1; env",
    ]);
    assert!(!inside.contains(&secret), "{inside}");
}

#[tokio::test]
async fn failing_step_reports_step_exit_code_and_last_30_lines() {
    require_services();
    let id = uuid::Uuid::new_v4().simple().to_string();
    let df = format!(
        "FROM {BUSYBOX}\nRUN echo ok-{id}\n\
         RUN for i in $(seq 1 40); do echo line-$i; done; echo bad; exit 3\n"
    );
    let dir = write_tree(&[("x", "x")]);
    let mut spec = publish_spec(
        build_spec(snapshot(dir.path(), &df, None, &id)),
        unique_repo("fail"),
    );
    spec.push = false;
    let (r, _) = publish(&engine(1), spec, CancellationToken::new()).await;
    let e = r.expect_err("exit 3 must fail the build");
    let msg = e.to_string();
    match &e {
        LocalError::StepFailed {
            step,
            exit_code,
            log_tail,
            ..
        } => {
            assert!(step.contains("RUN for i in"), "{step}");
            assert_eq!(*exit_code, Some(3));
            assert_eq!(log_tail.len(), 30, "{log_tail:?}");
            assert_eq!(log_tail.last().map(String::as_str), Some("bad"));
            assert_eq!(log_tail.first().map(String::as_str), Some("line-12"));
        }
        other => panic!("expected StepFailed, got {other:?}"),
    }
    assert!(msg.contains("failed with exit code 3"), "{msg}");
    assert!(msg.contains("line-40"), "{msg}");
}

/// Files under `dir/ctx` in a build result exported by the Docker CLI (ground truth).
fn docker_cli_copy_listing(
    context: &std::path::Path,
    dockerfile_path: &std::path::Path,
) -> BTreeSet<String> {
    let out = tempfile::tempdir().unwrap();
    let st = std::process::Command::new("/usr/bin/docker")
        .env("DOCKER_BUILDKIT", "1")
        .args(["build", "-q", "-f"])
        .arg(dockerfile_path)
        .arg("--output")
        .arg(format!("type=local,dest={}", out.path().display()))
        .arg(context)
        .output()
        .unwrap();
    assert!(
        st.status.success(),
        "docker build: {}",
        String::from_utf8_lossy(&st.stderr)
    );
    let mut set = BTreeSet::new();
    let base = out.path().join("ctx");
    for e in walk_paths(&base, "") {
        set.insert(e);
    }
    set
}

fn walk_paths(root: &std::path::Path, rel: &str) -> Vec<String> {
    let mut out = Vec::new();
    let dir = if rel.is_empty() {
        root.to_path_buf()
    } else {
        root.join(rel)
    };
    for e in std::fs::read_dir(dir).unwrap() {
        let e = e.unwrap();
        let p = if rel.is_empty() {
            e.file_name().to_string_lossy().to_string()
        } else {
            format!("{rel}/{}", e.file_name().to_string_lossy())
        };
        out.push(p.clone());
        if e.file_type().unwrap().is_dir() {
            out.extend(walk_paths(root, &p));
        }
    }
    out
}

async fn engine_copy_listing(snap: imagebuild::local::ContextSnapshot) -> BTreeSet<String> {
    let mut spec = publish_spec(build_spec(snap), unique_repo("copyview"));
    spec.push = false;
    let (r, ev) = publish(&engine(1), spec, CancellationToken::new()).await;
    r.unwrap_or_else(|e| panic!("{e}"));
    logs(&ev)
        .into_iter()
        .filter_map(|l| l.strip_prefix("ENTRY /ctx/").map(str::to_string))
        .collect()
}

#[tokio::test]
async fn copy_dot_sees_what_docker_sends() {
    require_services();
    let id = uuid::Uuid::new_v4().simple().to_string();
    let listing = format!(
        "FROM {BUSYBOX}\nCOPY . /ctx/\nRUN echo {id} >/dev/null; find /ctx -mindepth 1 | sed 's/^/ENTRY /'\n"
    );
    // Dockerfile inside the context: sent once, at its own path, as Docker does; .dockerignore applied.
    let dir = write_tree(&[
        ("a.txt", "a"),
        ("sub/b.txt", "b"),
        ("sub/skip.log", "s"),
        ("node_modules/x/y.js", "y"),
        (".dockerignore", "*.log\n**/*.log\nnode_modules\n"),
        ("Dockerfile", &listing),
    ]);
    let snap = snapshot(dir.path(), &listing, Some("Dockerfile"), &id);
    let ours = engine_copy_listing(snap).await;
    let truth_df = format!("FROM scratch\nCOPY . /ctx/\n# {id}\n");
    let truth_dir = tempfile::tempdir().unwrap();
    std::fs::write(truth_dir.path().join("Dockerfile"), &truth_df).unwrap();
    let mut truth = docker_cli_copy_listing(dir.path(), &truth_dir.path().join("Dockerfile"));
    // The CLI's Dockerfile lived outside; ours is the context's own Dockerfile: same path set.
    assert_eq!(ours, truth, "engine vs docker CLI, Dockerfile in context");

    // Inline Dockerfile (not in the context): served in its own session directory, as Docker does,
    // so `COPY .` sees exactly the context.
    let dir2 = write_tree(&[
        ("a.txt", "a"),
        ("sub/b.txt", "b"),
        ("sub/skip.log", "s"),
        (".dockerignore", "**/*.log\n"),
    ]);
    let snap2 = snapshot(dir2.path(), &listing, None, &format!("{id}-inline"));
    let ours2 = engine_copy_listing(snap2).await;
    truth = docker_cli_copy_listing(dir2.path(), &truth_dir.path().join("Dockerfile"));
    assert_eq!(ours2, truth, "engine vs docker CLI, inline Dockerfile");
}
