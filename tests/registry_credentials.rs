//! Credential order (explicit -> ECR -> Docker config/helpers) against the real registry and moto's ECR.
//! One test function: it changes process environment (DOCKER_CONFIG, PATH, AWS_*).

mod local_common;

use std::os::unix::fs::PermissionsExt;

use base64::Engine as _;
use imagebuild::registry::{
    BasicCredentials, CredentialSource, Registry, RegistryConfig, RegistryError,
};
use local_common::*;

fn moto() -> String {
    std::env::var("IMAGEBUILD_TEST_MOTO_ENDPOINT")
        .unwrap_or_else(|_| "http://127.0.0.1:5050".into())
}

#[tokio::test]
async fn credential_sources_in_order() {
    require_services();
    let moto_addr = moto().trim_start_matches("http://").to_string();
    if std::net::TcpStream::connect(&moto_addr).is_err() {
        panic!(
            "moto is not reachable at {}: run scripts/start-services.sh",
            moto()
        );
    }
    // A repository with one pushed tag to look at.
    let repo = unique_repo("creds");
    let c = registry_creds();
    docker(&["tag", BUSYBOX, &repo.with_tag("v1")]);
    let pushed = imagebuild::local::push_existing(
        None,
        &repo,
        "v1",
        &imagebuild::registry::ResolvedCredentials {
            credentials: Some(c.clone()),
            source: CredentialSource::Explicit,
        },
    )
    .await;
    docker(&["rmi", &repo.with_tag("v1")]);
    pushed.unwrap_or_else(|e| panic!("{e}"));

    // 1. Docker config auths entry (no explicit credentials).
    let cfg_dir = tempfile::tempdir().unwrap();
    let auth =
        base64::engine::general_purpose::STANDARD.encode(format!("{}:{}", c.username, c.password));
    std::fs::write(
        cfg_dir.path().join("config.json"),
        format!(
            r#"{{"auths":{{"http://{}":{{"auth":"{auth}"}}}}}}"#,
            repo.registry
        ),
    )
    .unwrap();
    std::env::set_var("DOCKER_CONFIG", cfg_dir.path());
    let reg = Registry::new(RegistryConfig::default());
    let found = reg.credentials(&repo.registry).await.unwrap();
    assert!(
        matches!(found.source, CredentialSource::DockerConfig(ref p) if p.contains("config.json"))
    );
    let digest = reg
        .manifest_digest(&repo, "v1")
        .await
        .unwrap()
        .expect("v1 exists");
    assert_eq!(Some(digest.clone()), registry_digest(&repo, "v1").await);
    assert_eq!(reg.manifest_digest(&repo, "nope").await.unwrap(), None);
    assert_eq!(
        reg.tags_pointing_at(&repo, &digest).await.unwrap(),
        vec!["v1".to_string()]
    );

    // 2. Explicit credentials win over the config; a wrong explicit password names that source.
    let reg = Registry::new(RegistryConfig {
        explicit: Some(BasicCredentials {
            username: c.username.clone(),
            password: "bad-explicit-pw".into(),
        }),
        ..Default::default()
    });
    let e = reg
        .manifest_digest(&repo, "v1")
        .await
        .expect_err("explicit wrong password");
    assert!(matches!(e, RegistryError::Auth { .. }), "{e}");
    let msg = e.to_string();
    assert!(
        msg.contains("explicit")
            && msg.contains(&repo.registry)
            && !msg.contains("bad-explicit-pw"),
        "{msg}"
    );

    // 3. A credential helper named in credHelpers.
    let bin = tempfile::tempdir().unwrap();
    let helper = bin.path().join("docker-credential-itest");
    std::fs::write(
        &helper,
        format!(
            "#!/bin/sh\nread host\necho '{{\"Username\":\"{}\",\"Secret\":\"{}\"}}'\n",
            c.username, c.password
        ),
    )
    .unwrap();
    std::fs::set_permissions(&helper, std::fs::Permissions::from_mode(0o755)).unwrap();
    std::env::set_var(
        "PATH",
        format!(
            "{}:{}",
            bin.path().display(),
            std::env::var("PATH").unwrap()
        ),
    );
    std::fs::write(
        cfg_dir.path().join("config.json"),
        format!(r#"{{"credHelpers":{{"{}":"itest"}}}}"#, repo.registry),
    )
    .unwrap();
    let reg = Registry::new(RegistryConfig::default());
    assert_eq!(
        reg.credentials(&repo.registry).await.unwrap().source,
        CredentialSource::CredentialHelper("itest".into())
    );
    assert_eq!(
        reg.manifest_digest(&repo, "v1").await.unwrap(),
        Some(digest.clone())
    );

    // 4. No credentials at all: anonymous, refused, and the error says so.
    std::fs::write(cfg_dir.path().join("config.json"), "{}").unwrap();
    let e = Registry::new(RegistryConfig::default())
        .manifest_digest(&repo, "v1")
        .await
        .expect_err("anonymous");
    assert!(e.to_string().contains("no credentials"), "{e}");

    // 5. ECR hosts get a token from GetAuthorizationToken at the overridden endpoint (moto).
    std::env::set_var("AWS_ACCESS_KEY_ID", "testing");
    std::env::set_var("AWS_SECRET_ACCESS_KEY", "testing");
    std::env::set_var("AWS_EC2_METADATA_DISABLED", "true");
    let reg = Registry::new(RegistryConfig {
        ecr_endpoint: Some(moto()),
        ..Default::default()
    });
    let ecr_host = "123456789012.dkr.ecr.eu-west-1.amazonaws.com";
    let found = reg
        .credentials(ecr_host)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(found.source, CredentialSource::Ecr);
    assert_eq!(found.credentials.as_ref().unwrap().username, "AWS");
    // Explicit still wins for ECR hosts.
    let reg = Registry::new(RegistryConfig {
        explicit: Some(c.clone()),
        ecr_endpoint: Some(moto()),
        ..Default::default()
    });
    assert_eq!(
        reg.credentials(ecr_host).await.unwrap().source,
        CredentialSource::Explicit
    );
    // An unreachable ECR endpoint is an ECR error naming the registry and region.
    let reg = Registry::new(RegistryConfig {
        ecr_endpoint: Some("http://127.0.0.1:9".into()),
        ..Default::default()
    });
    let e = reg.credentials(ecr_host).await.expect_err("no ECR there");
    assert!(
        e.to_string().contains(ecr_host) && e.to_string().contains("eu-west-1"),
        "{e}"
    );

    // Clean up: delete the manifest; deleting again is fine.
    let reg = Registry::new(RegistryConfig {
        explicit: Some(c),
        ..Default::default()
    });
    reg.delete_manifest(&repo, &digest).await.unwrap();
    assert_eq!(reg.manifest_digest(&repo, "v1").await.unwrap(), None);
    reg.delete_manifest(&repo, &digest).await.unwrap();
}
