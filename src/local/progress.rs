//! Turns the daemon's build stream (BuildKit vertex status or classic "Step n/m" lines) into
//! ProgressEvents, keeps the last log lines per step for error messages, and redacts secrets.

use std::collections::{HashMap, VecDeque};

use bollard::moby::buildkit::v1::StatusResponse;

use super::ProgressEvent;
use crate::redact::Redactor;
use crate::steps::{StepCounts, StepTally};

/// Lines of output kept per step for error messages.
pub(crate) const TAIL_LINES: usize = 30;

#[derive(Default)]
struct Vertex {
    name: String,
    announced: bool,
    error: Option<String>,
    tail: VecDeque<String>,
    partial: String,
}

/// Accumulated state of one build's progress.
pub(crate) struct Tracker {
    redactor: Redactor,
    vertices: HashMap<String, Vertex>,
    order: Vec<String>,
    tail: VecDeque<String>,
    classic_step: Option<String>,
    classic_total: u32,
    steps: StepTally,
}

pub(crate) use crate::steps::parse_step_name as parse_step;

fn push_tail(q: &mut VecDeque<String>, line: String) {
    if q.len() == TAIL_LINES {
        q.pop_front();
    }
    q.push_back(line);
}

impl Tracker {
    /// A tracker that redacts with `redactor`.
    pub fn new(redactor: Redactor) -> Tracker {
        Tracker {
            redactor,
            vertices: HashMap::new(),
            order: Vec::new(),
            tail: VecDeque::new(),
            classic_step: None,
            classic_total: 0,
            steps: StepTally::default(),
        }
    }

    /// The redactor in use.
    pub fn redactor(&self) -> &Redactor {
        &self.redactor
    }

    /// Events for one BuildKit status message.
    pub fn on_buildkit(&mut self, s: StatusResponse) -> Vec<ProgressEvent> {
        let mut out = Vec::new();
        for v in s.vertexes {
            let entry = self.vertices.entry(v.digest.clone()).or_insert_with(|| {
                self.order.push(v.digest.clone());
                Vertex::default()
            });
            if !v.name.is_empty() {
                entry.name = v.name.clone();
            }
            if !v.error.is_empty() {
                entry.error = Some(self.redactor.apply(&v.error));
            }
            if v.started.is_some() || v.cached {
                self.steps.record(&v.digest, &entry.name, v.cached);
            }
            if !entry.announced && (v.started.is_some() || v.cached) {
                entry.announced = true;
                if let Some((n, total, name)) = parse_step(&entry.name) {
                    out.push(ProgressEvent::Step {
                        n,
                        total,
                        name: self.redactor.apply(&name),
                        cached: v.cached,
                    });
                }
            }
        }
        for l in s.logs {
            let entry = self.vertices.entry(l.vertex.clone()).or_insert_with(|| {
                self.order.push(l.vertex.clone());
                Vertex::default()
            });
            entry.partial.push_str(&String::from_utf8_lossy(&l.msg));
            while let Some(pos) = entry.partial.find('\n') {
                let line: String = entry.partial.drain(..=pos).collect();
                let line = self.redactor.apply(line.trim_end_matches(['\n', '\r']));
                push_tail(&mut entry.tail, line.clone());
                push_tail(&mut self.tail, line.clone());
                out.push(ProgressEvent::Log(line));
            }
        }
        out
    }

    /// Events for one classic-builder `stream` text.
    pub fn on_classic(&mut self, text: &str) -> Vec<ProgressEvent> {
        let mut out = Vec::new();
        for raw in text.lines() {
            let line = self.redactor.apply(raw.trim_end());
            if line.is_empty() {
                continue;
            }
            if let Some(rest) = line.strip_prefix("Step ") {
                if let Some((frac, name)) = rest.split_once(" : ") {
                    if let Some((n, m)) = frac.split_once('/') {
                        if let (Ok(n), Ok(m)) = (n.parse(), m.parse()) {
                            self.classic_total = m;
                            let step = format!("[{n}/{m}] {name}");
                            self.steps.record(&step, &step, false);
                            self.classic_step = Some(step);
                            out.push(ProgressEvent::Step {
                                n,
                                total: m,
                                name: name.to_string(),
                                cached: false,
                            });
                            continue;
                        }
                    }
                }
            }
            if line.trim() == "---> Using cache" {
                if let Some(step) = &self.classic_step {
                    self.steps.mark_cached(step);
                }
            }
            push_tail(&mut self.tail, line.clone());
            out.push(ProgressEvent::Log(line));
        }
        out
    }

    /// Flushes partial log lines (output without a final newline).
    pub fn flush(&mut self) -> Vec<ProgressEvent> {
        let mut out = Vec::new();
        for id in &self.order {
            if let Some(v) = self.vertices.get_mut(id) {
                if !v.partial.is_empty() {
                    let line = self.redactor.apply(&std::mem::take(&mut v.partial));
                    push_tail(&mut v.tail, line.clone());
                    push_tail(&mut self.tail, line.clone());
                    out.push(ProgressEvent::Log(line));
                }
            }
        }
        out
    }

    /// The failing step (name and its last lines), if a vertex reported an error.
    pub fn failed_step(&self) -> Option<(String, Vec<String>)> {
        let failing = self
            .order
            .iter()
            .filter_map(|id| self.vertices.get(id))
            .filter(|v| v.error.is_some())
            .find(|v| parse_step(&v.name).is_some())
            .or_else(|| {
                self.order
                    .iter()
                    .filter_map(|id| self.vertices.get(id))
                    .find(|v| v.error.is_some())
            });
        if let Some(v) = failing {
            return Some((
                self.redactor.apply(&v.name),
                v.tail.iter().cloned().collect(),
            ));
        }
        self.classic_step
            .as_ref()
            .map(|s| (s.clone(), self.tail.iter().cloned().collect()))
    }

    /// Dockerfile steps the build solved so far, and how many the cache served.
    pub fn steps(&self) -> StepCounts {
        self.steps.counts()
    }

    /// The build's last log lines overall.
    pub fn tail(&self) -> Vec<String> {
        self.tail.iter().cloned().collect()
    }
}

/// `... exit code: 3` or `returned a non-zero code: 3` -> 3.
pub(crate) fn exit_code(message: &str) -> Option<i32> {
    for marker in ["exit code: ", "non-zero code: "] {
        if let Some(i) = message.rfind(marker) {
            let digits: String = message[i + marker.len()..]
                .chars()
                .take_while(|c| c.is_ascii_digit())
                .collect();
            if let Ok(c) = digits.parse() {
                return Some(c);
            }
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exit_codes() {
        assert_eq!(
            exit_code("executor failed running [/bin/sh -c exit 3]: exit code: 3"),
            Some(3)
        );
        assert_eq!(
            exit_code("The command '/bin/sh -c false' returned a non-zero code: 1"),
            Some(1)
        );
        assert_eq!(exit_code("something else"), None);
    }

    fn vertex(digest: &str, name: &str, cached: bool) -> bollard::moby::buildkit::v1::Vertex {
        bollard::moby::buildkit::v1::Vertex {
            digest: digest.into(),
            name: name.into(),
            cached,
            started: Some(Default::default()),
            ..Default::default()
        }
    }

    #[test]
    fn buildkit_steps_count_each_vertex_once() {
        let mut t = Tracker::new(Redactor::default());
        t.on_buildkit(StatusResponse {
            vertexes: vec![
                vertex("a", "[internal] load build context", false),
                vertex("b", "[1/3] FROM base", true),
                vertex("c", "[2/3] COPY . /app", false),
            ],
            ..Default::default()
        });
        // BuildKit repeats vertices as they progress; a later status may mark one cached.
        t.on_buildkit(StatusResponse {
            vertexes: vec![
                vertex("c", "[2/3] COPY . /app", true),
                vertex("d", "[3/3] RUN make", false),
            ],
            ..Default::default()
        });
        assert_eq!(
            t.steps(),
            StepCounts {
                total: 3,
                cached: 2
            }
        );
    }

    #[test]
    fn classic_steps() {
        let mut t = Tracker::new(Redactor::default());
        let ev = t.on_classic("Step 2/3 : RUN echo hi\n");
        assert_eq!(
            ev,
            vec![ProgressEvent::Step {
                n: 2,
                total: 3,
                name: "RUN echo hi".into(),
                cached: false
            }]
        );
        assert_eq!(t.failed_step().unwrap().0, "[2/3] RUN echo hi");
        t.on_classic(" ---> Using cache\n ---> 1a2b3c\nStep 3/3 : RUN echo bye\n");
        assert_eq!(
            t.steps(),
            StepCounts {
                total: 2,
                cached: 1
            }
        );
    }
}
