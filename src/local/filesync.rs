//! `moby.filesync.v1.FileSync/DiffCopy` on our BuildKit session: the sending
//! side of fsutil's transfer protocol, serving the build's named directories.
//!
//! Per request: the request metadata names the directory (`dir-name`) and the
//! selection (`include-patterns`, `exclude-patterns`, `followpaths`, each
//! query-escaped when `<key>-encoded` is set). We send one STAT per selected
//! path in fsutil order (the STAT's position is the file's id) and an empty
//! STAT; BuildKit compares them with its previous copy and sends REQ for the
//! files it lacks; each is answered with DATA chunks of 32 KiB and an empty
//! DATA; BuildKit's FIN is answered with FIN and the stream ends. A file whose
//! bytes differ from the snapshot's digest (or that vanished) gets an ERR
//! packet instead of its final DATA, and the build fails naming it.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;

use bollard::fsutil::types::packet::PacketType;
use bollard::fsutil::types::{Packet, Stat};
use bollard::moby::filesync::v1::file_sync_server::FileSync;
use futures::{StreamExt, TryStreamExt};
use sha2::{Digest, Sha256};
use tokio::io::AsyncReadExt;
use tokio::sync::mpsc;
use tokio_stream::wrappers::{ReceiverStream, UnboundedReceiverStream};
use tokio_util::sync::CancellationToken;
use tonic14::metadata::MetadataMap;
use tonic14::{Request, Response, Status, Streaming};

use super::fsstat::{carries_data, disk_stat, virtual_stat, Hardlinks};
use super::syncdirs::{SyncDir, SyncDirs};
use super::transferlog::{TransferFailure, TransferLog};
use crate::context::{EntryKind, TransferFilter};

/// DATA chunk size (fsutil's copy buffer).
const CHUNK: usize = 32 * 1024;
/// Files served at once (fsutil's sender runs four workers).
const WORKERS: usize = 4;
/// Packets queued towards the stream.
const DEPTH: usize = 32;

/// The FileSync service of one build's session.
pub(crate) struct FileSyncService {
    dirs: Arc<SyncDirs>,
    log: Arc<TransferLog>,
    cancel: CancellationToken,
}

impl FileSyncService {
    /// Serves `dirs`, recording into `log`; every transfer stops when `cancel` fires.
    pub(crate) fn new(dirs: SyncDirs, log: Arc<TransferLog>, cancel: CancellationToken) -> Self {
        FileSyncService {
            dirs: Arc::new(dirs),
            log,
            cancel,
        }
    }
}

/// Where a requested file's bytes come from.
enum Source {
    Disk {
        abs: PathBuf,
        rel: String,
        size: u64,
        digest: [u8; 32],
    },
    Memory {
        rel: String,
        bytes: Arc<Vec<u8>>,
    },
}

/// The STAT list of one request and the files that may be requested, by id.
struct Prepared {
    stats: Vec<Stat>,
    sources: HashMap<u32, Source>,
}

/// One request's context for its tasks.
struct Transfer {
    dir: String,
    root: Option<PathBuf>,
    index: usize,
    log: Arc<TransferLog>,
    tx: mpsc::Sender<Result<Packet, Status>>,
    stop: CancellationToken,
}

#[tonic14::async_trait]
impl FileSync for FileSyncService {
    type DiffCopyStream = ReceiverStream<Result<Packet, Status>>;

    async fn diff_copy(
        &self,
        request: Request<Streaming<Packet>>,
    ) -> Result<Response<Self::DiffCopyStream>, Status> {
        let (name, filter) = request_options(request.metadata());
        let index = self.log.begin(&name, &filter);
        let Some(dir) = self.dirs.get(&name).cloned() else {
            self.log.fail(TransferFailure::Request {
                dir: name.clone(),
                detail: "this build serves no directory of that name (named build contexts \
                         are not supported yet)"
                    .into(),
            });
            return Err(Status::not_found(format!(
                "no access allowed to dir {name:?}"
            )));
        };
        let root = dir.root.clone();
        let prepared = tokio::task::spawn_blocking(move || prepare(&dir, &filter))
            .await
            .map_err(|e| Status::internal(format!("file list task failed: {e}")))?;
        let (tx, rx) = mpsc::channel(DEPTH);
        let t = Transfer {
            dir: name.clone(),
            root,
            index,
            log: self.log.clone(),
            tx,
            stop: self.cancel.child_token(),
        };
        let prepared = match prepared {
            Ok(p) => p,
            Err(failure) => {
                let failure = match failure {
                    PrepareError::Changed(c) => {
                        TransferFailure::changed(&name, t.root.as_deref(), c)
                    }
                    PrepareError::Request(detail) => TransferFailure::Request { dir: name, detail },
                };
                t.fail(failure).await;
                return Ok(Response::new(ReceiverStream::new(rx)));
            }
        };
        self.log.listed(index, prepared.stats.len());
        tokio::spawn(run(t, prepared, request.into_inner()));
        Ok(Response::new(ReceiverStream::new(rx)))
    }

    type TarStreamStream = futures::stream::Empty<Result<Packet, Status>>;

    async fn tar_stream(
        &self,
        _r: Request<Streaming<Packet>>,
    ) -> Result<Response<Self::TarStreamStream>, Status> {
        Err(Status::unimplemented("only DiffCopy is offered"))
    }
}

/// `dir-name` and the selection lists, decoded as BuildKit's `decodeOpts` does.
fn request_options(md: &MetadataMap) -> (String, TransferFilter) {
    let values = |key: &str| -> Vec<String> {
        let raw: Vec<String> = md
            .get_all(key)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .map(str::to_string)
            .collect();
        let encoded = md
            .get(format!("{key}-encoded").as_str())
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| matches!(v, "1" | "t" | "T" | "true" | "TRUE" | "True"));
        if encoded {
            raw.iter()
                .map(|v| query_unescape(v).unwrap_or_default())
                .collect()
        } else {
            raw
        }
    };
    let dir = values("dir-name").into_iter().next().unwrap_or_default();
    let filter = TransferFilter {
        include_patterns: values("include-patterns"),
        exclude_patterns: values("exclude-patterns"),
        follow_paths: values("followpaths"),
    };
    (dir, filter)
}

/// Go's `url.QueryUnescape`: `+` is a space, `%XX` a byte; `None` on a bad escape.
fn query_unescape(s: &str) -> Option<String> {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'%' => {
                let hex = std::str::from_utf8(b.get(i + 1..i + 3)?).ok()?;
                out.push(u8::from_str_radix(hex, 16).ok()?);
                i += 3;
            }
            b'+' => {
                out.push(b' ');
                i += 1;
            }
            c => {
                out.push(c);
                i += 1;
            }
        }
    }
    String::from_utf8(out).ok()
}

enum PrepareError {
    Changed(super::fsstat::Changed),
    Request(String),
}

/// Selects the entries and stats each one afresh (blocking).
fn prepare(dir: &SyncDir, filter: &TransferFilter) -> Result<Prepared, PrepareError> {
    let selected = dir
        .select(filter)
        .map_err(|e| PrepareError::Request(e.to_string()))?;
    let mut stats = Vec::with_capacity(selected.len());
    let mut sources = HashMap::new();
    let mut links = Hardlinks::new();
    for (id, (entry, memory)) in selected.into_iter().enumerate() {
        let id = id as u32;
        let stat = match (&memory, &dir.root) {
            (Some(bytes), _) => {
                let digest: [u8; 32] = Sha256::digest(bytes.as_slice()).into();
                virtual_stat(&entry.path, bytes.len(), &digest)
            }
            (None, Some(root)) => {
                disk_stat(root, &entry, &mut links).map_err(PrepareError::Changed)?
            }
            (None, None) => {
                return Err(PrepareError::Request(format!(
                    "{} has no backing directory",
                    entry.path
                )))
            }
        };
        if carries_data(&stat) {
            let source = match (memory, &entry.kind, &dir.root) {
                (Some(bytes), _, _) => Source::Memory {
                    rel: entry.path.clone(),
                    bytes,
                },
                (None, EntryKind::File { size, digest, .. }, Some(root)) => Source::Disk {
                    abs: root.join(&entry.path),
                    rel: entry.path.clone(),
                    size: *size,
                    digest: *digest,
                },
                _ => {
                    return Err(PrepareError::Request(format!(
                        "{} is not a file",
                        entry.path
                    )))
                }
            };
            sources.insert(id, source);
        }
        stats.push(stat);
    }
    Ok(Prepared { stats, sources })
}

/// How the receiver's side of the stream ended.
enum ReaderEnd {
    Fin,
    Gone,
}

async fn run(t: Transfer, prepared: Prepared, incoming: Streaming<Packet>) {
    let t = Arc::new(t);
    let sources = Arc::new(prepared.sources);
    let (req_tx, req_rx) = mpsc::unbounded_channel::<u32>();
    let stats = send_stats(&t, prepared.stats);
    let reader = read_requests(&t, incoming, req_tx);
    let workers = async {
        let served = UnboundedReceiverStream::new(req_rx)
            .map(Ok::<u32, TransferFailure>)
            .try_for_each_concurrent(WORKERS, |id| {
                let (t, sources) = (t.clone(), sources.clone());
                async move { serve(&t, &sources, id).await }
            })
            .await;
        if served.is_err() {
            // BuildKit waits for the file and would never send FIN: stop the reader too.
            t.stop.cancel();
        }
        served
    };
    let (_, end, served) = tokio::join!(stats, reader, workers);
    t.log.transfer_ended();
    match (end, served) {
        (_, Err(failure)) => t.fail(failure).await,
        (ReaderEnd::Fin, Ok(())) => {
            let _ = t.send(packet(PacketType::PacketFin)).await;
        }
        (ReaderEnd::Gone, Ok(())) => {}
    }
}

async fn send_stats(t: &Transfer, stats: Vec<Stat>) {
    for stat in stats {
        let mut p = packet(PacketType::PacketStat);
        p.stat = Some(stat);
        if !t.send(p).await {
            return;
        }
    }
    t.send(packet(PacketType::PacketStat)).await;
}

/// Forwards REQ ids to the workers until FIN, an error or the end of the stream.
async fn read_requests(
    t: &Transfer,
    mut incoming: Streaming<Packet>,
    req_tx: mpsc::UnboundedSender<u32>,
) -> ReaderEnd {
    loop {
        let msg = tokio::select! {
            _ = t.stop.cancelled() => return ReaderEnd::Gone,
            m = incoming.message() => m,
        };
        let Ok(Some(p)) = msg else {
            return ReaderEnd::Gone;
        };
        match PacketType::try_from(p.r#type) {
            // The workers only go away after a failure, which also stops this loop.
            Ok(PacketType::PacketReq) => {
                let _ = req_tx.send(p.id);
            }
            Ok(PacketType::PacketFin) => return ReaderEnd::Fin,
            // The receiver failed (its own reason is in the build's error): stop sending.
            Ok(PacketType::PacketErr) => {
                t.stop.cancel();
                return ReaderEnd::Gone;
            }
            _ => {}
        }
    }
}

/// Sends one requested file: its chunks, then an empty DATA (or ERR if it is not as hashed).
async fn serve(
    t: &Transfer,
    sources: &HashMap<u32, Source>,
    id: u32,
) -> Result<(), TransferFailure> {
    let Some(source) = sources.get(&id) else {
        return Err(TransferFailure::Request {
            dir: t.dir.clone(),
            detail: format!("BuildKit asked for file id {id}, which names no file"),
        });
    };
    let rel = match source {
        Source::Memory { rel, bytes } => {
            for chunk in bytes.chunks(CHUNK) {
                t.data(id, chunk.to_vec()).await;
            }
            rel
        }
        Source::Disk {
            abs,
            rel,
            size,
            digest,
        } => {
            send_file(t, id, abs, *size, digest)
                .await
                .map_err(|detail| {
                    let c = super::fsstat::Changed {
                        path: rel.clone(),
                        detail,
                    };
                    TransferFailure::changed(&t.dir, t.root.as_deref(), c)
                })?;
            rel
        }
    };
    if t.send(data_packet(id, Vec::new())).await {
        t.log.file_done(t.index, rel);
    }
    Ok(())
}

/// Streams a file's bytes, checking size and digest against the snapshot.
async fn send_file(
    t: &Transfer,
    id: u32,
    abs: &std::path::Path,
    size: u64,
    digest: &[u8; 32],
) -> Result<(), String> {
    let mut file = tokio::fs::File::open(abs)
        .await
        .map_err(|e| format!("cannot be opened: {e}"))?;
    let mut hasher = Sha256::new();
    let mut total = 0u64;
    let mut buf = vec![0u8; CHUNK];
    loop {
        let n = file
            .read(&mut buf)
            .await
            .map_err(|e| format!("cannot be read: {e}"))?;
        if n == 0 {
            break;
        }
        total += n as u64;
        if total > size {
            return Err(format!("grew beyond the {size} bytes that were hashed"));
        }
        hasher.update(&buf[..n]);
        if !t.data(id, buf[..n].to_vec()).await {
            return Ok(());
        }
    }
    if total != size {
        return Err(format!("has {total} bytes instead of {size}"));
    }
    if <[u8; 32]>::from(hasher.finalize()) != *digest {
        return Err("its content differs".to_string());
    }
    Ok(())
}

impl Transfer {
    /// Queues a packet; false once the stream is gone or the transfer was stopped.
    async fn send(&self, p: Packet) -> bool {
        tokio::select! {
            _ = self.stop.cancelled() => false,
            r = self.tx.send(Ok(p)) => r.is_ok(),
        }
    }

    /// Sends a DATA chunk and counts it.
    async fn data(&self, id: u32, bytes: Vec<u8>) -> bool {
        let n = bytes.len() as u64;
        let sent = self.send(data_packet(id, bytes)).await;
        if sent {
            self.log.add_bytes(self.index, n);
        }
        sent
    }

    /// Records the failure, tells the receiver (ERR) and ends the stream with an error.
    async fn fail(&self, failure: TransferFailure) {
        let message = failure.message();
        self.log.fail(failure);
        let mut p = packet(PacketType::PacketErr);
        p.data = message.clone().into_bytes();
        let _ = self.tx.send(Ok(p)).await;
        let _ = self.tx.send(Err(Status::aborted(message))).await;
        self.stop.cancel();
    }
}

fn packet(kind: PacketType) -> Packet {
    Packet {
        r#type: kind as i32,
        ..Packet::default()
    }
}

fn data_packet(id: u32, data: Vec<u8>) -> Packet {
    Packet {
        r#type: PacketType::PacketData as i32,
        id,
        data,
        ..Packet::default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn options_are_decoded_like_buildkit() {
        let mut md = MetadataMap::new();
        md.insert("dir-name", "context".parse().unwrap());
        md.append("followpaths", "a%C3%A9+b".parse().unwrap());
        md.append("followpaths", "src".parse().unwrap());
        md.insert("followpaths-encoded", "1".parse().unwrap());
        md.append("exclude-patterns", "a%20b".parse().unwrap());
        let (dir, f) = request_options(&md);
        assert_eq!(dir, "context");
        assert_eq!(f.follow_paths, ["aé b", "src"]);
        // Not marked as encoded: taken as is.
        assert_eq!(f.exclude_patterns, ["a%20b"]);
        assert!(f.include_patterns.is_empty());
    }

    #[test]
    fn unescape_rejects_bad_escapes() {
        assert_eq!(query_unescape("%zz"), None);
        assert_eq!(query_unescape("x%2"), None);
        assert_eq!(query_unescape("%2Fa"), Some("/a".into()));
    }
}
