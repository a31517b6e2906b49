//! Turns build progress events into the transient status line shown on the resource's row.

use super::redact::Redactor;
use super::Reporter;
use crate::local::ProgressEvent;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::mpsc::UnboundedReceiver;

/// Status lines closer together than this are dropped (except step changes), so a chatty
/// build cannot flood the engine.
const MIN_INTERVAL: Duration = Duration::from_millis(250);

/// Forwards events from `rx` to `reporter` until the sender is dropped.
pub async fn forward(
    mut rx: UnboundedReceiver<ProgressEvent>,
    reporter: Arc<dyn Reporter>,
    redactor: Redactor,
) {
    let mut line = StatusLine::default();
    let mut last_sent = Instant::now() - MIN_INTERVAL;
    while let Some(event) = rx.recv().await {
        let important = line.apply(&event);
        if important || last_sent.elapsed() >= MIN_INTERVAL {
            reporter.status(&redactor.apply(&line.render()));
            last_sent = Instant::now();
        }
    }
}

/// The state behind the status line.
#[derive(Default)]
struct StatusLine {
    phase: String,
    step: Option<(u32, u32, String)>,
    cached: u32,
    detail: String,
}

impl StatusLine {
    /// Applies one event; true when it must be shown at once.
    fn apply(&mut self, event: &ProgressEvent) -> bool {
        match event {
            ProgressEvent::Queued { ahead } => {
                self.phase = format!("queued for a build slot ({ahead} ahead)");
                true
            }
            ProgressEvent::Started { .. } => {
                self.phase = "building".into();
                true
            }
            ProgressEvent::Step {
                n,
                total,
                name,
                cached,
            } => {
                if *cached {
                    self.cached += 1;
                }
                self.step = Some((*n, *total, name.clone()));
                self.detail.clear();
                true
            }
            ProgressEvent::Log(text) => {
                self.detail = text.lines().last().unwrap_or_default().trim().to_string();
                false
            }
            ProgressEvent::Built { .. } => {
                self.phase = "built".into();
                self.step = None;
                self.detail.clear();
                true
            }
            ProgressEvent::PushQueued { ahead } => {
                self.phase = format!("queued for a push slot ({ahead} ahead)");
                true
            }
            ProgressEvent::PushStarted { .. } => {
                self.phase = "pushing".into();
                true
            }
            ProgressEvent::Sent { bytes } => {
                self.phase = format!("sending context ({})", human_bytes(*bytes));
                false
            }
            ProgressEvent::Pushing { bytes } => {
                self.phase = format!("pushing ({})", human_bytes(*bytes));
                self.step = None;
                self.detail.clear();
                false
            }
            ProgressEvent::Adopted => {
                self.phase =
                    "registry already has this context's image: adopted, nothing built".into();
                true
            }
            ProgressEvent::Done { .. } => {
                self.phase = "done".into();
                self.step = None;
                self.detail.clear();
                true
            }
        }
    }

    fn render(&self) -> String {
        let mut out = self.phase.clone();
        if let Some((n, total, name)) = &self.step {
            out = format!("step {n}/{total}: {}", truncate(name, 80));
            if self.cached > 0 {
                out.push_str(&format!(" ({} cached)", self.cached));
            }
        }
        if !self.detail.is_empty() {
            out.push_str(" | ");
            out.push_str(&truncate(&self.detail, 100));
        }
        out
    }
}

fn truncate(s: &str, max: usize) -> String {
    if s.chars().count() <= max {
        s.to_string()
    } else {
        let cut: String = s.chars().take(max).collect();
        format!("{cut}...")
    }
}

/// Bytes as a short human string (KB/MB/GB, powers of 1000).
pub fn human_bytes(bytes: u64) -> String {
    let b = bytes as f64;
    match bytes {
        0..=999 => format!("{bytes} B"),
        1_000..=999_999 => format!("{:.1} kB", b / 1e3),
        1_000_000..=999_999_999 => format!("{:.1} MB", b / 1e6),
        _ => format!("{:.2} GB", b / 1e9),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_steps_with_cached_count_and_detail() {
        let mut s = StatusLine::default();
        s.apply(&ProgressEvent::Started {
            at: std::time::Instant::now(),
        });
        s.apply(&ProgressEvent::Step {
            n: 1,
            total: 3,
            name: "FROM base".into(),
            cached: true,
        });
        s.apply(&ProgressEvent::Step {
            n: 2,
            total: 3,
            name: "RUN pip install".into(),
            cached: false,
        });
        s.apply(&ProgressEvent::Log("Collecting x\nInstalling y\n".into()));
        assert_eq!(
            s.render(),
            "step 2/3: RUN pip install (1 cached) | Installing y"
        );
    }

    #[test]
    fn human_sizes() {
        assert_eq!(human_bytes(12), "12 B");
        assert_eq!(human_bytes(12_345_678), "12.3 MB");
    }
}
