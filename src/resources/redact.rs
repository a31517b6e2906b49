//! Which values a resource must mask: the secret strings of its inputs.

pub use crate::redact::Redactor;
use crate::values::{PropertyMap, Value};

/// A redactor for every secret string in `inputs`, plus `extra` plaintext values known to be
/// secret, to mask wherever a resource's text leaves the provider.
pub fn redactor_for_inputs(
    inputs: &PropertyMap,
    extra: impl IntoIterator<Item = String>,
) -> Redactor {
    let mut secrets: Vec<String> = extra.into_iter().collect();
    for value in inputs.values() {
        collect(value, false, &mut secrets);
    }
    // Very short values would mask ordinary words; they cannot be hidden meaningfully anyway.
    secrets.retain(|s| s.len() >= 3);
    Redactor::new(&secrets)
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
        let r = redactor_for_inputs(&inputs, ["pw-123".to_string(), "ab".to_string()]);
        assert_eq!(
            r.apply("token hunter22 and pw-123 for app ab"),
            "token *** and *** for app ab"
        );
    }
}
