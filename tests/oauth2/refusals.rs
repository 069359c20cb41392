//! Malformed requests, failed client authentication, and the brute-force back-off: every
//! refusal is RFC 6749 §5.2 JSON, and a failed login never tells whether the user exists.

use bytes::Bytes;
use http_body_util::Full;
use hyper::Request;

use crate::harness::*;
use crate::support::{GatewayConfig, send};

fn password(user: &str, pass: &str) -> Vec<(&'static str, String)> {
    vec![
        ("grant_type", "password".into()),
        ("username", user.into()),
        ("password", pass.into()),
    ]
}

async fn post_owned(
    s: &Setup,
    path: &str,
    auth: Auth<'_>,
    params: &[(&str, String)],
) -> crate::support::Resp {
    let params: Vec<(&str, &str)> = params.iter().map(|(k, v)| (*k, v.as_str())).collect();
    s.post(path, auth, &params).await
}

#[tokio::test]
async fn client_authentication_failures_are_401_with_a_challenge() {
    let s = setup().await;
    let params = password("alice", PASSWORD);
    for auth in [
        Auth::Basic("web", "wrong-secret"),
        Auth::Post("web", "wrong-secret"),
        Auth::Basic("nobody", SECRET),
        Auth::None,
        // A confidential client cannot pass as public.
        Auth::PublicId("web"),
    ] {
        let r = post_owned(&s, "/oauth2/token", auth, &params).await;
        assert_oauth_error(&r, 401, "invalid_client");
        assert_eq!(
            r.header("www-authenticate"),
            Some("Basic realm=\"authgate\"")
        );
    }
    // Both methods at once (RFC 6749 §2.3).
    let request = Request::post(s.gw.url("/oauth2/token"))
        .header("content-type", "application/x-www-form-urlencoded")
        .header("authorization", "Basic d2ViOmNsaWVudC1zZWNyZXQtMDEyMzQ1Njc4OWFiY2RlZg==")
        .body(Full::new(Bytes::from(
            "grant_type=client_credentials&client_id=web&client_secret=client-secret-0123456789abcdef",
        )))
        .unwrap();
    let r = send(&s.gw.client(false), request).await;
    assert_oauth_error(&r, 400, "invalid_request");
}

#[tokio::test]
async fn malformed_requests_are_invalid_request() {
    let s = setup().await;
    let client = s.gw.client(false);
    // Not a form.
    let request = Request::post(s.gw.url("/oauth2/token"))
        .header("content-type", "application/json")
        .body(Full::new(Bytes::from(r#"{"grant_type":"password"}"#)))
        .unwrap();
    assert_oauth_error(&send(&client, request).await, 400, "invalid_request");
    // A repeated parameter (RFC 6749 §3.2).
    let request = Request::post(s.gw.url("/oauth2/token"))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(Full::new(Bytes::from(
            "grant_type=client_credentials&grant_type=password&client_id=svc&client_secret=x",
        )))
        .unwrap();
    assert_oauth_error(&send(&client, request).await, 400, "invalid_request");
    // GET is not a token request.
    let request = Request::get(s.gw.url("/oauth2/password"))
        .body(Full::new(Bytes::new()))
        .unwrap();
    let r = send(&client, request).await;
    assert_oauth_error(&r, 405, "invalid_request");
    assert_eq!(r.header("allow"), Some("POST"));
    // An oversized body.
    let request = Request::post(s.gw.url("/oauth2/token"))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(Full::new(Bytes::from(format!("x={}", "a".repeat(70_000)))))
        .unwrap();
    assert_oauth_error(&send(&client, request).await, 413, "invalid_request");
    // Missing parameters name themselves.
    let r = s
        .post(
            "/oauth2/token",
            Auth::Basic("web", SECRET),
            &[("grant_type", "password"), ("username", "alice")],
        )
        .await;
    assert_oauth_error(&r, 400, "invalid_request");
    assert!(
        r.json()["error_description"]
            .as_str()
            .unwrap()
            .contains("password")
    );
    let r = s
        .post("/oauth2/token", Auth::Basic("web", SECRET), &[])
        .await;
    assert_oauth_error(&r, 400, "invalid_request");
}

#[tokio::test]
async fn grant_types_outside_an_endpoint_or_a_registration_are_refused() {
    let s = setup().await;
    // A seed endpoint serves its one grant.
    let r = s
        .post(
            "/oauth2/password",
            Auth::Basic("svc", SECRET),
            &[("grant_type", "client_credentials")],
        )
        .await;
    assert_oauth_error(&r, 400, "unsupported_grant_type");
    let r = s
        .post(
            "/oauth2/token",
            Auth::Basic("web", SECRET),
            &[("grant_type", "implicit")],
        )
        .await;
    assert_oauth_error(&r, 400, "unsupported_grant_type");
    // A client registered without the password grant can never use it.
    let r = post_owned(
        &s,
        "/oauth2/token",
        Auth::Basic("svc", SECRET),
        &password("alice", PASSWORD),
    )
    .await;
    assert_oauth_error(&r, 400, "unauthorized_client");
    // Scopes beyond the registration.
    let mut params = password("alice", PASSWORD);
    params.push(("scope", "read admin".into()));
    let r = post_owned(&s, "/oauth2/token", Auth::Basic("web", SECRET), &params).await;
    assert_oauth_error(&r, 400, "invalid_scope");
    // A client not registered for refresh tokens gets none.
    let body = s.login("norefresh", "alice").await;
    assert!(body.get("refresh_token").is_none(), "{body}");
}

#[tokio::test]
async fn failed_logins_look_alike_then_back_off_with_retry_after() {
    let s = setup().await;
    let wrong = post_owned(
        &s,
        "/oauth2/token",
        Auth::Basic("web", SECRET),
        &password("bob", "nope"),
    )
    .await;
    let unknown = post_owned(
        &s,
        "/oauth2/token",
        Auth::Basic("web", SECRET),
        &password("nobody", "nope"),
    )
    .await;
    assert_oauth_error(&wrong, 400, "invalid_grant");
    assert_eq!(wrong.json(), unknown.json(), "no user enumeration");
    // Keep failing on one account from this address: blocked, with Retry-After.
    let mut blocked = None;
    for _ in 0..10 {
        let r = post_owned(
            &s,
            "/oauth2/token",
            Auth::Basic("web", SECRET),
            &password("bob", "nope"),
        )
        .await;
        if r.status == 429 {
            blocked = Some(r);
            break;
        }
        assert_oauth_error(&r, 400, "invalid_grant");
    }
    let blocked = blocked.expect("the back-off answers 429 within ten failures");
    assert_oauth_error(&blocked, 429, "too_many_attempts");
    let retry: u64 = blocked.header("retry-after").unwrap().parse().unwrap();
    assert!(retry >= 1);
    // Even the right password waits it out from this address…
    let r = post_owned(
        &s,
        "/oauth2/token",
        Auth::Basic("web", SECRET),
        &password("bob", PASSWORD),
    )
    .await;
    assert_eq!(r.status, 429);
    // …but the account is not locked for everyone: another account from here still works.
    s.login("web", "alice").await;
}

#[tokio::test]
async fn client_secret_guessing_is_throttled() {
    let s = setup().await;
    let mut statuses = Vec::new();
    for _ in 0..10 {
        let r = s
            .post(
                "/oauth2/introspect",
                Auth::Basic("svc", "guess"),
                &[("token", "x")],
            )
            .await;
        statuses.push(r.status.as_u16());
        if r.status == 429 {
            assert!(r.header("retry-after").is_some());
            break;
        }
    }
    assert_eq!(statuses.last(), Some(&429), "{statuses:?}");
    assert!(statuses[..statuses.len() - 1].iter().all(|s| *s == 401));
}

#[tokio::test]
async fn paths_are_configurable_and_can_be_switched_off() {
    let s = setup_with(GatewayConfig::new().section(
        "[dialects.oauth2]\naccess_ttl = \"10m\"\n[dialects.oauth2.paths]\npassword = \"\"\ntoken = \"/connect/token\"",
    ))
    .await;
    let r = post_owned(
        &s,
        "/oauth2/password",
        Auth::Basic("web", SECRET),
        &password("alice", PASSWORD),
    )
    .await;
    assert_eq!(r.status, 404, "switched off: {}", r.text());
    let r = post_owned(
        &s,
        "/oauth2/token",
        Auth::Basic("web", SECRET),
        &password("alice", PASSWORD),
    )
    .await;
    assert_eq!(r.status, 404);
    let r = post_owned(
        &s,
        "/connect/token",
        Auth::Basic("web", SECRET),
        &password("alice", PASSWORD),
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.json()["expires_in"], 600, "the dialect's lifetime");
    let metadata = crate::support::get(
        &s.gw.client(false),
        &s.gw.url("/.well-known/oauth-authorization-server"),
    )
    .await
    .json();
    assert_eq!(metadata["token_endpoint"], "https://gw.test/connect/token");
}

#[test]
fn bad_dialect_config_names_the_key() {
    let cases = [
        (
            "[dialects.oauth2.paths]\ntoken = \"oauth2/token\"",
            "dialects.oauth2.paths.token",
        ),
        (
            "[dialects.oauth2.paths]\nrevoke = \"/oauth2/token\"",
            "dialects.oauth2.paths.revoke",
        ),
        (
            "[dialects.oauth2.paths]\ntoken = \"/a/../b\"",
            "dialects.oauth2.paths.token",
        ),
        (
            "[dialects.oauth2.paths]\ntoken = \"/.well-known/jwks.json\"",
            "dialects.oauth2.paths.token",
        ),
        (
            "[dialects.oauth2]\ncolour = \"red\"",
            "dialects.oauth2.colour",
        ),
        (
            "[dialects.oauth2]\naccess_ttl = \"0s\"",
            "dialects.oauth2.access_ttl",
        ),
        ("[tokens]\nrefresh_ttl = \"soon\"", "tokens.refresh_ttl"),
    ];
    for (section, key) in cases {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("gateway.toml");
        let toml = GatewayConfig::new().section(section).render();
        std::fs::write(&path, toml).unwrap();
        let error = authgate::config::load(&path).unwrap_err().to_string();
        assert!(error.contains(key), "{section}: {error}");
    }
}
