//! ID tokens, UserInfo and the authorization request's OpenID parameters.

use bytes::Bytes;
use http_body_util::Full;
use hyper::Request;
use serde_json::json;

use crate::browser::*;
use crate::harness::*;
use crate::rp::*;
use crate::support::{Resp, send};

const NONCE: &str = "n-0S6_WzA2Mj";

/// UserInfo with `token` as a bearer token (GET).
async fn userinfo(s: &Setup, token: &str) -> Resp {
    let request = Request::get(s.gw.url("/oauth2/userinfo"))
        .header("authorization", format!("Bearer {token}"))
        .body(Full::new(Bytes::new()))
        .unwrap();
    send(&s.gw.client(false), request).await
}

#[tokio::test]
async fn the_code_flow_returns_an_id_token_bound_to_its_nonce() {
    let s = openid_setup().await;
    let extra = format!("&scope=openid%20profile%20email%20phone&nonce={NONCE}");
    let tokens = openid_tokens(&s, RP, &extra).await;
    let access = tokens["access_token"].as_str().unwrap();
    let id_token = tokens["id_token"].as_str().expect("an id_token");
    let header = crate::support::jwt_header(id_token);
    assert_eq!(header["alg"], "RS256", "RS256 by default");
    assert!(header.get("typ").is_none(), "no typ: {header}");
    let claims = verify_id_token(&s, id_token, RP).await;
    assert_eq!(claims["iss"], ISSUER);
    assert_eq!(claims["sub"], ALICE.to_string());
    assert_eq!(claims["aud"], RP);
    assert_eq!(claims["azp"], RP);
    assert_eq!(claims["nonce"], NONCE);
    assert_eq!(claims["amr"], json!(["pwd"]));
    assert_eq!(claims["gid"], 7, "gid is a number");
    assert_eq!(claims["preferred_username"], "alice");
    assert_eq!(claims["email"], "alice@example.com");
    assert_eq!(claims["email_verified"], false);
    assert_eq!(
        claims["phone_number"], "8613800000000",
        "as the store keeps it"
    );
    let now = authgate::store::now();
    let auth_time = claims["auth_time"].as_i64().unwrap();
    assert!((now - 10..=now).contains(&auth_time), "{claims}");
    // at_hash: the left half of SHA-256 of the access token (OpenID Connect Core §3.1.3.6).
    let digest = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, access.as_bytes());
    use base64::Engine as _;
    let expected = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(&digest.as_ref()[..16]);
    assert_eq!(claims["at_hash"], expected);

    // Without a nonce there is none; without `openid` there is no ID token at all.
    let tokens = openid_tokens(&s, RP, "&scope=openid").await;
    let claims = verify_id_token(&s, tokens["id_token"].as_str().unwrap(), RP).await;
    assert!(claims.get("nonce").is_none(), "{claims}");
    assert!(claims.get("email").is_none(), "no email scope: {claims}");
    let tokens = openid_tokens(&s, RP, "&scope=profile").await;
    assert!(tokens.get("id_token").is_none(), "{tokens}");
}

#[tokio::test]
async fn a_nonce_longer_than_512_characters_is_refused_to_the_redirect_uri() {
    let s = openid_setup().await;
    let mut browser = Browser::default();
    let nonce = "n".repeat(513);
    let url = authorize_url(RP, &format!("&scope=openid&nonce={nonce}"));
    let r = browser.get(&s, &url).await;
    let back = redirect_params(&r, false);
    assert_eq!(back["error"], "invalid_request");
    assert_eq!(back["state"], "st ate");
    assert_eq!(back["iss"], ISSUER, "RFC 9207 on errors too");
}

#[tokio::test]
async fn es256_for_clients_that_registered_it_and_a_refresh_keeps_the_identity() {
    let s = openid_setup().await;
    let tokens = openid_tokens(&s, RP_ES, &format!("&scope=openid&nonce={NONCE}")).await;
    let first = tokens["id_token"].as_str().unwrap();
    assert_eq!(crate::support::jwt_header(first)["alg"], "ES256");
    let first = verify_id_token(&s, first, RP_ES).await;
    // A second later, so a new `iat` would show.
    tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
    let r = s
        .refresh(RP_ES, tokens["refresh_token"].as_str().unwrap())
        .await;
    assert_eq!(r.status, 200, "{}", r.text());
    let refreshed = r.json();
    let second = refreshed["id_token"].as_str().expect("a new ID token");
    let second = verify_id_token(&s, second, RP_ES).await;
    for claim in ["iss", "sub", "aud", "azp", "auth_time"] {
        assert_eq!(first[claim], second[claim], "{claim} kept (Core §12.2)");
    }
    assert!(
        second.get("nonce").is_none(),
        "no nonce on refresh: {second}"
    );
    assert!(second["iat"].as_i64() > first["iat"].as_i64());
    // The access token issued with it is what at_hash names, and still works.
    let access = refreshed["access_token"].as_str().unwrap();
    assert_eq!(s.echo(access).await, (200, Some(ALICE.to_string())));
}

#[tokio::test]
async fn an_id_token_never_authenticates_anything() {
    let s = openid_setup().await;
    let tokens = openid_tokens(&s, RP, "&scope=openid").await;
    let id_token = tokens["id_token"].as_str().unwrap();
    // Not on a proxied route …
    let (status, _) = s.echo(id_token).await;
    assert_eq!(status, 401);
    // … nor at UserInfo …
    let r = userinfo(&s, id_token).await;
    assert_eq!(r.status, 401);
    assert!(
        r.header("www-authenticate")
            .unwrap()
            .contains("invalid_token")
    );
    // … nor is it an active token to introspection.
    let r = s
        .post(
            "/oauth2/introspect",
            Auth::Basic(RP, SECRET),
            &[("token", id_token)],
        )
        .await;
    assert_eq!(r.json(), json!({ "active": false }));
    // The access token next to it is fine.
    let access = tokens["access_token"].as_str().unwrap();
    assert_eq!(s.echo(access).await.0, 200);
}

#[tokio::test]
async fn userinfo_releases_what_the_scopes_allow_and_refuses_per_rfc_6750() {
    let s = openid_setup().await;
    let tokens = openid_tokens(&s, RP, "&scope=openid%20email").await;
    let access = tokens["access_token"].as_str().unwrap();
    let r = userinfo(&s, access).await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(
        r.json(),
        json!({ "sub": ALICE.to_string(), "gid": 7, "email": "alice@example.com", "email_verified": false })
    );
    // POST with the token in the form body (RFC 6750 §2.2).
    let r = s
        .post("/oauth2/userinfo", Auth::None, &[("access_token", access)])
        .await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.json()["sub"], ALICE.to_string());

    // No token: a challenge without an error code (RFC 6750 §3.1).
    let request = Request::get(s.gw.url("/oauth2/userinfo"))
        .body(Full::new(Bytes::new()))
        .unwrap();
    let r = send(&s.gw.client(false), request).await;
    assert_eq!(r.status, 401);
    assert_eq!(
        r.header("www-authenticate"),
        Some("Bearer realm=\"authgate\"")
    );
    // A token without `openid`: 403 insufficient_scope.
    let tokens = openid_tokens(&s, RP, "&scope=profile").await;
    let r = userinfo(&s, tokens["access_token"].as_str().unwrap()).await;
    assert_eq!(r.status, 403);
    assert!(
        r.header("www-authenticate")
            .unwrap()
            .contains("error=\"insufficient_scope\"")
    );
    // A client's own token speaks for nobody; garbage is invalid.
    let r = userinfo(&s, "not-a-token").await;
    assert_eq!(r.status, 401);
    assert_eq!(r.json()["error"], "invalid_token");
}

#[tokio::test]
async fn introspection_types_match_the_jwt() {
    let s = openid_setup().await;
    let tokens = s.login("web", "alice").await;
    let access = tokens["access_token"].as_str().unwrap();
    let r = s
        .post(
            "/oauth2/introspect",
            Auth::Basic("web", SECRET),
            &[("token", access)],
        )
        .await;
    let body = r.json();
    let jwt = crate::support::jwt_claims(access);
    for claim in ["gid", "exp", "iat", "sub", "aud", "iss", "jti", "client_id"] {
        assert_eq!(body[claim], jwt[claim], "{claim}: {body} vs {jwt}");
    }
    assert!(body["gid"].is_number());
}

#[tokio::test]
async fn prompt_none_answers_login_required_without_a_session_and_a_code_with_one() {
    let s = openid_setup().await;
    let mut stranger = Browser::default();
    let url = authorize_url(RP, "&scope=openid&prompt=none");
    let r = stranger.get(&s, &url).await;
    let back = redirect_params(&r, false);
    assert_eq!(back["error"], "login_required");
    assert_eq!(back["state"], "st ate");
    assert_eq!(back["iss"], ISSUER);

    let (mut browser, first) = sign_in(&s, RP, "&scope=openid").await;
    assert_eq!(first["iss"], ISSUER, "RFC 9207 on success");
    let r = browser.get(&s, &url).await;
    let back = redirect_params(&r, false);
    assert!(back.contains_key("code"), "{back:?}");
    // The session's sign-in time, not now, is the new ID token's auth_time.
    let tokens = redeem(&s, RP, &back["code"]).await.json();
    let first_tokens_time = {
        let claims = crate::support::jwt_claims(tokens["id_token"].as_str().unwrap());
        claims["auth_time"].as_i64().unwrap()
    };
    assert!(first_tokens_time <= authgate::store::now());
}

#[tokio::test]
async fn prompt_login_and_max_age_ask_again_and_login_hint_prefills() {
    let s = openid_setup().await;
    let (mut browser, _) = sign_in(&s, RP, "&scope=openid").await;
    // prompt=login: the form, although the session is live.
    let r = browser
        .get(
            &s,
            &authorize_url(
                RP,
                "&scope=openid&prompt=login&login_hint=alice%40example.com",
            ),
        )
        .await;
    assert_eq!(r.status, 200, "the login form");
    let html = r.text();
    assert!(
        html.contains("value=\"alice@example.com\""),
        "login_hint prefilled"
    );
    // max_age: a session older than it does not count.
    tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
    let r = browser
        .get(&s, &authorize_url(RP, "&scope=openid&max_age=0"))
        .await;
    assert_eq!(r.status, 200, "the login form again");
    let r = browser
        .get(
            &s,
            &authorize_url(RP, "&scope=openid&max_age=0&prompt=none"),
        )
        .await;
    assert_eq!(redirect_params(&r, false)["error"], "login_required");
    let r = browser
        .get(&s, &authorize_url(RP, "&scope=openid&max_age=3600"))
        .await;
    assert!(redirect_params(&r, false).contains_key("code"));
    // Signing in again under max_age: auth_time is then fresh.
    let r = browser
        .login(
            &s,
            &authorize_url(RP, "&scope=openid&max_age=0"),
            "alice",
            PASSWORD,
        )
        .await;
    let back = redirect_params(&r, false);
    let tokens = redeem(&s, RP, &back["code"]).await.json();
    let claims = verify_id_token(&s, tokens["id_token"].as_str().unwrap(), RP).await;
    assert!(claims["auth_time"].as_i64().unwrap() >= authgate::store::now() - 1);
    // Nonsense is refused to the redirect URI.
    for bad in [
        "&prompt=none%20login",
        "&prompt=sideways",
        "&max_age=-1",
        "&max_age=soon",
    ] {
        let r = browser.get(&s, &authorize_url(RP, bad)).await;
        assert_eq!(
            redirect_params(&r, false)["error"],
            "invalid_request",
            "{bad}"
        );
    }
}

#[tokio::test]
async fn form_post_delivers_the_answer_as_an_auto_submitted_form() {
    let s = openid_setup().await;
    let mut browser = Browser::default();
    let url = authorize_url(
        RP,
        &format!("&scope=openid&response_mode=form_post&nonce={NONCE}"),
    );
    let r = browser.login(&s, &url, "alice", PASSWORD).await;
    assert_eq!(r.status, 200, "{}", r.text());
    let html = r.text();
    assert!(html.contains(&format!("action=\"{REDIRECT}\"")), "{html}");
    let fields: std::collections::HashMap<String, String> =
        hidden_fields(&html).into_iter().collect();
    assert_eq!(fields["state"], "st ate");
    assert_eq!(fields["iss"], ISSUER);
    let csp = r.header("content-security-policy").unwrap();
    assert!(csp.contains("script-src 'sha256-"), "{csp}");
    assert!(csp.contains("default-src 'none'"), "{csp}");
    let tokens = redeem(&s, RP, &fields["code"]).await.json();
    let claims = verify_id_token(&s, tokens["id_token"].as_str().unwrap(), RP).await;
    assert_eq!(claims["nonce"], NONCE);
    // A mode we do not serve is refused (in the default mode).
    let r = browser
        .get(
            &s,
            &authorize_url(RP, "&scope=openid&response_mode=fragment"),
        )
        .await;
    assert_eq!(redirect_params(&r, false)["error"], "invalid_request");
}

#[tokio::test]
async fn userinfo_refuses_tokens_addressed_to_other_apis() {
    let s = openid_setup().await;
    let orders = "https://api.example/orders";
    let patch = authgate::store::ClientPatch {
        resources: Some(vec![orders.into(), ISSUER.into()]),
        ..authgate::store::ClientPatch::default()
    };
    s.store
        .update_client(RP, patch, authgate::store::now())
        .await
        .unwrap();
    let encode = |r: &str| form_urlencoded::byte_serialize(r.as_bytes()).collect::<String>();
    // Addressed to the orders API only: that API must not be able to read the person here.
    let tokens = openid_tokens(
        &s,
        RP,
        &format!("&scope=openid&resource={}", encode(orders)),
    )
    .await;
    let r = userinfo(&s, tokens["access_token"].as_str().unwrap()).await;
    assert_eq!(r.status, 401, "{}", r.text());
    assert!(
        r.header("www-authenticate")
            .unwrap()
            .contains("invalid_token")
    );
    // Addressed to us (the issuer) as well: UserInfo's.
    let both = format!(
        "&scope=openid&resource={}&resource={}",
        encode(orders),
        encode(ISSUER)
    );
    let tokens = openid_tokens(&s, RP, &both).await;
    let r = userinfo(&s, tokens["access_token"].as_str().unwrap()).await;
    assert_eq!(r.status, 200, "{}", r.text());
}

#[tokio::test]
async fn prompt_none_with_someone_elses_hint_is_login_required() {
    let s = openid_setup().await;
    // Bob's ID token, then alice signs in in this browser.
    let mut bobs = Browser::default();
    let r = bobs
        .login(&s, &authorize_url(RP, "&scope=openid"), "bob", PASSWORD)
        .await;
    let code = redirect_params(&r, false)["code"].clone();
    let bob_id_token = redeem(&s, RP, &code).await.json()["id_token"]
        .as_str()
        .unwrap()
        .to_owned();
    let (mut browser, back) = sign_in(&s, RP, "&scope=openid").await;
    let alice_id_token = redeem(&s, RP, &back["code"]).await.json()["id_token"]
        .as_str()
        .unwrap()
        .to_owned();
    let silent = |hint: &str| {
        authorize_url(
            RP,
            &format!("&scope=openid&prompt=none&id_token_hint={hint}"),
        )
    };
    let r = browser.get(&s, &silent(&bob_id_token)).await;
    assert_eq!(redirect_params(&r, false)["error"], "login_required");
    let r = browser.get(&s, &silent(&alice_id_token)).await;
    assert!(redirect_params(&r, false).contains_key("code"));
}
