//! RFC 8414 authorization server metadata: what the `oauth2` dialect serves, built once from
//! the configuration.

use serde_json::{Map, Value, json};

use super::TOKEN_EXCHANGE;
use crate::config::Oauth2Config;
use crate::keyring::JWKS_PATH;

/// RFC 8414 §2, from the configured issuer (never from the request's Host header).
pub(super) fn metadata(config: &Oauth2Config, issuer: &str) -> Value {
    let base = issuer.trim_end_matches('/');
    let url = |path: &Option<String>| path.as_ref().map(|p| format!("{base}{p}"));
    let auth_methods = ["client_secret_basic", "client_secret_post", "none"];
    let mut body = Map::new();
    body.insert("issuer".into(), issuer.into());
    body.insert("jwks_uri".into(), format!("{base}{JWKS_PATH}").into());
    for (name, path) in [
        ("authorization_endpoint", &config.authorize_page),
        ("token_endpoint", &config.token),
        ("revocation_endpoint", &config.revoke),
        ("introspection_endpoint", &config.introspect),
    ] {
        if let Some(url) = url(path) {
            body.insert(name.into(), url.into());
        }
    }
    body.insert(
        "grant_types_supported".into(),
        json!([
            "authorization_code",
            "implicit",
            "password",
            "client_credentials",
            "refresh_token",
            TOKEN_EXCHANGE
        ]),
    );
    // The seed's authorization endpoint serves `code`; implicit has its own page
    // (`/open/implicit`), for which RFC 8414 has no field.
    let mut response_types = Vec::new();
    if config.authorize_page.is_some() {
        response_types.push("code");
    }
    if config.implicit.is_some() {
        response_types.push("token");
    }
    body.insert("response_types_supported".into(), json!(response_types));
    body.insert(
        "token_endpoint_auth_methods_supported".into(),
        json!(auth_methods),
    );
    body.insert(
        "revocation_endpoint_auth_methods_supported".into(),
        json!(auth_methods),
    );
    body.insert(
        "introspection_endpoint_auth_methods_supported".into(),
        json!(["client_secret_basic", "client_secret_post"]),
    );
    body.insert("code_challenge_methods_supported".into(), json!(["S256"]));
    Value::Object(body)
}
