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

/// `google.rpc.Status`, as the engine decodes a failed Create's details.
#[derive(Clone, PartialEq, prost::Message)]
struct RpcStatus {
    #[prost(int32, tag = "1")]
    code: i32,
    #[prost(string, tag = "2")]
    message: String,
    #[prost(message, repeated, tag = "3")]
    details: Vec<prost_types::Any>,
}

/// A proxy in front of the test registry that refuses the manifest PUT of the tag `refused`
/// (403 DENIED, as a registry's tag immutability or a policy would) and forwards every other
/// request, one per connection (it asks the registry for `Connection: close`).
async fn refusing_registry_proxy() -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    tokio::spawn(async move {
        while let Ok((client, _)) = listener.accept().await {
            tokio::spawn(relay_one_request(client));
        }
    });
    addr
}

async fn relay_one_request(mut client: tokio::net::TcpStream) -> std::io::Result<()> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        if client.read(&mut byte).await? == 0 {
            return Ok(());
        }
        head.push(byte[0]);
    }
    let head = String::from_utf8_lossy(&head).into_owned();
    let (request_line, headers) = head.split_once("\r\n").unwrap_or((&head, ""));
    if request_line.starts_with("PUT ") && request_line.contains("/manifests/refused ") {
        // Read the manifest first: closing with unread bytes would reset the connection.
        let length = headers
            .lines()
            .find_map(|l| {
                l.to_ascii_lowercase()
                    .strip_prefix("content-length:")
                    .map(|v| v.trim().parse::<usize>().unwrap_or(0))
            })
            .unwrap_or(0);
        let mut body = vec![0u8; length];
        client.read_exact(&mut body).await?;
        let error = r#"{"errors":[{"code":"DENIED","message":"tag refused by the test proxy"}]}"#;
        let reply = format!(
            "HTTP/1.1 403 Forbidden\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\
             Connection: close\r\n\r\n{error}",
            error.len()
        );
        return client.write_all(reply.as_bytes()).await;
    }
    let kept: Vec<&str> = headers
        .split("\r\n")
        .filter(|l| !l.to_ascii_lowercase().starts_with("connection:"))
        .collect();
    let mut upstream = tokio::net::TcpStream::connect(registry_addr()).await?;
    let forwarded = format!(
        "{request_line}\r\nConnection: close\r\n{}",
        kept.join("\r\n")
    );
    upstream.write_all(forwarded.as_bytes()).await?;
    tokio::io::copy_bidirectional(&mut client, &mut upstream).await?;
    Ok(())
}

/// A push that fails after the hash tag is in the registry (an extra tag refused) fails Create
/// with ErrorResourceInitFailed carrying the pushed image's id and outputs, so the engine
/// records what exists instead of losing it, and the password stays out of the message.
#[tokio::test]
async fn a_push_refused_after_the_hash_tag_reports_the_pushed_image() {
    require_services();
    let proxy = refusing_registry_proxy().await;
    let direct = unique_repo("partial");
    let repo = ImageName {
        registry: proxy.clone(),
        repository: direct.repository.clone(),
    };
    let p = configured_provider().await;
    let ctx = write_tree(&[("app.py", "print('partial')\n")]);
    let mut news = inputs(ctx.path(), &repo, false);
    news.insert("tags".into(), vec!["refused".to_string()].into());
    let news = check(&p, "partial", &news).await;
    let req = rpc::CreateRequest {
        urn: urn("partial"),
        properties: Some(to_struct(&news)),
        r#type: TOKEN.into(),
        ..Default::default()
    };
    let status = p
        .create(Request::new(req))
        .await
        .expect_err("the refused tag must fail the create");
    let body =
        <RpcStatus as prost::Message>::decode(status.details()).expect("a google.rpc.Status");
    let detail = body.details.first().expect("one detail");
    assert!(
        detail
            .type_url
            .ends_with("pulumirpc.ErrorResourceInitFailed"),
        "{}",
        detail.type_url
    );
    let init =
        <rpc::ErrorResourceInitFailed as prost::Message>::decode(detail.value.as_slice()).unwrap();
    let outputs = from_struct(init.properties.as_ref());
    let hash = text(&news, "contextHash");
    let served = registry_digest(&direct, &hash)
        .await
        .expect("the hash tag was pushed");
    assert_eq!(init.id, format!("{repo}@{served}"));
    assert_eq!(text(&outputs, "digest"), served);
    assert_eq!(text(&outputs, "contextHash"), hash);
    assert_eq!(registry_digest(&direct, "refused").await, None);
    let message = status.message();
    for part in [
        "the registry refused the tag `refused` although the same credentials had just pushed",
        "tag refused by the test proxy",
        "drop `refused` from `tags`",
        "already pushed",
    ] {
        assert!(message.contains(part), "{part:?} not in: {message}");
    }
    assert!(
        !message.contains("check the username/password"),
        "{message}"
    );
    assert!(
        !message.contains(&registry_creds().password),
        "the password leaked"
    );
}
