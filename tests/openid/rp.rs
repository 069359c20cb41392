//! A relying party's view: OpenID clients registered in the test gateway's store, the code
//! flow driven through the login page, and ID tokens verified against the published JWKS.

use std::collections::HashMap;

use authgate::store::{GrantType, KeyAlg, NewClient};
use jsonwebtoken::jwk::JwkSet;
use jsonwebtoken::{DecodingKey, Validation};
use serde_json::Value;

use crate::browser::*;
use crate::harness::*;
use crate::support::{Resp, get};

/// A confidential OpenID client without a scope list (so the OpenID scopes are allowed).
pub const RP: &str = "rp";
/// The same, registered for ES256 ID tokens.
pub const RP_ES: &str = "rp-es";
/// A public client (PKCE) without a scope list.
pub const RP_PUBLIC: &str = "rp-public";
/// The post-logout redirect URI `rp` registered.
pub const BYE: &str = "https://app.example/bye";

/// The harness's gateway plus the OpenID clients.
pub async fn openid_setup() -> Setup {
    openid_setup_with(crate::support::GatewayConfig::new()).await
}

pub async fn openid_setup_with(config: crate::support::GatewayConfig) -> Setup {
    let s = setup_with(config).await;
    let now = authgate::store::now();
    use GrantType::*;
    let client = |id: &str, public: bool| NewClient {
        scopes: Vec::new(),
        post_logout_redirect_uris: vec![BYE.into()],
        ..crate::support::oauth_client(id, public, vec![AuthorizationCode, RefreshToken], REDIRECT)
    };
    let clients = [
        client(RP, false),
        NewClient {
            id_token_alg: Some(KeyAlg::Es256),
            ..client(RP_ES, false)
        },
        client(RP_PUBLIC, true),
    ];
    crate::support::add_clients(&s.store, clients, SECRET, now).await;
    s
}

/// Signs alice in through the login page with `extra` authorization parameters (the scope
/// among them); returns the browser (with its session) and the redirect's parameters.
pub async fn sign_in(s: &Setup, client: &str, extra: &str) -> (Browser, HashMap<String, String>) {
    let mut browser = Browser::default();
    let r = browser
        .login(s, &authorize_url(client, extra), "alice", PASSWORD)
        .await;
    let back = redirect_params(&r, false);
    (browser, back)
}

/// Redeems `code` for `client` (confidential, Basic).
pub async fn redeem(s: &Setup, client: &str, code: &str) -> Resp {
    s.post(
        "/oauth2/token",
        Auth::Basic(client, SECRET),
        &[
            ("grant_type", "authorization_code"),
            ("code", code),
            ("redirect_uri", REDIRECT),
        ],
    )
    .await
}

/// The code flow with `scope=openid …` for `client`: the token response.
pub async fn openid_tokens(s: &Setup, client: &str, extra: &str) -> Value {
    let (_, back) = sign_in(s, client, extra).await;
    let r = redeem(s, client, &back["code"]).await;
    assert_eq!(r.status, 200, "{}", r.text());
    r.json()
}

/// Verifies an ID token's signature against the gateway's JWKS (and `iss`, `aud`, `exp`), as
/// a relying party would; returns its claims.
pub async fn verify_id_token(s: &Setup, token: &str, audience: &str) -> Value {
    let jwks: JwkSet = serde_json::from_str(
        &get(&s.gw.client(false), &s.gw.url("/.well-known/jwks.json"))
            .await
            .text(),
    )
    .unwrap();
    let header = jsonwebtoken::decode_header(token).unwrap();
    let jwk = jwks
        .find(header.kid.as_deref().unwrap())
        .expect("the kid is published");
    let key = DecodingKey::from_jwk(jwk).unwrap();
    let mut validation = Validation::new(header.alg);
    validation.set_issuer(&[ISSUER]);
    validation.set_audience(&[audience]);
    jsonwebtoken::decode::<Value>(token, &key, &validation)
        .unwrap()
        .claims
}
