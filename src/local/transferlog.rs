//! What one build's file-sync transfers did: bytes sent, every request with
//! what was sent for it, and the first reason a transfer had to fail.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;

use tokio::sync::mpsc::UnboundedSender;

use super::fsstat::Changed;
use super::{LocalError, ProgressEvent, TransferRequest};
use crate::context::TransferFilter;

/// Progress events are sent at least this often (in bytes) within large files.
const PROGRESS_STEP: u64 = 1 << 20;
/// After a whole file, a progress event once this much more was sent (many small files must not
/// mean as many events).
const FILE_STEP: u64 = 64 << 10;

/// Why the session could not serve what BuildKit asked for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum TransferFailure {
    /// A context file is not what the snapshot hashed.
    Changed {
        /// Directory name of the request.
        dir: String,
        /// The file (absolute, or `dir/path` for in-memory directories).
        path: String,
        /// What differs.
        detail: String,
    },
    /// The request itself cannot be served (bad pattern, unknown file id, ...).
    Request {
        /// Directory name of the request.
        dir: String,
        /// What went wrong.
        detail: String,
    },
}

impl TransferFailure {
    /// A changed-file failure for `changed` in directory `dir` rooted at `root`.
    pub(crate) fn changed(dir: &str, root: Option<&std::path::Path>, changed: Changed) -> Self {
        let path = match root {
            Some(r) => r.join(&changed.path).display().to_string(),
            None => format!("{dir}/{}", changed.path),
        };
        TransferFailure::Changed {
            dir: dir.to_string(),
            path,
            detail: changed.detail,
        }
    }

    /// The text sent to BuildKit in the ERR packet.
    pub(crate) fn message(&self) -> String {
        self.clone().into_error().to_string()
    }

    /// The build's error.
    pub(crate) fn into_error(self) -> LocalError {
        match self {
            TransferFailure::Changed { path, detail, .. } => {
                LocalError::ContextChanged { path, detail }
            }
            TransferFailure::Request { dir, detail } => LocalError::Transfer { dir, detail },
        }
    }
}

/// Shared by all transfers of one build.
pub(crate) struct TransferLog {
    bytes: AtomicU64,
    reported: AtomicU64,
    requests: Mutex<Vec<TransferRequest>>,
    failure: Mutex<Option<TransferFailure>>,
    progress: UnboundedSender<ProgressEvent>,
}

impl TransferLog {
    /// An empty log reporting `Sent` progress on `progress`.
    pub(crate) fn new(progress: UnboundedSender<ProgressEvent>) -> TransferLog {
        TransferLog {
            bytes: AtomicU64::new(0),
            reported: AtomicU64::new(0),
            requests: Mutex::new(Vec::new()),
            failure: Mutex::new(None),
            progress,
        }
    }

    /// Records a new request; returns its index for later updates.
    pub(crate) fn begin(&self, dir: &str, filter: &TransferFilter) -> usize {
        let mut r = self.requests.lock().unwrap_or_else(|p| p.into_inner());
        r.push(TransferRequest {
            dir: dir.to_string(),
            filter: filter.clone(),
            entries_listed: 0,
            files_sent: Vec::new(),
            bytes_sent: 0,
        });
        r.len() - 1
    }

    /// How many paths request `index` described.
    pub(crate) fn listed(&self, index: usize, n: usize) {
        self.update(index, |r| r.entries_listed = n);
    }

    /// Counts `n` bytes of file data handed to the stream for request `index`.
    pub(crate) fn add_bytes(&self, index: usize, n: u64) {
        let total = self.bytes.fetch_add(n, Ordering::SeqCst) + n;
        self.update(index, |r| r.bytes_sent += n);
        let last = self.reported.load(Ordering::SeqCst);
        if total >= last + PROGRESS_STEP
            && self
                .reported
                .compare_exchange(last, total, Ordering::SeqCst, Ordering::SeqCst)
                .is_ok()
        {
            let _ = self.progress.send(ProgressEvent::Sent { bytes: total });
        }
    }

    /// Notes that a file of request `index` was sent whole.
    pub(crate) fn file_done(&self, index: usize, path: &str) {
        self.update(index, |r| r.files_sent.push(path.to_string()));
        let total = self.bytes.load(Ordering::SeqCst);
        if total >= self.reported.load(Ordering::SeqCst) + FILE_STEP {
            self.report(total);
        }
    }

    /// Reports the exact total once a transfer ended, if it moved since the last report.
    pub(crate) fn transfer_ended(&self) {
        self.report(self.bytes.load(Ordering::SeqCst));
    }

    fn report(&self, total: u64) {
        if self.reported.swap(total, Ordering::SeqCst) != total {
            let _ = self.progress.send(ProgressEvent::Sent { bytes: total });
        }
    }

    /// Keeps the first failure (later ones are usually consequences).
    pub(crate) fn fail(&self, failure: TransferFailure) {
        let mut f = self.failure.lock().unwrap_or_else(|p| p.into_inner());
        if f.is_none() {
            *f = Some(failure);
        }
    }

    /// Total file bytes sent.
    pub(crate) fn bytes(&self) -> u64 {
        self.bytes.load(Ordering::SeqCst)
    }

    /// All requests so far.
    pub(crate) fn requests(&self) -> Vec<TransferRequest> {
        self.requests
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// The first failure, if any.
    pub(crate) fn failure(&self) -> Option<TransferFailure> {
        self.failure
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    fn update(&self, index: usize, f: impl FnOnce(&mut TransferRequest)) {
        let mut r = self.requests.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(req) = r.get_mut(index) {
            f(req);
        }
    }
}
