//! ContainerImage's whole lifecycle in process against the real daemon under test and the real
//! registry, without the Pulumi CLI: the gRPC service's methods are called as the engine calls
//! them (Configure, Check, Create in preview and for real, Read, Diff, Update, Delete), and the
//! registry is read independently of our registry module.

mod local_common;

use imagebuild::proto::resource_provider_server::ResourceProvider;
use imagebuild::proto::{self as rpc, diff_response::DiffChanges};
use imagebuild::provider::Provider;
use imagebuild::registry::ImageName;
use imagebuild::resources::container_image::TOKEN;
use imagebuild::resources::stored;
use imagebuild::values::{from_struct, to_struct, PropertyMap, Value};
use local_common::*;
use tonic::Request;

fn urn(name: &str) -> String {
    format!("urn:pulumi:test::lifecycle::{TOKEN}::{name}")
}

/// A provider configured for the daemon under test, as Configure leaves it.
async fn configured_provider() -> Provider {
    let p = Provider::new(None);
    let mut args = PropertyMap::new();
    args.insert("dockerHost".into(), docker_host().into());
    let req = rpc::ConfigureRequest {
        args: Some(to_struct(&args)),
        ..Default::default()
    };
    p.configure(Request::new(req)).await.unwrap();
    p
}

/// Inputs that build `app.py` of `context` onto busybox and push to `repo`.
fn inputs(context: &std::path::Path, repo: &ImageName, delete_on_destroy: bool) -> PropertyMap {
    let creds = registry_creds();
    let mut auth = PropertyMap::new();
    auth.insert("username".into(), creds.username.into());
    auth.insert(
        "password".into(),
        Value::Secret(Box::new(creds.password.into())),
    );
    let mut news = PropertyMap::new();
    news.insert(
        "context".into(),
        context.to_string_lossy().into_owned().into(),
    );
    news.insert(
        "dockerfileInline".into(),
        format!("FROM {BUSYBOX}\nCOPY app.py /app.py\n").into(),
    );
    news.insert("repository".into(), repo.to_string().into());
    news.insert("registryAuth".into(), Value::Object(auth));
    news.insert("deleteOnDestroy".into(), delete_on_destroy.into());
    news
}

async fn check(p: &Provider, name: &str, news: &PropertyMap) -> PropertyMap {
    let req = rpc::CheckRequest {
        urn: urn(name),
        news: Some(to_struct(news)),
        r#type: TOKEN.into(),
        ..Default::default()
    };
    let checked = p.check(Request::new(req)).await.unwrap().into_inner();
    assert!(checked.failures.is_empty(), "{:?}", checked.failures);
    from_struct(checked.inputs.as_ref())
}

async fn create(
    p: &Provider,
    name: &str,
    news: &PropertyMap,
    preview: bool,
) -> (String, PropertyMap) {
    let req = rpc::CreateRequest {
        urn: urn(name),
        properties: Some(to_struct(news)),
        r#type: TOKEN.into(),
        preview,
        ..Default::default()
    };
    let created = p.create(Request::new(req)).await.unwrap().into_inner();
    (created.id, from_struct(created.properties.as_ref()))
}

async fn read(p: &Provider, name: &str, id: &str, state: &PropertyMap) -> rpc::ReadResponse {
    let req = rpc::ReadRequest {
        id: id.into(),
        urn: urn(name),
        properties: Some(to_struct(state)),
        r#type: TOKEN.into(),
        ..Default::default()
    };
    p.read(Request::new(req)).await.unwrap().into_inner()
}

/// A string output (secret or not) that the test needs to be there.
fn text(map: &PropertyMap, name: &str) -> String {
    stored::text(map, name).unwrap_or_else(|| panic!("output {name} is missing or not a string"))
}

#[tokio::test]
async fn create_refresh_update_and_destroy_follow_the_registry() {
    require_services();
    let p = configured_provider().await;
    let ctx = write_tree(&[("app.py", "print('v1')\n")]);
    let repo = unique_repo("lifecycle");
    let news = check(&p, "img", &inputs(ctx.path(), &repo, true)).await;

    let (id, preview) = create(&p, "img", &news, true).await;
    assert!(id.is_empty(), "preview makes nothing");
    assert_eq!(preview["digest"], Value::Unknown);
    assert_eq!(
        registry_digest(&repo, &text(&news, "contextHash")).await,
        None
    );

    let (id, made) = create(&p, "img", &news, false).await;
    let (hash, digest, claim) = (
        text(&made, "contextHash"),
        text(&made, "digest"),
        text(&made, "claimTag"),
    );
    assert_eq!(id, format!("{repo}@{digest}"));
    assert_eq!(
        registry_digest(&repo, &hash).await.as_deref(),
        Some(digest.as_str())
    );
    assert_eq!(
        registry_digest(&repo, &claim).await.as_deref(),
        Some(digest.as_str()),
        "claimed"
    );
    let password_secret = match &made["registryAuth"] {
        Value::Secret(_) => true,
        Value::Object(auth) => matches!(auth["password"], Value::Secret(_)),
        _ => false,
    };
    assert!(password_secret, "the password stays secret in the state");

    let refreshed = read(&p, "img", &id, &made).await;
    assert_eq!(refreshed.id, id, "refresh keeps what the registry has");
    assert_eq!(
        text(&from_struct(refreshed.properties.as_ref()), "claimTag"),
        claim
    );

    // The next `up` is a new provider process (hashes are memoized per process).
    std::fs::write(ctx.path().join("app.py"), "print('v2')\n").unwrap();
    let p = configured_provider().await;
    let edited = check(&p, "img", &inputs(ctx.path(), &repo, true)).await;
    let diff = rpc::DiffRequest {
        urn: urn("img"),
        olds: Some(to_struct(&made)),
        old_inputs: Some(to_struct(&news)),
        news: Some(to_struct(&edited)),
        r#type: TOKEN.into(),
        ..Default::default()
    };
    let diff = p.diff(Request::new(diff)).await.unwrap().into_inner();
    assert_eq!(diff.changes, DiffChanges::DiffSome as i32);
    assert_eq!(diff.diffs, ["contextHash"], "{diff:?}");

    let update = rpc::UpdateRequest {
        urn: urn("img"),
        olds: Some(to_struct(&made)),
        news: Some(to_struct(&edited)),
        r#type: TOKEN.into(),
        ..Default::default()
    };
    let updated = p.update(Request::new(update)).await.unwrap().into_inner();
    let updated = from_struct(updated.properties.as_ref());
    let new_digest = text(&updated, "digest");
    assert_ne!(new_digest, digest, "the edit built a new image");
    assert_eq!(
        text(&updated, "claimTag"),
        claim,
        "an update keeps its claim"
    );
    assert_eq!(
        registry_digest(&repo, &claim).await,
        Some(new_digest.clone()),
        "the claim followed"
    );

    let delete = rpc::DeleteRequest {
        id: format!("{repo}@{new_digest}"),
        urn: urn("img"),
        properties: Some(to_struct(&updated)),
        r#type: TOKEN.into(),
        ..Default::default()
    };
    p.delete(Request::new(delete)).await.unwrap();
    assert_eq!(
        registry_digest(&repo, &text(&updated, "contextHash")).await,
        None,
        "deleteOnDestroy"
    );
    let gone = read(&p, "img", &format!("{repo}@{new_digest}"), &updated).await;
    assert!(
        gone.id.is_empty(),
        "refresh after the image went drops the resource: {gone:?}"
    );
}

#[tokio::test]
async fn a_second_resource_of_the_same_content_adopts_and_holds_its_own_claim() {
    require_services();
    let p = configured_provider().await;
    let ctx = write_tree(&[("app.py", "print('shared')\n")]);
    let repo = unique_repo("lifecycle-adopt");
    let news = check(&p, "first", &inputs(ctx.path(), &repo, false)).await;
    let (_, first) = create(&p, "first", &news, false).await;
    assert_eq!(first["adopted"], Value::Bool(false));

    let news = check(&p, "second", &inputs(ctx.path(), &repo, false)).await;
    let (_, second) = create(&p, "second", &news, false).await;
    assert_eq!(
        second["adopted"],
        Value::Bool(true),
        "the registry had this hash: adopted"
    );
    assert_eq!(text(&second, "digest"), text(&first, "digest"));
    assert_ne!(text(&second, "claimTag"), text(&first, "claimTag"));
    for claimant in [&first, &second] {
        let claim = text(claimant, "claimTag");
        assert_eq!(
            registry_digest(&repo, &claim).await,
            Some(text(&first, "digest"))
        );
    }
}
