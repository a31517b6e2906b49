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
pub fn record_read_miss(
    cache_dir: Option<&Path>,
    root: &Path,
    dockerfile: &[u8],
    miss: &ReadMiss,
) -> std::io::Result<()> {
    let dir = cache_dir.map_or_else(default_cache_dir, Path::to_path_buf);
    let path = marker(&dir, root, dockerfile);
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent)?;
    }
    let text = format!(
        "{}\n{}\n",
        miss.path,
        miss.instruction.clone().unwrap_or_default()
    );
    std::fs::write(path, text)
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
