//! RFC 8707 resource indicators over real TLS: access tokens addressed to the API that will
//! receive them (`aud`), refused by routes serving another; `invalid_target`; a refresh or an
//! exchange narrowing, never widening; the code flow; the legacy dialects unchanged.
#![allow(clippy::unwrap_used)]

mod support;

#[path = "oauth2/harness.rs"]
#[allow(dead_code)]
mod harness;

#[path = "oauth2/browser.rs"]
#[allow(dead_code)]
mod browser;

use authgate::store::{ClientPatch, GrantType, NewClient};
use browser::*;
use bytes::Bytes;
use harness::*;
use http_body_util::Full;
use hyper::Request;
use serde_json::{Value, json};
use support::{GatewayConfig, Resp, jwt_claims, send};

const ORDERS: &str = "https://api.example/orders";
const BILLING: &str = "https://api.example/billing";
const OTHER: &str = "https://api.example/other";
/// A client registered for ORDERS, BILLING and OTHER, default ORDERS.
const RES: &str = "res";

async fn resource_setup(extra: &str) -> Setup {
    let config = GatewayConfig::new()
        .section(extra)
        .route(&format!(
            "prefix = \"/orders\"\nupstream = \"builtin:echo\"\naudiences = [\"{ORDERS}\"]\nallow_clients = true"
        ))
        .route(&format!(
            "prefix = \"/billing\"\nupstream = \"builtin:echo\"\naudiences = [\"{BILLING}\"]"
        ));
    let s = setup_with(config).await;
    use GrantType::*;
    let client = NewClient {
        resources: vec![ORDERS.into(), BILLING.into(), OTHER.into()],
        default_resource: Some(ORDERS.into()),
        ..support::oauth_client(
            RES,
            false,
            vec![
                Password,
                RefreshToken,
                AuthorizationCode,
                ClientCredentials,
                TokenExchange,
            ],
            REDIRECT,
        )
    };
    support::add_clients(&s.store, [client], SECRET, authgate::store::now()).await;
    s
}

/// A password grant for alice at `/oauth2/token` by `RES` with `resources`.
async fn password(s: &Setup, account: &str, resources: &[&str]) -> Resp {
    let mut params = vec![
        ("grant_type", "password"),
        ("username", account),
        ("password", PASSWORD),
    ];
    params.extend(resources.iter().map(|r| ("resource", *r)));
    s.post("/oauth2/token", Auth::Basic(RES, SECRET), &params)
        .await
}

async fn call(s: &Setup, path: &str, token: &str) -> Resp {
    let request = Request::get(s.gw.url(path))
        .header("authorization", format!("Bearer {token}"))
        .body(Full::new(Bytes::new()))
        .unwrap();
    send(&s.gw.client(false), request).await
}

fn access(body: &Value) -> &str {
    body["access_token"].as_str().unwrap()
}

#[tokio::test]
async fn a_token_for_one_api_is_refused_by_another() {
    let s = resource_setup("").await;
    let r = password(&s, "alice", &[ORDERS]).await;
    assert_eq!(r.status, 200, "{}", r.text());
    let token = r.json();
    assert_eq!(jwt_claims(access(&token))["aud"], json!([ORDERS]));
    assert_eq!(call(&s, "/orders/1", access(&token)).await.status, 200);
    let refused = call(&s, "/billing/1", access(&token)).await;
    assert_eq!(refused.status, 401);
    assert_eq!(refused.json()["error"], "invalid_token");

    // Both: both routes. None: the client's default.
    let both = password(&s, "alice", &[ORDERS, BILLING]).await.json();
    assert_eq!(jwt_claims(access(&both))["aud"], json!([ORDERS, BILLING]));
    assert_eq!(call(&s, "/orders", access(&both)).await.status, 200);
    assert_eq!(call(&s, "/billing", access(&both)).await.status, 200);
    let default = password(&s, "alice", &[]).await.json();
    assert_eq!(jwt_claims(access(&default))["aud"], json!([ORDERS]));
    // Introspection says what the token says.
    let r = s
        .post(
            "/oauth2/introspect",
            Auth::Basic(RES, SECRET),
            &[("token", access(&both))],
        )
        .await;
    assert_eq!(r.json()["aud"], json!([ORDERS, BILLING]));
    // Client credentials too.
    let r = s
        .post(
            "/oauth2/token",
            Auth::Basic(RES, SECRET),
            &[("grant_type", "client_credentials"), ("resource", ORDERS)],
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(jwt_claims(access(&r.json()))["aud"], json!([ORDERS]));
}

#[tokio::test]
async fn clients_without_resources_see_no_change() {
    let s = resource_setup("").await;
    let token = s.login("web", "alice").await;
    assert_eq!(jwt_claims(access(&token))["aud"], json!(["web"]));
    // Such a token is for no API in particular: routes with audiences refuse it.
    assert_eq!(call(&s, "/orders", access(&token)).await.status, 401);
    assert_eq!(call(&s, "/echo", access(&token)).await.status, 200);
    // And it may not ask for one.
    let r = s
        .post(
            "/oauth2/token",
            Auth::Basic("web", SECRET),
            &[
                ("grant_type", "password"),
                ("username", "alice"),
                ("password", PASSWORD),
                ("resource", ORDERS),
            ],
        )
        .await;
    assert_oauth_error(&r, 400, "invalid_target");
}

#[tokio::test]
async fn invalid_targets_are_refused() {
    let s = resource_setup("").await;
    for bad in [
        "/orders",
        "orders",
        "https://api.example/orders#frag",
        "https://api.example/unregistered",
    ] {
        let r = password(&s, "alice", &[bad]).await;
        assert_oauth_error(&r, 400, "invalid_target");
    }
}

#[tokio::test]
async fn a_refresh_may_ask_for_a_subset_never_more() {
    let s = resource_setup("").await;
    let first = password(&s, "alice", &[ORDERS, BILLING]).await.json();
    let refresh = |token: String, resources: Vec<&'static str>| {
        let s = &s;
        async move {
            let mut params = vec![
                ("grant_type", "refresh_token"),
                ("refresh_token", token.as_str()),
            ];
            params.extend(resources.into_iter().map(|r| ("resource", r)));
            s.post("/oauth2/token", Auth::Basic(RES, SECRET), &params)
                .await
        }
    };
    let rt = first["refresh_token"].as_str().unwrap().to_owned();
    let narrowed = refresh(rt, vec![BILLING]).await;
    assert_eq!(narrowed.status, 200, "{}", narrowed.text());
    let narrowed = narrowed.json();
    assert_eq!(jwt_claims(access(&narrowed))["aud"], json!([BILLING]));
    // The family keeps both: the next refresh may ask for ORDERS again …
    let rt = narrowed["refresh_token"].as_str().unwrap().to_owned();
    let again = refresh(rt, vec![]).await.json();
    assert_eq!(jwt_claims(access(&again))["aud"], json!([ORDERS, BILLING]));
    // … but never for what was not granted (and a refused widening costs nothing).
    let rt = again["refresh_token"].as_str().unwrap().to_owned();
    let r = refresh(rt.clone(), vec![OTHER]).await;
    assert_oauth_error(&r, 400, "invalid_target");
    assert_eq!(refresh(rt, vec![ORDERS]).await.status, 200);
}

#[tokio::test]
async fn an_exchange_narrows_never_widens() {
    let s = resource_setup("").await;
    let boss = password(&s, "boss", &[ORDERS, BILLING]).await.json();
    let exchange = |resources: Vec<&'static str>| {
        let s = &s;
        let subject = access(&boss).to_owned();
        async move {
            let alice = ALICE.to_string();
            let mut params = vec![
                (
                    "grant_type",
                    "urn:ietf:params:oauth:grant-type:token-exchange",
                ),
                ("subject_token", subject.as_str()),
                (
                    "subject_token_type",
                    "urn:ietf:params:oauth:token-type:access_token",
                ),
                ("requested_subject", alice.as_str()),
            ];
            params.extend(resources.into_iter().map(|r| ("resource", r)));
            s.post("/oauth2/token", Auth::Basic(RES, SECRET), &params)
                .await
        }
    };
    let r = exchange(vec![BILLING]).await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(jwt_claims(access(&r.json()))["aud"], json!([BILLING]));
    let r = exchange(vec![]).await;
    assert_eq!(
        jwt_claims(access(&r.json()))["aud"],
        json!([ORDERS, BILLING])
    );
    // OTHER is registered for the client, but the admin's token was not for it.
    let r = exchange(vec![OTHER]).await;
    assert_oauth_error(&r, 400, "invalid_target");
}

#[tokio::test]
async fn the_code_flow_remembers_the_resources_with_the_code() {
    let s = resource_setup("").await;
    let resource: String = form_urlencoded::byte_serialize(BILLING.as_bytes()).collect();
    let other: String = form_urlencoded::byte_serialize(OTHER.as_bytes()).collect();
    let mut browser = Browser::default();
    let url = authorize_url(
        RES,
        &format!("&scope=read&resource={resource}&resource={other}"),
    );
    let r = browser.login(&s, &url, "alice", PASSWORD).await;
    let back = redirect_params(&r, false);
    // At the token endpoint: a subset of what the authorization named.
    let r = s
        .post(
            "/oauth2/token",
            Auth::Basic(RES, SECRET),
            &[
                ("grant_type", "authorization_code"),
                ("code", &back["code"]),
                ("redirect_uri", REDIRECT),
                ("resource", BILLING),
            ],
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text());
    let tokens = r.json();
    assert_eq!(jwt_claims(access(&tokens))["aud"], json!([BILLING]));
    // The refresh family has both.
    let r = s
        .refresh(RES, tokens["refresh_token"].as_str().unwrap())
        .await;
    assert_eq!(
        jwt_claims(access(&r.json()))["aud"],
        json!([BILLING, OTHER])
    );

    // A resource the client may not use is refused to the redirect URI.
    let unregistered: String =
        form_urlencoded::byte_serialize(b"https://api.example/unregistered").collect();
    let r = browser
        .get(
            &s,
            &authorize_url(RES, &format!("&resource={unregistered}")),
        )
        .await;
    let back = redirect_params(&r, false);
    assert_eq!(back["error"], "invalid_target");
    assert_eq!(back["state"], "st ate");
    // Asking at the token endpoint for one the authorization did not name: refused.
    let (_, back) = {
        let mut b = Browser::default();
        let r = b
            .login(
                &s,
                &authorize_url(RES, &format!("&resource={resource}")),
                "alice",
                PASSWORD,
            )
            .await;
        (b, redirect_params(&r, false))
    };
    let r = s
        .post(
            "/oauth2/token",
            Auth::Basic(RES, SECRET),
            &[
                ("grant_type", "authorization_code"),
                ("code", &back["code"]),
                ("redirect_uri", REDIRECT),
                ("resource", ORDERS),
            ],
        )
        .await;
    assert_oauth_error(&r, 400, "invalid_target");
}

#[tokio::test]
async fn the_legacy_dialects_keep_their_aud() {
    let s = resource_setup("[dialects.passport]\nrsa_bits = 2048").await;
    // `web` may use resources and has a default: the passport token still says the client.
    let patch = ClientPatch {
        resources: Some(vec![ORDERS.into()]),
        default_resource: Some(Some(ORDERS.into())),
        ..ClientPatch::default()
    };
    s.store
        .update_client("web", patch, authgate::store::now())
        .await
        .unwrap();
    let r = s
        .post(
            "/oauth/token",
            Auth::Post("web", SECRET),
            &[
                ("grant_type", "password"),
                ("username", "+86 138 0000 0000"),
                ("password", PASSWORD),
                ("resource", BILLING),
            ],
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(jwt_claims(access(&r.json()))["aud"], "web");
}

#[tokio::test]
async fn the_metadata_names_the_protected_resources() {
    let s = resource_setup("").await;
    let doc = support::get(
        &s.gw.client(false),
        &s.gw.url("/.well-known/oauth-authorization-server"),
    )
    .await
    .json();
    assert_eq!(doc["protected_resources"], json!([BILLING, ORDERS]));
}

#[tokio::test]
async fn opaque_tokens_are_addressed_too() {
    let s = resource_setup("[dialects.oauth2]\ntoken_format = \"opaque\"").await;
    let token = password(&s, "alice", &[ORDERS]).await.json();
    assert_eq!(access(&token).len(), 43, "an opaque reference");
    assert_eq!(call(&s, "/orders", access(&token)).await.status, 200);
    assert_eq!(call(&s, "/billing", access(&token)).await.status, 401);
    let r = s
        .post(
            "/oauth2/introspect",
            Auth::Basic(RES, SECRET),
            &[("token", access(&token))],
        )
        .await;
    assert_eq!(r.json()["aud"], json!([ORDERS]));
    // Rotated with the refresh token (one statement on PostgreSQL): still addressed.
    let r = s
        .refresh(RES, token["refresh_token"].as_str().unwrap())
        .await
        .json();
    assert_eq!(call(&s, "/orders", access(&r)).await.status, 200);
    assert_eq!(call(&s, "/billing", access(&r)).await.status, 401);
}

/// A token request through the engine itself, as a dialect would send it.
fn engine_request(
    grant: authgate::grant::GrantRequest,
    resources: &[&str],
    rfc8707: bool,
) -> authgate::grant::TokenRequest {
    authgate::grant::TokenRequest {
        client: authgate::grant::ClientCredentials::Basic {
            id: RES.into(),
            secret: SECRET.into(),
        },
        grant,
        scope: None,
        resources: resources.iter().map(|r| (*r).to_owned()).collect(),
        source: "127.0.0.1".parse().unwrap(),
        options: authgate::grant::IssueOptions {
            resource_indicators: rfc8707,
            ..authgate::grant::IssueOptions::default()
        },
    }
}

#[tokio::test]
async fn a_dialect_without_resources_cannot_unbind_a_bound_token() {
    use authgate::grant::{GrantRequest, Login};
    let s = resource_setup("").await;
    let password = |account: &str| GrantRequest::Password {
        login: Login::AnyName(account.into()),
        password: PASSWORD.into(),
    };
    // A bound admin token and a bound refresh family, from the oauth2 dialect.
    let boss = s
        .engine
        .token(engine_request(password("boss"), &[ORDERS], true))
        .await
        .unwrap();
    let alice = s
        .engine
        .token(engine_request(password("alice"), &[ORDERS], true))
        .await
        .unwrap();
    // A legacy dialect (no resource indicators) may neither exchange nor refresh them: its
    // token would be addressed to no API, so valid on every route without audiences.
    let exchange = GrantRequest::TokenExchange {
        subject_token: boss.access_token.clone(),
        user_id: Some(ALICE),
        group_id: None,
    };
    let error = s
        .engine
        .token(engine_request(exchange, &[], false))
        .await
        .unwrap_err();
    assert_eq!(error.code(), "invalid_target");
    let refresh = GrantRequest::RefreshToken {
        refresh_token: alice.refresh_token.clone().unwrap(),
    };
    let error = s
        .engine
        .token(engine_request(refresh, &[], false))
        .await
        .unwrap_err();
    assert_eq!(error.code(), "invalid_target");
    // The refusal spent nothing: the oauth2 dialect still refreshes it.
    let refresh = GrantRequest::RefreshToken {
        refresh_token: alice.refresh_token.unwrap(),
    };
    let grant = s
        .engine
        .token(engine_request(refresh, &[], true))
        .await
        .unwrap();
    assert_eq!(jwt_claims(&grant.access_token)["aud"], json!([ORDERS]));
}

#[tokio::test]
async fn a_refused_resource_does_not_spend_the_code() {
    let s = resource_setup("").await;
    let mut browser = Browser::default();
    let r = browser
        .login(&s, &authorize_url(RES, "&scope=read"), "alice", PASSWORD)
        .await;
    let back = redirect_params(&r, false);
    let redeem = |resource: &'static str| {
        let s = &s;
        let code = back["code"].clone();
        async move {
            s.post(
                "/oauth2/token",
                Auth::Basic(RES, SECRET),
                &[
                    ("grant_type", "authorization_code"),
                    ("code", &code),
                    ("redirect_uri", REDIRECT),
                    ("resource", resource),
                ],
            )
            .await
        }
    };
    assert_oauth_error(
        &redeem("https://api.example/unregistered").await,
        400,
        "invalid_target",
    );
    let r = redeem(BILLING).await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(jwt_claims(access(&r.json()))["aud"], json!([BILLING]));
}
