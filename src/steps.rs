//! Dockerfile step counting: how many steps a build ran and how many the cache served, read from
//! BuildKit's vertex names (`[stage-1 2/5] RUN x`) or from its `--progress=plain` log lines
//! (`#7 [2/5] RUN x`, `#7 CACHED`). Local builds and CodeBuild logs share this one grammar.

use std::collections::BTreeMap;

/// Steps of one build: every Dockerfile step BuildKit solved, and those the cache served.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct StepCounts {
    /// Dockerfile steps the build solved (steps of unused stages are not counted).
    pub total: u32,
    /// Of those, the steps served from the build cache.
    pub cached: u32,
}

/// `[stage-1 2/5] RUN x` -> (2, 5, "RUN x"); None for `[internal] ...` and other housekeeping.
pub fn parse_step_name(name: &str) -> Option<(u32, u32, String)> {
    let rest = name.strip_prefix('[')?;
    let (inside, text) = rest.split_once(']')?;
    let frac = inside.rsplit(' ').next()?;
    let (n, m) = frac.split_once('/')?;
    Some((n.parse().ok()?, m.parse().ok()?, text.trim().to_string()))
}

/// Counts steps from vertices. A step is known by its name (`[stage-0 2/5] RUN x`), not its
/// vertex id: Engine 29's BuildKit merges equal steps of concurrent builds and reports the
/// other builds' vertices of that step to each of them.
#[derive(Debug, Default, Clone)]
pub struct StepTally {
    /// Step name -> served from cache.
    steps: BTreeMap<String, bool>,
    /// Vertex id -> its step's name, for news that arrives by id (`#7 CACHED`).
    names: BTreeMap<String, String>,
}

impl StepTally {
    /// Records that vertex `id`, named `name`, was seen, cached or not; housekeeping vertices
    /// (no `[n/m]`) are ignored.
    pub fn record(&mut self, id: &str, name: &str, cached: bool) {
        if parse_step_name(name).is_none() {
            return;
        }
        self.names.insert(id.to_string(), name.to_string());
        *self.steps.entry(name.to_string()).or_default() |= cached;
    }

    /// Marks the step of vertex `id` as served from the cache.
    pub fn mark_cached(&mut self, id: &str) {
        if let Some(cached) = self.names.get(id).and_then(|n| self.steps.get_mut(n)) {
            *cached = true;
        }
    }

    /// The counts so far.
    pub fn counts(&self) -> StepCounts {
        StepCounts {
            total: self.steps.len() as u32,
            cached: self.steps.values().filter(|c| **c).count() as u32,
        }
    }

    /// Feeds one `--progress=plain` line: `#7 [2/5] RUN x` names step 7, `#7 CACHED` marks it.
    pub fn feed_plain_line(&mut self, line: &str) {
        let Some(rest) = line.trim_start().strip_prefix('#') else {
            return;
        };
        let Some((id, text)) = rest.split_once(' ') else {
            return;
        };
        if id.is_empty() || !id.bytes().all(|b| b.is_ascii_digit()) {
            return;
        }
        let text = text.trim();
        if text == "CACHED" {
            self.mark_cached(id);
        } else if text.starts_with('[') && !self.names.contains_key(id) {
            self.record(id, text, false);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_step_names() {
        assert_eq!(parse_step_name("[2/5] RUN x"), Some((2, 5, "RUN x".into())));
        assert_eq!(
            parse_step_name("[stage-1 3/4] COPY . /x"),
            Some((3, 4, "COPY . /x".into()))
        );
        assert_eq!(parse_step_name("[internal] load build definition"), None);
    }

    #[test]
    fn vertices_count_once_and_cached_may_come_later() {
        let mut t = StepTally::default();
        t.record("sha256:a", "[1/3] FROM base", false);
        t.record("sha256:a", "[1/3] FROM base", true);
        t.record("sha256:b", "[2/3] RUN x", false);
        t.record("sha256:i", "[internal] load .dockerignore", true);
        assert_eq!(
            t.counts(),
            StepCounts {
                total: 2,
                cached: 1
            }
        );
    }

    #[test]
    fn plain_progress_lines() {
        let mut t = StepTally::default();
        for line in [
            "#1 [internal] load build definition from Dockerfile",
            "#1 DONE 0.0s",
            "#5 [1/3] FROM docker.io/library/python:3.11",
            "#6 [2/3] COPY requirements.txt /app/",
            "#6 CACHED",
            "#7 [3/3] RUN pip install -r requirements.txt",
            "#7 0.512 Collecting x",
            "#7 [3/3] RUN pip install -r requirements.txt",
            "#7 DONE 3.1s",
            "#8 exporting to image",
            "not a progress line",
        ] {
            t.feed_plain_line(line);
        }
        assert_eq!(
            t.counts(),
            StepCounts {
                total: 3,
                cached: 1
            }
        );
    }
}
