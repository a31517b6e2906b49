//! ECR tokens through GetAuthorizationToken with the standard AWS credential chain.

use std::collections::HashMap;
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};

use base64::Engine as _;

use super::{BasicCredentials, RegistryError};

/// ECR tokens live 12 h; reuse one for an hour across publishes in this process.
const TOKEN_REUSE: Duration = Duration::from_secs(3600);

type TokenCache = Mutex<HashMap<(String, String, Option<String>), (BasicCredentials, Instant)>>;

fn cache() -> &'static TokenCache {
    static CACHE: OnceLock<TokenCache> = OnceLock::new();
    CACHE.get_or_init(|| Mutex::new(HashMap::new()))
}

/// An ECR token for `registry`, from the process-wide cache or GetAuthorizationToken.
pub(crate) async fn authorization_token(
    registry: &str,
    region: &str,
    endpoint: Option<&str>,
) -> Result<BasicCredentials, RegistryError> {
    let key = (
        registry.to_string(),
        region.to_string(),
        endpoint.map(str::to_string),
    );
    if let Some((c, at)) = cache().lock().ok().and_then(|m| m.get(&key).cloned()) {
        if at.elapsed() < TOKEN_REUSE {
            return Ok(c);
        }
    }
    let c = fetch_token(registry, region, endpoint).await?;
    if let Ok(mut m) = cache().lock() {
        m.insert(key, (c.clone(), Instant::now()));
    }
    Ok(c)
}

/// Fetches and decodes an ECR authorization token (`AWS:<password>`).
async fn fetch_token(
    registry: &str,
    region: &str,
    endpoint: Option<&str>,
) -> Result<BasicCredentials, RegistryError> {
    let err = |detail: String| RegistryError::Ecr {
        registry: registry.to_string(),
        region: region.to_string(),
        detail,
    };
    let shared = aws_config::defaults(aws_config::BehaviorVersion::latest())
        .region(aws_config::Region::new(region.to_string()))
        .load()
        .await;
    let mut builder = aws_sdk_ecr::config::Builder::from(&shared);
    if let Some(ep) = endpoint {
        builder = builder.endpoint_url(ep);
    }
    let client = aws_sdk_ecr::Client::from_conf(builder.build());
    let out = client
        .get_authorization_token()
        .send()
        .await
        .map_err(|e| err(aws_sdk_ecr::error::DisplayErrorContext(e).to_string()))?;
    let token = out
        .authorization_data()
        .iter()
        .find_map(|d| d.authorization_token())
        .ok_or_else(|| err("the answer held no authorization token".into()))?;
    let decoded = base64::engine::general_purpose::STANDARD
        .decode(token.trim())
        .map_err(|_| err("the authorization token is not base64".into()))?;
    let text = String::from_utf8(decoded).map_err(|_| err("the token is not UTF-8".into()))?;
    let (user, pass) = text
        .split_once(':')
        .ok_or_else(|| err("the token is not of the form user:password".into()))?;
    Ok(BasicCredentials {
        username: user.to_string(),
        password: pass.to_string(),
    })
}
