//! Diffs shared by the image resources: inputs, context hash, and which files changed.

use super::diff::{diff_properties, DiffKind, DiffResult};
use super::image_args::{base_lookup, read_build_inputs, BuildSite};
use super::imported;
use super::inputs::InputReader;
use super::stored::StoredImage;
use super::{Call, Services};
use crate::context::{explain, ContextSnapshot, Explanation};
use crate::values::{PropertyMap, Value};

/// Inputs whose change replaces the image (a new repository or platform is a new artifact).
const REPLACE_ON: [&str; 2] = ["repository", "platform"];

/// Inputs that never cause a diff: short-lived credentials, and where this machine's SSH agent is.
const NEVER_DIFF: [&str; 2] = ["registryAuth", "ssh"];

/// Diffs an image resource: its `inputs` (credentials excluded; repository and platform
/// replace) and its context hash, naming the changed files when it can.
pub async fn diff_image(
    services: &Services,
    site: BuildSite,
    call: &Call,
    olds: &PropertyMap,
    old_inputs: &PropertyMap,
    news: &PropertyMap,
    inputs: &[&str],
) -> DiffResult {
    let before = if old_inputs.is_empty() {
        olds
    } else {
        old_inputs
    };
    // An imported state records only what its registry shows; how it was built is the
    // program's, and the hash below says whether the program builds the same image.
    let imported = imported::was_imported(before);
    let compared: Vec<&str> = inputs
        .iter()
        .copied()
        .filter(|n| !NEVER_DIFF.contains(n))
        .filter(|n| !imported || imported::COMPARED_AFTER_IMPORT.contains(n))
        .collect();
    let mut result = diff_properties(before, news, &compared, &REPLACE_ON);
    diff_context_hash(
        services,
        site,
        call,
        stored_hash(olds, old_inputs),
        news,
        &mut result,
    )
    .await;
    if matches!(result.changes, super::diff::Changes::None) {
        services.report_outcome(call, super::build_summary::Outcome::Unchanged);
    }
    result
}

/// The hash the state records: the last checked inputs' (which an upgrade may have renewed
/// quietly, see [`is_legacy_of_same_files`]), else the outputs'.
fn stored_hash(olds: &PropertyMap, old_inputs: &PropertyMap) -> Option<String> {
    StoredImage::parse(old_inputs)
        .context_hash
        .or_else(|| StoredImage::parse(olds).context_hash)
}

/// Records a changed (or not yet known) context hash, and tells the user which files changed.
async fn diff_context_hash(
    services: &Services,
    site: BuildSite,
    call: &Call,
    old_hash: Option<String>,
    news: &PropertyMap,
    result: &mut DiffResult,
) {
    match news.get("contextHash").map(Value::reveal) {
        Some(Value::String(new_hash)) if Some(new_hash.as_str()) != old_hash.as_deref() => {
            let Some(old_hash) = &old_hash else {
                result.record("contextHash", DiffKind::Update, false);
                return;
            };
            let Some(snap) = current_snapshot(services, site, news).await else {
                result.record("contextHash", DiffKind::Update, false);
                return;
            };
            if is_legacy_of_same_files(&snap, old_hash) {
                return;
            }
            result.record("contextHash", DiffKind::Update, false);
            report_changed_files(services, call, &snap, old_hash);
        }
        Some(Value::String(_)) => {}
        _ => result.record("contextHash", DiffKind::Update, false),
    }
}

/// An image hashed by an older provider (format 1) whose files and inputs are unchanged: the
/// format 1 recipe over today's files still gives the stored hash. Diff then reports no change
/// and the engine stores the checked inputs, with the current hash, in place of the old ones.
fn is_legacy_of_same_files(snap: &ContextSnapshot, old_hash: &str) -> bool {
    snap.legacy_hash == old_hash
}

async fn current_snapshot(
    services: &Services,
    site: BuildSite,
    news: &PropertyMap,
) -> Option<ContextSnapshot> {
    let mut r = InputReader::new(news);
    let build = read_build_inputs(&mut r)?;
    let lookup = base_lookup(services, site, news);
    let plan = services
        .snapshots
        .get(&build.plan_request(services.config.cache_path()), &lookup)
        .await
        .ok()?;
    Some(plan.snapshot)
}

fn report_changed_files(services: &Services, call: &Call, snap: &ContextSnapshot, old_hash: &str) {
    let cache_dir = services.config.cache_path();
    let text = match explain(old_hash, snap, cache_dir.as_deref()) {
        Explanation::Changes {
            added,
            removed,
            changed,
        } => describe_changes(&added, &removed, &changed),
        Explanation::OldManifestMissing => {
            "context changed (the previous file list is not in this machine's cache, so the \
             changed files cannot be named)"
                .to_string()
        }
    };
    call.reporter.info(&text);
}

fn describe_changes(added: &[String], removed: &[String], changed: &[String]) -> String {
    const SHOWN: usize = 10;
    let mut parts = Vec::new();
    for (label, files) in [("changed", changed), ("added", added), ("removed", removed)] {
        if files.is_empty() {
            continue;
        }
        let mut list = files
            .iter()
            .take(SHOWN)
            .cloned()
            .collect::<Vec<_>>()
            .join(", ");
        if files.len() > SHOWN {
            list.push_str(&format!(" and {} more", files.len() - SHOWN));
        }
        parts.push(format!("{label}: {list}"));
    }
    if parts.is_empty() {
        "context hash changed (Dockerfile or build inputs)".to_string()
    } else {
        format!("context changed; {}", parts.join("; "))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn change_description_lists_files_and_counts_the_rest() {
        let changed: Vec<String> = (0..12).map(|i| format!("f{i}.py")).collect();
        let text = describe_changes(&["new.txt".into()], &[], &changed);
        assert!(
            text.starts_with("context changed; changed: f0.py, f1.py"),
            "{text}"
        );
        assert!(text.contains("and 2 more"), "{text}");
        assert!(text.contains("added: new.txt"), "{text}");
    }
}
