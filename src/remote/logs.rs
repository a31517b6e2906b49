//! Follows a build's CloudWatch Logs stream: new lines since the last call, and the last N kept for errors.

use std::collections::VecDeque;

use aws_sdk_codebuild::types::Build;

use super::clients::RemoteClients;
use super::error::RemoteError;

/// Pages fetched per poll at most, so one poll never stalls on a huge backlog.
const MAX_PAGES_PER_POLL: usize = 20;

/// Reads new log events of one build's stream and keeps the tail.
#[derive(Debug)]
pub(crate) struct LogFollower {
    location: Option<(String, String)>,
    token: Option<String>,
    tail: VecDeque<String>,
    tail_len: usize,
    /// The last digest marker line seen (`IMAGEBUILD_DIGEST=...`), the fallback when exports are missing.
    pub(crate) marker: Option<String>,
    /// Dockerfile steps read off the `--progress=plain` lines so far.
    pub(crate) steps: crate::steps::StepTally,
}

impl LogFollower {
    pub(crate) fn new(tail_len: usize) -> LogFollower {
        LogFollower {
            location: None,
            token: None,
            tail: VecDeque::with_capacity(tail_len),
            tail_len,
            marker: None,
            steps: crate::steps::StepTally::default(),
        }
    }

    /// New lines since the last call (empty until CodeBuild reports the stream and it exists).
    pub(crate) async fn poll(
        &mut self,
        clients: &RemoteClients,
        build: &Build,
        marker_prefix: &str,
    ) -> Result<Vec<String>, RemoteError> {
        if self.location.is_none() {
            let logs = build.logs();
            let group = logs.and_then(|l| l.group_name());
            let stream = logs.and_then(|l| l.stream_name());
            if let (Some(g), Some(s)) = (group, stream) {
                self.location = Some((g.to_string(), s.to_string()));
            }
        }
        let Some((group, stream)) = self.location.clone() else {
            return Ok(Vec::new());
        };
        let mut lines = Vec::new();
        for _ in 0..MAX_PAGES_PER_POLL {
            let resp = clients
                .logs
                .get_log_events()
                .log_group_name(&group)
                .log_stream_name(&stream)
                .start_from_head(true)
                .set_next_token(self.token.clone())
                .send()
                .await;
            let out = match resp {
                Ok(out) => out,
                Err(e) => {
                    // The stream appears a little after CodeBuild names it.
                    if e.as_service_error()
                        .is_some_and(|s| s.is_resource_not_found_exception())
                    {
                        break;
                    }
                    return Err(RemoteError::from_sdk(
                        "logs:GetLogEvents",
                        &format!("{group}/{stream}"),
                        e,
                    ));
                }
            };
            let next = out.next_forward_token().map(str::to_string);
            for event in out.events() {
                let text = event
                    .message()
                    .unwrap_or_default()
                    .trim_end_matches(['\r', '\n']);
                for line in text.split('\n') {
                    lines.push(line.to_string());
                }
            }
            // CloudWatch repeats the token when there is nothing newer.
            let done = out.events().is_empty() || next.is_none() || next == self.token;
            self.token = next.or(self.token.take());
            if done {
                break;
            }
        }
        for line in &lines {
            if let Some(rest) = line.strip_prefix(marker_prefix) {
                self.marker = Some(rest.trim().to_string());
            }
            self.steps.feed_plain_line(line);
            if self.tail.len() == self.tail_len {
                self.tail.pop_front();
            }
            self.tail.push_back(line.clone());
        }
        Ok(lines)
    }

    /// The last lines seen, oldest first.
    pub(crate) fn tail(&self) -> Vec<String> {
        self.tail.iter().cloned().collect()
    }
}
