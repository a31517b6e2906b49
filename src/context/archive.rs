//! Deterministic tar (optionally gzip) stream of a snapshot.
//!
//! Byte-identical for identical snapshots: entries in path order, mtime 0,
//! uid/gid 0, no user or group names, mode 0644/0755 from the exec bit (0755
//! for directories, 0777 for links), gzip with mtime 0 and no file name.
//! Produced on its own thread into a small bounded channel, so memory stays
//! constant whatever the context size; file contents are read again from
//! disk and checked against the snapshot's digests, so an archive never
//! carries content other than what was hashed.

use std::borrow::Cow;
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
    spawn_archive(vec![main_source(snap)], extra, gzip)
}

/// Default first component under which [`tar_stream_with_named`] stores named contexts.
pub const NAMED_ARCHIVE_ROOT: &str = ".imagebuild-contexts";

/// The top-level directory holding the named local contexts in a [`tar_stream_with_named`]
/// archive: [`NAMED_ARCHIVE_ROOT`], or `.imagebuild-contexts.N` (first free N) when the main
/// context already holds that path, so the two can never collide. None without named contexts.
pub fn named_archive_root(snap: &ContextSnapshot) -> Option<String> {
    if snap.named.is_empty() {
        return None;
    }
    let taken = |root: &str| {
        snap.entries.iter().any(|e| {
            e.path == root
                || (e.path.starts_with(root) && e.path.as_bytes().get(root.len()) == Some(&b'/'))
        })
    };
    let mut root = NAMED_ARCHIVE_ROOT.to_string();
    let mut n = 1;
    while taken(&root) {
        root = format!("{NAMED_ARCHIVE_ROOT}.{n}");
        n += 1;
    }
    Some(root)
}

/// Each named local context (name, directory inside the archive): `<root>/<index>` in the
/// snapshot's name order. Indexes, not names, make the paths: a name may hold `/` or `:`.
pub fn named_archive_dirs(snap: &ContextSnapshot) -> Vec<(String, String)> {
    let Some(root) = named_archive_root(snap) else {
        return Vec::new();
    };
    snap.named
        .iter()
        .enumerate()
        .map(|(i, n)| (n.name.clone(), format!("{root}/{i}")))
        .collect()
}

/// [`tar_stream`] plus each named local context's `used` entries under its
/// [`named_archive_dirs`] directory (which is always present, even when nothing is read from it).
/// Without named contexts the bytes are exactly those of [`tar_stream`].
pub fn tar_stream_with_named(
    snap: &ContextSnapshot,
    extra: Vec<ExtraFile>,
    gzip: bool,
) -> impl Stream<Item = io::Result<Bytes>> + Send + 'static {
    let mut sources = vec![main_source(snap)];
    for ((_, dir), named) in named_archive_dirs(snap).into_iter().zip(&snap.named) {
        sources.push(Source {
            root: named.root.clone(),
            prefix: Some(dir),
            entries: Arc::clone(&named.used),
        });
    }
    spawn_archive(sources, extra, gzip)
}

/// Entries read from one directory, stored under `prefix` (None: at the archive's top).
struct Source {
    root: PathBuf,
    prefix: Option<String>,
    entries: Arc<Vec<Entry>>,
}

fn main_source(snap: &ContextSnapshot) -> Source {
    Source {
        root: snap.root.clone(),
        prefix: None,
        entries: Arc::clone(&snap.used),
    }
}

fn spawn_archive(
    sources: Vec<Source>,
    extra: Vec<ExtraFile>,
    gzip: bool,
) -> impl Stream<Item = io::Result<Bytes>> + Send + 'static {
    let (tx, rx) = mpsc::channel(DEPTH);
    let producer_tx = tx.clone();
    let spawned = std::thread::Builder::new()
        .name("imagebuild-tar".to_string())
        .spawn(move || {
            let writer = ChannelWriter {
                tx: producer_tx.clone(),
                buf: BytesMut::with_capacity(CHUNK),
            };
            if let Err(e) = write_sources(writer, &sources, extra, gzip) {
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
fn write_sources<W: Write>(
    w: W,
    sources: &[Source],
    extra: Vec<ExtraFile>,
    gzip: bool,
) -> io::Result<()> {
    if gzip {
        // The fast level: compressing at the default level took 3x longer than uploading the
        // result (remote bench), and the bytes only need to be the same for the same input.
        let gz = GzBuilder::new().mtime(0).write(w, Compression::fast());
        let gz = write_tar(gz, sources, extra)?;
        let mut w = gz.finish()?;
        w.flush()
    } else {
        let mut w = write_tar(w, sources, extra)?;
        w.flush()
    }
}

/// A context entry, an extra file or a directory made for a named context, in archive order.
enum Member<'a> {
    Entry {
        root: &'a Path,
        path: Cow<'a, str>,
        entry: &'a Entry,
    },
    Extra(ExtraFile),
    Dir(String),
}

impl Member<'_> {
    fn path(&self) -> &str {
        match self {
            Member::Entry { path, .. } => path,
            Member::Extra(x) => &x.path,
            Member::Dir(p) => p,
        }
    }
}

/// Every member of the archive, sorted by path: extra files replace main-context entries of the
/// same path; each prefixed source gets its directory (and the parents) as entries.
fn members(sources: &[Source], mut extra: Vec<ExtraFile>) -> Vec<Member<'_>> {
    extra.sort_by(|a, b| a.path.cmp(&b.path));
    extra.dedup_by(|later, earlier| later.path == earlier.path);
    let mut members: Vec<Member> = Vec::new();
    let mut dirs: Vec<String> = Vec::new();
    for source in sources {
        let root = source.root.as_path();
        match &source.prefix {
            None => members.extend(
                source
                    .entries
                    .iter()
                    .filter(|e| {
                        extra
                            .binary_search_by(|x| x.path.as_str().cmp(&e.path))
                            .is_err()
                    })
                    .map(|entry| Member::Entry {
                        root,
                        path: Cow::Borrowed(entry.path.as_str()),
                        entry,
                    }),
            ),
            Some(prefix) => {
                let mut dir = String::new();
                for part in prefix.split('/') {
                    if !dir.is_empty() {
                        dir.push('/');
                    }
                    dir.push_str(part);
                    dirs.push(dir.clone());
                }
                members.extend(source.entries.iter().map(|entry| Member::Entry {
                    root,
                    path: Cow::Owned(format!("{prefix}/{}", entry.path)),
                    entry,
                }));
            }
        }
    }
    dirs.sort();
    dirs.dedup();
    members.extend(dirs.into_iter().map(Member::Dir));
    members.extend(extra.into_iter().map(Member::Extra));
    members.sort_by(|a, b| a.path().cmp(b.path()));
    members
}

fn write_tar<W: Write>(w: W, sources: &[Source], extra: Vec<ExtraFile>) -> io::Result<W> {
    let mut tar = tar::Builder::new(w);
    for member in members(sources, extra) {
        let mut h = tar::Header::new_gnu();
        h.set_mtime(0);
        h.set_uid(0);
        h.set_gid(0);
        match member {
            Member::Entry { root, path, entry } => append_entry(&mut tar, h, root, &path, entry)?,
            Member::Extra(x) => {
                h.set_entry_type(tar::EntryType::Regular);
                h.set_mode(if x.exec { 0o755 } else { 0o644 });
                h.set_size(x.contents.len() as u64);
                tar.append_data(&mut h, &x.path, x.contents.as_slice())?;
            }
            Member::Dir(path) => {
                h.set_entry_type(tar::EntryType::Directory);
                h.set_mode(0o755);
                h.set_size(0);
                tar.append_data(&mut h, &path, io::empty())?;
            }
        }
    }
    tar.into_inner()
}

/// One snapshot entry at `path` in the archive, its content read again from `root`.
fn append_entry<W: Write>(
    tar: &mut tar::Builder<W>,
    mut h: tar::Header,
    root: &Path,
    path: &str,
    e: &Entry,
) -> io::Result<()> {
    match &e.kind {
        EntryKind::Dir => {
            h.set_entry_type(tar::EntryType::Directory);
            h.set_mode(0o755);
            h.set_size(0);
            tar.append_data(&mut h, path, io::empty())
        }
        EntryKind::Symlink { target } => {
            h.set_entry_type(tar::EntryType::Symlink);
            h.set_mode(0o777);
            h.set_size(0);
            tar.append_link(&mut h, path, target)
        }
        EntryKind::File { exec, size, digest } => {
            h.set_entry_type(tar::EntryType::Regular);
            h.set_mode(if *exec { 0o755 } else { 0o644 });
            h.set_size(*size);
            let file_path = root.join(&e.path);
            let file = File::open(&file_path).map_err(|err| with_path(err, &file_path))?;
            let reader = Verified {
                inner: file.take(*size),
                left: *size,
                hasher: Sha256::new(),
                digest: *digest,
                path: file_path,
            };
            tar.append_data(&mut h, path, reader)
        }
    }
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::context::ReadPath;
    use crate::context::{snapshot, ContextReads, ContextRequest, DockerfileSource, NamedRequest};
    use futures::StreamExt;

    fn write(dir: &Path, files: &[(&str, &str)]) {
        for (path, text) in files {
            let p = dir.join(path);
            std::fs::create_dir_all(p.parent().unwrap()).unwrap();
            std::fs::write(p, text).unwrap();
        }
    }

    fn reads(path: &str) -> ContextReads {
        ContextReads::Paths(vec![ReadPath {
            path: path.into(),
            excludes: Vec::new(),
            must_exist: true,
            origin: "test".into(),
        }])
    }

    /// A main context (whole) and two named directories, `shared` reading only `lib`.
    fn snap_with_named(main_files: &[(&str, &str)]) -> (tempfile::TempDir, ContextSnapshot) {
        let tmp = tempfile::tempdir().unwrap();
        let (main, shared, tools) = (
            tmp.path().join("main"),
            tmp.path().join("shared"),
            tmp.path().join("tools"),
        );
        write(&main, main_files);
        write(
            &shared,
            &[
                (".dockerignore", "lib/*.log\n"),
                ("lib/a.py", "a\n"),
                ("lib/debug.log", "ignored\n"),
                ("docs/unread.md", "not read\n"),
            ],
        );
        std::fs::create_dir_all(&tools).unwrap();
        let mut req = ContextRequest::new(
            main.clone(),
            DockerfileSource::Inline("FROM scratch\n".into()),
        );
        req.cache_dir = Some(tmp.path().join("cache"));
        req.reads = ContextReads::whole("test");
        req.named = vec![
            NamedRequest {
                name: "tools".into(),
                dir: tools,
                reads: ContextReads::whole("test"),
            },
            NamedRequest {
                name: "docker.io/library/shared:1".into(),
                dir: shared,
                reads: reads("lib"),
            },
        ];
        let snap = snapshot(&req).unwrap();
        (tmp, snap)
    }

    async fn members_of(stream: impl Stream<Item = io::Result<Bytes>>) -> Vec<(String, String)> {
        let bytes: Vec<u8> = Box::pin(stream).map(|c| c.unwrap().to_vec()).concat().await;
        let mut archive = tar::Archive::new(bytes.as_slice());
        let mut out = Vec::new();
        for entry in archive.entries().unwrap() {
            let mut entry = entry.unwrap();
            let path = entry
                .path()
                .unwrap()
                .to_string_lossy()
                .trim_end_matches('/')
                .to_string();
            let mut text = String::new();
            entry.read_to_string(&mut text).unwrap();
            out.push((path, text));
        }
        out
    }

    #[tokio::test]
    async fn named_contexts_travel_under_the_reserved_root_with_only_their_used_files() {
        let (_tmp, snap) = snap_with_named(&[("app.py", "main\n")]);
        let dirs = named_archive_dirs(&snap);
        assert_eq!(
            dirs,
            vec![
                (
                    "docker.io/library/shared:1".to_string(),
                    format!("{NAMED_ARCHIVE_ROOT}/0")
                ),
                ("tools".to_string(), format!("{NAMED_ARCHIVE_ROOT}/1")),
            ]
        );
        let got = members_of(tar_stream_with_named(&snap, Vec::new(), false)).await;
        let paths: Vec<&str> = got.iter().map(|(p, _)| p.as_str()).collect();
        assert_eq!(
            paths,
            vec![
                ".imagebuild-contexts",
                ".imagebuild-contexts/0",
                ".imagebuild-contexts/0/lib",
                ".imagebuild-contexts/0/lib/a.py",
                ".imagebuild-contexts/1",
                "app.py",
            ],
            "the ignored and the unread named files stay home; an empty named dir still exists"
        );
        assert!(got.contains(&(".imagebuild-contexts/0/lib/a.py".into(), "a\n".into())));
    }

    #[tokio::test]
    async fn without_named_contexts_the_archive_is_the_plain_one() {
        let (_tmp, mut snap) = snap_with_named(&[("app.py", "main\n")]);
        snap.named.clear();
        assert_eq!(named_archive_root(&snap), None);
        let plain: Vec<u8> = Box::pin(tar_stream(&snap, Vec::new(), true))
            .map(|c| c.unwrap().to_vec())
            .concat()
            .await;
        let with: Vec<u8> = Box::pin(tar_stream_with_named(&snap, Vec::new(), true))
            .map(|c| c.unwrap().to_vec())
            .concat()
            .await;
        assert_eq!(plain, with);
    }

    #[test]
    fn the_root_moves_aside_when_the_main_context_holds_it() {
        let (_tmp, snap) = snap_with_named(&[
            ("app.py", "main\n"),
            (".imagebuild-contexts/x", "user file\n"),
            (".imagebuild-contexts.1", "user file\n"),
        ]);
        assert_eq!(
            named_archive_root(&snap).as_deref(),
            Some(".imagebuild-contexts.2")
        );
        let (_tmp, snap) = snap_with_named(&[(".imagebuild-contextsX", "no clash\n")]);
        assert_eq!(
            named_archive_root(&snap).as_deref(),
            Some(NAMED_ARCHIVE_ROOT)
        );
    }
}
