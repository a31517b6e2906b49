//! Typed reading of resource inputs with Check failures that name the property and the fix.

use crate::values::{PropertyMap, Value};
use std::collections::BTreeMap;

/// One Check failure: which property, and what to do about it.
#[derive(Clone, Debug, PartialEq)]
pub struct Failure {
    /// The property path, e.g. `buildArgs.TOKEN`.
    pub property: String,
    /// A sentence saying what is wrong and how to fix it.
    pub reason: String,
}

/// A property as read: absent, not yet known (preview), or known.
#[derive(Clone, Debug, PartialEq)]
pub enum Field<T> {
    /// Not set (or null).
    Absent,
    /// Set, but its value is not known yet.
    Unknown,
    /// Set and known.
    Known(T),
}

impl<T> Field<T> {
    /// The known value, if any.
    pub fn known(self) -> Option<T> {
        match self {
            Field::Known(v) => Some(v),
            _ => None,
        }
    }

    /// True when the value is not known yet.
    pub fn is_unknown(&self) -> bool {
        matches!(self, Field::Unknown)
    }

    /// The known value, or `default` when absent; None when unknown.
    pub fn or_default_known(self, default: T) -> Option<T> {
        match self {
            Field::Known(v) => Some(v),
            Field::Absent => Some(default),
            Field::Unknown => None,
        }
    }
}

/// Reads properties of one input map and collects failures instead of stopping at the first.
pub struct InputReader<'a> {
    map: &'a PropertyMap,
    failures: Vec<Failure>,
}

impl<'a> InputReader<'a> {
    /// Starts reading `map`.
    pub fn new(map: &'a PropertyMap) -> Self {
        Self {
            map,
            failures: Vec::new(),
        }
    }

    /// Records a failure for `property`.
    pub fn fail(&mut self, property: impl Into<String>, reason: impl Into<String>) {
        self.failures.push(Failure {
            property: property.into(),
            reason: reason.into(),
        });
    }

    /// The failures found so far.
    pub fn into_failures(self) -> Vec<Failure> {
        self.failures
    }

    /// Reads one nested object, `map`, with `read`: over a reader that allows only `fields`,
    /// whose failures come back here named `prefix.field` (`cacheTo.ref`, `ssh[0].id`).
    pub fn nested<T>(
        &mut self,
        prefix: &str,
        map: &PropertyMap,
        fields: &[&str],
        read: impl FnOnce(&mut InputReader) -> T,
    ) -> T {
        let mut inner = InputReader::new(map);
        inner.reject_unknown_names(fields);
        let value = read(&mut inner);
        for f in inner.into_failures() {
            self.fail(format!("{prefix}.{}", f.property), f.reason);
        }
        value
    }

    /// Fails every property whose name is not in `allowed`.
    pub fn reject_unknown_names(&mut self, allowed: &[&str]) {
        let unknown: Vec<String> = self
            .map
            .keys()
            .filter(|k| !allowed.contains(&k.as_str()))
            .cloned()
            .collect();
        for name in unknown {
            let reason = format!(
                "unknown property `{name}`; the properties are: {}",
                allowed.join(", ")
            );
            self.fail(name, reason);
        }
    }

    fn raw(&self, name: &str) -> Field<&'a Value> {
        match self.map.get(name).map(strip_secret) {
            None | Some(Value::Null) => Field::Absent,
            Some(v) if v.contains_unknown() => Field::Unknown,
            Some(v) => Field::Known(v),
        }
    }

    /// True when the property (or part of it) is a secret.
    pub fn is_secret(&self, name: &str) -> bool {
        self.map.get(name).is_some_and(Value::contains_secret)
    }

    /// Reads a string property.
    pub fn string(&mut self, name: &str) -> Field<String> {
        match self.raw(name) {
            Field::Known(Value::String(s)) => Field::Known(s.clone()),
            Field::Known(other) => self.wrong_type(name, "a string", other),
            Field::Absent => Field::Absent,
            Field::Unknown => Field::Unknown,
        }
    }

    /// Reads a boolean property (the strings "true"/"false" are accepted, as config arrives as text).
    pub fn bool(&mut self, name: &str) -> Field<bool> {
        match self.raw(name) {
            Field::Known(Value::Bool(b)) => Field::Known(*b),
            Field::Known(Value::String(s)) if s == "true" || s == "false" => {
                Field::Known(s == "true")
            }
            Field::Known(other) => self.wrong_type(name, "a boolean", other),
            Field::Absent => Field::Absent,
            Field::Unknown => Field::Unknown,
        }
    }

    /// Reads a non-negative whole number (numeric strings accepted, as config arrives as text).
    pub fn count(&mut self, name: &str) -> Field<u64> {
        let number = match self.raw(name) {
            Field::Known(Value::Number(n)) => Some(*n),
            Field::Known(Value::String(s)) => s.trim().parse::<f64>().ok(),
            Field::Known(_) => None,
            Field::Absent => return Field::Absent,
            Field::Unknown => return Field::Unknown,
        };
        match number {
            Some(n) if n >= 0.0 && n.fract() == 0.0 => Field::Known(n as u64),
            _ => {
                self.fail(
                    name,
                    format!("`{name}` must be a non-negative whole number"),
                );
                Field::Absent
            }
        }
    }

    /// Reads an array of strings.
    pub fn string_list(&mut self, name: &str) -> Field<Vec<String>> {
        match self.raw(name) {
            Field::Known(Value::Array(items)) => {
                let mut out = Vec::with_capacity(items.len());
                for (i, item) in items.iter().enumerate() {
                    match strip_secret(item) {
                        Value::String(s) => out.push(s.clone()),
                        other => {
                            let reason = format!(
                                "`{name}[{i}]` must be a string, got {}",
                                other.type_name()
                            );
                            self.fail(format!("{name}[{i}]"), reason);
                        }
                    }
                }
                Field::Known(out)
            }
            Field::Known(other) => self.wrong_type(name, "an array of strings", other),
            Field::Absent => Field::Absent,
            Field::Unknown => Field::Unknown,
        }
    }

    /// Reads a map of string to string.
    pub fn string_map(&mut self, name: &str) -> Field<BTreeMap<String, String>> {
        match self.raw(name) {
            Field::Known(Value::Object(map)) => {
                let mut out = BTreeMap::new();
                for (k, v) in map {
                    match strip_secret(v) {
                        Value::String(s) => {
                            out.insert(k.clone(), s.clone());
                        }
                        other => {
                            let reason =
                                format!("`{name}.{k}` must be a string, got {}", other.type_name());
                            self.fail(format!("{name}.{k}"), reason);
                        }
                    }
                }
                Field::Known(out)
            }
            Field::Known(other) => self.wrong_type(name, "a map of strings", other),
            Field::Absent => Field::Absent,
            Field::Unknown => Field::Unknown,
        }
    }

    /// Reads an array of objects.
    pub fn object_list(&mut self, name: &str) -> Field<Vec<PropertyMap>> {
        match self.raw(name) {
            Field::Known(Value::Array(items)) => {
                let mut out = Vec::with_capacity(items.len());
                for (i, item) in items.iter().enumerate() {
                    match strip_secret(item) {
                        Value::Object(m) => out.push(m.clone()),
                        other => {
                            let reason = format!(
                                "`{name}[{i}]` must be an object, got {}",
                                other.type_name()
                            );
                            self.fail(format!("{name}[{i}]"), reason);
                        }
                    }
                }
                Field::Known(out)
            }
            Field::Known(other) => self.wrong_type(name, "an array of objects", other),
            Field::Absent => Field::Absent,
            Field::Unknown => Field::Unknown,
        }
    }

    /// Reads a nested object.
    pub fn object(&mut self, name: &str) -> Field<PropertyMap> {
        match self.raw(name) {
            Field::Known(Value::Object(map)) => Field::Known(map.clone()),
            Field::Known(other) => self.wrong_type(name, "an object", other),
            Field::Absent => Field::Absent,
            Field::Unknown => Field::Unknown,
        }
    }

    /// Names of the map's entries that are individually secret (e.g. one secret build arg).
    pub fn secret_entries(&self, name: &str) -> Vec<String> {
        match self.map.get(name) {
            Some(Value::Object(map)) => map
                .iter()
                .filter(|(_, v)| v.contains_secret())
                .map(|(k, _)| k.clone())
                .collect(),
            // The whole map is secret: so is every entry.
            Some(v @ Value::Secret(_)) => match strip_secret(v) {
                Value::Object(map) => map.keys().cloned().collect(),
                _ => Vec::new(),
            },
            _ => Vec::new(),
        }
    }

    fn wrong_type<T>(&mut self, name: &str, expected: &str, got: &Value) -> Field<T> {
        let reason = format!("`{name}` must be {expected}, got {}", got.type_name());
        self.fail(name, reason);
        Field::Absent
    }
}

fn strip_secret(v: &Value) -> &Value {
    match v {
        Value::Secret(inner) => strip_secret(inner),
        other => other,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn map(entries: Vec<(&str, Value)>) -> PropertyMap {
        entries
            .into_iter()
            .map(|(k, v)| (k.to_string(), v))
            .collect()
    }

    #[test]
    fn wrong_type_names_the_property() {
        let m = map(vec![("push", Value::from("maybe"))]);
        let mut r = InputReader::new(&m);
        assert_eq!(r.bool("push"), Field::Absent);
        let f = r.into_failures();
        assert_eq!(f[0].property, "push");
        assert!(f[0].reason.contains("must be a boolean"), "{}", f[0].reason);
    }

    #[test]
    fn unknown_names_are_failures() {
        let m = map(vec![("contxt", Value::from("."))]);
        let mut r = InputReader::new(&m);
        r.reject_unknown_names(&["context"]);
        let f = r.into_failures();
        assert_eq!(f[0].property, "contxt");
        assert!(f[0].reason.contains("context"));
    }

    #[test]
    fn nested_failures_are_named_under_their_parent() {
        let inner = map(vec![
            ("ref", Value::from(true)),
            ("mdoe", Value::from("max")),
        ]);
        let outer = PropertyMap::new();
        let mut r = InputReader::new(&outer);
        let reference = r.nested("cacheTo", &inner, &["ref", "mode"], |i| i.string("ref"));
        assert_eq!(reference, Field::Absent);
        let mut names: Vec<String> = r.into_failures().into_iter().map(|f| f.property).collect();
        names.sort();
        assert_eq!(names, ["cacheTo.mdoe", "cacheTo.ref"]);
    }

    #[test]
    fn unknown_values_are_not_failures() {
        let m = map(vec![("repository", Value::Unknown)]);
        let mut r = InputReader::new(&m);
        assert!(r.string("repository").is_unknown());
        assert!(r.into_failures().is_empty());
    }

    #[test]
    fn secrets_are_read_through_and_detected() {
        let mut inner = PropertyMap::new();
        inner.insert("TOKEN".into(), Value::Secret(Box::new("s3cr3t".into())));
        inner.insert("MODE".into(), Value::from("fast"));
        let m = map(vec![("buildArgs", Value::Object(inner))]);
        let mut r = InputReader::new(&m);
        let args = r.string_map("buildArgs").known().unwrap();
        assert_eq!(args["TOKEN"], "s3cr3t");
        assert_eq!(r.secret_entries("buildArgs"), vec!["TOKEN".to_string()]);
    }

    #[test]
    fn counts_accept_config_strings() {
        let m = map(vec![("n", Value::from("4")), ("bad", Value::from(-1.0))]);
        let mut r = InputReader::new(&m);
        assert_eq!(r.count("n"), Field::Known(4));
        assert_eq!(r.count("bad"), Field::Absent);
        assert_eq!(r.into_failures().len(), 1);
    }
}
