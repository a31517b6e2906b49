//! ECR tokens through GetAuthorizationToken with the standard AWS credential chain.

use base64::Engine as _;

use super::{BasicCredentials, RegistryError};

/// Fetches and decodes an ECR authorization token (`AWS:<password>`).
pub(crate) async fn authorization_token(
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
