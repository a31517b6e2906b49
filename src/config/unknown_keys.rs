//! Provider keys the provider does not know: a misspelt `imagebuild:maxParalelBuilds` would
//! otherwise be dropped without a word and the default used in its place.

use super::CONFIG_NAMES;
use crate::values::PropertyMap;

/// Keys the engine itself sends with the provider's inputs.
const ENGINE_KEYS: [&str; 2] = ["version", "pluginDownloadURL"];

/// One warning per key of `args` that is neither a provider key nor the engine's, naming the
/// closest provider key when one is near enough to be a likely misspelling.
pub fn unknown_key_warnings(args: &PropertyMap) -> Vec<String> {
    args.keys()
        .filter(|k| !CONFIG_NAMES.contains(&k.as_str()))
        .filter(|k| !ENGINE_KEYS.contains(&k.as_str()) && !k.starts_with("__"))
        .map(|key| match closest(key) {
            Some(near) => format!(
                "imagebuild:{key} is not a provider setting and is ignored; did you mean \
                 imagebuild:{near}?"
            ),
            None => format!(
                "imagebuild:{key} is not a provider setting and is ignored; the settings are: {}",
                CONFIG_NAMES.join(", ")
            ),
        })
        .collect()
}

/// The provider key nearest to `key` (case-insensitive edit distance), if within a third of
/// its length (at least 2 edits).
fn closest(key: &str) -> Option<&'static str> {
    let wanted = key.to_ascii_lowercase();
    let limit = (wanted.len() / 3).max(2);
    CONFIG_NAMES
        .iter()
        .map(|name| (edit_distance(&wanted, &name.to_ascii_lowercase()), *name))
        .filter(|(d, _)| *d <= limit)
        .min_by_key(|(d, _)| *d)
        .map(|(_, name)| name)
}

/// Levenshtein distance over bytes (the keys are ASCII).
fn edit_distance(a: &str, b: &str) -> usize {
    let (a, b) = (a.as_bytes(), b.as_bytes());
    let mut previous: Vec<usize> = (0..=b.len()).collect();
    for (i, &ca) in a.iter().enumerate() {
        let mut current = vec![i + 1];
        for (j, &cb) in b.iter().enumerate() {
            let substitute = previous[j] + usize::from(ca != cb);
            current.push(substitute.min(previous[j + 1] + 1).min(current[j] + 1));
        }
        previous = current;
    }
    previous[b.len()]
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::values::Value;

    fn args(keys: &[&str]) -> PropertyMap {
        keys.iter()
            .map(|k| (k.to_string(), Value::from("x")))
            .collect()
    }

    #[test]
    fn a_misspelt_key_names_the_key_it_is_closest_to() {
        let warnings = unknown_key_warnings(&args(&["maxParalelBuilds", "dockerHost"]));
        assert_eq!(warnings.len(), 1, "{warnings:?}");
        assert!(warnings[0].starts_with("imagebuild:maxParalelBuilds is not a provider setting"));
        assert!(warnings[0].ends_with("did you mean imagebuild:maxParallelBuilds?"));
        let case = unknown_key_warnings(&args(&["dockerhost"]));
        assert!(
            case[0].contains("did you mean imagebuild:dockerHost?"),
            "{case:?}"
        );
    }

    #[test]
    fn a_key_near_nothing_lists_the_settings_and_engine_keys_pass() {
        let warnings = unknown_key_warnings(&args(&["colour", "version", "__internal"]));
        assert_eq!(warnings.len(), 1, "{warnings:?}");
        assert!(warnings[0].contains("the settings are: region, ecrEndpoint"));
    }

    #[test]
    fn edit_distance_counts_insertions_deletions_and_substitutions() {
        assert_eq!(edit_distance("kitten", "sitting"), 3);
        assert_eq!(edit_distance("", "abc"), 3);
        assert_eq!(edit_distance("same", "same"), 0);
    }
}
