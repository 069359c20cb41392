//! The discovery documents, and a walk of every value they advertise against the endpoints:
//! the metadata cannot drift from the behaviour without this failing.

use bytes::Bytes;
use http_body_util::Full;
use hyper::Request;
use serde_json::Value;

use crate::browser::*;
use crate::harness::*;
use crate::rp::*;
use crate::support::{Resp, get, send};

async fn document(s: &Setup, path: &str) -> Value {
    let r = get(&s.gw.client(false), &s.gw.url(path)).await;
    assert_eq!(r.status, 200, "{}", r.text());
    r.json()
}

fn strings(value: &Value) -> Vec<String> {
    value
        .as_array()
        .unwrap_or_else(|| panic!("an array: {value}"))
        .iter()
        .map(|v| v.as_str().unwrap().to_owned())
        .collect()
}

/// The path of an advertised endpoint URL (they all live under the issuer).
fn path_of(url: &Value) -> String {
    url.as_str()
        .unwrap()
        .strip_prefix(ISSUER)
        .unwrap()
        .to_owned()
}

#[tokio::test]
async fn both_documents_are_one_and_name_the_configured_issuer() {
    let s = openid_setup().await;
    let oidc = document(&s, "/.well-known/openid-configuration").await;
    let oauth = document(&s, "/.well-known/oauth-authorization-server").await;
    assert_eq!(oidc, oauth);
    assert_eq!(oidc["issuer"], ISSUER);
    for required in [
        "authorization_endpoint",
        "token_endpoint",
        "userinfo_endpoint",
        "jwks_uri",
        "end_session_endpoint",
        "response_types_supported",
        "subject_types_supported",
        "id_token_signing_alg_values_supported",
    ] {
        assert!(oidc.get(required).is_some(), "{required} missing: {oidc}");
    }
    assert!(strings(&oidc["id_token_signing_alg_values_supported"]).contains(&"RS256".into()));
    assert_eq!(oidc["authorization_response_iss_parameter_supported"], true);
}

#[tokio::test]
async fn every_advertised_value_is_served() {
    let s = openid_setup().await;
    let doc = document(&s, "/.well-known/openid-configuration").await;
    let authorize = path_of(&doc["authorization_endpoint"]);
    let token = path_of(&doc["token_endpoint"]);

    // response_types: each opens the login page (no unsupported_response_type).
    for response_type in strings(&doc["response_types_supported"]) {
        let mut browser = Browser::default();
        let redirect: String = form_urlencoded::byte_serialize(REDIRECT.as_bytes()).collect();
        let url = format!(
            "{authorize}?response_type={response_type}&client_id={RP}&redirect_uri={redirect}&scope=openid"
        );
        let r = browser.get(&s, &url).await;
        assert_eq!(
            r.status,
            200,
            "response_type={response_type}: {:?}",
            r.header("location")
        );
    }

    // response_modes: each delivers a code the token endpoint redeems.
    for mode in strings(&doc["response_modes_supported"]) {
        let mut browser = Browser::default();
        let url = authorize_url(RP, &format!("&scope=openid&response_mode={mode}"));
        let r = browser.login(&s, &url, "alice", PASSWORD).await;
        let code = match mode.as_str() {
            "query" => redirect_params(&r, false)["code"].clone(),
            "form_post" => {
                hidden_fields(&r.text())
                    .into_iter()
                    .find(|(k, _)| k == "code")
                    .expect("a code field")
                    .1
            }
            other => panic!("a mode this test does not know: {other}"),
        };
        let redeemed = redeem(&s, RP, &code).await;
        assert_eq!(
            redeemed.status,
            200,
            "response_mode={mode}: {}",
            redeemed.text()
        );
    }

    // grant types: the token endpoint knows each (a bad request, never unsupported_grant_type).
    for grant in strings(&doc["grant_types_supported"]) {
        let r = s
            .post(
                &token,
                Auth::Basic("web", SECRET),
                &[("grant_type", &grant)],
            )
            .await;
        assert_ne!(
            r.json()["error"],
            "unsupported_grant_type",
            "{grant}: {}",
            r.text()
        );
        assert_ne!(r.status, 404, "{grant}");
    }
    assert!(!strings(&doc["grant_types_supported"]).contains(&"implicit".into()));
    assert_eq!(strings(&doc["response_types_supported"]), vec!["code"]);

    // client authentication methods: each authenticates at the token endpoint.
    for method in strings(&doc["token_endpoint_auth_methods_supported"]) {
        let r = match method.as_str() {
            "client_secret_basic" => s.login("web", "alice").await,
            "client_secret_post" => {
                let r = s
                    .post(
                        &token,
                        Auth::Post("web", SECRET),
                        &[
                            ("grant_type", "password"),
                            ("username", "alice"),
                            ("password", PASSWORD),
                        ],
                    )
                    .await;
                assert_eq!(r.status, 200, "{method}: {}", r.text());
                r.json()
            }
            "none" => {
                // A public client's code exchange with PKCE.
                let verifier = "M25iVXpKU3puUjFaYWg3T1NDTDQtcW1ROUY5YXlwalNoc0hhakxifmZHag";
                let extra = format!(
                    "&scope=openid&code_challenge={}&code_challenge_method=S256",
                    challenge(verifier)
                );
                let (_, back) = sign_in(&s, RP_PUBLIC, &extra).await;
                let r = s
                    .post(
                        &token,
                        Auth::PublicId(RP_PUBLIC),
                        &[
                            ("grant_type", "authorization_code"),
                            ("code", &back["code"]),
                            ("redirect_uri", REDIRECT),
                            ("code_verifier", verifier),
                        ],
                    )
                    .await;
                assert_eq!(r.status, 200, "{method}: {}", r.text());
                r.json()
            }
            other => panic!("an auth method this test does not know: {other}"),
        };
        assert!(r["access_token"].is_string(), "{method}");
    }
    assert_eq!(
        strings(&doc["code_challenge_methods_supported"]),
        vec!["S256"]
    );

    // scopes: a client without a scope list may ask for each.
    for scope in strings(&doc["scopes_supported"]) {
        let (_, back) = sign_in(&s, RP, &format!("&scope={scope}")).await;
        assert!(back.contains_key("code"), "scope={scope}: {back:?}");
    }

    // prompt values: each is accepted.
    let (mut browser, _) = sign_in(&s, RP, "&scope=openid").await;
    for prompt in strings(&doc["prompt_values_supported"]) {
        let r = browser
            .get(
                &s,
                &authorize_url(RP, &format!("&scope=openid&prompt={prompt}")),
            )
            .await;
        assert!(r.status == 200 || r.status == 303, "prompt={prompt}");
        if r.status == 303 {
            assert!(
                !redirect_params(&r, false).contains_key("error"),
                "prompt={prompt}"
            );
        }
    }

    // claims: everything an ID token and UserInfo carry is advertised.
    let tokens = openid_tokens(&s, RP, "&scope=openid%20profile%20email%20phone&nonce=n").await;
    let claims = verify_id_token(&s, tokens["id_token"].as_str().unwrap(), RP).await;
    let supported = strings(&doc["claims_supported"]);
    for claim in claims.as_object().unwrap().keys() {
        assert!(supported.contains(claim), "{claim} not advertised");
    }
    let userinfo = path_of(&doc["userinfo_endpoint"]);
    let request = Request::get(s.gw.url(&userinfo))
        .header(
            "authorization",
            format!("Bearer {}", tokens["access_token"].as_str().unwrap()),
        )
        .body(Full::new(Bytes::new()))
        .unwrap();
    let info = send(&s.gw.client(false), request).await;
    assert_eq!(info.status, 200);
    for claim in info.json().as_object().unwrap().keys() {
        assert!(supported.contains(claim), "{claim} not advertised");
    }

    // end_session_endpoint and jwks_uri answer.
    let end = path_of(&doc["end_session_endpoint"]);
    let r = Browser::default().get(&s, &end).await;
    assert_eq!(r.status, 200);
    let jwks = get(
        &s.gw.client(false),
        &doc["jwks_uri"]
            .as_str()
            .unwrap()
            .replace(ISSUER, &s.gw.url("")),
    )
    .await;
    assert_eq!(jwks.status, 200);
}

async fn with_origin(s: &Setup, method: &str, path: &str, origin: &str) -> Resp {
    let mut request = Request::builder()
        .method(method)
        .uri(s.gw.url(path))
        .header("origin", origin);
    if method == "OPTIONS" {
        request = request
            .header("access-control-request-method", "GET")
            .header("access-control-request-headers", "authorization");
    }
    send(
        &s.gw.client(false),
        request.body(Full::new(Bytes::new())).unwrap(),
    )
    .await
}

#[tokio::test]
async fn cors_lets_registered_browser_origins_in_and_nobody_else() {
    let s = openid_setup().await;
    let registered = "https://app.example";
    for path in [
        "/.well-known/openid-configuration",
        "/.well-known/jwks.json",
        "/oauth2/userinfo",
    ] {
        let r = with_origin(&s, "OPTIONS", path, registered).await;
        assert_eq!(r.status, 204, "{path}");
        assert_eq!(
            r.header("access-control-allow-origin"),
            Some(registered),
            "{path}"
        );
        assert!(
            r.header("access-control-allow-headers")
                .unwrap()
                .contains("Authorization"),
            "{path}"
        );
        let r = with_origin(&s, "GET", path, registered).await;
        assert_eq!(
            r.header("access-control-allow-origin"),
            Some(registered),
            "{path}"
        );
        let r = with_origin(&s, "GET", path, "https://evil.example").await;
        assert_eq!(r.header("access-control-allow-origin"), None, "{path}");
        let r = with_origin(&s, "OPTIONS", path, "https://evil.example").await;
        assert_eq!(r.header("access-control-allow-origin"), None, "{path}");
    }
    // The token endpoint answers an SPA's POST.
    let request = Request::post(s.gw.url("/oauth2/token"))
        .header("origin", registered)
        .header("content-type", "application/x-www-form-urlencoded")
        .body(Full::new(Bytes::from_static(b"grant_type=password")))
        .unwrap();
    let r = send(&s.gw.client(false), request).await;
    assert_eq!(r.header("access-control-allow-origin"), Some(registered));
    assert_eq!(r.header("access-control-allow-credentials"), None);
}
