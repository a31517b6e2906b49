//! The two test daemons by name (the suites may run with DOCKER_HOST set to either):
//! Engine 29 from scripts/env.sh and Engine 20.10 on the default socket, each checked to answer
//! as that engine, with a CLI and an engine bound to one of them.

use imagebuild::local::{LocalConfig, LocalEngine};

use super::{registry_addr, BUSYBOX, DEFAULT_DOCKER_SOCK};

/// Engine 29's socket from scripts/env.sh; the test fails loudly when it is not reachable.
pub fn engine29_host() -> String {
    let host = std::env::var("IMAGEBUILD_TEST_DOCKER29_HOST").unwrap_or_else(|_| {
        panic!("IMAGEBUILD_TEST_DOCKER29_HOST is not set: `source scripts/env.sh` first")
    });
    let sock = host
        .strip_prefix("unix://")
        .unwrap_or_else(|| panic!("IMAGEBUILD_TEST_DOCKER29_HOST={host}: expected unix://"));
    if std::os::unix::net::UnixStream::connect(sock).is_err() {
        panic!("Engine 29 is not reachable at {host}: run scripts/setup.sh (it builds and starts Engine 29)");
    }
    let version = docker_on(&host, &["version", "-f", "{{.Server.Version}}"]);
    assert!(
        version.trim().starts_with("29."),
        "{host} runs Engine {version}, not 29"
    );
    require_registry();
    docker_on(&host, &["image", "inspect", "-f", "{{.Id}}", BUSYBOX]);
    host
}

/// Engine 20.10, the default daemon (named explicitly: the suite may run with DOCKER_HOST set).
pub fn engine20_host() -> String {
    let host = format!("unix://{DEFAULT_DOCKER_SOCK}");
    if std::os::unix::net::UnixStream::connect(DEFAULT_DOCKER_SOCK).is_err() {
        panic!("no Docker daemon is reachable at {host}: run scripts/start-services.sh");
    }
    let version = docker_on(&host, &["version", "-f", "{{.Server.Version}}"]);
    assert!(
        version.trim().starts_with("20.10"),
        "{host} runs Engine {version}, not 20.10"
    );
    host
}

/// Panics with the fix when the test registry does not answer.
pub fn require_registry() {
    let addr = registry_addr();
    if std::net::TcpStream::connect(&addr).is_err() {
        panic!("the test registry is not reachable at {addr}: run scripts/start-services.sh");
    }
}

/// Debian's docker CLI against `host`; panics with its stderr on failure.
pub fn docker_on(host: &str, args: &[&str]) -> String {
    let out = std::process::Command::new("/usr/bin/docker")
        .env("DOCKER_HOST", host)
        .env("DOCKER_BUILDKIT", "1")
        .args(args)
        .output()
        .expect("run /usr/bin/docker");
    assert!(
        out.status.success(),
        "docker {args:?} on {host}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// An engine with one build slot on the daemon at `host`.
pub fn engine_on(host: &str) -> LocalEngine {
    LocalEngine::new(LocalConfig {
        docker_host: Some(host.to_string()),
        max_parallel_builds: 1,
        max_parallel_pushes: 0,
        builder: None,
    })
}
