//! SHA-256 of file contents.
//!
//! Plain buffered `read` calls, not mmap: a file truncated by an editor while
//! it is mapped would kill the whole provider with SIGBUS. With a warm page
//! cache the extra copy costs far less than the hashing itself (sha2 uses the
//! CPU's SHA instructions when present).

use std::cell::RefCell;
use std::fs::File;
use std::io::{self, Read};
use std::path::Path;

use sha2::{Digest, Sha256};

use super::walk::FileStat;

/// Read size: large enough that syscall overhead vanishes, small enough to stay in L2.
const BUF_SIZE: usize = 256 * 1024;

thread_local! {
    static BUF: RefCell<Vec<u8>> = RefCell::new(vec![0; BUF_SIZE]);
}

/// The outcome of hashing one file.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Hashed {
    pub(crate) digest: [u8; 32],
    /// Bytes actually hashed.
    pub(crate) size: u64,
    /// Whether exactly the size seen by the walk was read, so that the digest
    /// may be cached under the walk's stat. A write after that stat leaves a
    /// newer mtime/ctime, which no longer matches the cached stat, so no
    /// second stat is needed to keep the cache honest.
    pub(crate) stable: bool,
}

/// Hashes the first `seen.size` bytes of the file at `path` (fewer if it shrank).
/// Stops at the size the walk saw instead of probing for EOF: one syscall
/// less per file, and a file that grows meanwhile is caught by its new mtime.
pub(crate) fn hash_file(path: &Path, seen: &FileStat) -> io::Result<Hashed> {
    let mut file = File::open(path)?;
    let mut hasher = Sha256::new();
    let mut size = 0u64;
    BUF.with(|buf| -> io::Result<()> {
        let mut buf = buf.borrow_mut();
        while size < seen.size {
            let want = (seen.size - size).min(buf.len() as u64) as usize;
            let n = match file.read(&mut buf[..want]) {
                Ok(0) => return Ok(()),
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e),
            };
            hasher.update(&buf[..n]);
            size += n as u64;
        }
        Ok(())
    })?;
    Ok(Hashed {
        digest: hasher.finalize().into(),
        size,
        stable: size == seen.size,
    })
}

/// SHA-256 of a byte slice.
pub(crate) fn sha256(data: &[u8]) -> [u8; 32] {
    Sha256::digest(data).into()
}
