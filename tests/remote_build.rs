//! Real builds through the CodeBuild double (moto S3/SSM/Secrets Manager/Logs, dockerd, local registry):
//! push + digest, exec bits and symlinks, secrets never in plaintext, failure context, stop on cancel or
//! deadline, idempotency token, managed project create/update.

mod remote_common;

use std::collections::BTreeMap;
use std::time::Duration;

use imagebuild::registry::ImageName;
use imagebuild::remote::{
    build_status, ensure_project, start_build, upload_context, wait_build, BuildState,
    FinishedBuild, ProjectChoice, RemoteBuildSpec, RemoteClients, RemoteError, RemoteProgress,
    RemoteSecret, SecretKind, UploadOptions, UploadTarget, WaitOptions,
};
use remote_common::*;
use sha2::{Digest, Sha256};
use tokio::sync::mpsc;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

const BASE: &str = "imagebuild-base/busybox:latest";

fn managed() -> ProjectChoice {
    ProjectChoice::Managed {
        service_role_arn: "arn:aws:iam::123456789012:role/imagebuild-test".into(),
        compute_type: "BUILD_GENERAL1_SMALL".into(),
        image: "aws/codebuild/standard:7.0".into(),
    }
}

fn fast_wait(seconds: u64) -> WaitOptions {
    WaitOptions {
        deadline: Some(Instant::now() + Duration::from_secs(seconds)),
        poll_initial: Duration::from_millis(300),
        poll_max: Duration::from_secs(2),
        tail_lines: 30,
    }
}

/// Snapshots and uploads `dir` and returns a spec pushing to a fresh repository of the local registry.
async fn prepared(
    s: &Services,
    c: &RemoteClients,
    dir: &std::path::Path,
    inline_dockerfile: Option<&str>,
) -> RemoteBuildSpec {
    let snap = snapshot_of(dir, inline_dockerfile).await;
    let target = UploadTarget {
        bucket: bucket(c).await,
        prefix: "contexts".into(),
        context_hash: snap.hash.clone(),
    };
    let (dockerfile, _) = archive(&snap);
    let up = upload_context(c, &target, UploadOptions::default(), || archive(&snap).1)
        .await
        .expect("upload");
    RemoteBuildSpec {
        context_hash: snap.hash.clone(),
        context_object: up.object_uri,
        repository: ImageName {
            registry: s.registry.clone(),
            repository: unique("remote/app"),
        },
        hash_tag: snap.hash.clone(),
        dockerfile,
        project: managed(),
        platform: None,
        target: None,
        build_args: BTreeMap::new(),
        timeout_minutes: 10,
        cache_ref: None,
        secrets: Vec::new(),
        named_contexts: Vec::new(),
    }
}

fn collect(mut rx: mpsc::UnboundedReceiver<RemoteProgress>) -> Vec<RemoteProgress> {
    let mut all = Vec::new();
    while let Ok(p) = rx.try_recv() {
        all.push(p);
    }
    all
}

fn sha_hex(s: &str) -> String {
    hex::encode(Sha256::digest(s.as_bytes()))
}

#[tokio::test]
async fn build_pushes_keeps_modes_and_symlinks_and_secrets_stay_out_of_plaintext() {
    let s = services().await;
    let c = clients(&s).await;

    // Secret values live only in moto's SSM and Secrets Manager.
    let npm_value = format!("npm-{}", uuid::Uuid::new_v4());
    let db_value = format!("db-{}", uuid::Uuid::new_v4());
    let ssm_name = format!("/imagebuild-test/{}/npm", unique("p"));
    let sm_name = unique("imagebuild-test-db");
    moto_call(
        &s,
        "ssm",
        "AmazonSSM.PutParameter",
        serde_json::json!({
            "Name": ssm_name, "Value": npm_value, "Type": "SecureString"
        }),
    )
    .await;
    moto_call(
        &s,
        "secretsmanager",
        "secretsmanager.CreateSecret",
        serde_json::json!({
            "Name": sm_name, "SecretString": format!("{{\"password\":\"{db_value}\"}}")
        }),
    )
    .await;

    let dockerfile = format!(
        "FROM {BASE}\n\
         COPY . /ctx/\n\
         RUN test -x /ctx/bin/run.sh && test ! -x /ctx/data.txt && test -L /ctx/link \
             && [ \"$(readlink /ctx/link)\" = bin/run.sh ] && /ctx/link\n\
         RUN --mount=type=secret,id=NPM_TOKEN --mount=type=secret,id=DB_PASSWORD \
             test \"$(sha256sum < /run/secrets/NPM_TOKEN | cut -d' ' -f1)\" = {} \
             && test \"$(sha256sum < /run/secrets/DB_PASSWORD | cut -d' ' -f1)\" = {} && echo secrets-ok\n\
         ARG GREETING\n\
         RUN echo \"$GREETING\" > /greeting && cat /greeting\n",
        sha_hex(&npm_value),
        sha_hex(&db_value)
    );
    let dir = context_dir(&[
        ("Dockerfile", &dockerfile, false),
        ("bin/run.sh", "#!/bin/sh\necho run-ok\n", true),
        ("data.txt", "plain\n", false),
    ]);
    std::os::unix::fs::symlink("bin/run.sh", dir.path().join("link")).unwrap();

    let mut spec = prepared(&s, &c, dir.path(), None).await;
    spec.build_args
        .insert("GREETING".into(), "hello 'quoted' $HOME".into());
    spec.secrets = vec![
        RemoteSecret {
            id: "NPM_TOKEN".into(),
            kind: SecretKind::ParameterStore,
            reference: ssm_name.clone(),
        },
        RemoteSecret {
            id: "DB_PASSWORD".into(),
            kind: SecretKind::SecretsManager,
            reference: format!("{sm_name}:password"),
        },
    ];

    let started = start_build(&c, &spec).await.expect("start");
    assert_eq!(started.project, "imagebuild-linux-amd64");
    let (tx, rx) = mpsc::unbounded_channel();
    let finished: FinishedBuild = wait_build(
        &c,
        &started.build_id,
        tx,
        CancellationToken::new(),
        fast_wait(600),
    )
    .await
    .unwrap_or_else(|e| panic!("build failed: {e}"));
    let progress = collect(rx);
    let logs: Vec<&str> = progress
        .iter()
        .filter_map(|p| match p {
            RemoteProgress::Log(l) => Some(l.as_str()),
            _ => None,
        })
        .collect();
    let phases: Vec<&str> = progress
        .iter()
        .filter_map(|p| match p {
            RemoteProgress::Phase(l) => Some(l.as_str()),
            _ => None,
        })
        .collect();

    // The digest the build reported is the registry's.
    let registry = registry_digest(&s, &spec.repository, &spec.hash_tag).await;
    assert_eq!(registry.as_deref(), Some(finished.digest.as_str()));
    assert_eq!(finished.state, BuildState::Succeeded);
    assert!(finished.build_seconds > 0.0 && finished.queued_seconds >= 0.0);
    // FROM, COPY and three RUNs, read off the log's plain progress lines; this context is new,
    // so nothing past FROM can come from the cache.
    assert_eq!(finished.steps.total, 5, "{:?}", finished.steps);
    assert!(finished.steps.cached <= 1, "{:?}", finished.steps);
    for expected in [
        "SUBMITTED",
        "QUEUED",
        "PROVISIONING",
        "DOWNLOAD_SOURCE",
        "INSTALL",
        "PRE_BUILD",
        "BUILD",
        "POST_BUILD",
        "UPLOAD_ARTIFACTS",
        "FINALIZING",
        "COMPLETED",
    ] {
        assert!(
            phases.contains(&expected),
            "phase {expected} reported: {phases:?}"
        );
    }
    assert_eq!(phases.last(), Some(&"COMPLETED"), "{phases:?}");
    assert!(
        logs.iter().any(|l| l.contains("secrets-ok")),
        "secret check ran"
    );
    assert!(
        logs.iter().any(|l| l.contains("run-ok")),
        "exec bit and symlink survived"
    );
    assert!(
        logs.iter().any(|l| l.contains("hello 'quoted' $HOME")),
        "build arg passed verbatim"
    );
    assert!(logs
        .iter()
        .any(|l| l.starts_with("IMAGEBUILD_DIGEST=sha256:")));

    // Secrets: typed variables only, values nowhere in the request or the log.
    let bodies = recorded_start_builds(&s).await;
    let mine: Vec<_> = bodies
        .iter()
        .filter(|b| b["idempotencyToken"] == started.idempotency_token.as_str())
        .collect();
    assert_eq!(mine.len(), 1);
    let text = mine[0].to_string();
    for value in [&npm_value, &db_value] {
        assert!(
            !text.contains(value.as_str()),
            "secret value in StartBuild request"
        );
        assert!(
            !logs.iter().any(|l| l.contains(value.as_str())),
            "secret value in build log"
        );
    }
    let vars = mine[0]["environmentVariablesOverride"].as_array().unwrap();
    let types: Vec<(&str, &str)> = vars
        .iter()
        .map(|v| (v["name"].as_str().unwrap(), v["type"].as_str().unwrap()))
        .collect();
    assert_eq!(
        types,
        vec![
            ("NPM_TOKEN", "PARAMETER_STORE"),
            ("DB_PASSWORD", "SECRETS_MANAGER")
        ]
    );
    assert_eq!(mine[0]["sourceTypeOverride"], "NO_SOURCE");

    // Refresh view agrees.
    let status = build_status(&c, &started.build_id).await.unwrap().unwrap();
    assert_eq!(status.state, BuildState::Succeeded);
    assert_eq!(status.digest.as_deref(), Some(finished.digest.as_str()));
    assert_eq!(status.current_phase.as_deref(), Some("COMPLETED"));
}

#[tokio::test]
async fn failure_carries_phase_context_and_last_30_log_lines() {
    let s = services().await;
    let c = clients(&s).await;
    let dockerfile = format!(
        "FROM {BASE}\nRUN for i in $(seq 1 60); do echo noise-$i; done; echo boom-marker; exit 3\n"
    );
    let dir = context_dir(&[("Dockerfile", &dockerfile, false)]);
    let spec = prepared(&s, &c, dir.path(), None).await;
    let started = start_build(&c, &spec).await.expect("start");
    let (tx, _rx) = mpsc::unbounded_channel();
    let err = wait_build(
        &c,
        &started.build_id,
        tx,
        CancellationToken::new(),
        fast_wait(300),
    )
    .await
    .unwrap_err();
    let RemoteError::BuildFailed(f) = &err else {
        panic!("expected BuildFailed, got {err}")
    };
    assert_eq!(f.state, BuildState::Failed);
    assert_eq!(f.phase.as_deref(), Some("BUILD"));
    assert_eq!(f.context_code.as_deref(), Some("COMMAND_EXECUTION_ERROR"));
    assert!(
        f.context_message
            .as_deref()
            .unwrap_or_default()
            .contains("docker build"),
        "{f:?}"
    );
    assert!(
        f.log_tail.len() <= 30 && f.log_tail.len() >= 10,
        "{}",
        f.log_tail.len()
    );
    assert!(
        f.log_tail.iter().any(|l| l.contains("boom-marker")),
        "{:#?}",
        f.log_tail
    );
    let text = err.to_string();
    assert!(
        text.contains("in phase BUILD") && text.contains("boom-marker"),
        "{text}"
    );
    assert!(registry_digest(&s, &spec.repository, &spec.hash_tag)
        .await
        .is_none());
}

/// Starts a build that sleeps, waits until its RUN step is running, then ends the wait via `how`.
async fn sleeping_build(s: &Services, c: &RemoteClients) -> (RemoteBuildSpec, String) {
    let marker = unique("sleeping");
    let dockerfile = format!("FROM {BASE}\nRUN echo {marker} && sleep 600\n");
    let dir = context_dir(&[("Dockerfile", &dockerfile, false)]);
    let spec = prepared(s, c, dir.path(), None).await;
    let started = start_build(c, &spec).await.expect("start");
    (spec, started.build_id)
}

fn cancel_when_running(rx: mpsc::UnboundedReceiver<RemoteProgress>, cancel: CancellationToken) {
    tokio::spawn(async move {
        let mut rx = rx;
        while let Some(p) = rx.recv().await {
            if matches!(&p, RemoteProgress::Log(l) if l.contains("sleeping-") && !l.contains("Running command"))
            {
                cancel.cancel();
            }
        }
    });
}

#[tokio::test]
async fn cancel_sends_stop_build_and_the_build_stops() {
    let s = services().await;
    let c = clients(&s).await;
    let (_spec, build_id) = sleeping_build(&s, &c).await;
    let cancel = CancellationToken::new();
    let (tx, rx) = mpsc::unbounded_channel();
    cancel_when_running(rx, cancel.clone());
    let t = Instant::now();
    let err = wait_build(&c, &build_id, tx, cancel, fast_wait(300))
        .await
        .unwrap_err();
    assert!(
        matches!(
            &err,
            RemoteError::Cancelled {
                stop_error: None,
                ..
            }
        ),
        "{err}"
    );
    assert!(t.elapsed() < Duration::from_secs(120));
    let status = build_status(&c, &build_id).await.unwrap().unwrap();
    assert_eq!(status.state, BuildState::Stopped);
    assert_eq!(
        status.failed_phase.map(|f| f.phase).as_deref(),
        Some("BUILD")
    );
}

#[tokio::test]
async fn deadline_stops_the_build() {
    let s = services().await;
    let c = clients(&s).await;
    let (_spec, build_id) = sleeping_build(&s, &c).await;
    let (tx, _rx) = mpsc::unbounded_channel();
    let err = wait_build(&c, &build_id, tx, CancellationToken::new(), fast_wait(8))
        .await
        .unwrap_err();
    assert!(
        matches!(
            &err,
            RemoteError::DeadlineExceeded {
                stop_error: None,
                ..
            }
        ),
        "{err}"
    );
    let status = build_status(&c, &build_id).await.unwrap().unwrap();
    assert_eq!(status.state, BuildState::Stopped);
}

/// StartBuild calls the double received with `token`.
async fn start_builds_with(s: &Services, token: &str) -> usize {
    recorded_start_builds(s)
        .await
        .iter()
        .filter(|r| r["idempotencyToken"] == token)
        .count()
}

#[tokio::test]
async fn same_inputs_start_one_build() {
    let s = services().await;
    let c = clients(&s).await;
    let dir = context_dir(&[(
        "Dockerfile",
        &format!("FROM {BASE}\nRUN sleep 600\n"),
        false,
    )]);
    let spec = prepared(&s, &c, dir.path(), None).await;
    // Two callers at once: neither sees a running build yet, so both send StartBuild, and the
    // idempotency token makes them one build.
    let (a, b) = tokio::join!(start_build(&c, &spec), start_build(&c, &spec));
    let (a, b) = (a.expect("first start"), b.expect("racing start"));
    assert_eq!(a.build_id, b.build_id, "the token deduplicated the race");
    assert_eq!(a.idempotency_token, b.idempotency_token);
    let racing = start_builds_with(&s, &a.idempotency_token).await;
    assert!((1..=2).contains(&racing), "{racing} StartBuild calls");

    // A retry after CodeBuild's token window joins the running build instead of starting a
    // second one for the same hash, without sending StartBuild.
    expire_idempotency_tokens(&s).await;
    let joined = start_build(&c, &spec)
        .await
        .expect("start after the window");
    assert_eq!(joined.build_id, a.build_id, "joined the running build");
    assert_eq!(start_builds_with(&s, &a.idempotency_token).await, racing);

    let mut other = spec.clone();
    other.build_args.insert("X".into(), "1".into());
    let o = start_build(&c, &other).await.expect("different start");
    assert_ne!(o.build_id, a.build_id, "different inputs, different build");

    for id in [&a.build_id, &o.build_id] {
        c.codebuild
            .stop_build()
            .id(id.as_str())
            .send()
            .await
            .unwrap();
    }
}

#[tokio::test]
async fn managed_project_is_created_then_updated() {
    let s = services().await;
    let platform = format!("linux/{}", unique("t"));
    let mut choice = managed();
    let name = ensure_project(&clients(&s).await, &choice, Some(&platform))
        .await
        .unwrap();
    assert!(name.starts_with("imagebuild-linux-t-"));
    if let ProjectChoice::Managed { image, .. } = &mut choice {
        *image = "aws/codebuild/standard:8.0".into();
    }
    // A new process (fresh clients) with other settings updates the shared project.
    let c = clients(&s).await;
    assert_eq!(
        ensure_project(&c, &choice, Some(&platform)).await.unwrap(),
        name
    );
    let got = c
        .codebuild
        .batch_get_projects()
        .names(&name)
        .send()
        .await
        .unwrap();
    let env = got.projects()[0].environment().unwrap();
    assert_eq!(env.image(), "aws/codebuild/standard:8.0");
    assert_eq!(env.privileged_mode(), Some(true));
    assert_eq!(
        ensure_project(&c, &ProjectChoice::Existing("mine".into()), None)
            .await
            .unwrap(),
        "mine"
    );
}

#[tokio::test]
async fn cache_ref_is_read_and_written_and_inline_dockerfile_travels_in_the_archive() {
    let s = services().await;
    let c = clients(&s).await;
    let dir = context_dir(&[("data.txt", "payload\n", false)]);
    let inline = format!("FROM {BASE}\nCOPY data.txt /data.txt\nRUN grep -q payload /data.txt\n");
    let mut spec = prepared(&s, &c, dir.path(), Some(&inline)).await;
    assert_ne!(
        spec.dockerfile, "Dockerfile",
        "inline Dockerfile injected under its own name"
    );
    let cache = ImageName {
        repository: format!("{}-cache", spec.repository.repository),
        ..spec.repository.clone()
    };
    spec.cache_ref = Some(format!(
        "{}/{}:buildcache",
        cache.registry, cache.repository
    ));
    let started = start_build(&c, &spec).await.expect("start");
    let (tx, _rx) = mpsc::unbounded_channel();
    let done = wait_build(
        &c,
        &started.build_id,
        tx,
        CancellationToken::new(),
        fast_wait(300),
    )
    .await
    .unwrap_or_else(|e| panic!("build with a missing cache image must still succeed: {e}"));
    assert!(
        registry_digest(&s, &cache, "buildcache").await.is_some(),
        "cache image pushed"
    );
    assert_eq!(
        registry_digest(&s, &spec.repository, &spec.hash_tag).await,
        Some(done.digest)
    );
}

fn spec_on(s: &Services, project: &str) -> RemoteBuildSpec {
    RemoteBuildSpec {
        context_hash: "d".repeat(64),
        context_object: format!("s3://{}/missing.tar.gz", unique("nowhere")),
        repository: ImageName {
            registry: s.registry.clone(),
            repository: unique("remote/errors"),
        },
        hash_tag: "d".repeat(64),
        dockerfile: "Dockerfile".into(),
        project: ProjectChoice::Existing(project.to_string()),
        platform: None,
        target: None,
        build_args: BTreeMap::new(),
        timeout_minutes: 5,
        cache_ref: None,
        secrets: Vec::new(),
        named_contexts: Vec::new(),
    }
}

async fn create_plain_project(c: &RemoteClients, name: &str) {
    use aws_sdk_codebuild::types::*;
    c.codebuild
        .create_project()
        .name(name)
        .source(
            ProjectSource::builder()
                .r#type(SourceType::NoSource)
                .buildspec("version: 0.2")
                .build()
                .unwrap(),
        )
        .artifacts(
            ProjectArtifacts::builder()
                .r#type(ArtifactsType::NoArtifacts)
                .build()
                .unwrap(),
        )
        .environment(
            ProjectEnvironment::builder()
                .r#type(EnvironmentType::LinuxContainer)
                .image("aws/codebuild/standard:7.0")
                .compute_type(ComputeType::BuildGeneral1Small)
                .build()
                .unwrap(),
        )
        .service_role("arn:aws:iam::123456789012:role/x")
        .send()
        .await
        .expect("create project");
}

#[tokio::test]
async fn access_denied_names_action_and_resource() {
    let s = services().await;
    let c = clients(&s).await;
    let err = start_build(&c, &spec_on(&s, "denied-project"))
        .await
        .unwrap_err();
    assert!(matches!(err, RemoteError::AccessDenied { .. }), "{err}");
    let text = err.to_string();
    assert!(
        text.contains("codebuild:StartBuild") && text.contains("denied-project"),
        "{text}"
    );
}

#[tokio::test]
async fn throttling_and_5xx_are_retried() {
    let s = services().await;
    let patient = imagebuild::remote::RemoteClients::new(&imagebuild::remote::AwsEndpoints {
        max_attempts: Some(4),
        ..endpoints(&s)
    })
    .await
    .unwrap();
    for prefix in ["throttled", "flaky"] {
        let name = unique(prefix);
        create_plain_project(&patient, &name).await;
        let started = start_build(&patient, &spec_on(&s, &name))
            .await
            .unwrap_or_else(|e| panic!("{prefix}: two injected failures then success: {e}"));
        assert!(started.build_id.starts_with(&name));
    }
    // With too few attempts the last error surfaces, naming the action.
    let c = clients(&s).await;
    let name = unique("throttled");
    create_plain_project(&c, &name).await;
    let err = start_build(&c, &spec_on(&s, &name)).await.unwrap_err();
    assert_eq!(err.aws_code(), Some("ThrottlingException"), "{err}");
    assert!(err.to_string().contains("codebuild:StartBuild"), "{err}");
}
