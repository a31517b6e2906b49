//! Build plans (Dockerfile analysis + context hash) computed once per process per input set.
//!
//! Check, Diff, Create and Update of one `pulumi up` all ask for the same plan; the first
//! caller computes it and concurrent callers wait for that result.

use crate::plan::{make_plan, BaseLookup, Plan, PlanRequest};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use tokio::sync::OnceCell;

/// Why a plan failed: the property a Check failure names, and the message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlanFailure {
    /// The input property at fault (`context`, `dockerfile`, `contexts.NAME`, ...).
    pub property: String,
    /// What is wrong and how to fix it.
    pub reason: String,
}

impl std::fmt::Display for PlanFailure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.reason)
    }
}

type Slot = Arc<OnceCell<Result<Plan, PlanFailure>>>;

/// A process-wide memo of build plans keyed by the full request.
#[derive(Default)]
pub struct SnapshotCache {
    slots: Mutex<HashMap<String, Slot>>,
}

impl SnapshotCache {
    /// The plan for `request`, computed at most once per process (`lookup` finds its images).
    pub async fn get(
        &self,
        request: &PlanRequest,
        lookup: &BaseLookup,
    ) -> Result<Plan, PlanFailure> {
        let slot = {
            let mut slots = self.slots.lock().unwrap_or_else(|e| e.into_inner());
            slots.entry(key(request)).or_default().clone()
        };
        slot.get_or_init(|| async {
            make_plan(request, lookup).await.map_err(|e| PlanFailure {
                property: e.property(),
                reason: e.to_string(),
            })
        })
        .await
        .clone()
    }
}

fn key(r: &PlanRequest) -> String {
    let dir = std::fs::canonicalize(&r.context).unwrap_or_else(|_| r.context.clone());
    format!("{}\0{}", dir.display(), r.memo_key())
}
