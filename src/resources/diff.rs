//! Property-level diffs: which top-level inputs changed, and whether the change replaces.

use crate::values::{PropertyMap, Value};
use std::collections::BTreeMap;

/// The kind of one property's change (the engine's PropertyDiff.Kind).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DiffKind {
    /// Added.
    Add,
    /// Added, and the resource is replaced.
    AddReplace,
    /// Removed.
    Delete,
    /// Removed, and the resource is replaced.
    DeleteReplace,
    /// Changed.
    Update,
    /// Changed, and the resource is replaced.
    UpdateReplace,
}

impl DiffKind {
    fn replacing(self) -> Self {
        match self {
            DiffKind::Add | DiffKind::AddReplace => DiffKind::AddReplace,
            DiffKind::Delete | DiffKind::DeleteReplace => DiffKind::DeleteReplace,
            DiffKind::Update | DiffKind::UpdateReplace => DiffKind::UpdateReplace,
        }
    }

    /// True for the three replacing kinds.
    pub fn replaces(self) -> bool {
        matches!(
            self,
            DiffKind::AddReplace | DiffKind::DeleteReplace | DiffKind::UpdateReplace
        )
    }
}

/// Whether anything changed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Changes {
    /// Cannot tell yet (inputs unknown during preview).
    Unknown,
    /// Nothing changed.
    None,
    /// Something changed.
    Some,
}

/// The answer to Diff.
#[derive(Clone, Debug, PartialEq)]
pub struct DiffResult {
    /// Whether anything changed.
    pub changes: Changes,
    /// Per top-level property: how it changed.
    pub detailed: BTreeMap<String, DiffKind>,
}

impl DiffResult {
    /// The properties whose change replaces the resource.
    pub fn replaces(&self) -> Vec<String> {
        self.detailed
            .iter()
            .filter(|(_, k)| k.replaces())
            .map(|(p, _)| p.clone())
            .collect()
    }

    /// Records a change of `property`, replacing when `replace` is set.
    pub fn record(&mut self, property: &str, kind: DiffKind, replace: bool) {
        let kind = if replace { kind.replacing() } else { kind };
        self.detailed.insert(property.to_string(), kind);
        if self.changes != Changes::Unknown {
            self.changes = Changes::Some;
        }
    }
}

/// Compares `old` and `new` over `properties`; changes to `replace_on` replace the resource.
/// Secrets compare by plaintext; a new value that is not known yet counts as an update.
pub fn diff_properties(
    old: &PropertyMap,
    new: &PropertyMap,
    properties: &[&str],
    replace_on: &[&str],
) -> DiffResult {
    let mut result = DiffResult {
        changes: Changes::None,
        detailed: BTreeMap::new(),
    };
    for &name in properties {
        let before = present(old.get(name));
        let after = present(new.get(name));
        let kind = match (before, after) {
            (None, None) => continue,
            (None, Some(_)) => DiffKind::Add,
            (Some(_), None) => DiffKind::Delete,
            (Some(a), Some(b)) if b.contains_unknown() || a.reveal() != b.reveal() => {
                DiffKind::Update
            }
            _ => continue,
        };
        result.record(name, kind, replace_on.contains(&name));
    }
    result
}

fn present(v: Option<&Value>) -> Option<&Value> {
    match v {
        None | Some(Value::Null) => None,
        Some(v) => Some(v),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn map(entries: &[(&str, Value)]) -> PropertyMap {
        entries
            .iter()
            .map(|(k, v)| (k.to_string(), v.clone()))
            .collect()
    }

    #[test]
    fn equal_inputs_have_no_changes() {
        let a = map(&[("target", "app".into())]);
        let d = diff_properties(&a, &a.clone(), &["target"], &[]);
        assert_eq!(d.changes, Changes::None);
        assert!(d.detailed.is_empty());
    }

    #[test]
    fn replace_on_marks_replacing_kinds() {
        let a = map(&[("repository", "r/a".into()), ("target", "x".into())]);
        let b = map(&[("repository", "r/b".into())]);
        let d = diff_properties(&a, &b, &["repository", "target"], &["repository"]);
        assert_eq!(d.detailed["repository"], DiffKind::UpdateReplace);
        assert_eq!(d.detailed["target"], DiffKind::Delete);
        assert_eq!(d.replaces(), vec!["repository".to_string()]);
    }

    #[test]
    fn secret_wrapping_alone_is_not_a_change() {
        let a = map(&[("target", "x".into())]);
        let b = map(&[("target", Value::Secret(Box::new("x".into())))]);
        assert_eq!(
            diff_properties(&a, &b, &["target"], &[]).changes,
            Changes::None
        );
    }

    #[test]
    fn unknown_new_value_is_an_update() {
        let a = map(&[("repository", "r/a".into())]);
        let b = map(&[("repository", Value::Unknown)]);
        let d = diff_properties(&a, &b, &["repository"], &["repository"]);
        assert_eq!(d.detailed["repository"], DiffKind::UpdateReplace);
    }
}
