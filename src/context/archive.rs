//! Deterministic tar (optionally gzip) stream of a snapshot.
//!
//! Byte-identical for identical snapshots: entries in path order, mtime 0,
//! uid/gid 0, no user or group names, mode 0644/0755 from the exec bit (0755
//! for directories, 0777 for links), gzip with mtime 0 and no file name.
//! Produced on its own thread into a small bounded channel, so memory stays
//! constant whatever the context size; file contents are read again from
//! disk and checked against the snapshot's digests, so an archive never
//! carries content other than what was hashed.

use std::fs::File;
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use bytes::{Bytes, BytesMut};
use flate2::{Compression, GzBuilder};
use futures::Stream;
use sha2::{Digest, Sha256};
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;

use super::{ContextSnapshot, Entry, EntryKind, ExtraFile};

/// Size of the chunks handed to the consumer.
const CHUNK: usize = 64 * 1024;
/// Chunks in flight between the producer thread and the consumer.
const DEPTH: usize = 8;

/// Deterministic tar (optionally gzip) of the entries the snapshot's hash covers (`used`) plus `extra`
/// files (which replace context entries of the same path), streamed from a
/// blocking thread through a bounded channel, re-reading file contents from disk.
/// A file that changed since the snapshot ends the stream with an error.
pub fn tar_stream(
    snap: &ContextSnapshot,
    extra: Vec<ExtraFile>,
    gzip: bool,
) -> impl Stream<Item = io::Result<Bytes>> + Send + 'static {
    let (tx, rx) = mpsc::channel(DEPTH);
    let root = snap.root.clone();
    let entries = Arc::clone(&snap.used);
    let producer_tx = tx.clone();
    let spawned = std::thread::Builder::new()
        .name("imagebuild-tar".to_string())
        .spawn(move || {
            let writer = ChannelWriter {
                tx: producer_tx.clone(),
                buf: BytesMut::with_capacity(CHUNK),
            };
            if let Err(e) = write_archive(writer, &root, &entries, extra, gzip) {
                let _ = producer_tx.blocking_send(Err(e));
            }
        });
    if let Err(e) = spawned {
        let _ = tx.try_send(Err(io::Error::other(format!(
            "cannot start the archive thread: {e}"
        ))));
    }
    ReceiverStream::new(rx)
}

/// Writes the whole archive into `w` (a blocking writer).
pub(crate) fn write_archive<W: Write>(
    w: W,
    root: &Path,
    entries: &[Entry],
    extra: Vec<ExtraFile>,
    gzip: bool,
) -> io::Result<()> {
    if gzip {
        // The fast level: compressing at the default level took 3x longer than uploading the
        // result (remote bench), and the bytes only need to be the same for the same input.
        let gz = GzBuilder::new().mtime(0).write(w, Compression::fast());
        let gz = write_tar(gz, root, entries, extra)?;
        let mut w = gz.finish()?;
        w.flush()
    } else {
        let mut w = write_tar(w, root, entries, extra)?;
        w.flush()
    }
}

/// A context entry or an extra file, in archive order.
enum Member<'a> {
    Entry(&'a Entry),
    Extra(ExtraFile),
}

impl Member<'_> {
    fn path(&self) -> &str {
        match self {
            Member::Entry(e) => &e.path,
            Member::Extra(x) => &x.path,
        }
    }
}

fn write_tar<W: Write>(
    w: W,
    root: &Path,
    entries: &[Entry],
    mut extra: Vec<ExtraFile>,
) -> io::Result<W> {
    extra.sort_by(|a, b| a.path.cmp(&b.path));
    extra.dedup_by(|later, earlier| later.path == earlier.path);
    let mut members: Vec<Member> = entries
        .iter()
        .filter(|e| {
            extra
                .binary_search_by(|x| x.path.as_str().cmp(&e.path))
                .is_err()
        })
        .map(Member::Entry)
        .collect();
    members.extend(extra.into_iter().map(Member::Extra));
    members.sort_by(|a, b| a.path().cmp(b.path()));

    let mut tar = tar::Builder::new(w);
    for member in members {
        let mut h = tar::Header::new_gnu();
        h.set_mtime(0);
        h.set_uid(0);
        h.set_gid(0);
        match member {
            Member::Entry(e) => match &e.kind {
                EntryKind::Dir => {
                    h.set_entry_type(tar::EntryType::Directory);
                    h.set_mode(0o755);
                    h.set_size(0);
                    tar.append_data(&mut h, &e.path, io::empty())?;
                }
                EntryKind::Symlink { target } => {
                    h.set_entry_type(tar::EntryType::Symlink);
                    h.set_mode(0o777);
                    h.set_size(0);
                    tar.append_link(&mut h, &e.path, target)?;
                }
                EntryKind::File { exec, size, digest } => {
                    h.set_entry_type(tar::EntryType::Regular);
                    h.set_mode(if *exec { 0o755 } else { 0o644 });
                    h.set_size(*size);
                    let path = root.join(&e.path);
                    let file = File::open(&path).map_err(|err| with_path(err, &path))?;
                    let reader = Verified {
                        inner: file.take(*size),
                        left: *size,
                        hasher: Sha256::new(),
                        digest: *digest,
                        path,
                    };
                    tar.append_data(&mut h, &e.path, reader)?;
                }
            },
            Member::Extra(x) => {
                h.set_entry_type(tar::EntryType::Regular);
                h.set_mode(if x.exec { 0o755 } else { 0o644 });
                h.set_size(x.contents.len() as u64);
                tar.append_data(&mut h, &x.path, x.contents.as_slice())?;
            }
        }
    }
    tar.into_inner()
}

fn with_path(err: io::Error, path: &Path) -> io::Error {
    io::Error::new(err.kind(), format!("{}: {err}", path.display()))
}

/// Reads exactly the hashed size and checks the digest at the end, so a file
/// edited after the snapshot fails the stream instead of corrupting it.
struct Verified {
    inner: io::Take<File>,
    left: u64,
    hasher: Sha256,
    digest: [u8; 32],
    path: PathBuf,
}

impl Read for Verified {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.left == 0 {
            return Ok(0);
        }
        let n = self.inner.read(buf).map_err(|e| with_path(e, &self.path))?;
        let changed = || {
            io::Error::other(format!(
                "{} changed after the build context was hashed; run again",
                self.path.display()
            ))
        };
        if n == 0 {
            return Err(changed());
        }
        self.hasher.update(&buf[..n]);
        self.left -= n as u64;
        if self.left == 0 && <[u8; 32]>::from(self.hasher.finalize_reset()) != self.digest {
            return Err(changed());
        }
        Ok(n)
    }
}

/// `Write` adapter that hands fixed-size chunks to the stream's channel.
struct ChannelWriter {
    tx: mpsc::Sender<io::Result<Bytes>>,
    buf: BytesMut,
}

impl ChannelWriter {
    fn send(&mut self) -> io::Result<()> {
        if self.buf.is_empty() {
            return Ok(());
        }
        let chunk = self.buf.split().freeze();
        self.tx
            .blocking_send(Ok(chunk))
            .map_err(|_| io::Error::new(io::ErrorKind::BrokenPipe, "archive consumer went away"))
    }
}

impl Write for ChannelWriter {
    fn write(&mut self, data: &[u8]) -> io::Result<usize> {
        let n = data.len().min(CHUNK - self.buf.len());
        self.buf.extend_from_slice(&data[..n]);
        if self.buf.len() >= CHUNK {
            self.send()?;
            self.buf.reserve(CHUNK);
        }
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.send()
    }
}
