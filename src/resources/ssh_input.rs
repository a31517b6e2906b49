//! The `ssh` input of ContainerImage: SSH agents forwarded to the build, as
//! `docker build --ssh id=path`. Where the agent lives is a fact about this machine: it never
//! enters the hash, the outputs or a diff.

use super::inputs::{Field, InputReader};
use crate::local::SshSpec;
use std::path::PathBuf;

/// Reads `ssh` ([{id, paths}]); `None` while unknown. Each id at most once, at most one path.
pub fn read_ssh(r: &mut InputReader) -> Option<Vec<SshSpec>> {
    let items = match r.object_list("ssh") {
        Field::Known(items) => items,
        Field::Absent => return Some(Vec::new()),
        Field::Unknown => return None,
    };
    let mut out: Vec<SshSpec> = Vec::with_capacity(items.len());
    for (i, item) in items.iter().enumerate() {
        let (id, paths) = r.nested(&format!("ssh[{i}]"), item, &["id", "paths"], |inner| {
            (inner.string("id"), inner.string_list("paths"))
        });
        let id = match id {
            Field::Known(id) => id,
            Field::Absent => "default".to_string(),
            Field::Unknown => return None,
        };
        let paths = paths.or_default_known(Vec::new())?;
        if let Some(reason) = invalid(&id, &paths, &out) {
            r.fail(format!("ssh[{i}]"), reason);
            continue;
        }
        out.push(SshSpec {
            id,
            paths: paths.into_iter().map(PathBuf::from).collect(),
        });
    }
    Some(out)
}

fn invalid(id: &str, paths: &[String], seen: &[SshSpec]) -> Option<String> {
    if id.is_empty()
        || !id
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "_.-".contains(c))
    {
        return Some(format!(
            "`id` {id:?} must be letters, digits, `_`, `.` or `-` (the id a `RUN --mount=type=ssh,id=...` names)"
        ));
    }
    if seen.iter().any(|s| s.id == id) {
        return Some(format!(
            "ssh id `{id}` is given twice; give each agent once"
        ));
    }
    if paths.len() > 1 {
        return Some(format!(
            "ssh id `{id}`: give one agent socket in `paths` (several keys: add them all to one agent with ssh-add)"
        ));
    }
    if paths.iter().any(String::is_empty) {
        return Some(format!(
            "ssh id `{id}`: an empty path; leave `paths` out to use $SSH_AUTH_SOCK"
        ));
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::values::{PropertyMap, Value};

    fn news(items: Vec<Value>) -> PropertyMap {
        let mut m = PropertyMap::new();
        m.insert("ssh".into(), Value::Array(items));
        m
    }

    fn agent(id: Option<&str>, paths: &[&str]) -> Value {
        let mut m = PropertyMap::new();
        if let Some(id) = id {
            m.insert("id".into(), id.into());
        }
        if !paths.is_empty() {
            m.insert(
                "paths".into(),
                Value::Array(paths.iter().map(|p| Value::from(*p)).collect()),
            );
        }
        Value::Object(m)
    }

    #[test]
    fn defaults_and_failures_name_the_entry() {
        let map = news(vec![
            agent(None, &[]),
            agent(Some("git"), &["/run/agent.sock"]),
        ]);
        let mut r = InputReader::new(&map);
        let specs = read_ssh(&mut r).unwrap();
        assert!(r.into_failures().is_empty());
        assert_eq!(specs[0].id, "default");
        assert!(specs[0].paths.is_empty());
        assert_eq!(specs[1].paths, vec![PathBuf::from("/run/agent.sock")]);

        let map = news(vec![
            agent(Some("a b"), &[]),
            agent(None, &["x", "y"]),
            agent(None, &[]),
        ]);
        let mut r = InputReader::new(&map);
        let _ = read_ssh(&mut r);
        let failures = r.into_failures();
        let props: Vec<&str> = failures.iter().map(|f| f.property.as_str()).collect();
        assert_eq!(props, ["ssh[0]", "ssh[1]"], "{failures:?}");
    }
}
