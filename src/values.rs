//! Pulumi property values: protobuf `Struct` <-> a typed model that keeps secrets, unknowns and nulls.
//!
//! The engine encodes secrets and other special values as objects carrying a signature key, and
//! not-yet-known values as sentinel strings (one per type). Resources work on [`Value`] and
//! [`PropertyMap`] and never see protobuf types.

use prost_types::value::Kind;
use std::collections::BTreeMap;

/// Key that marks a special (signed) object.
pub const SIG_KEY: &str = "4dabf18193072939515e22adb298388d";
/// Signature of a secret value.
pub const SECRET_SIG: &str = "1b47061264138c4ac30d75fd1eb44270";
/// The unknown sentinel we emit (the string-typed one).
pub const UNKNOWN_STRING: &str = "04da6b54-80e4-46f7-96ec-b56ff0331ba9";

/// Every unknown sentinel the engine may send, one per type.
const UNKNOWN_SENTINELS: [&str; 7] = [
    UNKNOWN_STRING,
    "1c4a061d-8072-4f0a-a4cb-0ff528b18fe7",
    "3eeb2bf0-c639-47a8-9e75-3b44932eb421",
    "6a19a0b0-7e62-4c92-b797-7f8e31da9cc2",
    "dd056dcd-154b-4c76-9bd3-c8f88648b5ff",
    "030794c1-ac77-496b-92df-f27374a8bd58",
    "e48ece36-62e2-4504-bad9-02848725956a",
];

/// A property map: top-level names to values, sorted for stable output.
pub type PropertyMap = BTreeMap<String, Value>;

/// One Pulumi property value.
#[derive(Clone, Debug, PartialEq)]
pub enum Value {
    /// Explicit null or absent.
    Null,
    /// A boolean.
    Bool(bool),
    /// A number (the protocol only knows doubles).
    Number(f64),
    /// A string.
    String(String),
    /// An array.
    Array(Vec<Value>),
    /// An object.
    Object(PropertyMap),
    /// A secret wrapping its plaintext value.
    Secret(Box<Value>),
    /// A value not known yet (preview).
    Unknown,
    /// Any other special object (asset, archive, resource reference), kept as-is.
    Opaque(prost_types::Struct),
}

impl Value {
    /// True when this value, or anything inside it, is a secret.
    pub fn contains_secret(&self) -> bool {
        match self {
            Value::Secret(_) => true,
            Value::Array(items) => items.iter().any(Value::contains_secret),
            Value::Object(map) => map.values().any(Value::contains_secret),
            _ => false,
        }
    }

    /// True when this value, or anything inside it, is unknown.
    pub fn contains_unknown(&self) -> bool {
        match self {
            Value::Unknown => true,
            Value::Secret(inner) => inner.contains_unknown(),
            Value::Array(items) => items.iter().any(Value::contains_unknown),
            Value::Object(map) => map.values().any(Value::contains_unknown),
            _ => false,
        }
    }

    /// The value with secret wrappers removed at every depth.
    pub fn reveal(&self) -> Value {
        match self {
            Value::Secret(inner) => inner.reveal(),
            Value::Array(items) => Value::Array(items.iter().map(Value::reveal).collect()),
            Value::Object(map) => {
                Value::Object(map.iter().map(|(k, v)| (k.clone(), v.reveal())).collect())
            }
            other => other.clone(),
        }
    }

    /// Wraps the value as secret when `secret` is true (never double-wraps).
    pub fn secret_if(self, secret: bool) -> Value {
        match self {
            Value::Secret(_) => self,
            other if secret => Value::Secret(Box::new(other)),
            other => other,
        }
    }

    /// The name of the value's type, for error messages.
    pub fn type_name(&self) -> &'static str {
        match self {
            Value::Null => "null",
            Value::Bool(_) => "boolean",
            Value::Number(_) => "number",
            Value::String(_) => "string",
            Value::Array(_) => "array",
            Value::Object(_) => "object",
            Value::Secret(inner) => inner.type_name(),
            Value::Unknown => "unknown",
            Value::Opaque(_) => "special object",
        }
    }
}

impl From<&str> for Value {
    fn from(s: &str) -> Self {
        Value::String(s.to_string())
    }
}

impl From<String> for Value {
    fn from(s: String) -> Self {
        Value::String(s)
    }
}

impl From<bool> for Value {
    fn from(b: bool) -> Self {
        Value::Bool(b)
    }
}

impl From<f64> for Value {
    fn from(n: f64) -> Self {
        Value::Number(n)
    }
}

impl From<u64> for Value {
    fn from(n: u64) -> Self {
        Value::Number(n as f64)
    }
}

impl From<u32> for Value {
    fn from(n: u32) -> Self {
        Value::Number(f64::from(n))
    }
}

impl From<Vec<String>> for Value {
    fn from(items: Vec<String>) -> Self {
        Value::Array(items.into_iter().map(Value::String).collect())
    }
}

impl From<BTreeMap<String, String>> for Value {
    fn from(map: BTreeMap<String, String>) -> Self {
        Value::Object(
            map.into_iter()
                .map(|(k, v)| (k, Value::String(v)))
                .collect(),
        )
    }
}

/// Decodes a protobuf Struct (None = empty) into a property map.
pub fn from_struct(s: Option<&prost_types::Struct>) -> PropertyMap {
    s.map(|s| {
        s.fields
            .iter()
            .map(|(k, v)| (k.clone(), from_proto(v)))
            .collect()
    })
    .unwrap_or_default()
}

/// Encodes a property map as a protobuf Struct.
pub fn to_struct(map: &PropertyMap) -> prost_types::Struct {
    prost_types::Struct {
        fields: map.iter().map(|(k, v)| (k.clone(), to_proto(v))).collect(),
    }
}

fn from_proto(v: &prost_types::Value) -> Value {
    match &v.kind {
        None | Some(Kind::NullValue(_)) => Value::Null,
        Some(Kind::BoolValue(b)) => Value::Bool(*b),
        Some(Kind::NumberValue(n)) => Value::Number(*n),
        Some(Kind::StringValue(s)) if UNKNOWN_SENTINELS.contains(&s.as_str()) => Value::Unknown,
        Some(Kind::StringValue(s)) => Value::String(s.clone()),
        Some(Kind::ListValue(l)) => Value::Array(l.values.iter().map(from_proto).collect()),
        Some(Kind::StructValue(s)) => from_proto_object(s),
    }
}

fn from_proto_object(s: &prost_types::Struct) -> Value {
    let signature = s.fields.get(SIG_KEY).and_then(|v| match &v.kind {
        Some(Kind::StringValue(sig)) => Some(sig.as_str()),
        _ => None,
    });
    match signature {
        Some(SECRET_SIG) => {
            let inner = s.fields.get("value").map(from_proto).unwrap_or(Value::Null);
            Value::Secret(Box::new(inner))
        }
        Some(_) => Value::Opaque(s.clone()),
        None => Value::Object(
            s.fields
                .iter()
                .map(|(k, v)| (k.clone(), from_proto(v)))
                .collect(),
        ),
    }
}

fn to_proto(v: &Value) -> prost_types::Value {
    let kind = match v {
        Value::Null => Kind::NullValue(0),
        Value::Bool(b) => Kind::BoolValue(*b),
        Value::Number(n) => Kind::NumberValue(*n),
        Value::String(s) => Kind::StringValue(s.clone()),
        Value::Array(items) => Kind::ListValue(prost_types::ListValue {
            values: items.iter().map(to_proto).collect(),
        }),
        Value::Object(map) => Kind::StructValue(to_struct(map)),
        Value::Secret(inner) => {
            let mut fields = BTreeMap::new();
            fields.insert(
                SIG_KEY.to_string(),
                to_proto(&Value::String(SECRET_SIG.into())),
            );
            fields.insert("value".to_string(), to_proto(inner));
            Kind::StructValue(prost_types::Struct { fields })
        }
        Value::Unknown => Kind::StringValue(UNKNOWN_STRING.to_string()),
        Value::Opaque(s) => Kind::StructValue(s.clone()),
    };
    prost_types::Value { kind: Some(kind) }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_and_unknowns_round_trip() {
        let mut map = PropertyMap::new();
        map.insert("a".into(), Value::Secret(Box::new("pw".into())));
        map.insert("b".into(), Value::Unknown);
        map.insert(
            "c".into(),
            Value::Array(vec![Value::Number(1.0), Value::Null]),
        );
        let back = from_struct(Some(&to_struct(&map)));
        assert_eq!(back, map);
        assert!(back["a"].contains_secret());
        assert!(back["b"].contains_unknown());
    }

    #[test]
    fn every_unknown_sentinel_is_unknown() {
        for s in UNKNOWN_SENTINELS {
            let v = prost_types::Value {
                kind: Some(Kind::StringValue(s.into())),
            };
            assert_eq!(from_proto(&v), Value::Unknown);
        }
    }

    #[test]
    fn secret_if_never_double_wraps() {
        let v = Value::from("x").secret_if(true).secret_if(true);
        assert_eq!(v, Value::Secret(Box::new("x".into())));
        assert_eq!(v.reveal(), Value::from("x"));
    }
}
