//! The outputs a resource computes and which of them are secret, declared once per resource in a
//! table and applied by [`seal`] wherever outputs are made: preview, create, update and refresh.
//!
//! The engine marks an echoed input secret by itself, but not what the provider computes from
//! one: a digest of an image whose Dockerfile is secret is secret only because we say so.

use super::image_args::BUILD_INPUT_NAMES;
use crate::values::{PropertyMap, Value};

/// Whether a computed output is secret.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Secrecy {
    /// Never secret: sizes, counts, timings, flags, and names the provider or AWS made up.
    Plain,
    /// Secret whenever an input that decides the image is secret (see
    /// [`derived_outputs_secret`]): hashes, digests, references and the platform.
    Derived,
}

/// One output a resource computes (the other outputs echo its inputs).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Computed {
    /// The output's name in the schema.
    pub name: &'static str,
    /// When it is secret.
    pub secrecy: Secrecy,
}

/// A computed output that is never secret.
pub const fn plain(name: &'static str) -> Computed {
    Computed {
        name,
        secrecy: Secrecy::Plain,
    }
}

/// A computed output that is secret when an input it derives from is.
pub const fn derived(name: &'static str) -> Computed {
    Computed {
        name,
        secrecy: Secrecy::Derived,
    }
}

/// True when an input that decides the image is secret: then so is everything computed from it.
pub fn derived_outputs_secret(inputs: &PropertyMap) -> bool {
    BUILD_INPUT_NAMES
        .iter()
        .chain(["repository", "tags"].iter())
        .any(|n| inputs.get(*n).is_some_and(Value::contains_secret))
}

/// The names of `table`, in order.
pub fn names(table: &[Computed]) -> Vec<&'static str> {
    table.iter().map(|c| c.name).collect()
}

/// Marks every known [`Secrecy::Derived`] output of `table` in `outputs` secret when an input in
/// `inputs` that decides the image is secret. Idempotent.
pub fn seal(outputs: &mut PropertyMap, table: &[Computed], inputs: &PropertyMap) {
    mark(outputs, table, derived_outputs_secret(inputs));
}

/// [`seal`] for stored state (refresh), whose outputs echo the inputs they were made from.
pub fn reseal(outputs: &mut PropertyMap, table: &[Computed]) {
    let secret = derived_outputs_secret(outputs);
    mark(outputs, table, secret);
}

fn mark(outputs: &mut PropertyMap, table: &[Computed], secret: bool) {
    if !secret {
        return;
    }
    for computed in table.iter().filter(|c| c.secrecy == Secrecy::Derived) {
        // An unknown stays a bare unknown: preview shows it as computed, and the value that
        // replaces it after the build is sealed then.
        if let Some(value) = outputs.remove(computed.name) {
            let sealed = match value {
                Value::Unknown => Value::Unknown,
                known => known.secret_if(true),
            };
            outputs.insert(computed.name.into(), sealed);
        }
    }
}

/// `outputs` with every computed output of `table` set to unknown: what preview shows before
/// the values it can know already are filled in.
pub fn all_unknown(mut outputs: PropertyMap, table: &[Computed]) -> PropertyMap {
    for computed in table {
        outputs.insert(computed.name.into(), Value::Unknown);
    }
    outputs
}

#[cfg(test)]
mod tests {
    use super::*;

    const TABLE: [Computed; 2] = [derived("digest"), plain("buildSeconds")];

    fn outputs() -> PropertyMap {
        let mut out = PropertyMap::new();
        out.insert("digest".into(), "sha256:ab".into());
        out.insert("buildSeconds".into(), 1.5.into());
        out
    }

    #[test]
    fn derived_outputs_follow_a_secret_input_and_plain_ones_never_do() {
        let mut inputs = PropertyMap::new();
        inputs.insert("dockerfileInline".into(), "FROM scratch".into());
        let mut out = outputs();
        seal(&mut out, &TABLE, &inputs);
        assert_eq!(out, outputs(), "nothing secret in, nothing secret out");

        inputs.insert(
            "dockerfileInline".into(),
            Value::Secret(Box::new("FROM scratch".into())),
        );
        seal(&mut out, &TABLE, &inputs);
        seal(&mut out, &TABLE, &inputs);
        assert_eq!(out["digest"], Value::Secret(Box::new("sha256:ab".into())));
        assert_eq!(out["buildSeconds"], Value::from(1.5));

        // Refresh: the stored outputs echo the secret input, so a digest a refresh wrote in
        // plain text is sealed again.
        let mut stored = outputs();
        stored.insert(
            "dockerfileInline".into(),
            inputs["dockerfileInline"].clone(),
        );
        reseal(&mut stored, &TABLE);
        assert!(matches!(stored["digest"], Value::Secret(_)));
    }

    #[test]
    fn unknown_outputs_cover_the_whole_table() {
        let out = all_unknown(PropertyMap::new(), &TABLE);
        assert_eq!(out.len(), 2);
        assert!(out.values().all(|v| *v == Value::Unknown));
        assert_eq!(names(&TABLE), ["digest", "buildSeconds"]);
    }

    #[test]
    fn both_resources_agree_on_the_secrecy_of_the_outputs_they_share() {
        use crate::resources::{container_image, fast_container_image};
        let mut shared = 0;
        for ours in container_image::COMPUTED_OUTPUTS {
            let theirs = fast_container_image::COMPUTED_OUTPUTS
                .iter()
                .find(|c| c.name == ours.name);
            if let Some(theirs) = theirs {
                assert_eq!(ours.secrecy, theirs.secrecy, "{}", ours.name);
                shared += 1;
            }
        }
        assert!(shared >= 8, "only {shared} shared outputs");
    }
}
