//! Each BuildKit build's session must be closed when the build ends (bollard 0.21 leaks one per build),
//! and with it every file transfer served on it: our process's open files, sockets and tasks must not
//! grow with the number of builds.

mod local_common;

use local_common::*;
use tokio_util::sync::CancellationToken;

fn open_fds() -> usize {
    std::fs::read_dir("/proc/self/fd").unwrap().count()
}

/// Our own open sockets (unix and TCP), from /proc/self/fd.
fn open_sockets() -> usize {
    std::fs::read_dir("/proc/self/fd")
        .unwrap()
        .flatten()
        .filter(|e| {
            std::fs::read_link(e.path()).is_ok_and(|t| t.to_string_lossy().starts_with("socket:"))
        })
        .count()
}

/// Tasks alive on this test's runtime.
fn alive_tasks() -> usize {
    tokio::runtime::Handle::current()
        .metrics()
        .num_alive_tasks()
}

/// The daemon's ends of connections to the socket under test whose other end is one of our sockets
/// (from `ss`, which reports both inodes of each unix connection). Counting all of dockerd's open
/// files, as this test once did, measures every engineer's builds on the shared daemon (seen growing
/// from 24 to 60 while none of ours ran); this counts only connections to us.
fn daemon_connections_to_us() -> usize {
    let ours: std::collections::HashSet<String> = std::fs::read_dir("/proc/self/fd")
        .unwrap()
        .flatten()
        .filter_map(|e| std::fs::read_link(e.path()).ok())
        .filter_map(|t| {
            let t = t.to_string_lossy().into_owned();
            t.strip_prefix("socket:[")
                .and_then(|r| r.strip_suffix(']'))
                .map(str::to_string)
        })
        .collect();
    let out = std::process::Command::new("ss")
        .args(["-xH"])
        .output()
        .expect("run ss (iproute2) to list unix connections");
    assert!(out.status.success(), "ss -xH failed");
    let sock = docker_sock();
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            f.len() >= 8 && f[4] == sock && ours.contains(f[7])
        })
        .count()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ten_builds_do_not_grow_open_files() {
    require_services();
    let eng = engine(2);
    let id = uuid::Uuid::new_v4().simple().to_string();
    let dir = write_tree(&[("n", "n"), ("src/a.py", "a"), ("src/b.py", "b")]);
    let run = |i: usize| {
        // A new file each time, so every build really transfers something over the session.
        std::fs::write(dir.path().join(format!("src/new{i}.py")), format!("{i}")).unwrap();
        let df = format!("FROM {BUSYBOX}\nCOPY . /ctx/\nRUN echo {id}-{i}\n");
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
    let (sockets_before, tasks_before) = (open_sockets(), alive_tasks());
    let daemon_before = daemon_connections_to_us();
    let mut sent = 0;
    for i in 0..10 {
        let p = publish(&eng, run(i), CancellationToken::new())
            .await
            .0
            .unwrap_or_else(|e| panic!("{e}"));
        sent += p.context_bytes_sent;
    }
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    let after = open_fds();
    assert!(sent > 0, "the builds sent no context over the session");
    assert!(
        after <= before + 2,
        "open files grew from {before} to {after} over 10 builds"
    );
    let (sockets, tasks) = (open_sockets(), alive_tasks());
    assert!(
        sockets <= sockets_before,
        "open sockets grew from {sockets_before} to {sockets} over 10 builds"
    );
    assert!(
        tasks <= tasks_before,
        "live tasks grew from {tasks_before} to {tasks} over 10 builds"
    );
    // The daemon's side of each session must close too (a leak adds one connection per build).
    let daemon_after = daemon_connections_to_us();
    assert!(
        daemon_after <= daemon_before,
        "dockerd holds {daemon_after} connections to us after 10 builds ({daemon_before} before)"
    );
}
