//! Persistent stat cache: (path, size, mtime, ctime, inode, device) -> digest.
//!
//! One file per context root under `<cache>/stat/`, rewritten atomically
//! (temp file + rename) so concurrent providers never see a torn file; the
//! last writer wins, and every writer only stores digests it verified.
//! A trailing SHA-256 detects corruption; a bad or foreign file is ignored.
//!
//! Racy timestamps (as in git): a file changed again within the timestamp
//! granularity after we read it keeps its mtime, so a digest is only stored
//! when the file's mtime and ctime are safely older than the scan's start.
//! Such files are simply hashed again next time.

use std::collections::HashMap;
use std::fs;
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

use super::digest::sha256;
use super::walk::FileStat;

const MAGIC: &[u8; 8] = b"IBSTATC\0";
const VERSION: u32 = 1;
/// Files modified this close to the scan start are not trusted next time.
/// Two seconds covers coarse (1 s, FAT's 2 s) timestamps and jiffy clocks.
pub(crate) const RACY_MARGIN_NS: i64 = 2_000_000_000;
/// Entries unseen this long are dropped (other Dockerfiles may share a root).
const EXPIRE_DAYS: u32 = 14;

/// Multiply-rotate hasher (FxHash's scheme): the keys are our own paths, not
/// attacker-chosen, and SipHash showed up in warm re-hash profiles.
#[derive(Default, Clone, Copy)]
struct PathHasher(u64);

impl std::hash::Hasher for PathHasher {
    fn write(&mut self, bytes: &[u8]) {
        let mut chunks = bytes.chunks_exact(8);
        for c in &mut chunks {
            let word = u64::from_le_bytes(c.try_into().unwrap_or([0; 8]));
            self.0 = (self.0.rotate_left(5) ^ word).wrapping_mul(0x51_7c_c1_b7_27_22_0a_95);
        }
        for &b in chunks.remainder() {
            self.0 = (self.0.rotate_left(5) ^ u64::from(b)).wrapping_mul(0x51_7c_c1_b7_27_22_0a_95);
        }
    }
    fn finish(&self) -> u64 {
        self.0
    }
}

type PathMap = HashMap<String, Rec, std::hash::BuildHasherDefault<PathHasher>>;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Rec {
    size: u64,
    mtime_ns: i64,
    ctime_ns: i64,
    ino: u64,
    dev: u64,
    digest: [u8; 32],
    seen_day: u32,
}

impl Rec {
    fn same_stat(&self, st: &FileStat) -> bool {
        self.size == st.size
            && self.mtime_ns == st.mtime_ns
            && self.ctime_ns == st.ctime_ns
            && self.ino == st.ino
            && self.dev == st.dev
    }
}

/// The stat cache of one context root.
#[derive(Debug)]
pub(crate) struct StatCache {
    file: PathBuf,
    root: String,
    map: PathMap,
    dirty: bool,
    today: u32,
}

/// Nanoseconds since the epoch, for racy-timestamp decisions.
pub(crate) fn now_ns() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos() as i64)
        .unwrap_or(0)
}

impl StatCache {
    /// Loads the cache of `root` from `cache_dir`; anything unusable yields an empty cache.
    pub(crate) fn load(cache_dir: &Path, root: &Path) -> StatCache {
        let root = root.to_string_lossy().into_owned();
        let key = hex::encode(&sha256(root.as_bytes())[..16]);
        let file = cache_dir.join("stat").join(format!("{key}.stat"));
        let today = (now_ns() / 86_400_000_000_000) as u32;
        let map = fs::read(&file)
            .ok()
            .and_then(|bytes| decode(&bytes, &root))
            .unwrap_or_default();
        StatCache {
            file,
            root,
            map,
            dirty: false,
            today,
        }
    }

    /// Number of cached digests.
    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.map.len()
    }

    /// The cached digest of `rel` if its stat is unchanged.
    pub(crate) fn lookup(&mut self, rel: &str, st: &FileStat) -> Option<[u8; 32]> {
        let rec = self.map.get_mut(rel)?;
        if !rec.same_stat(st) {
            self.map.remove(rel);
            self.dirty = true;
            return None;
        }
        if rec.seen_day != self.today {
            rec.seen_day = self.today;
            self.dirty = true;
        }
        Some(rec.digest)
    }

    /// Remembers a digest computed during a scan that started at `scan_start_ns`,
    /// unless the file is too recent for its timestamps to prove it unchanged later.
    pub(crate) fn record(
        &mut self,
        rel: &str,
        st: &FileStat,
        digest: [u8; 32],
        scan_start_ns: i64,
    ) {
        if st.mtime_ns.max(st.ctime_ns) >= scan_start_ns - RACY_MARGIN_NS {
            return;
        }
        let rec = Rec {
            size: st.size,
            mtime_ns: st.mtime_ns,
            ctime_ns: st.ctime_ns,
            ino: st.ino,
            dev: st.dev,
            digest,
            seen_day: self.today,
        };
        if self.map.insert(rel.to_string(), rec) != Some(rec) {
            self.dirty = true;
        }
    }

    /// Writes the cache back if anything changed (atomically; errors are the caller's to ignore).
    pub(crate) fn save(&mut self) -> io::Result<()> {
        let today = self.today;
        let before = self.map.len();
        self.map
            .retain(|_, r| r.seen_day.saturating_add(EXPIRE_DAYS) >= today);
        if !self.dirty && self.map.len() == before {
            return Ok(());
        }
        let bytes = encode(&self.root, &self.map);
        write_atomic(&self.file, &bytes)?;
        self.dirty = false;
        Ok(())
    }
}

/// Writes `bytes` to `path` through a unique temporary file and a rename.
pub(crate) fn write_atomic(path: &Path, bytes: &[u8]) -> io::Result<()> {
    let dir = path.parent().unwrap_or(Path::new("."));
    fs::create_dir_all(dir)?;
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let tmp = dir.join(format!(
        ".{name}.{}.{}.tmp",
        std::process::id(),
        uuid::Uuid::new_v4().simple()
    ));
    let result = (|| {
        let mut f = fs::File::create(&tmp)?;
        f.write_all(bytes)?;
        fs::rename(&tmp, path)
    })();
    if result.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    result
}

fn encode(root: &str, map: &PathMap) -> Vec<u8> {
    let mut out = Vec::with_capacity(64 + map.len() * 110);
    out.extend_from_slice(MAGIC);
    out.extend_from_slice(&VERSION.to_le_bytes());
    out.extend_from_slice(&(root.len() as u32).to_le_bytes());
    out.extend_from_slice(root.as_bytes());
    out.extend_from_slice(&(map.len() as u64).to_le_bytes());
    for (path, r) in map {
        out.extend_from_slice(&(path.len() as u32).to_le_bytes());
        out.extend_from_slice(path.as_bytes());
        out.extend_from_slice(&r.size.to_le_bytes());
        out.extend_from_slice(&r.mtime_ns.to_le_bytes());
        out.extend_from_slice(&r.ctime_ns.to_le_bytes());
        out.extend_from_slice(&r.ino.to_le_bytes());
        out.extend_from_slice(&r.dev.to_le_bytes());
        out.extend_from_slice(&r.digest);
        out.extend_from_slice(&r.seen_day.to_le_bytes());
    }
    let sum = sha256(&out);
    out.extend_from_slice(&sum);
    out
}

/// Bounds-checked little-endian reader over a byte slice.
pub(crate) struct Reader<'a>(pub(crate) &'a [u8]);

impl<'a> Reader<'a> {
    pub(crate) fn take(&mut self, n: usize) -> Option<&'a [u8]> {
        if self.0.len() < n {
            return None;
        }
        let (head, rest) = self.0.split_at(n);
        self.0 = rest;
        Some(head)
    }
    pub(crate) fn u32(&mut self) -> Option<u32> {
        Some(u32::from_le_bytes(self.take(4)?.try_into().ok()?))
    }
    pub(crate) fn u64(&mut self) -> Option<u64> {
        Some(u64::from_le_bytes(self.take(8)?.try_into().ok()?))
    }
    pub(crate) fn i64(&mut self) -> Option<i64> {
        Some(i64::from_le_bytes(self.take(8)?.try_into().ok()?))
    }
    pub(crate) fn digest(&mut self) -> Option<[u8; 32]> {
        self.take(32)?.try_into().ok()
    }
    pub(crate) fn string(&mut self) -> Option<String> {
        let n = self.u32()? as usize;
        String::from_utf8(self.take(n)?.to_vec()).ok()
    }
}

/// Splits off and verifies the trailing checksum.
pub(crate) fn verified_body(bytes: &[u8]) -> Option<&[u8]> {
    if bytes.len() < 32 {
        return None;
    }
    let (body, sum) = bytes.split_at(bytes.len() - 32);
    (sha256(body) == sum).then_some(body)
}

fn decode(bytes: &[u8], root: &str) -> Option<PathMap> {
    let mut r = Reader(verified_body(bytes)?);
    if r.take(8)? != MAGIC || r.u32()? != VERSION || r.string()? != root {
        return None;
    }
    let count = r.u64()? as usize;
    let mut map = PathMap::with_capacity_and_hasher(count.min(1 << 24), Default::default());
    for _ in 0..count {
        let path = r.string()?;
        let rec = Rec {
            size: r.u64()?,
            mtime_ns: r.i64()?,
            ctime_ns: r.i64()?,
            ino: r.u64()?,
            dev: r.u64()?,
            digest: r.digest()?,
            seen_day: r.u32()?,
        };
        map.insert(path, rec);
    }
    r.0.is_empty().then_some(map)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stat(mtime_ns: i64) -> FileStat {
        FileStat {
            size: 3,
            mtime_ns,
            ctime_ns: mtime_ns,
            ino: 42,
            dev: 1,
            exec: false,
        }
    }

    const NOW: i64 = 1_700_000_000_000_000_000;

    #[test]
    fn round_trip_and_lookup() {
        let dir = tempfile::tempdir().unwrap();
        let mut c = StatCache::load(dir.path(), Path::new("/ctx"));
        let old = stat(NOW - 10_000_000_000);
        c.record("a", &old, [1; 32], NOW);
        c.save().unwrap();
        let mut c = StatCache::load(dir.path(), Path::new("/ctx"));
        assert_eq!(c.lookup("a", &old), Some([1; 32]));
        let mut changed = old;
        changed.ctime_ns += 1;
        assert_eq!(c.lookup("a", &changed), None);
    }

    #[test]
    fn racy_entries_are_not_trusted() {
        let dir = tempfile::tempdir().unwrap();
        let mut c = StatCache::load(dir.path(), Path::new("/ctx"));
        // Modified in the same second as the scan: must be re-read next time.
        let racy = stat(NOW - 500_000_000);
        c.record("a", &racy, [1; 32], NOW);
        c.save().unwrap();
        let mut c = StatCache::load(dir.path(), Path::new("/ctx"));
        assert_eq!(c.lookup("a", &racy), None);
    }

    #[test]
    fn corrupted_or_foreign_files_are_ignored() {
        let dir = tempfile::tempdir().unwrap();
        let mut c = StatCache::load(dir.path(), Path::new("/ctx"));
        let old = stat(NOW - 10_000_000_000);
        c.record("a", &old, [1; 32], NOW);
        c.save().unwrap();
        let file = c.file.clone();
        let mut bytes = fs::read(&file).unwrap();
        let mid = bytes.len() / 2;
        bytes[mid] ^= 0xff;
        fs::write(&file, &bytes).unwrap();
        assert_eq!(StatCache::load(dir.path(), Path::new("/ctx")).len(), 0);
        fs::write(&file, b"garbage").unwrap();
        assert_eq!(StatCache::load(dir.path(), Path::new("/ctx")).len(), 0);
        // A valid file of another version is ignored too.
        let mut map = PathMap::default();
        map.insert("a".to_string(), c.map["a"]);
        let mut other = encode("/ctx", &map);
        other[8] = 99;
        let body_len = other.len() - 32;
        let sum = sha256(&other[..body_len]);
        other[body_len..].copy_from_slice(&sum);
        fs::write(&file, &other).unwrap();
        assert_eq!(StatCache::load(dir.path(), Path::new("/ctx")).len(), 0);
    }

    #[test]
    fn unchanged_cache_is_not_rewritten() {
        let dir = tempfile::tempdir().unwrap();
        let mut c = StatCache::load(dir.path(), Path::new("/ctx"));
        let old = stat(NOW - 10_000_000_000);
        c.record("a", &old, [1; 32], NOW);
        c.save().unwrap();
        let file = c.file.clone();
        fs::remove_file(&file).unwrap();
        c.record("a", &old, [1; 32], NOW);
        c.save().unwrap();
        assert!(!file.exists());
    }
}
