//! From the Dockerfile analysis to what the context engine hashes.

use crate::context::{ContextReads, ReadPath};
use crate::dockerfile::Reads;

/// The context engine's view of one context's reads.
pub(super) fn context_reads(reads: &Reads) -> ContextReads {
    match reads {
        Reads::Whole(reasons) => ContextReads::Whole(
            reasons
                .iter()
                .map(|r| {
                    if r.line == 0 {
                        r.why.clone()
                    } else {
                        format!("line {}: {}: {}", r.line, r.instruction, r.why)
                    }
                })
                .collect(),
        ),
        Reads::Paths(paths) => ContextReads::Paths(
            paths
                .iter()
                .map(|p| ReadPath {
                    path: p.path.clone(),
                    excludes: p.excludes.clone(),
                    must_exist: p.must_exist,
                    origin: format!("line {}: {}", p.line, p.instruction),
                })
                .collect(),
        ),
    }
}
