//! Removes known secret values from any text a resource emits (status lines, logs, errors).

use crate::values::{PropertyMap, Value};

/// The secret strings of one resource's inputs, to be masked wherever text leaves the provider.
#[derive(Clone, Debug, Default)]
pub struct Redactor {
    secrets: Vec<String>,
}

impl Redactor {
    /// Collects every secret string in `inputs`, plus `extra` plaintext values known to be secret.
    pub fn from_inputs(inputs: &PropertyMap, extra: impl IntoIterator<Item = String>) -> Self {
        let mut secrets: Vec<String> = extra.into_iter().collect();
        for value in inputs.values() {
            collect(value, false, &mut secrets);
        }
        // Very short values would mask ordinary words; they cannot be hidden meaningfully anyway.
        secrets.retain(|s| s.len() >= 3);
        secrets.sort_by_key(|s| std::cmp::Reverse(s.len()));
        secrets.dedup();
        Self { secrets }
    }

    /// `text` with every secret replaced by `[secret]`.
    pub fn clean(&self, text: &str) -> String {
        let mut out = text.to_string();
        for s in &self.secrets {
            if out.contains(s.as_str()) {
                out = out.replace(s.as_str(), "[secret]");
            }
        }
        out
    }
}

fn collect(value: &Value, in_secret: bool, out: &mut Vec<String>) {
    match value {
        Value::Secret(inner) => collect(inner, true, out),
        Value::String(s) if in_secret => out.push(s.clone()),
        Value::Array(items) => items.iter().for_each(|v| collect(v, in_secret, out)),
        Value::Object(map) => map.values().for_each(|v| collect(v, in_secret, out)),
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn masks_nested_secrets_and_extras() {
        let mut inputs = PropertyMap::new();
        let mut secrets = PropertyMap::new();
        secrets.insert("token".into(), Value::Secret(Box::new("hunter22".into())));
        inputs.insert("secrets".into(), Value::Object(secrets));
        inputs.insert("target".into(), "app".into());
        let r = Redactor::from_inputs(&inputs, ["pw-123".to_string()]);
        assert_eq!(
            r.clean("token hunter22 and pw-123 for app"),
            "token [secret] and [secret] for app"
        );
    }
}
