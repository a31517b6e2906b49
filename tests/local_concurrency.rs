//! The process-wide limiter and cancellation, observed through the engine's own events and the host.

mod local_common;

use std::sync::Arc;
use std::time::{Duration, Instant};

use imagebuild::local::{LocalError, ProgressEvent};
use local_common::*;
use tokio_util::sync::CancellationToken;

/// The engine-stamped instant of the first event `pick` accepts.
fn stamp(
    ev: &[(Instant, ProgressEvent)],
    pick: impl Fn(&ProgressEvent) -> Option<Instant>,
) -> Instant {
    ev.iter()
        .find_map(|(_, e)| pick(e))
        .expect("the event was sent")
}

/// Most spans open at one instant (an end at the same instant as a start closes first).
fn peak(spans: &[(Instant, Instant)]) -> i32 {
    let mut points: Vec<(Instant, i32)> = spans
        .iter()
        .flat_map(|(s, e)| [(*s, 1), (*e, -1)])
        .collect();
    points.sort_by(|a, b| a.0.cmp(&b.0).then(a.1.cmp(&b.1)));
    let (mut cur, mut peak) = (0, 0);
    for (_, d) in points {
        cur += d;
        peak = peak.max(cur);
    }
    peak
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn six_builds_with_limit_two_never_overlap_more_than_two() {
    require_services();
    // Two build slots, one push slot: pushes run outside the build slots, under their own bound.
    let eng = Arc::new(imagebuild::local::LocalEngine::new(
        imagebuild::local::LocalConfig {
            docker_host: None,
            max_parallel_builds: 2,
            max_parallel_pushes: 1,
            builder: None,
        },
    ));
    let id = uuid::Uuid::new_v4().simple().to_string();
    let mut handles = Vec::new();
    for i in 0..6 {
        let eng = eng.clone();
        let df = format!("FROM {BUSYBOX}\nRUN echo {id}-{i} && sleep 1\n");
        let dir = write_tree(&[("n", "n")]);
        let snap = snapshot(dir.path(), &df, None, &format!("{id}-{i}"));
        let spec = publish_spec(build_spec(snap), unique_repo(&format!("par{i}")));
        handles.push(tokio::spawn(async move {
            let _keep = dir;
            publish(&eng, spec, CancellationToken::new()).await
        }));
    }
    let (mut builds, mut pushes) = (Vec::new(), Vec::new());
    let mut queued_seen = 0;
    for h in handles {
        let (r, ev) = h.await.unwrap();
        r.unwrap_or_else(|e| panic!("a parallel build failed: {e}"));
        // The engine stamps these when it sends them: the time a reader receives an event
        // depends on scheduling and would make a finished build look like it still runs.
        let started = stamp(&ev, |e| match e {
            ProgressEvent::Started { at } => Some(*at),
            _ => None,
        });
        let built = stamp(&ev, |e| match e {
            ProgressEvent::Built { at } => Some(*at),
            _ => None,
        });
        let push_started = stamp(&ev, |e| match e {
            ProgressEvent::PushStarted { at } => Some(*at),
            _ => None,
        });
        let done = stamp(&ev, |e| match e {
            ProgressEvent::Done { at } => Some(*at),
            _ => None,
        });
        assert!(started <= built && built <= push_started && push_started <= done);
        if ev
            .iter()
            .any(|(_, e)| matches!(e, ProgressEvent::Queued { .. }))
        {
            queued_seen += 1;
        }
        builds.push((started, built));
        pushes.push((push_started, done));
    }
    assert_eq!(peak(&builds), 2, "concurrent builds (Started..Built)");
    assert_eq!(peak(&pushes), 1, "concurrent pushes (PushStarted..Done)");
    assert!(
        queued_seen >= 4,
        "only {queued_seen} builds reported Queued"
    );
    // A build slot is given back before the push: some push ran while another build held a slot
    // (with the slot held through the push, no push could overlap a build that waited for it).
    let overlapped = pushes.iter().enumerate().any(|(i, (ps, pe))| {
        builds
            .iter()
            .enumerate()
            .any(|(j, (bs, be))| i != j && bs < pe && ps < be)
    });
    assert!(
        overlapped,
        "no push overlapped another build: {builds:?} {pushes:?}"
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cancel_stops_the_build_on_the_daemon() {
    require_services();
    let secs = "37";
    let id = uuid::Uuid::new_v4().simple().to_string();
    let df = format!("FROM {BUSYBOX}\nRUN echo {id} && sleep {secs}\n");
    let dir = write_tree(&[("n", "n")]);
    let mut spec = publish_spec(
        build_spec(snapshot(dir.path(), &df, None, &id)),
        unique_repo("cancel"),
    );
    spec.push = false;
    let eng = engine(1);
    let cancel = CancellationToken::new();
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    let t0 = Instant::now();
    let c2 = cancel.clone();
    let watcher = tokio::spawn(async move {
        while let Some(e) = rx.recv().await {
            if let ProgressEvent::Step { name, .. } = &e {
                if name.contains("sleep") {
                    // Wait until the step's process really runs on the host, then cancel.
                    let deadline = Instant::now() + Duration::from_secs(20);
                    while sleepers("37").is_empty() && Instant::now() < deadline {
                        tokio::time::sleep(Duration::from_millis(100)).await;
                    }
                    assert!(
                        !sleepers("37").is_empty(),
                        "the RUN step never started a sleep process"
                    );
                    c2.cancel();
                }
            }
        }
    });
    let r = eng.publish(spec, tx, cancel).await;
    watcher.await.unwrap();
    let elapsed = t0.elapsed();
    assert!(matches!(r, Err(LocalError::Cancelled)), "{r:?}");
    // The daemon must stop the step soon after: no `sleep 37` process remains.
    let deadline = Instant::now() + Duration::from_secs(10);
    while !sleepers(secs).is_empty() && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert!(
        sleepers(secs).is_empty(),
        "build still running after cancel: {:?}",
        sleepers(secs)
    );
    assert!(
        t0.elapsed() < Duration::from_secs(30),
        "cancel took {:?} (publish returned after {elapsed:?})",
        t0.elapsed()
    );
    let running = docker(&["ps", "-q"]);
    assert!(running.trim().is_empty() || !running.contains(&id));
}
