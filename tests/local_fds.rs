//! Each BuildKit build's session must be closed when the build ends (bollard 0.21 leaks one per build).

mod local_common;

use local_common::*;
use tokio_util::sync::CancellationToken;

fn open_fds() -> usize {
    std::fs::read_dir("/proc/self/fd").unwrap().count()
}

/// Open files of the dockerd under test (its per-session connections), when it runs on this host:
/// the one whose command line names the socket under test, else the only dockerd running (a second
/// daemon, e.g. Engine 29 next to Engine 20.10, must not be measured instead).
fn dockerd_fds() -> Option<usize> {
    let sock = docker_sock();
    let mut dockerds = Vec::new();
    for e in std::fs::read_dir("/proc").ok()?.flatten() {
        let pid = e.file_name().to_string_lossy().to_string();
        if std::fs::read_to_string(format!("/proc/{pid}/comm")).is_ok_and(|c| c.trim() == "dockerd")
        {
            let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
            dockerds.push((
                pid,
                String::from_utf8_lossy(&cmdline).contains(sock.as_str()),
            ));
        }
    }
    let pid = match dockerds.iter().find(|(_, names_sock)| *names_sock) {
        Some((pid, _)) => pid.clone(),
        None if dockerds.len() == 1 => dockerds[0].0.clone(),
        None => return None,
    };
    std::fs::read_dir(format!("/proc/{pid}/fd"))
        .ok()
        .map(|d| d.count())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ten_builds_do_not_grow_open_files() {
    require_services();
    let eng = engine(2);
    let id = uuid::Uuid::new_v4().simple().to_string();
    let dir = write_tree(&[("n", "n")]);
    let run = |i: usize| {
        let df = format!("FROM {BUSYBOX}\nRUN echo {id}-{i}\n");
        let mut spec = publish_spec(
            build_spec(snapshot(dir.path(), &df, None, &format!("{id}-{i}"))),
            unique_repo("fds"),
        );
        spec.push = false;
        spec
    };
    // Warm-up build: first-use allocations (runtime threads, DNS, ...) are not leaks.
    publish(&eng, run(100), CancellationToken::new())
        .await
        .0
        .unwrap();
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    let before = open_fds();
    let daemon_before = dockerd_fds();
    for i in 0..10 {
        publish(&eng, run(i), CancellationToken::new())
            .await
            .0
            .unwrap_or_else(|e| panic!("{e}"));
    }
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    let after = open_fds();
    assert!(
        after <= before + 2,
        "open files grew from {before} to {after} over 10 builds"
    );
    // The daemon's side of each session must close too (a leak adds one connection per build).
    if let (Some(b), Some(a)) = (daemon_before, dockerd_fds()) {
        assert!(
            a <= b + 6,
            "dockerd's open files grew from {b} to {a} over 10 builds"
        );
    }
}
