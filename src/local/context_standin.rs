//! TEMPORARY stand-in for the contract's context types until src/context lands; delete then and
//! switch `mod.rs` to `crate::context`. Field names and signatures follow CONTRACT.md exactly.
#![allow(missing_docs)]

use std::io::Write;
use std::path::PathBuf;
use std::sync::Arc;

use bytes::Bytes;
use futures::Stream;

/// One entry of a snapshot.
#[derive(Debug, Clone)]
pub enum EntryKind {
    /// Regular file.
    File {
        exec: bool,
        size: u64,
        digest: [u8; 32],
    },
    /// Directory.
    Dir,
    /// Symbolic link.
    Symlink { target: String },
}

/// A path in the context with its kind.
#[derive(Debug, Clone)]
pub struct Entry {
    /// '/'-separated, relative.
    pub path: String,
    /// What it is.
    pub kind: EntryKind,
}

/// What the context engine hands over.
#[derive(Debug, Clone)]
pub struct ContextSnapshot {
    /// 64 lowercase hex.
    pub hash: String,
    /// File count.
    pub files: u64,
    /// Byte count.
    pub bytes: u64,
    /// Context directory.
    pub root: PathBuf,
    /// Sorted entries, exactly what COPY . sees.
    pub entries: Arc<Vec<Entry>>,
    /// The Dockerfile's bytes.
    pub dockerfile_contents: Arc<Vec<u8>>,
    /// Relative path when the Dockerfile is inside the context and included.
    pub dockerfile_in_context: Option<String>,
}

/// A file added to the tar that is not in the snapshot.
#[derive(Debug, Clone)]
pub struct ExtraFile {
    /// Path inside the tar.
    pub path: String,
    /// Contents.
    pub contents: Vec<u8>,
    /// Executable bit.
    pub exec: bool,
}

struct ChanWriter(tokio::sync::mpsc::Sender<std::io::Result<Bytes>>);

impl Write for ChanWriter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0
            .blocking_send(Ok(Bytes::copy_from_slice(buf)))
            .map_err(|_| std::io::Error::new(std::io::ErrorKind::BrokenPipe, "receiver gone"))?;
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// Uncompressed tar of the entries plus extras, produced on a blocking thread.
pub fn tar_stream(
    snap: &ContextSnapshot,
    extra: Vec<ExtraFile>,
    gzip: bool,
) -> impl Stream<Item = std::io::Result<Bytes>> + Send + 'static {
    let _ = gzip;
    let (tx, rx) = tokio::sync::mpsc::channel(16);
    let root = snap.root.clone();
    let entries = snap.entries.clone();
    tokio::task::spawn_blocking(move || {
        let err_tx = tx.clone();
        let run = move || -> std::io::Result<()> {
            let w = std::io::BufWriter::with_capacity(64 * 1024, ChanWriter(tx));
            let mut b = tar::Builder::new(w);
            for e in entries.iter() {
                let mut h = tar::Header::new_gnu();
                h.set_mtime(0);
                match &e.kind {
                    EntryKind::Dir => {
                        h.set_entry_type(tar::EntryType::Directory);
                        h.set_mode(0o755);
                        h.set_size(0);
                        b.append_data(&mut h, format!("{}/", e.path), std::io::empty())?;
                    }
                    EntryKind::Symlink { target } => {
                        h.set_entry_type(tar::EntryType::Symlink);
                        h.set_mode(0o777);
                        h.set_size(0);
                        b.append_link(&mut h, &e.path, target)?;
                    }
                    EntryKind::File { exec, .. } => {
                        let f = std::fs::File::open(root.join(&e.path))?;
                        h.set_size(f.metadata()?.len());
                        h.set_mode(if *exec { 0o755 } else { 0o644 });
                        b.append_data(&mut h, &e.path, f)?;
                    }
                }
            }
            for x in extra {
                let mut h = tar::Header::new_gnu();
                h.set_mtime(0);
                h.set_size(x.contents.len() as u64);
                h.set_mode(if x.exec { 0o755 } else { 0o644 });
                b.append_data(&mut h, &x.path, x.contents.as_slice())?;
            }
            b.into_inner()?.flush()
        };
        if let Err(e) = run() {
            let _ = err_tx.blocking_send(Err(e));
        }
    });
    futures::stream::unfold(rx, |mut rx| async move { rx.recv().await.map(|x| (x, rx)) })
}
