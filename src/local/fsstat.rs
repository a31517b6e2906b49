//! fsutil `Stat` records as the docker CLI sends them: a fresh `lstat` at
//! serve time, Go `os.FileMode` bits, nanosecond mtime, the link target,
//! hardlinks as links to the first path of the same inode (with their full
//! size, as fsutil ends up sending them), uid/gid 0 (the
//! CLI resets them for the context), no xattrs. BuildKit compares exactly
//! these fields with its previous copy to decide what to ask for again.

use std::collections::HashMap;
use std::fs::Metadata;
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::Path;

use bollard::fsutil::types::Stat;

use crate::context::{Entry, EntryKind};

/// Go's `os.ModeDir`.
pub(crate) const MODE_DIR: u32 = 1 << 31;
/// Go's `os.ModeSymlink`.
pub(crate) const MODE_SYMLINK: u32 = 1 << 27;
const MODE_DEVICE: u32 = 1 << 26;
const MODE_NAMED_PIPE: u32 = 1 << 25;
const MODE_SOCKET: u32 = 1 << 24;
const MODE_SETUID: u32 = 1 << 23;
const MODE_SETGID: u32 = 1 << 22;
const MODE_CHAR_DEVICE: u32 = 1 << 21;
const MODE_STICKY: u32 = 1 << 20;
/// Go's `os.ModeType`: a file whose mode has none of these bits carries data.
const MODE_TYPE: u32 = MODE_DIR
    | MODE_SYMLINK
    | MODE_NAMED_PIPE
    | MODE_SOCKET
    | MODE_DEVICE
    | MODE_CHAR_DEVICE
    | (1 << 19);

/// Go's `FileInfo.Mode()` for unix metadata (the socket bit cleared, as fsutil does).
pub(crate) fn go_file_mode(md: &Metadata) -> u32 {
    let raw = md.mode();
    let mut mode = raw & 0o777;
    let ft = md.file_type();
    if ft.is_dir() {
        mode |= MODE_DIR;
    } else if ft.is_symlink() {
        mode |= MODE_SYMLINK;
    } else if ft.is_fifo() {
        mode |= MODE_NAMED_PIPE;
    } else if ft.is_block_device() {
        mode |= MODE_DEVICE;
    } else if ft.is_char_device() {
        mode |= MODE_DEVICE | MODE_CHAR_DEVICE;
    }
    if raw & 0o4000 != 0 {
        mode |= MODE_SETUID;
    }
    if raw & 0o2000 != 0 {
        mode |= MODE_SETGID;
    }
    if raw & 0o1000 != 0 {
        mode |= MODE_STICKY;
    }
    mode & !MODE_SOCKET
}

/// Whether the receiver may request this entry's contents (fsutil's `fileCanRequestData`).
pub(crate) fn carries_data(stat: &Stat) -> bool {
    stat.mode & MODE_TYPE == 0
}

/// Why an entry cannot be sent as the snapshot recorded it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Changed {
    /// Path relative to the synced directory.
    pub(crate) path: String,
    /// What differs.
    pub(crate) detail: String,
}

/// First path seen per (device, inode) among the regular files sent so far.
pub(crate) type Hardlinks = HashMap<(u64, u64), String>;

/// The stat of `entry` under `root` now; fails when it no longer is what the snapshot saw.
pub(crate) fn disk_stat(
    root: &Path,
    entry: &Entry,
    links: &mut Hardlinks,
) -> Result<Stat, Changed> {
    let changed = |detail: String| Changed {
        path: entry.path.clone(),
        detail,
    };
    let abs = root.join(&entry.path);
    let md =
        std::fs::symlink_metadata(&abs).map_err(|e| changed(format!("cannot be read: {e}")))?;
    let ft = md.file_type();
    let mut stat = Stat {
        path: entry.path.clone(),
        mode: go_file_mode(&md),
        mod_time: md.mtime().saturating_mul(1_000_000_000) + md.mtime_nsec(),
        ..Stat::default()
    };
    match &entry.kind {
        EntryKind::Dir if ft.is_dir() => {}
        EntryKind::Symlink { target } if ft.is_symlink() => {
            let now =
                std::fs::read_link(&abs).map_err(|e| changed(format!("cannot be read: {e}")))?;
            if now.as_os_str() != std::ffi::OsStr::new(target) {
                return Err(changed(format!("now links to {}", now.display())));
            }
            stat.size = md.size() as i64;
            stat.linkname = target.clone();
        }
        EntryKind::File { size, .. } if ft.is_file() => {
            if md.size() != *size {
                return Err(changed(format!(
                    "now has {} bytes instead of {size}",
                    md.size()
                )));
            }
            stat.size = md.size() as i64;
            if md.nlink() > 1 {
                match links.get(&(md.dev(), md.ino())) {
                    // fsutil's mkstat zeroes the size of a hardlink and then overwrites it with
                    // the file's size; the receiver's own walk does the same, and a size of 0
                    // would make every unchanged hardlink look modified.
                    Some(first) => stat.linkname = first.clone(),
                    None => {
                        links.insert((md.dev(), md.ino()), entry.path.clone());
                    }
                }
            }
        }
        _ => return Err(changed("is no longer of the same kind".to_string())),
    }
    Ok(stat)
}

/// The stat of an in-memory file: mode 0644, and an mtime derived from the content
/// digest, so that changed text always looks changed to the receiver.
pub(crate) fn virtual_stat(path: &str, size: usize, digest: &[u8; 32]) -> Stat {
    let secs = u32::from_be_bytes([digest[0], digest[1], digest[2], digest[3]]);
    let nanos = u32::from_be_bytes([digest[4], digest[5], digest[6], digest[7]]) % 1_000_000_000;
    Stat {
        path: path.to_string(),
        mode: 0o644,
        size: size as i64,
        // 2001-09-09 plus up to 136 years: a valid time for every consumer.
        mod_time: (1_000_000_000 + i64::from(secs)) * 1_000_000_000 + i64::from(nanos),
        ..Stat::default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::{symlink, PermissionsExt};

    #[test]
    fn go_mode_bits() {
        let tmp = tempfile::tempdir().unwrap();
        let f = tmp.path().join("f");
        std::fs::write(&f, "x").unwrap();
        std::fs::set_permissions(&f, std::fs::Permissions::from_mode(0o4755)).unwrap();
        let md = std::fs::symlink_metadata(&f).unwrap();
        assert_eq!(go_file_mode(&md), MODE_SETUID | 0o755);
        let md = std::fs::symlink_metadata(tmp.path()).unwrap();
        assert_eq!(go_file_mode(&md) & MODE_DIR, MODE_DIR);
        symlink("f", tmp.path().join("l")).unwrap();
        let md = std::fs::symlink_metadata(tmp.path().join("l")).unwrap();
        assert_eq!(go_file_mode(&md), MODE_SYMLINK | 0o777);
    }

    #[test]
    fn hardlinks_point_at_the_first_path() {
        let tmp = tempfile::tempdir().unwrap();
        std::fs::write(tmp.path().join("a"), "xy").unwrap();
        std::fs::hard_link(tmp.path().join("a"), tmp.path().join("b")).unwrap();
        let file = |p: &str| Entry {
            path: p.into(),
            kind: EntryKind::File {
                exec: false,
                size: 2,
                digest: [0; 32],
            },
        };
        let mut links = Hardlinks::new();
        let a = disk_stat(tmp.path(), &file("a"), &mut links).unwrap();
        let b = disk_stat(tmp.path(), &file("b"), &mut links).unwrap();
        assert_eq!((a.linkname.as_str(), a.size), ("", 2));
        assert_eq!((b.linkname.as_str(), b.size), ("a", 2));
        assert!(carries_data(&a));
        let err = disk_stat(tmp.path(), &file("gone"), &mut links).unwrap_err();
        assert_eq!(err.path, "gone");
    }

    #[test]
    fn virtual_mtime_follows_content() {
        let a = virtual_stat("Dockerfile", 3, &[1; 32]);
        let b = virtual_stat("Dockerfile", 3, &[2; 32]);
        assert_ne!(a.mod_time, b.mod_time);
        assert!(a.mod_time > 0 && carries_data(&a));
    }
}
