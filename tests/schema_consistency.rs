//! schema.json is the single source of the resource shapes: every schema property must have its
//! Rust counterpart and the reverse, and every property needs a description (the SDK docstring).

use imagebuild::config::CONFIG_NAMES;
use imagebuild::resources::{container_image, fast_container_image, outputs};
use serde_json::Value;
use std::collections::BTreeSet;

fn schema() -> Value {
    serde_json::from_str(imagebuild::provider::SCHEMA).expect("schema.json is valid JSON")
}

fn keys(v: &Value) -> BTreeSet<String> {
    v.as_object()
        .expect("an object of properties")
        .keys()
        .cloned()
        .collect()
}

fn names(list: &[&str]) -> BTreeSet<String> {
    list.iter().map(|s| s.to_string()).collect()
}

fn check_resource(token: &str, inputs: &[&str], input_only: &[&str], computed: &[&str]) {
    let s = schema();
    let r = &s["resources"][token];
    assert_eq!(keys(&r["inputProperties"]), names(inputs), "{token} inputs");
    let mut outputs = names(inputs);
    for name in input_only {
        outputs.remove(*name);
    }
    outputs.extend(names(computed));
    assert_eq!(keys(&r["properties"]), outputs, "{token} outputs");
}

#[test]
fn container_image_matches_schema() {
    check_resource(
        container_image::TOKEN,
        &container_image::INPUT_NAMES,
        &container_image::INPUT_ONLY_NAMES,
        &outputs::names(container_image::COMPUTED_OUTPUTS),
    );
}

#[test]
fn fast_container_image_matches_schema() {
    check_resource(
        fast_container_image::TOKEN,
        &fast_container_image::INPUT_NAMES,
        &[],
        &outputs::names(fast_container_image::COMPUTED_OUTPUTS),
    );
}

#[test]
fn provider_config_matches_schema() {
    let s = schema();
    assert_eq!(keys(&s["config"]["variables"]), names(&CONFIG_NAMES));
    assert_eq!(
        keys(&s["provider"]["inputProperties"]),
        names(&CONFIG_NAMES)
    );
}

#[test]
fn every_property_has_a_description() {
    let s = schema();
    let mut missing = Vec::new();
    let mut visit = |owner: &str, props: &Value| {
        for (name, p) in props.as_object().into_iter().flatten() {
            let ok = p["description"].as_str().is_some_and(|d| d.len() > 10);
            if !ok {
                missing.push(format!("{owner}.{name}"));
            }
        }
    };
    visit("config", &s["config"]["variables"]);
    visit("provider", &s["provider"]["inputProperties"]);
    for (token, r) in s["resources"].as_object().unwrap() {
        visit(token, &r["inputProperties"]);
        visit(token, &r["properties"]);
    }
    for (token, t) in s["types"].as_object().unwrap() {
        visit(token, &t["properties"]);
    }
    assert!(
        missing.is_empty(),
        "properties without a description: {missing:?}"
    );
}

fn repo_file(path: &str) -> String {
    let full = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join(path);
    std::fs::read_to_string(&full).unwrap_or_else(|e| panic!("{}: {e}", full.display()))
}

#[test]
fn one_version_in_cargo_schema_and_sdk() {
    let version = env!("CARGO_PKG_VERSION");
    assert_eq!(imagebuild::provider::VERSION, version, "binary");
    assert_eq!(schema()["version"], version, "schema.json version");
    let plugin: Value = serde_json::from_str(&repo_file(
        "sdk-python/pulumi_imagebuild/pulumi-plugin.json",
    ))
    .expect("pulumi-plugin.json is JSON");
    assert_eq!(plugin["version"], version, "SDK pulumi-plugin.json");
    let pyproject = repo_file("sdk-python/pyproject.toml");
    assert!(
        pyproject.contains(&format!("\n  version = \"{version}\"\n")),
        "sdk-python/pyproject.toml does not say version {version}: run `make sdk`"
    );
    // The SDK names where the CLI downloads this plugin: the schema's one release location.
    let url = schema()["pluginDownloadURL"].clone();
    assert!(
        url.as_str().is_some_and(|u| !u.is_empty()),
        "pluginDownloadURL"
    );
    assert_eq!(plugin["server"], url, "SDK pulumi-plugin.json server");
}

#[test]
fn release_location_is_the_repository() {
    let s = schema();
    let repo = s["repository"].as_str().expect("schema repository");
    let path = repo
        .strip_prefix("https://github.com/")
        .expect("repository on github.com");
    assert_eq!(
        s["pluginDownloadURL"].as_str(),
        Some(format!("github://api.github.com/{path}").as_str()),
        "pluginDownloadURL must name the releases of `repository`"
    );
    for key in ["displayName", "publisher", "license", "homepage"] {
        assert!(
            s[key].as_str().is_some_and(|v| !v.is_empty()),
            "schema {key}"
        );
    }
}

#[test]
fn registry_docs_cover_every_config_key() {
    let docs = repo_file("docs/installation-configuration.md");
    let missing: Vec<String> = CONFIG_NAMES
        .iter()
        .filter(|k| !docs.contains(&format!("`imagebuild:{k}`")))
        .map(|k| k.to_string())
        .collect();
    assert!(
        missing.is_empty(),
        "docs/installation-configuration.md lacks {missing:?}"
    );
    // Each environment fallback the schema names (e.g. AWS_REGION) is documented too.
    let env_name = regex::Regex::new(r"\b[A-Z][A-Z0-9]*(?:_[A-Z0-9]+)+\b").unwrap();
    let s = schema();
    for (key, var) in s["config"]["variables"].as_object().unwrap() {
        let description = var["description"].as_str().unwrap_or_default();
        for name in env_name.find_iter(description) {
            assert!(
                docs.contains(name.as_str()),
                "docs/installation-configuration.md lacks {} (fallback of {key})",
                name.as_str()
            );
        }
    }
}
