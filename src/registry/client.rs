//! Registry HTTP API v2 client: Basic and Bearer-token auth, manifest HEAD/DELETE, tag listing.

use std::collections::HashMap;
use std::time::Duration;

use reqwest::{Method, StatusCode};
use sha2::Digest as _;
use tokio::sync::Mutex;

use super::blob_cache::BlobCache;
use super::credentials::{self, ResolvedCredentials};
use super::name::is_insecure_host;
use super::{ImageName, RegistryConfig, RegistryError};

/// Media types a manifest HEAD accepts, so the digest is the one the registry serves for any image kind.
pub(crate) const MANIFEST_ACCEPT: &str = "application/vnd.docker.distribution.manifest.v2+json, \
application/vnd.docker.distribution.manifest.list.v2+json, \
application/vnd.oci.image.manifest.v1+json, \
application/vnd.oci.image.index.v1+json";

const ATTEMPTS: u32 = 3;

/// A registry client with cached credentials and tokens; cheap to share behind an Arc.
pub struct Registry {
    config: RegistryConfig,
    http: std::sync::OnceLock<reqwest::Client>,
    creds: Mutex<HashMap<String, ResolvedCredentials>>,
    tokens: Mutex<HashMap<(String, String), String>>,
    blobs: BlobCache,
}

impl std::fmt::Debug for Registry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Registry")
            .field("config", &self.config)
            .finish()
    }
}

impl Registry {
    /// A client that resolves credentials per `config`.
    pub fn new(config: RegistryConfig) -> Registry {
        Registry {
            config,
            http: std::sync::OnceLock::new(),
            creds: Mutex::new(HashMap::new()),
            tokens: Mutex::new(HashMap::new()),
            blobs: BlobCache::new(BlobCache::default_dir()),
        }
    }

    /// The same client caching manifests and config facts under `dir` instead of
    /// `crate::context::default_cache_dir()/blobs`.
    pub fn with_blob_cache_dir(mut self, dir: std::path::PathBuf) -> Registry {
        self.blobs = BlobCache::new(dir);
        self
    }

    /// The on-disk cache of manifests and config facts.
    pub(super) fn blob_cache(&self) -> &BlobCache {
        &self.blobs
    }

    /// The HTTP client, made on first use (TLS set-up is not free and many Registries never call out).
    fn http(&self) -> &reqwest::Client {
        self.http.get_or_init(|| {
            reqwest::Client::builder()
                .connect_timeout(Duration::from_secs(10))
                .timeout(Duration::from_secs(60))
                .user_agent(concat!("imagebuild/", env!("CARGO_PKG_VERSION")))
                .build()
                .unwrap_or_else(|_| reqwest::Client::new())
        })
    }

    /// The configuration this client was made with.
    pub fn config(&self) -> &RegistryConfig {
        &self.config
    }

    /// Credentials for `registry` (host[:port]) in the order explicit -> ECR -> Docker config; cached.
    pub async fn credentials(&self, registry: &str) -> Result<ResolvedCredentials, RegistryError> {
        if let Some(found) = self.creds.lock().await.get(registry) {
            return Ok(found.clone());
        }
        let found = credentials::resolve(&self.config, registry).await?;
        self.creds
            .lock()
            .await
            .insert(registry.to_string(), found.clone());
        Ok(found)
    }

    /// Digest the registry serves for `reference` (tag or digest); None only on a definite 404.
    pub async fn manifest_digest(
        &self,
        name: &ImageName,
        reference: &str,
    ) -> Result<Option<String>, RegistryError> {
        let what = format!("manifest HEAD of {}:{reference}", name);
        let path = format!("{}/manifests/{reference}", name.repository);
        let resp = self.send(name, Method::HEAD, &path, "pull", &what).await?;
        match resp.status() {
            StatusCode::NOT_FOUND => Ok(None),
            s if s.is_success() => {
                if let Some(d) = resp
                    .headers()
                    .get("Docker-Content-Digest")
                    .and_then(|v| v.to_str().ok())
                {
                    return Ok(Some(d.to_string()));
                }
                // Some registries omit the header on HEAD: hash the exact bytes served instead.
                let resp = self.send(name, Method::GET, &path, "pull", &what).await?;
                let body = resp
                    .bytes()
                    .await
                    .map_err(|e| self.unreachable(name, &path, e))?;
                Ok(Some(format!(
                    "sha256:{}",
                    hex::encode(sha2::Sha256::digest(&body))
                )))
            }
            s => Err(self.http_error(name, &what, s, resp).await),
        }
    }

    /// The raw manifest `reference` with its media type.
    pub async fn manifest(
        &self,
        name: &ImageName,
        reference: &str,
    ) -> Result<Option<(String, bytes::Bytes)>, RegistryError> {
        let what = format!("manifest GET of {name}:{reference}");
        let path = format!("{}/manifests/{reference}", name.repository);
        let resp = self.send(name, Method::GET, &path, "pull", &what).await?;
        match resp.status() {
            StatusCode::NOT_FOUND => Ok(None),
            s if s.is_success() => {
                let ct = resp
                    .headers()
                    .get(reqwest::header::CONTENT_TYPE)
                    .and_then(|v| v.to_str().ok())
                    .unwrap_or("application/vnd.docker.distribution.manifest.v2+json")
                    .to_string();
                let body = resp
                    .bytes()
                    .await
                    .map_err(|e| self.unreachable(name, &path, e))?;
                Ok(Some((ct, body)))
            }
            s => Err(self.http_error(name, &what, s, resp).await),
        }
    }

    /// The image config digest (= Docker image id) of a single-platform manifest; None for an index.
    pub async fn config_digest(
        &self,
        name: &ImageName,
        digest: &str,
    ) -> Result<Option<String>, RegistryError> {
        Ok(self.image_parts(name, digest).await?.map(|p| p.config))
    }

    /// The config digest and layer blobs of the single-platform manifest `digest`; None when the
    /// registry has no such manifest or it is an index.
    pub async fn image_parts(
        &self,
        name: &ImageName,
        digest: &str,
    ) -> Result<Option<ImageParts>, RegistryError> {
        let Some((_, body)) = self.manifest(name, digest).await? else {
            return Ok(None);
        };
        let v: serde_json::Value = serde_json::from_slice(&body).unwrap_or_default();
        let Some(config) = v.pointer("/config/digest").and_then(|d| d.as_str()) else {
            return Ok(None);
        };
        let layers = v["layers"]
            .as_array()
            .map(Vec::as_slice)
            .unwrap_or_default();
        let layers = layers
            .iter()
            .filter_map(|l| Some((l["digest"].as_str()?.to_string(), l["size"].as_u64()?)))
            .collect();
        Ok(Some(ImageParts {
            config: config.to_string(),
            layers,
        }))
    }

    /// Points `tag` at the existing manifest `digest` (no image data moves).
    pub async fn put_tag(
        &self,
        name: &ImageName,
        digest: &str,
        tag: &str,
    ) -> Result<(), RegistryError> {
        let what = format!("tagging {} as {tag}", name.with_digest(digest));
        let Some((ct, body)) = self.manifest(name, digest).await? else {
            return Err(RegistryError::Http {
                registry: name.registry.clone(),
                what,
                status: 404,
                detail: "the manifest to tag is gone".into(),
            });
        };
        self.put_manifest(name, tag, &ct, body, &what).await
    }

    /// PUTs manifest `body` (of content type `ct`) to `name` under `tag`; `what` names the action in errors.
    pub(super) async fn put_manifest(
        &self,
        name: &ImageName,
        tag: &str,
        ct: &str,
        body: bytes::Bytes,
        what: &str,
    ) -> Result<(), RegistryError> {
        let path = format!("{}/manifests/{tag}", name.repository);
        let resp = self
            .send_body(
                name,
                Method::PUT,
                &path,
                "pull,push",
                what,
                Some((ct, body)),
            )
            .await?;
        match resp.status() {
            s if s.is_success() => Ok(()),
            s => Err(self.http_error(name, what, s, resp).await),
        }
    }

    /// Deletes the manifest `digest`; an already-missing manifest is not an error.
    pub async fn delete_manifest(
        &self,
        name: &ImageName,
        digest: &str,
    ) -> Result<(), RegistryError> {
        let what = format!("manifest DELETE of {}", name.with_digest(digest));
        let path = format!("{}/manifests/{digest}", name.repository);
        let resp = self
            .send(name, Method::DELETE, &path, "pull,push,delete", &what)
            .await?;
        match resp.status() {
            s if s.is_success() || s == StatusCode::NOT_FOUND => Ok(()),
            s => Err(self.http_error(name, &what, s, resp).await),
        }
    }

    /// Tags of `name` whose manifest digest is `digest`.
    pub async fn tags_pointing_at(
        &self,
        name: &ImageName,
        digest: &str,
    ) -> Result<Vec<String>, RegistryError> {
        let mut out = Vec::new();
        for tag in self.list_tags(name).await? {
            if self.manifest_digest(name, &tag).await?.as_deref() == Some(digest) {
                out.push(tag);
            }
        }
        Ok(out)
    }

    /// All tags of `name` (empty when the repository does not exist).
    pub async fn list_tags(&self, name: &ImageName) -> Result<Vec<String>, RegistryError> {
        #[derive(serde::Deserialize)]
        struct TagList {
            #[serde(default)]
            tags: Option<Vec<String>>,
        }
        let what = format!("tag list of {name}");
        let mut path = format!("{}/tags/list?n=1000", name.repository);
        let mut tags = Vec::new();
        loop {
            let resp = self.send(name, Method::GET, &path, "pull", &what).await?;
            if resp.status() == StatusCode::NOT_FOUND {
                return Ok(tags);
            }
            if !resp.status().is_success() {
                let s = resp.status();
                return Err(self.http_error(name, &what, s, resp).await);
            }
            let next = resp
                .headers()
                .get(reqwest::header::LINK)
                .and_then(|v| v.to_str().ok())
                .and_then(parse_next_link);
            let list: TagList = resp.json().await.map_err(|e| RegistryError::Http {
                registry: name.registry.clone(),
                what: what.clone(),
                status: 200,
                detail: format!("unreadable tag list: {e}"),
            })?;
            tags.extend(list.tags.unwrap_or_default());
            match next {
                Some(n) => path = n.trim_start_matches("/v2/").to_string(),
                None => return Ok(tags),
            }
        }
    }

    /// Checks that the resolved credentials are accepted for `actions` (e.g. "pull,push") on `name`.
    pub async fn check_access(&self, name: &ImageName, actions: &str) -> Result<(), RegistryError> {
        let what = format!("access check for {name}");
        let path = format!("{}/tags/list?n=1", name.repository);
        let resp = self.send(name, Method::GET, &path, actions, &what).await?;
        match resp.status() {
            s if s.is_success() || s == StatusCode::NOT_FOUND => Ok(()),
            s => Err(self.http_error(name, &what, s, resp).await),
        }
    }

    fn base_url(name: &ImageName) -> String {
        let scheme = if is_insecure_host(&name.registry) {
            "http"
        } else {
            "https"
        };
        format!("{scheme}://{}/v2/", name.api_host())
    }

    /// Sends a request, answering auth challenges and retrying transient failures.
    pub(super) async fn send(
        &self,
        name: &ImageName,
        method: Method,
        path: &str,
        actions: &str,
        what: &str,
    ) -> Result<reqwest::Response, RegistryError> {
        self.send_body(name, method, path, actions, what, None)
            .await
    }

    /// `send` with a request body (content type, bytes).
    pub(super) async fn send_body(
        &self,
        name: &ImageName,
        method: Method,
        path: &str,
        actions: &str,
        what: &str,
        body: Option<(&str, bytes::Bytes)>,
    ) -> Result<reqwest::Response, RegistryError> {
        let url = format!("{}{path}", Self::base_url(name));
        let scope = format!("repository:{}:{actions}", name.repository);
        let key = (name.registry.clone(), scope.clone());
        let mut answered_challenge = false;
        let mut attempt = 0;
        loop {
            attempt += 1;
            let mut req = self
                .http()
                .request(method.clone(), &url)
                .header(reqwest::header::ACCEPT, MANIFEST_ACCEPT);
            if let Some((ct, b)) = &body {
                req = req
                    .header(reqwest::header::CONTENT_TYPE, *ct)
                    .body(b.clone());
            }
            if let Some(h) = self.tokens.lock().await.get(&key) {
                req = req.header(reqwest::header::AUTHORIZATION, h.clone());
            }
            let resp = match req.send().await {
                Ok(r) => r,
                Err(e) if attempt < ATTEMPTS => {
                    backoff(attempt).await;
                    let _ = e;
                    continue;
                }
                Err(e) => return Err(self.unreachable(name, &url, e)),
            };
            let status = resp.status();
            if status == StatusCode::UNAUTHORIZED && !answered_challenge {
                answered_challenge = true;
                let challenge = resp
                    .headers()
                    .get(reqwest::header::WWW_AUTHENTICATE)
                    .and_then(|v| v.to_str().ok())
                    .unwrap_or("")
                    .to_string();
                let header = self
                    .answer_challenge(name, &challenge, &scope, what)
                    .await?;
                self.tokens.lock().await.insert(key.clone(), header);
                continue;
            }
            if status == StatusCode::UNAUTHORIZED || status == StatusCode::FORBIDDEN {
                let source = self.credentials(&name.registry).await?.source;
                let mut detail = error_summary(resp).await;
                if detail == "(empty body)" {
                    // HEAD answers carry no body; the status says it all.
                    detail = status.canonical_reason().unwrap_or("refused").to_string();
                }
                self.tokens.lock().await.remove(&key);
                return Err(RegistryError::Auth {
                    registry: name.registry.clone(),
                    source_tried: source.to_string(),
                    detail: format!("HTTP {} to {what}: {detail}", status.as_u16()),
                });
            }
            if (status.is_server_error() || status == StatusCode::TOO_MANY_REQUESTS)
                && attempt < ATTEMPTS
            {
                backoff(attempt).await;
                continue;
            }
            return Ok(resp);
        }
    }

    /// Turns a WWW-Authenticate challenge into an Authorization header value.
    async fn answer_challenge(
        &self,
        name: &ImageName,
        challenge: &str,
        scope: &str,
        what: &str,
    ) -> Result<String, RegistryError> {
        let resolved = self.credentials(&name.registry).await?;
        let lower = challenge.to_ascii_lowercase();
        if lower.starts_with("bearer") {
            let params = parse_challenge(challenge);
            let realm = params.get("realm").cloned().unwrap_or_default();
            let mut query: Vec<(String, String)> = Vec::new();
            if let Some(svc) = params.get("service") {
                query.push(("service".into(), svc.clone()));
            }
            query.push((
                "scope".into(),
                params
                    .get("scope")
                    .cloned()
                    .unwrap_or_else(|| scope.to_string()),
            ));
            let mut req = self.http().get(&realm).query(&query);
            if let Some(c) = &resolved.credentials {
                req = req.basic_auth(&c.username, Some(&c.password));
            }
            let resp = req
                .send()
                .await
                .map_err(|e| self.unreachable(name, &realm, e))?;
            if !resp.status().is_success() {
                let status = resp.status().as_u16();
                let detail = error_summary(resp).await;
                return Err(RegistryError::Auth {
                    registry: name.registry.clone(),
                    source_tried: resolved.source.to_string(),
                    detail: format!("token service answered HTTP {status} for {what}: {detail}"),
                });
            }
            #[derive(serde::Deserialize)]
            struct Token {
                token: Option<String>,
                access_token: Option<String>,
            }
            let t: Token = resp.json().await.map_err(|e| RegistryError::Auth {
                registry: name.registry.clone(),
                source_tried: resolved.source.to_string(),
                detail: format!("unreadable token answer: {e}"),
            })?;
            let tok = t.token.or(t.access_token).unwrap_or_default();
            Ok(format!("Bearer {tok}"))
        } else {
            match &resolved.credentials {
                Some(c) => {
                    use base64::Engine as _;
                    let raw = format!("{}:{}", c.username, c.password);
                    Ok(format!(
                        "Basic {}",
                        base64::engine::general_purpose::STANDARD.encode(raw)
                    ))
                }
                None => Err(RegistryError::Auth {
                    registry: name.registry.clone(),
                    source_tried: resolved.source.to_string(),
                    detail: format!("HTTP 401 to {what}: the registry requires credentials"),
                }),
            }
        }
    }

    /// The Unreachable error for a transport failure, with the whole cause chain.
    pub(super) fn unreachable(
        &self,
        name: &ImageName,
        url: &str,
        e: reqwest::Error,
    ) -> RegistryError {
        let mut detail = e.to_string();
        let mut src = std::error::Error::source(&e);
        while let Some(s) = src {
            detail.push_str(": ");
            detail.push_str(&s.to_string());
            src = s.source();
        }
        RegistryError::Unreachable {
            registry: name.registry.clone(),
            url: url.to_string(),
            detail,
        }
    }

    /// The Http error for an unexpected status, with the registry's own message.
    pub(super) async fn http_error(
        &self,
        name: &ImageName,
        what: &str,
        status: StatusCode,
        resp: reqwest::Response,
    ) -> RegistryError {
        RegistryError::Http {
            registry: name.registry.clone(),
            what: what.to_string(),
            status: status.as_u16(),
            detail: error_summary(resp).await,
        }
    }
}

async fn backoff(attempt: u32) {
    tokio::time::sleep(Duration::from_millis(300 * 2u64.pow(attempt - 1))).await;
}

/// The registry's `errors[].message` list, or a short body excerpt.
async fn error_summary(resp: reqwest::Response) -> String {
    #[derive(serde::Deserialize)]
    struct Errs {
        errors: Vec<E>,
    }
    #[derive(serde::Deserialize)]
    struct E {
        #[serde(default)]
        code: String,
        #[serde(default)]
        message: String,
    }
    let body = resp.text().await.unwrap_or_default();
    if let Ok(e) = serde_json::from_str::<Errs>(&body) {
        let parts: Vec<String> = e
            .errors
            .iter()
            .map(|x| format!("{} {}", x.code, x.message).trim().to_string())
            .collect();
        if !parts.is_empty() {
            return parts.join("; ");
        }
    }
    let t = body.trim();
    if t.is_empty() {
        "(empty body)".into()
    } else {
        t.chars().take(200).collect()
    }
}

/// key="value" pairs of a WWW-Authenticate header.
fn parse_challenge(h: &str) -> HashMap<String, String> {
    let re = regex::Regex::new(r#"(\w+)="([^"]*)""#).expect("static regex");
    re.captures_iter(h)
        .map(|c| (c[1].to_ascii_lowercase(), c[2].to_string()))
        .collect()
}

/// `</v2/x/tags/list?n=1&last=a>; rel="next"` -> `/v2/x/tags/list?n=1&last=a`.
fn parse_next_link(h: &str) -> Option<String> {
    let start = h.find('<')? + 1;
    let end = h[start..].find('>')? + start;
    h.contains("rel=\"next\"")
        .then(|| h[start..end].to_string())
}

/// What a single-platform manifest is made of.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImageParts {
    /// The config blob's digest (= Docker image id).
    pub config: String,
    /// The layer blobs: digest and compressed size in bytes.
    pub layers: Vec<(String, u64)>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_bearer_challenge() {
        let p = parse_challenge(
            r#"Bearer realm="https://auth.example/token",service="reg",scope="repository:a/b:pull""#,
        );
        assert_eq!(p["realm"], "https://auth.example/token");
        assert_eq!(p["service"], "reg");
        assert_eq!(p["scope"], "repository:a/b:pull");
    }

    #[test]
    fn parses_link() {
        assert_eq!(
            parse_next_link(r#"</v2/a/tags/list?last=x&n=2>; rel="next""#).as_deref(),
            Some("/v2/a/tags/list?last=x&n=2")
        );
    }
}
