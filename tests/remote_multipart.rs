//! Multipart upload of a large archive with bounded memory, and abort on a failing producer.
//! Its own test binary: the memory check reads this process's peak RSS.

mod remote_common;

use std::io;

use bytes::Bytes;
use futures::{Stream, StreamExt};
use imagebuild::remote::{upload_context, RemoteError, UploadOptions, UploadTarget};
use remote_common::*;
use sha2::{Digest, Sha256};

const MIB: usize = 1024 * 1024;
const TOTAL: usize = 96 * MIB;
const CHUNK: usize = 64 * 1024;

// The tests of this binary run one at a time so the peak RSS belongs to one upload.
static SERIAL: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// Deterministic incompressible-looking bytes, produced lazily chunk by chunk.
fn synthetic(total: usize, fail_at: Option<usize>) -> impl Stream<Item = io::Result<Bytes>> + Send {
    futures::stream::unfold(
        (0usize, 0x9E37_79B9_7F4A_7C15u64),
        move |(sent, mut x)| async move {
            if sent >= total {
                return None;
            }
            if fail_at.is_some_and(|f| sent >= f) {
                return Some((Err(io::Error::other("producer broke")), (total, x)));
            }
            let n = CHUNK.min(total - sent);
            let mut buf = Vec::with_capacity(n);
            while buf.len() < n {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                buf.extend_from_slice(&x.to_le_bytes());
            }
            buf.truncate(n);
            Some((Ok(Bytes::from(buf)), (sent + n, x)))
        },
    )
}

fn peak_rss_kib() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap()
}

fn reset_peak_rss() {
    // Writing 5 to clear_refs resets VmHWM to the current RSS (Linux >= 4.0).
    std::fs::write("/proc/self/clear_refs", "5").expect("reset peak RSS");
}

#[tokio::test]
async fn large_archive_goes_multipart_with_bounded_memory() {
    let _serial = SERIAL.lock().await;
    let s = services().await;
    let c = clients(&s).await;
    let bucket = bucket(&c).await;
    let target = UploadTarget {
        bucket: bucket.clone(),
        prefix: "big".into(),
        context_hash: "b".repeat(64),
    };
    let opts = UploadOptions {
        part_size: 8 * MIB,
        max_in_flight: 2,
    };

    reset_peak_rss();
    let base = peak_rss_kib();
    let out = upload_context(&c, &target, opts, || synthetic(TOTAL, None))
        .await
        .expect("multipart upload");
    let grown_mib = (peak_rss_kib().saturating_sub(base)) as f64 / 1024.0;
    eprintln!(
        "uploaded {} MiB in {} parts; peak RSS grew {grown_mib:.1} MiB",
        TOTAL / MIB,
        out.parts
    );
    assert!(!out.skipped);
    assert_eq!(out.bytes, TOTAL as u64);
    assert_eq!(out.parts, (TOTAL / (8 * MIB)) as u32);
    // Parts held: 2 in flight + 2 being read (+ SDK buffers); the archive is 96 MiB.
    assert!(
        grown_mib < 48.0,
        "peak RSS grew {grown_mib:.1} MiB for a 96 MiB archive"
    );

    // Same bytes came out.
    let mut want = Sha256::new();
    let mut src = Box::pin(synthetic(TOTAL, None));
    while let Some(chunk) = src.next().await {
        want.update(chunk.unwrap());
    }
    let obj =
        c.s3.get_object()
            .bucket(&bucket)
            .key(target.key())
            .send()
            .await
            .unwrap();
    assert_eq!(
        obj.server_side_encryption().map(|e| e.as_str()),
        Some("AES256")
    );
    let mut body = obj.body;
    let mut got = Sha256::new();
    while let Some(chunk) = body.next().await {
        got.update(chunk.unwrap());
    }
    assert_eq!(got.finalize(), want.finalize());
}

#[tokio::test]
async fn failing_producer_aborts_and_leaves_nothing() {
    let _serial = SERIAL.lock().await;
    let s = services().await;
    let c = clients(&s).await;
    let bucket = bucket(&c).await;
    let target = UploadTarget {
        bucket: bucket.clone(),
        prefix: String::new(),
        context_hash: "c".repeat(64),
    };
    let opts = UploadOptions {
        part_size: 5 * MIB,
        max_in_flight: 2,
    };
    let err = upload_context(&c, &target, opts, || synthetic(40 * MIB, Some(17 * MIB)))
        .await
        .unwrap_err();
    assert!(matches!(err, RemoteError::Context { .. }), "{err}");
    assert!(err.to_string().contains(&target.key()), "{err}");
    let head =
        c.s3.head_object()
            .bucket(&bucket)
            .key(target.key())
            .send()
            .await;
    assert!(head.is_err(), "no object after a failed upload");
    let uploads =
        c.s3.list_multipart_uploads()
            .bucket(&bucket)
            .send()
            .await
            .unwrap();
    assert!(
        uploads.uploads().is_empty(),
        "the multipart upload was aborted"
    );
}
