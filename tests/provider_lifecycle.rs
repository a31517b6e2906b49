//! The provider's lifecycle in process, without the Pulumi CLI or a daemon: each case drives the
//! gRPC service's methods as the engine does (CheckConfig, Check, Create in preview, Diff, Read,
//! Delete, DiffConfig) for both resource types through the one dispatch table, and asserts what
//! the engine would record: failures naming properties, preview outputs and their unknowns,
//! which outputs are secret, diffs, and what refresh and destroy do with state that pushed nothing.

use imagebuild::proto::resource_provider_server::ResourceProvider;
use imagebuild::proto::{self as rpc, diff_response::DiffChanges};
use imagebuild::provider::Provider;
use imagebuild::resources::stored::CLAIM_OUTPUT;
use imagebuild::resources::{container_image, fast_container_image, outputs, RESOURCES};
use imagebuild::values::{from_struct, to_struct, PropertyMap, Value};
use std::path::{Path, PathBuf};
use tonic::Request;

/// A context directory of its own, removed at the end of the test.
struct Context {
    dir: PathBuf,
}

impl Context {
    fn new(test: &str) -> Context {
        let dir = std::env::temp_dir().join(format!(
            "imagebuild-lifecycle-{test}-{}-{}",
            std::process::id(),
            uuid::Uuid::new_v4().simple()
        ));
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("app.py"), "print('hello')\n").unwrap();
        std::fs::write(dir.join("empty.Dockerfile"), "").unwrap();
        Context { dir }
    }

    fn path(&self) -> &Path {
        &self.dir
    }
}

impl Drop for Context {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

const DOCKERFILE: &str = "FROM scratch\nCOPY app.py /app.py\n";

fn urn(token: &str, name: &str) -> String {
    format!("urn:pulumi:test::lifecycle::{token}::{name}")
}

/// Inputs that pass Check for `token`, building `DOCKERFILE` in `context`; nothing is pushed
/// (ContainerImage) or nothing leaves preview (FastContainerImage).
fn valid_inputs(token: &str, context: &Context) -> PropertyMap {
    let mut news = PropertyMap::new();
    news.insert(
        "context".into(),
        context.path().to_string_lossy().into_owned().into(),
    );
    news.insert("dockerfileInline".into(), DOCKERFILE.into());
    if token == container_image::TOKEN {
        news.insert("push".into(), false.into());
    } else {
        news.insert("repository".into(), "127.0.0.1:5000/lifecycle".into());
        news.insert("contextBucket".into(), "lifecycle-contexts".into());
        news.insert("codebuildProject".into(), "lifecycle".into());
    }
    news
}

fn secret(v: impl Into<Value>) -> Value {
    Value::Secret(Box::new(v.into()))
}

async fn check(p: &Provider, token: &str, news: &PropertyMap) -> rpc::CheckResponse {
    let req = rpc::CheckRequest {
        urn: urn(token, "img"),
        news: Some(to_struct(news)),
        r#type: token.into(),
        ..Default::default()
    };
    p.check(Request::new(req)).await.unwrap().into_inner()
}

async fn preview_create(p: &Provider, token: &str, news: &PropertyMap) -> PropertyMap {
    let req = rpc::CreateRequest {
        urn: urn(token, "img"),
        properties: Some(to_struct(news)),
        r#type: token.into(),
        preview: true,
        ..Default::default()
    };
    let created = p.create(Request::new(req)).await.unwrap().into_inner();
    assert_eq!(created.id, "", "{token}: preview has no id");
    from_struct(created.properties.as_ref())
}

async fn diff(
    p: &Provider,
    token: &str,
    olds: &PropertyMap,
    news: &PropertyMap,
) -> rpc::DiffResponse {
    let req = rpc::DiffRequest {
        urn: urn(token, "img"),
        olds: Some(to_struct(olds)),
        old_inputs: Some(to_struct(olds)),
        news: Some(to_struct(news)),
        r#type: token.into(),
        ..Default::default()
    };
    p.diff(Request::new(req)).await.unwrap().into_inner()
}

fn computed(token: &str) -> &'static [outputs::Computed] {
    if token == container_image::TOKEN {
        container_image::COMPUTED_OUTPUTS
    } else {
        fast_container_image::COMPUTED_OUTPUTS
    }
}

/// Bad inputs, each with the property Check must name and words its reason must hold.
struct BadInput {
    what: &'static str,
    edit: fn(&mut PropertyMap, &Context),
    property: &'static str,
    reason: &'static str,
}

const BAD_INPUTS: [BadInput; 6] = [
    BadInput {
        what: "a misspelt property",
        edit: |m, _| {
            m.insert("dockerfileInlne".into(), "FROM scratch".into());
        },
        property: "dockerfileInlne",
        reason: "unknown property",
    },
    BadInput {
        what: "an empty inline Dockerfile",
        edit: |m, _| {
            m.insert("dockerfileInline".into(), "".into());
        },
        property: "dockerfileInline",
        reason: "is empty",
    },
    BadInput {
        what: "a 0-byte Dockerfile",
        edit: |m, c| {
            m.remove("dockerfileInline");
            let file = c.path().join("empty.Dockerfile");
            m.insert(
                "dockerfile".into(),
                file.to_string_lossy().into_owned().into(),
            );
        },
        property: "dockerfile",
        reason: "is empty",
    },
    BadInput {
        what: "a context that is a file",
        edit: |m, c| {
            let file = c.path().join("app.py");
            m.insert("context".into(), file.to_string_lossy().into_owned().into());
        },
        property: "context",
        reason: "is a file, not a directory",
    },
    BadInput {
        what: "a secret build arg",
        edit: |m, _| {
            let mut args = PropertyMap::new();
            args.insert("TOKEN".into(), secret("hunter22"));
            m.insert("buildArgs".into(), Value::Object(args));
        },
        property: "buildArgs.TOKEN",
        reason: "secret",
    },
    BadInput {
        what: "a secret label",
        edit: |m, _| {
            let mut labels = PropertyMap::new();
            labels.insert("owner".into(), secret("hunter22"));
            m.insert("labels".into(), Value::Object(labels));
        },
        property: "labels.owner",
        reason: "secret",
    },
];

#[tokio::test]
async fn check_names_the_property_of_every_bad_input_on_both_resources() {
    let p = Provider::new(None);
    for resource in RESOURCES {
        let token = resource.token();
        let context = Context::new("check");
        let ok = check(&p, token, &valid_inputs(token, &context)).await;
        assert!(ok.failures.is_empty(), "{token}: {:?}", ok.failures);
        for case in &BAD_INPUTS {
            let mut news = valid_inputs(token, &context);
            (case.edit)(&mut news, &context);
            let failures = check(&p, token, &news).await.failures;
            let named = failures.iter().find(|f| f.property == case.property);
            let named = named.unwrap_or_else(|| {
                panic!(
                    "{token}, {}: no failure for {}: {failures:?}",
                    case.what, case.property
                )
            });
            assert!(
                named.reason.contains(case.reason),
                "{token}, {}: {:?}",
                case.what,
                named.reason
            );
            // A secret value never appears in a failure.
            assert!(
                failures.iter().all(|f| !f.reason.contains("hunter22")),
                "{token}, {}: {failures:?}",
                case.what
            );
        }
    }
}

#[tokio::test]
async fn preview_knows_the_hash_and_leaves_every_other_computed_output_unknown() {
    let p = Provider::new(None);
    for resource in RESOURCES {
        let token = resource.token();
        let context = Context::new("preview");
        let checked = check(&p, token, &valid_inputs(token, &context)).await;
        let news = from_struct(checked.inputs.as_ref());
        let hash = match news.get("contextHash") {
            Some(Value::String(h)) if h.len() == 64 => h.clone(),
            other => panic!("{token}: Check gives the context hash, got {other:?}"),
        };
        let out = preview_create(&p, token, &news).await;
        assert_eq!(out["contextHash"], Value::from(hash), "{token}");
        for c in computed(token) {
            assert!(
                out.contains_key(c.name),
                "{token}: preview lacks {}",
                c.name
            );
        }
        for name in ["digest", "imageUri", CLAIM_OUTPUT] {
            assert_eq!(
                out[name],
                Value::Unknown,
                "{token}: {name} is known only after a build"
            );
        }
        assert!(
            out.values().all(|v| !v.contains_secret()),
            "{token}: nothing secret in, nothing secret out: {out:?}"
        );
    }
}

#[tokio::test]
async fn outputs_computed_from_a_secret_input_are_secret_in_preview_on_both_resources() {
    let p = Provider::new(None);
    for resource in RESOURCES {
        let token = resource.token();
        let context = Context::new("secret");
        let mut news = valid_inputs(token, &context);
        news.insert("dockerfileInline".into(), secret(DOCKERFILE));
        let checked = check(&p, token, &news).await;
        assert!(
            checked.failures.is_empty(),
            "{token}: {:?}",
            checked.failures
        );
        let out = preview_create(&p, token, &from_struct(checked.inputs.as_ref())).await;
        let mut known = 0;
        for c in computed(token) {
            if out[c.name] == Value::Unknown {
                continue;
            }
            known += 1;
            let is_secret = matches!(out[c.name], Value::Secret(_));
            let want = c.secrecy == outputs::Secrecy::Derived;
            assert_eq!(
                is_secret, want,
                "{token}: output {}: {:?}",
                c.name, out[c.name]
            );
        }
        assert!(
            known >= 1,
            "{token}: preview knows at least the context hash: {out:?}"
        );
        assert!(
            matches!(out["dockerfileInline"], Value::Secret(_)),
            "{token}"
        );
    }
}

#[tokio::test]
async fn an_unknown_input_leaves_every_computed_output_unknown_in_preview() {
    let p = Provider::new(None);
    for resource in RESOURCES {
        let token = resource.token();
        let context = Context::new("unknown");
        let mut news = valid_inputs(token, &context);
        news.insert("context".into(), Value::Unknown);
        let checked = check(&p, token, &news).await;
        assert!(
            checked.failures.is_empty(),
            "{token}: {:?}",
            checked.failures
        );
        let checked = from_struct(checked.inputs.as_ref());
        let out = preview_create(&p, token, &checked).await;
        for c in computed(token) {
            // The platform is an input with a default: known whatever the context is.
            let want = match c.name {
                "platform" => checked["platform"].clone(),
                _ => Value::Unknown,
            };
            assert_eq!(out[c.name], want, "{token}: {}", c.name);
        }
    }
}

#[tokio::test]
async fn diff_sees_an_edited_file_through_the_hash_and_nothing_when_nothing_changed() {
    let p = Provider::new(None);
    for resource in RESOURCES {
        let token = resource.token();
        let context = Context::new("diff");
        let checked = check(&p, token, &valid_inputs(token, &context)).await;
        let olds = from_struct(checked.inputs.as_ref());
        let same = diff(&p, token, &olds, &olds).await;
        assert_eq!(
            same.changes,
            DiffChanges::DiffNone as i32,
            "{token}: {same:?}"
        );

        // The next deployment is a new provider process: hashes are memoized per process.
        std::fs::write(context.path().join("app.py"), "print('edited')\n").unwrap();
        let next = Provider::new(None);
        let rechecked = check(&next, token, &valid_inputs(token, &context)).await;
        let news = from_struct(rechecked.inputs.as_ref());
        assert_ne!(news["contextHash"], olds["contextHash"], "{token}");
        let edited = diff(&next, token, &olds, &news).await;
        assert_eq!(edited.changes, DiffChanges::DiffSome as i32, "{token}");
        assert_eq!(edited.diffs, ["contextHash"], "{token}: {edited:?}");
        assert!(
            edited.replaces.is_empty(),
            "{token}: an edit updates in place"
        );
    }
}

/// Stored state of an image that was built but never pushed: no digest, no claim.
fn unpushed_state(token: &str, context: &Context) -> PropertyMap {
    let mut state = valid_inputs(token, context);
    state.insert("contextHash".into(), "ab".repeat(32).into());
    if token == fast_container_image::TOKEN {
        state.insert("buildStatus".into(), "FAILED".into());
        state.insert("buildId".into(), "lifecycle:1".into());
    }
    state
}

#[tokio::test]
async fn refresh_keeps_and_destroy_forgets_state_that_pushed_nothing() {
    let p = Provider::new(None);
    for resource in RESOURCES {
        let token = resource.token();
        let context = Context::new("refresh");
        let state = unpushed_state(token, &context);
        let read = rpc::ReadRequest {
            id: "lifecycle-id".into(),
            urn: urn(token, "img"),
            properties: Some(to_struct(&state)),
            r#type: token.into(),
            ..Default::default()
        };
        let got = p.read(Request::new(read)).await.unwrap().into_inner();
        assert_eq!(
            got.id, "lifecycle-id",
            "{token}: nothing remote to lose, so it stays"
        );
        let refreshed = from_struct(got.properties.as_ref());
        assert!(
            !refreshed.contains_key(CLAIM_OUTPUT),
            "{token}: nothing pushed, nothing claimed"
        );

        let delete = rpc::DeleteRequest {
            id: "lifecycle-id".into(),
            urn: urn(token, "img"),
            properties: Some(to_struct(&state)),
            r#type: token.into(),
            ..Default::default()
        };
        p.delete(Request::new(delete)).await.unwrap();
    }
}

#[tokio::test]
async fn every_resource_rpc_refuses_an_unknown_type_naming_the_types_served() {
    let p = Provider::new(None);
    let token = "imagebuild:index:Nope";
    let check = rpc::CheckRequest {
        urn: urn(token, "x"),
        r#type: token.into(),
        ..Default::default()
    };
    let refused = p.check(Request::new(check)).await.unwrap_err();
    assert_eq!(refused.code(), tonic::Code::InvalidArgument);
    for served in RESOURCES {
        assert!(
            refused.message().contains(served.token()),
            "{}",
            refused.message()
        );
    }
    // The type comes from the URN when the request has none, as on Delete from old engines.
    let delete = rpc::DeleteRequest {
        urn: urn(token, "x"),
        ..Default::default()
    };
    let refused = p.delete(Request::new(delete)).await.unwrap_err();
    assert_eq!(refused.code(), tonic::Code::InvalidArgument);
}

#[tokio::test]
async fn a_changed_provider_key_is_an_update_and_an_unchanged_one_is_no_change() {
    let p = Provider::new(None);
    let config = |host: &str| {
        let mut m = PropertyMap::new();
        m.insert("dockerHost".into(), host.into());
        m.insert("version".into(), "0.0.0".into());
        Some(to_struct(&m))
    };
    let ask = |olds, news| rpc::DiffRequest {
        urn: "urn:pulumi:test::lifecycle::pulumi:providers:imagebuild::default".into(),
        olds,
        news,
        ..Default::default()
    };
    let same = p
        .diff_config(Request::new(ask(
            config("unix:///a.sock"),
            config("unix:///a.sock"),
        )))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(same.changes, DiffChanges::DiffNone as i32, "{same:?}");
    let moved = p
        .diff_config(Request::new(ask(
            config("unix:///a.sock"),
            config("unix:///b.sock"),
        )))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(moved.changes, DiffChanges::DiffSome as i32, "{moved:?}");
    assert_eq!(moved.diffs, ["dockerHost"]);
    assert!(
        moved.replaces.is_empty(),
        "replacing the provider would replace every image"
    );
}
