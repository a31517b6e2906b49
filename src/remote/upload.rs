//! Context upload to a content-addressed S3 key: skip when present, else stream (multipart when large).

use std::io;
use std::pin::Pin;

use aws_sdk_s3::primitives::ByteStream;
use aws_sdk_s3::types::{
    ChecksumAlgorithm, CompletedMultipartUpload, CompletedPart, ServerSideEncryption,
};
use bytes::{Bytes, BytesMut};
use futures::{Stream, StreamExt};
use tokio::task::JoinSet;

use super::clients::RemoteClients;
use super::error::RemoteError;
use crate::context::is_context_hash;

const MIB: usize = 1024 * 1024;
/// S3 refuses multipart parts below 5 MiB (except the last).
const MIN_PART: usize = 5 * MIB;

/// Where a context archive goes: `s3://<bucket>/<prefix>/<context_hash>.tar.gz`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UploadTarget {
    /// S3 bucket.
    pub bucket: String,
    /// Key prefix without trailing slash; may be empty.
    pub prefix: String,
    /// The context hash (64 lowercase hex), which names the object.
    pub context_hash: String,
}

impl UploadTarget {
    /// The object key: `<prefix>/<hash>.tar.gz` (no leading slash).
    pub fn key(&self) -> String {
        let prefix = self.prefix.trim_matches('/');
        if prefix.is_empty() {
            format!("{}.tar.gz", self.context_hash)
        } else {
            format!("{prefix}/{}.tar.gz", self.context_hash)
        }
    }

    /// The object as an `s3://bucket/key` URI.
    pub fn object_uri(&self) -> String {
        format!("s3://{}/{}", self.bucket, self.key())
    }

    fn validate(&self) -> Result<(), RemoteError> {
        if !is_context_hash(&self.context_hash) {
            return Err(RemoteError::Invalid(format!(
                "context hash {:?} is not 64 lowercase hex digits",
                self.context_hash
            )));
        }
        if self.bucket.is_empty() || self.bucket.contains('/') {
            return Err(RemoteError::Invalid(format!(
                "S3 bucket {:?} must be a bare bucket name",
                self.bucket
            )));
        }
        Ok(())
    }
}

/// How the upload streams: part size and parts in flight bound its memory to about `part_size * (max_in_flight + 2)`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct UploadOptions {
    /// Multipart part size (at least 5 MiB; smaller values are raised). Archives up to this size go in one PutObject.
    pub part_size: usize,
    /// Parts uploading at once.
    pub max_in_flight: usize,
}

impl Default for UploadOptions {
    fn default() -> Self {
        UploadOptions {
            part_size: 8 * MIB,
            max_in_flight: 2,
        }
    }
}

/// What the upload did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UploadOutcome {
    /// `s3://bucket/key` of the archive.
    pub object_uri: String,
    /// Archive size in bytes (of the existing object when skipped).
    pub bytes: u64,
    /// True when the object already existed and nothing was uploaded.
    pub skipped: bool,
    /// Multipart parts sent (0 for a single PutObject or a skip).
    pub parts: u32,
}

/// Size of the archive already stored for `target`, or None when there is none.
pub async fn existing_object(
    clients: &RemoteClients,
    target: &UploadTarget,
) -> Result<Option<u64>, RemoteError> {
    let key = target.key();
    match clients
        .s3
        .head_object()
        .bucket(&target.bucket)
        .key(&key)
        .send()
        .await
    {
        Ok(out) => Ok(Some(out.content_length().unwrap_or(0).max(0) as u64)),
        Err(err) => {
            let status = err.raw_response().map(|r| r.status().as_u16());
            let not_found = err.as_service_error().is_some_and(|e| e.is_not_found());
            if not_found || status == Some(404) {
                return Ok(None);
            }
            if status == Some(403) {
                // HEAD answers have no body, so S3's error code is lost; say what 403 means here.
                return Err(RemoteError::AccessDenied {
                    action: "s3:GetObject (HeadObject)".into(),
                    resource: target.object_uri(),
                    message:
                        "403 Forbidden (also returned for a missing object without s3:ListBucket)"
                            .into(),
                });
            }
            Err(RemoteError::from_sdk(
                "s3:HeadObject",
                &target.object_uri(),
                err,
            ))
        }
    }
}

/// Uploads the archive produced by `make_body` unless the content-addressed object exists.
///
/// `make_body` is only called when an upload is needed, so a skipped upload never
/// produces the archive. The object is private (no ACL grants) and encrypted with SSE-S3 (AES256).
pub async fn upload_context<F, S>(
    clients: &RemoteClients,
    target: &UploadTarget,
    options: UploadOptions,
    make_body: F,
) -> Result<UploadOutcome, RemoteError>
where
    F: FnOnce() -> S,
    S: Stream<Item = io::Result<Bytes>> + Send,
{
    target.validate()?;
    let object_uri = target.object_uri();
    if let Some(bytes) = existing_object(clients, target).await? {
        return Ok(UploadOutcome {
            object_uri,
            bytes,
            skipped: true,
            parts: 0,
        });
    }
    let part_size = options.part_size.max(MIN_PART);
    let mut reader = PartReader {
        stream: Box::pin(make_body()),
        carry: Bytes::new(),
        eof: false,
        part_size,
    };
    let context_err = |source| RemoteError::Context {
        object: object_uri.clone(),
        source,
    };
    let first = reader
        .next_part()
        .await
        .map_err(context_err)?
        .unwrap_or_default();
    let second = if first.len() < part_size {
        None
    } else {
        reader.next_part().await.map_err(context_err)?
    };
    let Some(second) = second else {
        let bytes = first.len() as u64;
        put_single(clients, target, first).await?;
        return Ok(UploadOutcome {
            object_uri,
            bytes,
            skipped: false,
            parts: 0,
        });
    };
    let (bytes, parts) = upload_multipart(
        clients,
        target,
        &mut reader,
        [first, second],
        options.max_in_flight.max(1),
    )
    .await?;
    Ok(UploadOutcome {
        object_uri,
        bytes,
        skipped: false,
        parts,
    })
}

/// A multipart upload of the two parts read so far and the rest of `reader`; aborted on failure.
async fn upload_multipart<S>(
    clients: &RemoteClients,
    target: &UploadTarget,
    reader: &mut PartReader<S>,
    first_two: [Bytes; 2],
    max_in_flight: usize,
) -> Result<(u64, u32), RemoteError>
where
    S: Stream<Item = io::Result<Bytes>> + Send,
{
    let upload_id = create_multipart(clients, target).await?;
    let result = upload_parts(
        clients,
        target,
        &upload_id,
        reader,
        first_two,
        max_in_flight,
    )
    .await;
    if result.is_err() {
        // Best effort: an abandoned upload's parts would otherwise be billed until a lifecycle rule clears them.
        let _ = clients
            .s3
            .abort_multipart_upload()
            .bucket(&target.bucket)
            .key(target.key())
            .upload_id(&upload_id)
            .send()
            .await;
    }
    result
}

async fn put_single(
    clients: &RemoteClients,
    target: &UploadTarget,
    body: Bytes,
) -> Result<(), RemoteError> {
    clients
        .s3
        .put_object()
        .bucket(&target.bucket)
        .key(target.key())
        .content_type("application/gzip")
        .server_side_encryption(ServerSideEncryption::Aes256)
        .metadata("imagebuild-context-hash", &target.context_hash)
        .body(ByteStream::from(body))
        .send()
        .await
        .map_err(|e| RemoteError::from_sdk("s3:PutObject", &target.object_uri(), e))?;
    Ok(())
}

async fn create_multipart(
    clients: &RemoteClients,
    target: &UploadTarget,
) -> Result<String, RemoteError> {
    let out = clients
        .s3
        .create_multipart_upload()
        .bucket(&target.bucket)
        .key(target.key())
        .content_type("application/gzip")
        .server_side_encryption(ServerSideEncryption::Aes256)
        .metadata("imagebuild-context-hash", &target.context_hash)
        // Parts carry CRC32 checksums (the SDK's default); S3 wants the upload to say so up front.
        .checksum_algorithm(ChecksumAlgorithm::Crc32)
        .send()
        .await
        .map_err(|e| {
            RemoteError::from_sdk(
                "s3:PutObject (CreateMultipartUpload)",
                &target.object_uri(),
                e,
            )
        })?;
    out.upload_id()
        .map(str::to_string)
        .ok_or_else(|| RemoteError::Aws {
            action: "s3:PutObject (CreateMultipartUpload)".into(),
            resource: target.object_uri(),
            code: None,
            message: "the answer held no upload id".into(),
        })
}

/// Sends parts as they are read, at most `max_in_flight` at once; returns (bytes, parts).
async fn upload_parts<S>(
    clients: &RemoteClients,
    target: &UploadTarget,
    upload_id: &str,
    reader: &mut PartReader<S>,
    first_two: [Bytes; 2],
    max_in_flight: usize,
) -> Result<(u64, u32), RemoteError>
where
    S: Stream<Item = io::Result<Bytes>> + Send,
{
    let mut in_flight: JoinSet<Result<CompletedPart, RemoteError>> = JoinSet::new();
    let mut done: Vec<CompletedPart> = Vec::new();
    let mut bytes = 0u64;
    let mut number = 0i32;
    let mut pending: Vec<Bytes> = first_two.into_iter().rev().collect();
    loop {
        let part = match pending.pop() {
            Some(p) => Some(p),
            None => reader
                .next_part()
                .await
                .map_err(|source| RemoteError::Context {
                    object: target.object_uri(),
                    source,
                })?,
        };
        let Some(part) = part else { break };
        while in_flight.len() >= max_in_flight {
            done.push(join_part(in_flight.join_next().await)?);
        }
        number += 1;
        bytes += part.len() as u64;
        in_flight.spawn(upload_part(clients, target, upload_id, number, part));
    }
    while let Some(joined) = in_flight.join_next().await {
        done.push(join_part(Some(joined))?);
    }
    complete_upload(clients, target, upload_id, done).await?;
    Ok((bytes, number as u32))
}

/// One UploadPart with a CRC32 checksum, as a task of its own; answers the part's completion record.
fn upload_part(
    clients: &RemoteClients,
    target: &UploadTarget,
    upload_id: &str,
    n: i32,
    part: Bytes,
) -> impl std::future::Future<Output = Result<CompletedPart, RemoteError>> + Send + 'static {
    let (s3, bucket, key, id, uri) = (
        clients.s3.clone(),
        target.bucket.clone(),
        target.key(),
        upload_id.to_string(),
        target.object_uri(),
    );
    async move {
        let out = s3
            .upload_part()
            .bucket(bucket)
            .key(key)
            .upload_id(id)
            .part_number(n)
            .checksum_algorithm(ChecksumAlgorithm::Crc32)
            .body(ByteStream::from(part))
            .send()
            .await
            .map_err(|e| RemoteError::from_sdk("s3:PutObject (UploadPart)", &uri, e))?;
        let mut completed = CompletedPart::builder().part_number(n);
        if let Some(etag) = out.e_tag() {
            completed = completed.e_tag(etag);
        }
        if let Some(crc) = out.checksum_crc32() {
            completed = completed.checksum_crc32(crc);
        }
        Ok(completed.build())
    }
}

/// CompleteMultipartUpload with every part, in part-number order.
async fn complete_upload(
    clients: &RemoteClients,
    target: &UploadTarget,
    upload_id: &str,
    mut done: Vec<CompletedPart>,
) -> Result<(), RemoteError> {
    done.sort_by_key(|p| p.part_number());
    clients
        .s3
        .complete_multipart_upload()
        .bucket(&target.bucket)
        .key(target.key())
        .upload_id(upload_id)
        .multipart_upload(
            CompletedMultipartUpload::builder()
                .set_parts(Some(done))
                .build(),
        )
        .send()
        .await
        .map_err(|e| {
            RemoteError::from_sdk(
                "s3:PutObject (CompleteMultipartUpload)",
                &target.object_uri(),
                e,
            )
        })?;
    Ok(())
}

fn join_part(
    joined: Option<Result<Result<CompletedPart, RemoteError>, tokio::task::JoinError>>,
) -> Result<CompletedPart, RemoteError> {
    match joined {
        Some(Ok(result)) => result,
        Some(Err(e)) => Err(RemoteError::Invalid(format!(
            "part upload task failed: {e}"
        ))),
        None => Err(RemoteError::Invalid("no part upload was in flight".into())),
    }
}

/// Cuts a byte stream into parts of exactly `part_size` (the last may be shorter).
struct PartReader<S> {
    stream: Pin<Box<S>>,
    carry: Bytes,
    eof: bool,
    part_size: usize,
}

impl<S: Stream<Item = io::Result<Bytes>>> PartReader<S> {
    async fn next_part(&mut self) -> io::Result<Option<Bytes>> {
        let mut part = BytesMut::new();
        loop {
            if !self.carry.is_empty() {
                let take = self.carry.len().min(self.part_size - part.len());
                if part.capacity() == 0 {
                    part.reserve(if take == self.carry.len() {
                        self.part_size
                    } else {
                        take
                    });
                }
                part.extend_from_slice(&self.carry.split_to(take));
            }
            if part.len() == self.part_size || (self.eof && self.carry.is_empty()) {
                return Ok(if part.is_empty() {
                    None
                } else {
                    Some(part.freeze())
                });
            }
            match self.stream.next().await {
                Some(Ok(chunk)) => self.carry = chunk,
                Some(Err(e)) => return Err(e),
                None => self.eof = true,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn chunks(sizes: &[usize]) -> impl Stream<Item = io::Result<Bytes>> {
        let v: Vec<io::Result<Bytes>> = sizes
            .iter()
            .enumerate()
            .map(|(i, n)| Ok(Bytes::from(vec![i as u8; *n])))
            .collect();
        futures::stream::iter(v)
    }

    #[tokio::test]
    async fn parts_are_exact_and_keep_order() {
        let mut r = PartReader {
            stream: Box::pin(chunks(&[3, 10, 1, 0, 7])),
            carry: Bytes::new(),
            eof: false,
            part_size: 8,
        };
        let mut all = Vec::new();
        let mut sizes = Vec::new();
        while let Some(p) = r.next_part().await.unwrap() {
            sizes.push(p.len());
            all.extend_from_slice(&p);
        }
        assert_eq!(sizes, vec![8, 8, 5]);
        let expected: Vec<u8> = [3usize, 10, 1, 0, 7]
            .iter()
            .enumerate()
            .flat_map(|(i, n)| vec![i as u8; *n])
            .collect();
        assert_eq!(all, expected);
    }

    #[tokio::test]
    async fn empty_stream_has_no_parts() {
        let mut r = PartReader {
            stream: Box::pin(chunks(&[])),
            carry: Bytes::new(),
            eof: false,
            part_size: 8,
        };
        assert!(r.next_part().await.unwrap().is_none());
    }

    #[test]
    fn keys_are_content_addressed() {
        let t = UploadTarget {
            bucket: "b".into(),
            prefix: "/ctx/".into(),
            context_hash: "a".repeat(64),
        };
        assert_eq!(t.key(), format!("ctx/{}.tar.gz", "a".repeat(64)));
        assert_eq!(
            t.object_uri(),
            format!("s3://b/ctx/{}.tar.gz", "a".repeat(64))
        );
        let t = UploadTarget {
            prefix: String::new(),
            ..t
        };
        assert_eq!(t.key(), format!("{}.tar.gz", "a".repeat(64)));
        assert!(!is_context_hash("../etc"));
        assert!(!is_context_hash(&"A".repeat(64)));
    }
}
