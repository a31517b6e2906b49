//! What each image's row ends with (built in N s, K of M steps cached, X MB pushed | adopted |
//! unchanged), and the totals of the whole run that the stack's one message gives at the end.

use super::progress::human_bytes;
use crate::steps::StepCounts;
use std::collections::BTreeMap;
use std::sync::Mutex;

/// How one image came out of this run.
#[derive(Debug, Clone, PartialEq)]
pub enum Outcome {
    /// Built here or on CodeBuild.
    Built {
        /// Wall seconds of the build.
        seconds: f64,
        /// Steps solved and served from cache (None when the builder did not say).
        steps: Option<StepCounts>,
        /// Bytes the push uploaded (None when not pushed by us or not counted).
        pushed_bytes: Option<u64>,
        /// Where it was built, e.g. `on CodeBuild`; empty for this machine.
        site: &'static str,
    },
    /// A remote build was started and not waited for.
    Started {
        /// The CodeBuild build id.
        build_id: String,
    },
    /// The registry had the hash tag already: nothing built or pushed.
    Adopted,
    /// Diff found nothing to do.
    Unchanged,
    /// Preview: the image would be built (or adopted, if the registry has it by then).
    WouldBuild,
    /// The build failed.
    Failed,
}

impl Outcome {
    /// The one line that ends the image's row; None where the engine already says it all.
    pub fn row_line(&self) -> Option<String> {
        match self {
            Outcome::Built {
                seconds,
                steps,
                pushed_bytes,
                site,
            } => {
                let mut line = match site.is_empty() {
                    true => format!("built in {seconds:.1} s"),
                    false => format!("built {site} in {seconds:.1} s"),
                };
                if let Some(s) = steps {
                    line.push_str(&format!(", {} of {} steps cached", s.cached, s.total));
                }
                match pushed_bytes {
                    Some(b) => line.push_str(&format!(", {} pushed", human_bytes(*b))),
                    None if site.is_empty() => line.push_str(", not pushed"),
                    None => {}
                }
                Some(line)
            }
            Outcome::Started { build_id } => Some(format!(
                "CodeBuild build {build_id} started; not waiting for it (wait: false)"
            )),
            Outcome::Adopted => Some(
                "adopted from the registry: it already had this context hash, nothing built or \
                 pushed"
                    .into(),
            ),
            Outcome::Unchanged => {
                Some("unchanged: the context hash matches the image in state".into())
            }
            Outcome::WouldBuild | Outcome::Failed => None,
        }
    }
}

/// The outcomes of this process's run, per resource URN (the last one wins).
#[derive(Default)]
pub struct RunTally {
    outcomes: Mutex<BTreeMap<String, Outcome>>,
}

impl RunTally {
    /// Records how resource `urn` came out.
    pub fn record(&self, urn: &str, outcome: Outcome) {
        if let Ok(mut map) = self.outcomes.lock() {
            map.insert(urn.to_string(), outcome);
        }
    }

    /// The stack's one message, and the stack URN it belongs to; None when no image was seen.
    pub fn stack_message(&self) -> Option<(String, String)> {
        let map = self.outcomes.lock().ok()?;
        let urn = stack_urn(map.keys().next()?)?;
        Some((urn, summarize(map.values())))
    }
}

/// `urn:pulumi:STACK::PROJECT::TYPE::NAME` -> the stack resource's URN.
fn stack_urn(resource_urn: &str) -> Option<String> {
    let rest = resource_urn.strip_prefix("urn:pulumi:")?;
    let mut parts = rest.split("::");
    let stack = parts.next()?;
    let project = parts.next()?;
    Some(format!(
        "urn:pulumi:{stack}::{project}::pulumi:pulumi:Stack::{project}-{stack}"
    ))
}

fn summarize<'a>(outcomes: impl Iterator<Item = &'a Outcome>) -> String {
    let (mut built, mut started, mut adopted, mut unchanged, mut would, mut failed) =
        (0, 0, 0, 0, 0, 0);
    let mut seconds = 0.0;
    for o in outcomes {
        match o {
            Outcome::Built { seconds: s, .. } => {
                built += 1;
                seconds += s;
            }
            Outcome::Started { .. } => started += 1,
            Outcome::Adopted => adopted += 1,
            Outcome::Unchanged => unchanged += 1,
            Outcome::WouldBuild => would += 1,
            Outcome::Failed => failed += 1,
        }
    }
    let counted = [
        (would, "to build or adopt".to_string()),
        (built, format!("built ({seconds:.1} s of build time)")),
        (started, "started on CodeBuild without waiting".into()),
        (adopted, "adopted from the registry".into()),
        (unchanged, "unchanged".into()),
        (failed, "failed".into()),
    ];
    let parts: Vec<String> = counted
        .into_iter()
        .filter(|(n, _)| *n > 0)
        .map(|(n, what)| format!("{n} {what}"))
        .collect();
    let total = built + started + adopted + unchanged + would + failed;
    let lead = if would > 0 {
        "imagebuild preview"
    } else {
        "imagebuild"
    };
    let noun = if total == 1 { "image" } else { "images" };
    format!("{lead}: {total} {noun}: {}", parts.join(", "))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn built(seconds: f64) -> Outcome {
        Outcome::Built {
            seconds,
            steps: Some(StepCounts {
                total: 7,
                cached: 4,
            }),
            pushed_bytes: Some(14_200_000),
            site: "",
        }
    }

    #[test]
    fn row_lines() {
        assert_eq!(
            built(12.34).row_line().unwrap(),
            "built in 12.3 s, 4 of 7 steps cached, 14.2 MB pushed"
        );
        let unpushed = Outcome::Built {
            seconds: 2.0,
            steps: Some(StepCounts::default()),
            pushed_bytes: None,
            site: "",
        };
        assert_eq!(
            unpushed.row_line().unwrap(),
            "built in 2.0 s, 0 of 0 steps cached, not pushed"
        );
        let remote = Outcome::Built {
            seconds: 30.0,
            steps: None,
            pushed_bytes: None,
            site: "on CodeBuild",
        };
        assert_eq!(remote.row_line().unwrap(), "built on CodeBuild in 30.0 s");
        assert!(Outcome::Adopted.row_line().unwrap().starts_with("adopted"));
        assert!(Outcome::Unchanged
            .row_line()
            .unwrap()
            .starts_with("unchanged"));
        assert_eq!(Outcome::WouldBuild.row_line(), None);
    }

    #[test]
    fn the_stack_message_totals_the_run_once_per_resource() {
        let t = RunTally::default();
        assert_eq!(t.stack_message(), None);
        let urn = |n: &str| format!("urn:pulumi:dev::shop::imagebuild:index:ContainerImage::{n}");
        t.record(&urn("a"), built(10.0));
        t.record(&urn("b"), built(2.5));
        t.record(&urn("c"), Outcome::Adopted);
        t.record(&urn("d"), Outcome::Unchanged);
        t.record(&urn("d"), Outcome::Unchanged);
        let (stack, text) = t.stack_message().unwrap();
        assert_eq!(stack, "urn:pulumi:dev::shop::pulumi:pulumi:Stack::shop-dev");
        assert_eq!(
            text,
            "imagebuild: 4 images: 2 built (12.5 s of build time), 1 adopted from the \
             registry, 1 unchanged"
        );
    }

    #[test]
    fn preview_and_no_op_messages() {
        let t = RunTally::default();
        let urn = "urn:pulumi:dev::shop::imagebuild:index:ContainerImage::a";
        t.record(urn, Outcome::Unchanged);
        assert_eq!(
            t.stack_message().unwrap().1,
            "imagebuild: 1 image: 1 unchanged"
        );
        t.record(
            "urn:pulumi:dev::shop::imagebuild:index:ContainerImage::b",
            Outcome::WouldBuild,
        );
        assert_eq!(
            t.stack_message().unwrap().1,
            "imagebuild preview: 2 images: 1 to build or adopt, 1 unchanged"
        );
    }
}
