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
    /// Bytes actually read (the file may have changed since it was stat'ed).
    pub(crate) size: u64,
    /// Whether the file looked the same (fstat) before and after reading, so
    /// that the digest may be cached under the stat taken by the walk.
    pub(crate) stable: bool,
}

/// Hashes the file at `path`, which the walk saw with stat `seen`.
pub(crate) fn hash_file(path: &Path, seen: &FileStat) -> io::Result<Hashed> {
    let mut file = File::open(path)?;
    let mut hasher = Sha256::new();
    let mut size = 0u64;
    BUF.with(|buf| -> io::Result<()> {
        let mut buf = buf.borrow_mut();
        loop {
            let n = match file.read(&mut buf) {
                Ok(0) => return Ok(()),
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e),
            };
            hasher.update(&buf[..n]);
            size += n as u64;
        }
    })?;
    let after = FileStat::from_metadata(&file.metadata()?);
    Ok(Hashed {
        digest: hasher.finalize().into(),
        size,
        stable: after == *seen && size == seen.size,
    })
}

/// SHA-256 of a byte slice.
pub(crate) fn sha256(data: &[u8]) -> [u8; 32] {
    Sha256::digest(data).into()
}
