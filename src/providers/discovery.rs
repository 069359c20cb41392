//! A provider's discovery document (OpenID Connect Discovery 1.0): fetched from
//! `<issuer>/.well-known/openid-configuration`, its `issuer` equal to the configured one
//! (§4.3), its endpoints https (or, for a test provider, http on 127.0.0.1).

use hyper::Uri;
use serde_json::{Map, Value};

use super::ProviderError;
use crate::config::ProviderConfig;

/// How we authenticate at the token endpoint.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClientAuth {
    /// HTTP Basic (RFC 6749 §2.3.1), the default when the document names none.
    Basic,
    /// `client_id` and `client_secret` in the form.
    Post,
    /// A public client: `client_id` only (PKCE protects the code).
    None,
}

/// What we use of a discovery document.
#[derive(Debug, Clone)]
pub struct Discovery {
    /// Where the browser is sent.
    pub authorization_endpoint: Uri,
    /// Where the code is redeemed.
    pub token_endpoint: Uri,
    /// Claims the ID token lacks.
    pub userinfo_endpoint: Option<Uri>,
    /// The ID tokens' keys.
    pub jwks_uri: Uri,
    /// Our authentication at the token endpoint.
    pub client_auth: ClientAuth,
    /// RFC 9207: the provider puts `iss` on its authorization responses, so one is required.
    pub iss_parameter: bool,
}

/// The discovery document's URL.
pub fn url(issuer: &str) -> Result<Uri, ProviderError> {
    format!(
        "{}/.well-known/openid-configuration",
        issuer.trim_end_matches('/')
    )
    .parse()
    .map_err(|_| ProviderError::invalid("discovery", "the issuer does not make a URL"))
}

/// Reads a fetched document against `config`.
pub fn parse(
    config: &ProviderConfig,
    doc: &Map<String, Value>,
) -> Result<Discovery, ProviderError> {
    let bad = |message: String| ProviderError::invalid("discovery", message);
    if doc.get("issuer").and_then(Value::as_str) != Some(config.issuer.as_str()) {
        return Err(bad(format!(
            "the document's issuer is not `{}` (OpenID Connect Discovery §4.3)",
            config.issuer
        )));
    }
    let endpoint = |name: &str| -> Result<Option<Uri>, ProviderError> {
        let Some(text) = doc.get(name).and_then(Value::as_str) else {
            return Ok(None);
        };
        let uri: Uri = text
            .parse()
            .map_err(|_| bad(format!("{name} is not a URL")))?;
        let loopback = config.insecure_loopback
            && uri.scheme_str() == Some("http")
            && uri.host() == Some("127.0.0.1");
        if uri.scheme_str() != Some("https") && !loopback {
            return Err(bad(format!("{name} is not https")));
        }
        Ok(Some(uri))
    };
    let required = |name: &str| endpoint(name)?.ok_or_else(|| bad(format!("{name} is missing")));
    let methods: Vec<&str> = doc
        .get("token_endpoint_auth_methods_supported")
        .and_then(Value::as_array)
        .map(|list| list.iter().filter_map(Value::as_str).collect())
        .unwrap_or_else(|| vec!["client_secret_basic"]);
    let client_auth = if config.client_secret.is_none() {
        ClientAuth::None
    } else if methods.contains(&"client_secret_basic") {
        ClientAuth::Basic
    } else if methods.contains(&"client_secret_post") {
        ClientAuth::Post
    } else {
        return Err(bad(format!(
            "the token endpoint takes none of client_secret_basic, client_secret_post (it takes {methods:?})"
        )));
    };
    Ok(Discovery {
        authorization_endpoint: required("authorization_endpoint")?,
        token_endpoint: required("token_endpoint")?,
        userinfo_endpoint: endpoint("userinfo_endpoint")?,
        jwks_uri: required("jwks_uri")?,
        client_auth,
        iss_parameter: doc
            .get("authorization_response_iss_parameter_supported")
            .and_then(Value::as_bool)
            .unwrap_or(false),
    })
}
