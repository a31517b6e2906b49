//! The outputs a resource computes and which of them are secret: each resource declares its
//! table once (with [`crate::computed_outputs!`]) and [`super::state::State::to_outputs`]
//! applies it wherever outputs are made: preview, create, update and refresh.
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

#[cfg(test)]
mod tests {
    #[test]
    fn both_resources_agree_on_the_secrecy_of_the_outputs_they_share() {
        use crate::resources::{container_image, fast_container_image};
        let mut shared = 0;
        for ours in container_image::COMPUTED_OUTPUTS.iter() {
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
