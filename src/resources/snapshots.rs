//! Context hashes computed once per process per context and input set.
//!
//! Check, Diff, Create and Update of one `pulumi up` all ask for the same snapshot; the first
//! caller computes it (on the blocking pool) and concurrent callers wait for that result.

use crate::context::{snapshot_async, ContextRequest, ContextSnapshot, DockerfileSource};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use tokio::sync::OnceCell;

type Slot = Arc<OnceCell<Result<ContextSnapshot, String>>>;

/// A process-wide memo of context snapshots keyed by the full request.
#[derive(Default)]
pub struct SnapshotCache {
    slots: Mutex<HashMap<String, Slot>>,
}

impl SnapshotCache {
    /// The snapshot for `request`, computed at most once per process.
    pub async fn get(&self, request: &ContextRequest) -> Result<ContextSnapshot, String> {
        let slot = {
            let mut slots = self.slots.lock().unwrap_or_else(|e| e.into_inner());
            slots.entry(key(request)).or_default().clone()
        };
        slot.get_or_init(|| async {
            snapshot_async(request.clone())
                .await
                .map_err(|e| e.to_string())
        })
        .await
        .clone()
    }
}

fn key(r: &ContextRequest) -> String {
    let dockerfile = match &r.dockerfile {
        DockerfileSource::Path(p) => format!("path:{}", p.display()),
        DockerfileSource::Inline(text) => format!("inline:{text}"),
    };
    let dir = std::fs::canonicalize(&r.dir).unwrap_or_else(|_| r.dir.clone());
    format!(
        "{}\0{dockerfile}\0{:?}\0{:?}",
        dir.display(),
        r.extra_inputs,
        r.cache_dir
    )
}
