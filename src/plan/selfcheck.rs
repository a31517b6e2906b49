//! Memory of self-check misses: when BuildKit asked a session for a context path the hash did
//! not cover, the next plan of that context and Dockerfile hashes the whole context instead.
//! Stored as one small file per (context root, Dockerfile content) under `<cache>/readmiss/`.

use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

use super::PlanRequest;
use crate::context::default_cache_dir;

/// A path BuildKit read that the analysis did not foresee.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReadMiss {
    /// The path (or pattern) BuildKit asked for.
    pub path: String,
    /// The Dockerfile instruction that most likely asked for it, when one names the path.
    pub instruction: Option<String>,
}

impl ReadMiss {
    /// One sentence for warnings and `--list`.
    pub fn describe(&self) -> String {
        match &self.instruction {
            Some(i) => format!(
                "an earlier build read `{}` ({i}), which the Dockerfile analysis did not foresee",
                self.path
            ),
            None => format!(
                "an earlier build read `{}`, which the Dockerfile analysis did not foresee",
                self.path
            ),
        }
    }
}

fn marker(cache_dir: &Path, root: &Path, dockerfile: &[u8]) -> PathBuf {
    let mut h = Sha256::new();
    h.update(root.as_os_str().as_encoded_bytes());
    h.update([0]);
    h.update(Sha256::digest(dockerfile));
    cache_dir
        .join("readmiss")
        .join(hex::encode(&h.finalize()[..16]))
}

/// Records a miss for the context `root` (canonical) built with `dockerfile`.
pub async fn record_read_miss(
    cache_dir: Option<&Path>,
    root: &Path,
    dockerfile: &[u8],
    miss: &ReadMiss,
) -> std::io::Result<()> {
    let dir = cache_dir.map_or_else(default_cache_dir, Path::to_path_buf);
    let path = marker(&dir, root, dockerfile);
    if let Some(parent) = path.parent() {
        tokio::fs::create_dir_all(parent).await?;
    }
    let text = format!(
        "{}\n{}\n",
        miss.path,
        miss.instruction.clone().unwrap_or_default()
    );
    tokio::fs::write(path, text).await
}

/// The recorded miss for this request's context and Dockerfile, if any.
pub(super) async fn lookup(req: &PlanRequest, dockerfile: &[u8]) -> Option<ReadMiss> {
    let root = tokio::fs::canonicalize(&req.context).await.ok()?;
    let dir = req.cache_dir.clone().unwrap_or_else(default_cache_dir);
    let text = tokio::fs::read_to_string(marker(&dir, &root, dockerfile))
        .await
        .ok()?;
    let mut lines = text.lines();
    let path = lines.next()?.to_string();
    let instruction = lines.next().filter(|l| !l.is_empty()).map(str::to_string);
    Some(ReadMiss { path, instruction })
}

/// The self-check of one build: compares what BuildKit asked the session for with what the hash
/// covered. A follow path outside the analysed read paths, a whole-context request, or a file
/// sent that the hash did not cover is a miss (the first one found).
pub fn check_transfers(
    snap: &crate::context::ContextSnapshot,
    transfers: &[crate::local::TransferRequest],
) -> Option<ReadMiss> {
    let crate::context::ContextReads::Paths(reads) = &snap.reads else {
        return None;
    };
    let covered = |p: &str| {
        reads.iter().any(|r| {
            r.path == p
                || p.strip_prefix(r.path.as_str())
                    .is_some_and(|rest| rest.starts_with('/'))
        })
    };
    let used: std::collections::HashSet<&str> = snap.used.iter().map(|e| e.path.as_str()).collect();
    let text = String::from_utf8_lossy(&snap.dockerfile_contents);
    for t in transfers.iter().filter(|t| t.dir == "context") {
        if is_ignore_file_load(&t.filter) {
            continue;
        }
        if t.filter.follow_paths.is_empty() && t.filter.include_patterns.is_empty() {
            return Some(ReadMiss {
                path: ".".to_string(),
                instruction: None,
            });
        }
        if let Some(p) = t.filter.follow_paths.iter().find(|p| !covered(p)) {
            return Some(miss(p, &text));
        }
        if let Some(f) = t.files_sent.iter().find(|f| !used.contains(f.as_str())) {
            return Some(miss(f, &text));
        }
    }
    None
}

/// The frontend reads `.dockerignore` on its own, before the build proper.
fn is_ignore_file_load(filter: &crate::context::TransferFilter) -> bool {
    filter.follow_paths == [".dockerignore"]
        && filter.exclude_patterns.is_empty()
        && filter.include_patterns.is_empty()
}

fn miss(path: &str, dockerfile: &str) -> ReadMiss {
    let instruction = dockerfile
        .lines()
        .enumerate()
        .find(|(_, l)| l.contains(path))
        .map(|(i, l)| format!("line {}: {}", i + 1, l.trim()));
    ReadMiss {
        path: path.to_string(),
        instruction,
    }
}
