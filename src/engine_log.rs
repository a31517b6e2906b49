//! The engine's Log service: messages and transient status lines shown in `pulumi up`.

use crate::proto::engine_client::EngineClient;
use crate::proto::{LogRequest, LogSeverity};
use crate::resources::Reporter;
use std::sync::Arc;
use tokio::sync::mpsc;

/// Sends log lines to the engine in order, from a background task.
#[derive(Clone)]
pub struct EngineLog {
    tx: Option<mpsc::UnboundedSender<Queued>>,
}

/// What the delivery task works through, in order.
enum Queued {
    /// A line to deliver.
    Line(LogRequest),
    /// Answered once every line queued before it was delivered (or failed).
    Flush(tokio::sync::oneshot::Sender<()>),
}

impl EngineLog {
    /// Connects lazily to the engine at `address` (host:port); `None` logs to stderr only.
    pub fn start(address: Option<String>) -> Self {
        let Some(address) = address else {
            return Self { tx: None };
        };
        let (tx, rx) = mpsc::unbounded_channel();
        tokio::spawn(deliver(format!("http://{address}"), rx));
        Self { tx: Some(tx) }
    }

    /// A reporter whose lines appear on the row of resource `urn`.
    pub fn reporter(&self, urn: &str) -> Arc<dyn Reporter> {
        Arc::new(UrnReporter {
            log: self.clone(),
            urn: urn.to_string(),
        })
    }

    /// A message kept in the output of resource `urn` (e.g. the stack's).
    pub fn info(&self, urn: &str, message: &str) {
        self.send(LogSeverity::Info, urn, message, false);
    }

    /// Resolves once every line sent so far reached the engine, or after `limit`.
    pub async fn flush(&self, limit: std::time::Duration) {
        let Some(tx) = &self.tx else { return };
        let (done, delivered) = tokio::sync::oneshot::channel();
        if tx.send(Queued::Flush(done)).is_ok() {
            let _ = tokio::time::timeout(limit, delivered).await;
        }
    }

    fn send(&self, severity: LogSeverity, urn: &str, message: &str, ephemeral: bool) {
        if severity != LogSeverity::Debug {
            eprintln!("[{urn}] {message}");
        }
        if let Some(tx) = &self.tx {
            let _ = tx.send(Queued::Line(LogRequest {
                severity: severity as i32,
                message: message.to_string(),
                urn: urn.to_string(),
                stream_id: 0,
                ephemeral,
            }));
        }
    }
}

async fn deliver(endpoint: String, mut rx: mpsc::UnboundedReceiver<Queued>) {
    let channel = match tonic::transport::Endpoint::from_shared(endpoint.clone()) {
        Ok(e) => e.connect_lazy(),
        Err(e) => {
            eprintln!(
                "imagebuild: engine address {endpoint} is invalid: {e}; logging to stderr only"
            );
            return;
        }
    };
    let mut client = EngineClient::new(channel);
    while let Some(queued) = rx.recv().await {
        let request = match queued {
            Queued::Line(request) => request,
            Queued::Flush(done) => {
                let _ = done.send(());
                continue;
            }
        };
        if let Err(e) = client.log(request).await {
            eprintln!("imagebuild: engine log failed: {e}");
        }
    }
}

struct UrnReporter {
    log: EngineLog,
    urn: String,
}

impl Reporter for UrnReporter {
    fn status(&self, text: &str) {
        self.log.send(LogSeverity::Info, &self.urn, text, true);
    }

    fn info(&self, text: &str) {
        self.log.send(LogSeverity::Info, &self.urn, text, false);
    }

    fn warn(&self, text: &str) {
        self.log.send(LogSeverity::Warning, &self.urn, text, false);
    }
}
