//! schema.json is the single source of the resource shapes: every schema property must have its
//! Rust counterpart and the reverse, and every property needs a description (the SDK docstring).

use imagebuild::config::CONFIG_NAMES;
use imagebuild::resources::{container_image, fast_container_image};
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
        &container_image::COMPUTED_OUTPUT_NAMES,
    );
}

#[test]
fn fast_container_image_matches_schema() {
    check_resource(
        fast_container_image::TOKEN,
        &fast_container_image::INPUT_NAMES,
        &[],
        &fast_container_image::COMPUTED_OUTPUT_NAMES,
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
