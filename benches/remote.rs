//! `cargo bench --bench remote`: context upload time with and without the content-addressed skip.
//!
//! Needs moto (scripts/start-services.sh; source scripts/env.sh). Context size:
//! IMAGEBUILD_BENCH_CONTEXT_MIB (default 48), iterations: IMAGEBUILD_BENCH_ITERATIONS (default 5).

#[path = "../tests/remote_common/mod.rs"]
mod remote_common;

use std::time::{Duration, Instant};

use imagebuild::remote::{upload_context, UploadOptions, UploadTarget};
use remote_common::*;

fn env_usize(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// Files of incompressible bytes, like a context full of wheels and binaries.
fn make_context(mib: usize) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("Dockerfile"), "FROM scratch\nCOPY . /\n").unwrap();
    let file_size = 32 * 1024;
    let mut x = 0x2545_F491_4F6C_DD1Du64;
    for i in 0..(mib * 1024 * 1024 / file_size) {
        let mut data = Vec::with_capacity(file_size);
        while data.len() < file_size {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            data.extend_from_slice(&x.to_le_bytes());
        }
        let sub = dir.path().join(format!("pkg{:02}", i % 40));
        std::fs::create_dir_all(&sub).unwrap();
        std::fs::write(sub.join(format!("f{i:05}.bin")), data).unwrap();
    }
    dir
}

fn summary(name: &str, times: &mut [Duration], bytes: u64, sent: bool) {
    times.sort();
    let ms = |d: Duration| d.as_secs_f64() * 1000.0;
    let median = times[times.len() / 2];
    let mib = bytes as f64 / 1048576.0;
    let rate = if sent {
        format!("{mib:.1} MiB sent, {:.1} MiB/s", mib / median.as_secs_f64())
    } else {
        format!("{mib:.1} MiB archive, nothing sent")
    };
    println!(
        "{name:<38} median {:>9.1} ms   min {:>9.1} ms   max {:>9.1} ms   ({rate})",
        ms(median),
        ms(times[0]),
        ms(times[times.len() - 1]),
    );
}

fn main() {
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        let s = services().await;
        let c = clients(&s).await;
        let mib = env_usize("IMAGEBUILD_BENCH_CONTEXT_MIB", 48);
        let n = env_usize("IMAGEBUILD_BENCH_ITERATIONS", 5).max(1);
        let dir = make_context(mib);
        let snap = snapshot_of(dir.path(), None).await;
        let hash = snap.hash.clone();
        let bucket = bucket(&c).await;
        println!(
            "remote upload bench: {mib} MiB context, {n} iterations, moto at {}",
            s.moto
        );

        let mut cold = Vec::new();
        let mut bytes = 0;
        for i in 0..n {
            // A fresh prefix per run: the object is absent, so the archive is produced and sent.
            let target = UploadTarget {
                bucket: bucket.clone(),
                prefix: format!("cold-{i}"),
                context_hash: hash.clone(),
            };
            let t = Instant::now();
            let out = upload_context(&c, &target, UploadOptions::default(), || archive(&snap).1)
                .await
                .unwrap();
            cold.push(t.elapsed());
            assert!(!out.skipped);
            bytes = out.bytes;
        }
        let mut skip = Vec::new();
        let target = UploadTarget {
            bucket: bucket.clone(),
            prefix: "cold-0".into(),
            context_hash: hash.clone(),
        };
        for _ in 0..n {
            let t = Instant::now();
            let out = upload_context(&c, &target, UploadOptions::default(), || archive(&snap).1)
                .await
                .unwrap();
            skip.push(t.elapsed());
            assert!(out.skipped);
        }
        summary(
            "upload, object absent (tar+gzip+PUT)",
            &mut cold,
            bytes,
            true,
        );
        summary(
            "upload, content-addressed skip (HEAD)",
            &mut skip,
            bytes,
            false,
        );
        let (c_med, s_med) = (cold[cold.len() / 2], skip[skip.len() / 2]);
        println!(
            "skip is {:.0}x faster (median)",
            c_med.as_secs_f64() / s_med.as_secs_f64().max(1e-9)
        );
    });
}
