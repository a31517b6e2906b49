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
    configured_with(PropertyMap::new()).await
}

/// A provider configured for the daemon under test and with the provider settings `args`.
async fn configured_with(mut args: PropertyMap) -> Provider {
    let p = Provider::new(None);
    args.insert("dockerHost".into(), docker_host().into());
    let req = rpc::ConfigureRequest {
        args: Some(to_struct(&args)),
        ..Default::default()
    };
    p.configure(Request::new(req)).await.unwrap();
    p
}

/// The test registry's username and password (secret), as `registryAuth` gives them.
fn test_credentials() -> PropertyMap {
    let creds = registry_creds();
    let mut auth = PropertyMap::new();
    auth.insert("username".into(), creds.username.into());
    auth.insert(
        "password".into(),
        Value::Secret(Box::new(creds.password.into())),
    );
    auth
}

/// Inputs that build `app.py` of `context` onto busybox and push to `repo`.
fn inputs(context: &std::path::Path, repo: &ImageName, delete_on_destroy: bool) -> PropertyMap {
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
    news.insert("registryAuth".into(), Value::Object(test_credentials()));
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

/// A provider configured for the daemon under test with the test registry's credentials, as a
/// program that imports from that registry configures it.
async fn provider_with_registry_auth() -> Provider {
    let mut entry = test_credentials();
    entry.insert("address".into(), registry_addr().into());
    let mut args = PropertyMap::new();
    args.insert(
        "registryAuth".into(),
        Value::Array(vec![Value::Object(entry)]),
    );
    configured_with(args).await
}

/// `pulumi import`: Read with the id alone.
async fn import(p: &Provider, token: &str, id: &str) -> Result<rpc::ReadResponse, tonic::Status> {
    let req = rpc::ReadRequest {
        id: id.into(),
        urn: format!("urn:pulumi:test::lifecycle::{token}::imported"),
        r#type: token.into(),
        ..Default::default()
    };
    p.read(Request::new(req)).await.map(|r| r.into_inner())
}

/// Diff of an imported state against the program's checked inputs (what the `import` resource
/// option asks, and the first `up` after `pulumi import`).
async fn diff_after_import(
    p: &Provider,
    imported: &rpc::ReadResponse,
    news: &PropertyMap,
) -> rpc::DiffResponse {
    let req = rpc::DiffRequest {
        urn: urn("imported"),
        olds: imported.properties.clone(),
        old_inputs: imported.inputs.clone(),
        news: Some(to_struct(news)),
        r#type: TOKEN.into(),
        ..Default::default()
    };
    p.diff(Request::new(req)).await.unwrap().into_inner()
}

#[tokio::test]
async fn an_image_in_the_registry_imports_by_digest_or_by_tag_without_writing_to_it() {
    require_services();
    let p = configured_provider().await;
    let ctx = write_tree(&[("app.py", "print('imported')\n")]);
    let repo = unique_repo("lifecycle-import");
    let news = check(&p, "img", &inputs(ctx.path(), &repo, false)).await;
    let (id, made) = create(&p, "img", &news, false).await;
    let (hash, digest) = (text(&made, "contextHash"), text(&made, "digest"));
    // A tag someone else gave the image.
    test_registry().put_tag(&repo, &digest, "v1").await.unwrap();
    let tags_before = registry_tags(&repo).await;

    // A new program, another process: only the id and the provider's credentials.
    let p = provider_with_registry_auth().await;
    let by_digest = import(&p, TOKEN, &id).await.unwrap();
    assert_eq!(by_digest.id, id, "the id Create gave is the imported id");
    let outputs = from_struct(by_digest.properties.as_ref());
    assert_eq!(text(&outputs, "digest"), digest);
    assert_eq!(text(&outputs, "imageUri"), id);
    assert_eq!(text(&outputs, "imageId"), text(&made, "imageId"));
    assert_eq!(text(&outputs, "platform"), "linux/amd64");
    assert_eq!(outputs["adopted"], Value::Bool(true));
    assert!(
        !outputs.contains_key("contextHash"),
        "a digest names no hash"
    );
    let imported_inputs = from_struct(by_digest.inputs.as_ref());
    let names: Vec<&str> = imported_inputs.keys().map(String::as_str).collect();
    assert_eq!(
        names,
        ["deleteOnDestroy", "platform", "push", "repository"],
        "only what the registry shows, and Check's defaults"
    );
    assert_eq!(text(&imported_inputs, "repository"), repo.to_string());
    assert_eq!(
        registry_tags(&repo).await,
        tags_before,
        "an import writes nothing (no claim tag) to the registry"
    );
    // The program that built it, with the state of an import by digest: the hash decides.
    let diff = diff_after_import(&p, &by_digest, &news).await;
    assert_eq!(diff.diffs, ["contextHash"], "{diff:?}");

    // By the hash tag, the hash is known: the program that built it diffs to nothing, which is
    // what the `import` resource option needs.
    let by_hash = import(&p, TOKEN, &format!("{repo}:{hash}")).await.unwrap();
    assert_eq!(
        by_hash.id, id,
        "a tag is recorded as the digest it points at"
    );
    let outputs = from_struct(by_hash.properties.as_ref());
    assert_eq!(text(&outputs, "contextHash"), hash);
    let diff = diff_after_import(&p, &by_hash, &news).await;
    assert_eq!(diff.changes, DiffChanges::DiffNone as i32, "{diff:?}");
    let mut moved = news.clone();
    moved.insert(
        "repository".into(),
        unique_repo("elsewhere").to_string().into(),
    );
    let diff = diff_after_import(&p, &by_hash, &moved).await;
    assert_eq!(diff.diffs, ["repository"], "{diff:?}");

    // By an extra tag, that tag is the imported `tags`.
    let by_tag = import(&p, TOKEN, &format!("{repo}:v1")).await.unwrap();
    let imported_inputs = from_struct(by_tag.inputs.as_ref());
    assert_eq!(imported_inputs["tags"], Value::from(vec!["v1".to_string()]));
    assert_eq!(
        from_struct(by_tag.properties.as_ref())["tags"],
        Value::from(vec![format!("{repo}:v1")])
    );

    // The first `up` after an import by digest updates: it adopts (nothing is built) and claims.
    let update = rpc::UpdateRequest {
        urn: urn("imported"),
        olds: by_digest.properties.clone(),
        news: Some(to_struct(&news)),
        r#type: TOKEN.into(),
        ..Default::default()
    };
    let updated = p.update(Request::new(update)).await.unwrap().into_inner();
    let updated = from_struct(updated.properties.as_ref());
    assert_eq!(updated["adopted"], Value::Bool(true));
    assert_eq!(text(&updated, "digest"), digest);
    assert_eq!(
        registry_digest(&repo, &text(&updated, "claimTag")).await,
        Some(digest.clone()),
        "claimed on the first update"
    );

    // The same image imported as a FastContainerImage (its registry is all an import reads).
    let fast = "imagebuild:index:FastContainerImage";
    let as_fast = import(&p, fast, &id).await.unwrap();
    let outputs = from_struct(as_fast.properties.as_ref());
    assert_eq!(text(&outputs, "digest"), digest);
    assert_eq!(text(&outputs, "buildStatus"), "SUCCEEDED");
    let names: Vec<String> = from_struct(as_fast.inputs.as_ref()).into_keys().collect();
    assert_eq!(names, ["deleteOnDestroy", "platform", "repository", "wait"]);
}

#[tokio::test]
async fn an_import_of_nothing_says_so() {
    require_services();
    let p = provider_with_registry_auth().await;
    let repo = unique_repo("lifecycle-import-none");
    let missing = format!("{repo}@sha256:{}", "0".repeat(64));
    let gone = import(&p, TOKEN, &missing).await.unwrap();
    assert!(
        gone.id.is_empty() && gone.properties.is_none(),
        "no such image: the engine says it does not exist: {gone:?}"
    );
    let bad = import(&p, TOKEN, "app").await.unwrap_err();
    assert_eq!(bad.code(), tonic::Code::InvalidArgument);
    assert!(
        bad.message()
            .contains("registry/repository@sha256:<digest>"),
        "{}",
        bad.message()
    );
}

/// A client of the test registry with its credentials.
fn test_registry() -> imagebuild::registry::Registry {
    imagebuild::registry::Registry::new(imagebuild::registry::RegistryConfig {
        explicit: Some(registry_creds()),
        ..Default::default()
    })
}

/// Every tag of `repo` in the test registry.
async fn registry_tags(repo: &ImageName) -> Vec<String> {
    let mut tags = test_registry().list_tags(repo).await.unwrap();
    tags.sort();
    tags
}
