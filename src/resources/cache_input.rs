//! The `cacheTo` input: a registry reference and a mode, parsed once into [`CacheTo`].

use super::inputs::{Field, InputReader};
use crate::local::{CacheMode, CacheTo};
use crate::registry::ImageRef;

/// Reads `cacheTo: {ref, mode}`; `None` while unknown (preview), `Some(None)` when absent or
/// invalid (the reader holds the failure, naming `cacheTo.ref` or `cacheTo.mode`).
pub fn read_cache_to(r: &mut InputReader) -> Option<Option<CacheTo>> {
    let map = match r.object("cacheTo") {
        Field::Known(m) => m,
        Field::Absent => return Some(None),
        Field::Unknown => return None,
    };
    let (reference, mode) = r.nested("cacheTo", &map, &["ref", "mode"], |inner| {
        (inner.string("ref"), inner.string("mode"))
    });
    let mode = match mode {
        Field::Known(m) => match parse_mode(&m) {
            Ok(mode) => mode,
            Err(reason) => {
                r.fail("cacheTo.mode", reason);
                return Some(None);
            }
        },
        Field::Absent => CacheMode::Max,
        Field::Unknown => return None,
    };
    match reference {
        Field::Known(text) => match parse_reference(&text) {
            Ok((name, tag)) => Some(Some(CacheTo {
                reference: name,
                tag,
                mode,
            })),
            Err(reason) => {
                r.fail("cacheTo.ref", reason);
                Some(None)
            }
        },
        Field::Absent => {
            r.fail(
                "cacheTo.ref",
                "`cacheTo` needs `ref`, the registry reference the cache is pushed to, e.g. \
                 \"123456789012.dkr.ecr.us-east-1.amazonaws.com/app:buildcache\"",
            );
            Some(None)
        }
        Field::Unknown => None,
    }
}

fn parse_mode(text: &str) -> Result<CacheMode, String> {
    match text {
        "min" => Ok(CacheMode::Min),
        "max" => Ok(CacheMode::Max),
        other => Err(format!(
            "`{other}` is not a cache mode: use \"max\" (every stage's layers, the default) or \
             \"min\" (the final image's layers only)"
        )),
    }
}

/// `registry/repository:tag`, without a digest (a cache is pushed, so it needs a tag).
fn parse_reference(text: &str) -> Result<(crate::registry::ImageName, String), String> {
    let parsed = ImageRef::parse(text).map_err(|e| e.to_string())?;
    if parsed.digest.is_some() {
        return Err(format!(
            "`{text}` pins a digest: a cache is pushed to a tag, e.g. \"{}:buildcache\"",
            parsed.name
        ));
    }
    let tag = parsed.tag.unwrap_or_else(|| "latest".to_string());
    Ok((parsed.name, tag))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::values::{PropertyMap, Value};

    fn read(value: Value) -> (Option<Option<CacheTo>>, Vec<String>) {
        let map = PropertyMap::from([("cacheTo".to_string(), value)]);
        let mut r = InputReader::new(&map);
        let got = read_cache_to(&mut r);
        let failures = r.into_failures();
        (
            got,
            failures
                .into_iter()
                .map(|f| format!("{}: {}", f.property, f.reason))
                .collect(),
        )
    }

    fn object(pairs: &[(&str, &str)]) -> Value {
        Value::Object(
            pairs
                .iter()
                .map(|(k, v)| (k.to_string(), Value::String(v.to_string())))
                .collect(),
        )
    }

    #[test]
    fn a_reference_with_a_tag_and_the_default_mode() {
        let (got, failures) = read(object(&[("ref", "reg.example:5000/team/app:cache")]));
        assert!(failures.is_empty(), "{failures:?}");
        let c = got.unwrap().unwrap();
        assert_eq!(c.reference_text(), "reg.example:5000/team/app:cache");
        assert_eq!(c.mode, CacheMode::Max);
        let (got, _) = read(object(&[("ref", "reg.example/app:c"), ("mode", "min")]));
        assert_eq!(got.unwrap().unwrap().mode, CacheMode::Min);
    }

    #[test]
    fn bad_values_name_the_field_and_the_fix() {
        let cases = [
            (
                object(&[("ref", "reg.example/app:c"), ("mode", "all")]),
                "cacheTo.mode: `all` is not a cache mode",
            ),
            (
                object(&[("mode", "max")]),
                "cacheTo.ref: `cacheTo` needs `ref`",
            ),
            (object(&[("ref", "reg.example/App:c")]), "cacheTo.ref: "),
            (
                object(&[("ref", &format!("reg.example/app@sha256:{}", "a".repeat(64)))]),
                "cacheTo.ref: `reg.example/app@sha256:",
            ),
            (
                object(&[("ref", "reg.example/app:c"), ("type", "s3")]),
                "cacheTo.type",
            ),
        ];
        for (value, want) in cases {
            let (_, failures) = read(value);
            assert!(
                failures.iter().any(|f| f.starts_with(want)),
                "{want:?} not in {failures:?}"
            );
        }
    }
}
