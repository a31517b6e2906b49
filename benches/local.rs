//! `make bench` for the local engine: engine vs `DOCKER_BUILDKIT=1 docker build`, 4 images in parallel
//! vs one after another, what a rebuild sends after one file changed, and peak memory with 8 builds
//! queued (measured in a child process).

#[path = "../tests/local_common/mod.rs"]
mod local_common;

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use local_common::*;
use tokio_util::sync::CancellationToken;

const MEMORY_CHILD_ARG: &str = "--memory-child";

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

fn secs(d: Duration) -> String {
    format!("{:.2}s", d.as_secs_f64())
}

fn verdict(ok: bool) -> &'static str {
    if ok {
        "OK"
    } else {
        "MISSED"
    }
}

/// A context of `n` files of `size` bytes (incompressible-ish content).
fn make_context(dir: &Path, n: usize, size: usize) {
    let mut x: u64 = 0x9e3779b97f4a7c15;
    for i in 0..n {
        let mut buf = vec![0u8; size];
        for b in buf.iter_mut() {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            *b = x as u8;
        }
        let p = dir.join(format!("pkg{}/file{i}.bin", i % 10));
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, buf).unwrap();
    }
}

fn vm_hwm_kb() -> u64 {
    let s = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    s.lines()
        .find(|l| l.starts_with("VmHWM:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

/// One image of modest size (300 files, ~5 MB; a hashing step, then ~6 s of sleep/CPU work as a
/// stand-in for dependency installs), no cache, three rounds each: (engine, CLI filesync, CLI tar body).
async fn one_image_vs_docker_cli(run_id: &str) -> (Duration, Duration, Duration) {
    let dir = tempfile::tempdir().unwrap();
    make_context(dir.path(), 300, 16 * 1024);
    let df = format!(
        "FROM {BUSYBOX}\nCOPY . /app\n\
         RUN find /app -type f | xargs cat | sha256sum\n\
         RUN sleep 4 && i=0; while [ $i -lt 200000 ]; do i=$((i+1)); done\n"
    );
    std::fs::write(dir.path().join("Dockerfile"), &df).unwrap();
    let eng = engine(1);
    let (mut ours, mut theirs, mut tar_body) = (Vec::new(), Vec::new(), Vec::new());
    for round in 0..3 {
        let snap = snapshot(
            dir.path(),
            &df,
            Some("Dockerfile"),
            &format!("{run_id}-{round}"),
        );
        let mut b = build_spec(snap);
        b.no_cache = true;
        let mut spec = publish_spec(b, unique_repo("bench-one"));
        spec.push = false;
        let t = Instant::now();
        let (r, _) = publish(&eng, spec, CancellationToken::new()).await;
        r.unwrap_or_else(|e| panic!("engine build failed: {e}"));
        ours.push(t.elapsed());

        let t = Instant::now();
        let out = std::process::Command::new("/usr/bin/docker")
            .env("DOCKER_BUILDKIT", "1")
            .args([
                "build",
                "-q",
                "--no-cache",
                "-t",
                "imagebuild-bench/cli:latest",
            ])
            .arg(dir.path())
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "docker build: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        theirs.push(t.elapsed());

        // The same CLI sending the context as a tar body (what the engine did before it served
        // the context over the session).
        let t = Instant::now();
        let out = std::process::Command::new("sh")
            .arg("-c")
            .arg(format!(
                "tar -C {} -c . | DOCKER_BUILDKIT=1 /usr/bin/docker build -q --no-cache -t imagebuild-bench/cli-tar:latest -",
                dir.path().display()
            ))
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "docker build -: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        tar_body.push(t.elapsed());
    }
    (median(ours), median(theirs), median(tar_body))
}

async fn parallel_vs_sequential(run_id: &str) -> (Duration, Duration) {
    let dir = tempfile::tempdir().unwrap();
    make_context(dir.path(), 20, 4096);
    let spec_for = |i: usize, phase: &str| {
        let df = format!(
            "FROM {BUSYBOX}\nCOPY . /app\nRUN echo {run_id}-{phase}-{i} && sleep 3 && i=0; while [ $i -lt 30000 ]; do i=$((i+1)); done\n"
        );
        let mut b = build_spec(snapshot(
            dir.path(),
            &df,
            None,
            &format!("{run_id}-{phase}-{i}"),
        ));
        b.no_cache = true;
        let mut s = publish_spec(b, unique_repo("bench-par"));
        s.push = false;
        s
    };
    let eng = Arc::new(engine(4));
    let t = Instant::now();
    for i in 0..4 {
        let (r, _) = publish(&eng, spec_for(i, "seq"), CancellationToken::new()).await;
        r.unwrap_or_else(|e| panic!("{e}"));
    }
    let seq = t.elapsed();
    let t = Instant::now();
    let hs: Vec<_> = (0..4)
        .map(|i| {
            let eng = eng.clone();
            let spec = spec_for(i, "par");
            tokio::spawn(async move { publish(&eng, spec, CancellationToken::new()).await.0 })
        })
        .collect();
    for h in hs {
        h.await.unwrap().unwrap_or_else(|e| panic!("{e}"));
    }
    (t.elapsed(), seq)
}

/// A 64 MB context built twice with the same Dockerfile, one 16 KB file changed in between:
/// (first build time, bytes sent), (rebuild time, bytes sent). Cache on, so the rebuild's time is
/// the transfer plus one COPY.
async fn rebuild_after_one_change(run_id: &str) -> ((Duration, u64), (Duration, u64)) {
    let dir = tempfile::tempdir().unwrap();
    make_context(dir.path(), 4096, 16 * 1024);
    let df = format!("FROM {BUSYBOX}\nCOPY . /app\nRUN echo {run_id}-rebuild\n");
    let eng = engine(1);
    let mut out = Vec::new();
    for round in 0..2 {
        if round == 1 {
            std::fs::write(dir.path().join("pkg3/file3.bin"), vec![7u8; 16 * 1024]).unwrap();
        }
        let snap = snapshot(dir.path(), &df, None, "rebuild");
        let mut s = publish_spec(build_spec(snap), unique_repo("bench-rebuild"));
        s.push = false;
        let t = Instant::now();
        let (r, _) = publish(&eng, s, CancellationToken::new()).await;
        let p = r.unwrap_or_else(|e| panic!("{e}"));
        out.push((t.elapsed(), p.context_bytes_sent));
    }
    (out[0], out[1])
}

/// Child process: 8 builds of a 64 MB context submitted at once with a limit of 2; prints VmHWM.
async fn memory_child() {
    let dir = tempfile::tempdir().unwrap();
    make_context(dir.path(), 16, 4 * 1024 * 1024);
    let run_id = uuid::Uuid::new_v4().simple().to_string();
    let eng = Arc::new(engine(2));
    let before = vm_hwm_kb();
    let hs: Vec<_> = (0..8)
        .map(|i| {
            let df = format!("FROM {BUSYBOX}\nCOPY . /data\nRUN echo {run_id}-{i}\n");
            let mut s = publish_spec(
                build_spec(snapshot(dir.path(), &df, None, &format!("{run_id}-{i}"))),
                unique_repo("bench-mem"),
            );
            s.push = false;
            let eng = eng.clone();
            tokio::spawn(async move { publish(&eng, s, CancellationToken::new()).await })
        })
        .collect();
    let mut refs = Vec::new();
    for h in hs {
        let (r, _) = h.await.unwrap();
        let p = r.unwrap_or_else(|e| panic!("{e}"));
        refs.extend(p.tags);
    }
    println!("VMHWM_KB {} {}", before, vm_hwm_kb());
    let mut args = vec!["rmi".to_string()];
    args.extend(refs);
    let _ = std::process::Command::new("/usr/bin/docker")
        .args(&args)
        .output();
}

fn main() {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    if std::env::args().any(|a| a == MEMORY_CHILD_ARG) {
        rt.block_on(memory_child());
        return;
    }
    if std::env::args().any(|a| a == "--list") {
        return;
    }
    require_services();
    let run_id = uuid::Uuid::new_v4().simple().to_string();
    println!("local engine bench (2-core machine; medians of 3 where repeated)");

    let (ours, cli, cli_tar) = rt.block_on(one_image_vs_docker_cli(&run_id));
    let r = ours.as_secs_f64() / cli.as_secs_f64();
    println!(
        "one image, no cache:        engine {} vs DOCKER_BUILDKIT=1 docker build {}  ratio {r:.2}x (target <= 1.05x) {}",
        secs(ours),
        secs(cli),
        verdict(r <= 1.05)
    );
    println!(
        "  (same CLI sending a tar body, `docker build -`: {}; engine/that = {:.2}x)",
        secs(cli_tar),
        ours.as_secs_f64() / cli_tar.as_secs_f64()
    );

    let (par, seq) = rt.block_on(parallel_vs_sequential(&run_id));
    let r = par.as_secs_f64() / seq.as_secs_f64();
    println!(
        "4 images (sleep-bound):     parallel {} vs sequential {}  ratio {r:.2}x (target <= 0.6x) {}",
        secs(par),
        secs(seq),
        verdict(r <= 0.6)
    );

    let ((t1, b1), (t2, b2)) = rt.block_on(rebuild_after_one_change(&run_id));
    println!(
        "64 MB context, one 16 KB file changed: first build {} sent {:.1} MB; rebuild {} sent {} bytes",
        secs(t1),
        b1 as f64 / 1e6,
        secs(t2),
        b2
    );

    let out = std::process::Command::new(std::env::current_exe().unwrap())
        .arg(MEMORY_CHILD_ARG)
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    let line = text
        .lines()
        .find(|l| l.starts_with("VMHWM_KB"))
        .unwrap_or_else(|| {
            panic!(
                "memory child failed: {}",
                String::from_utf8_lossy(&out.stderr)
            )
        });
    let v: Vec<u64> = line
        .split_whitespace()
        .skip(1)
        .filter_map(|x| x.parse().ok())
        .collect();
    let peak_mb = v[1] as f64 / 1024.0;
    println!(
        "8 builds queued (limit 2, 64 MB context each): peak RSS {peak_mb:.1} MB (before builds {:.1} MB) (target <= 100 MB) {}",
        v[0] as f64 / 1024.0,
        verdict(peak_mb <= 100.0)
    );
}
