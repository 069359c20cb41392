//! Revocation (RFC 7009), introspection (RFC 7662) and metadata (RFC 8414).

use bytes::Bytes;
use http_body_util::Full;
use hyper::Request;

use crate::harness::*;
use crate::support::send;

#[tokio::test]
async fn revoking_a_refresh_token_kills_its_family_and_access_tokens() {
    let s = setup().await;
    let grant = s.login("web", "alice").await;
    let refresh = grant["refresh_token"].as_str().unwrap();
    let access = grant["access_token"].as_str().unwrap();
    assert_eq!(s.echo(access).await.0, 200);
    // Another client presenting it revokes nothing (and is told nothing).
    let r = s
        .post(
            "/oauth2/revoke",
            Auth::Basic("other", SECRET),
            &[("token", refresh)],
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(s.echo(access).await.0, 200);
    let r = s
        .post(
            "/oauth2/revoke",
            Auth::Basic("web", SECRET),
            &[("token", refresh), ("token_type_hint", "refresh_token")],
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.header("cache-control"), Some("no-store"));
    assert_oauth_error(&s.refresh("web", refresh).await, 400, "invalid_grant");
    assert_eq!(s.echo(access).await.0, 401);
    // Revoking again, or revoking garbage, is still 200.
    for token in [refresh, "not-a-token"] {
        let r = s
            .post(
                "/oauth2/revoke",
                Auth::Basic("web", SECRET),
                &[("token", token)],
            )
            .await;
        assert_eq!(r.status, 200);
    }
}

#[tokio::test]
async fn revoking_an_access_token_only_by_its_client() {
    let s = setup().await;
    let grant = s.login("web", "alice").await;
    let access = grant["access_token"].as_str().unwrap();
    // A wrong hint is only a hint (RFC 7009 §2.1).
    let r = s
        .post(
            "/oauth2/revoke",
            Auth::Basic("other", SECRET),
            &[("token", access), ("token_type_hint", "access_token")],
        )
        .await;
    assert_eq!(r.status, 200);
    assert_eq!(
        s.echo(access).await.0,
        200,
        "another client's token stays valid"
    );
    let r = s
        .post(
            "/oauth2/revoke",
            Auth::Post("web", SECRET),
            &[("token", access), ("token_type_hint", "refresh_token")],
        )
        .await;
    assert_eq!(r.status, 200);
    assert_eq!(s.echo(access).await.0, 401);
    // The refresh token is separate: still usable.
    let refresh = grant["refresh_token"].as_str().unwrap();
    assert_eq!(s.refresh("web", refresh).await.status, 200);
    // Revocation needs client authentication and a token.
    let r = s
        .post("/oauth2/revoke", Auth::None, &[("token", access)])
        .await;
    assert_oauth_error(&r, 401, "invalid_client");
    let r = s
        .post("/oauth2/revoke", Auth::Basic("web", SECRET), &[])
        .await;
    assert_oauth_error(&r, 400, "invalid_request");
}

#[tokio::test]
async fn introspection_tells_active_tokens_and_nothing_else() {
    let s = setup().await;
    let grant = s
        .post(
            "/oauth2/token",
            Auth::Basic("web", SECRET),
            &[
                ("grant_type", "password"),
                ("username", "alice"),
                ("password", PASSWORD),
                ("scope", "read"),
            ],
        )
        .await
        .json();
    let access = grant["access_token"].as_str().unwrap();
    let refresh = grant["refresh_token"].as_str().unwrap();
    // Any confidential client may introspect an access token (it is a resource server).
    let r = s
        .post(
            "/oauth2/introspect",
            Auth::Basic("svc", SECRET),
            &[("token", access)],
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.header("cache-control"), Some("no-store"));
    let body = r.json();
    assert_eq!(body["active"], true);
    assert_eq!(body["sub"], ALICE.to_string());
    assert_eq!(body["client_id"], "web");
    assert_eq!(body["scope"], "read");
    assert_eq!(body["iss"], ISSUER);
    assert_eq!(body["token_type"], "Bearer");
    assert!(body["exp"].as_u64().unwrap() > body["iat"].as_u64().unwrap());
    // A refresh token only to its own client.
    let r = s
        .post(
            "/oauth2/introspect",
            Auth::Post("web", SECRET),
            &[("token", refresh), ("token_type_hint", "refresh_token")],
        )
        .await;
    assert_eq!(r.json()["active"], true);
    assert_eq!(r.json()["sub"], ALICE.to_string());
    let inactive = serde_json::json!({ "active": false });
    let r = s
        .post(
            "/oauth2/introspect",
            Auth::Basic("svc", SECRET),
            &[("token", refresh)],
        )
        .await;
    assert_eq!(r.json(), inactive);
    // Unknown, tampered and revoked tokens: `{"active": false}` and nothing more.
    let mut tampered = access.to_owned();
    tampered.pop();
    tampered.push(if access.ends_with('A') { 'B' } else { 'A' });
    s.post(
        "/oauth2/revoke",
        Auth::Basic("web", SECRET),
        &[("token", refresh)],
    )
    .await;
    for token in ["garbage", tampered.as_str(), access, refresh] {
        let r = s
            .post(
                "/oauth2/introspect",
                Auth::Basic("web", SECRET),
                &[("token", token)],
            )
            .await;
        assert_eq!(r.status, 200);
        assert_eq!(r.json(), inactive, "{token}");
    }
    // Callers must authenticate, as a confidential client.
    let r = s
        .post("/oauth2/introspect", Auth::None, &[("token", access)])
        .await;
    assert_oauth_error(&r, 401, "invalid_client");
    let r = s
        .post(
            "/oauth2/introspect",
            Auth::PublicId("spa"),
            &[("token", access)],
        )
        .await;
    assert_oauth_error(&r, 401, "invalid_client");
    assert!(r.header("www-authenticate").is_some());
}

#[tokio::test]
async fn metadata_names_the_configured_issuer_whatever_the_host() {
    let s = setup().await;
    let request = Request::get(s.gw.url("/.well-known/oauth-authorization-server"))
        .header("host", "evil.example")
        .body(Full::new(Bytes::new()))
        .unwrap();
    let r = send(&s.gw.client(false), request).await;
    assert_eq!(r.status, 200, "{}", r.text());
    let body = r.json();
    assert_eq!(body["issuer"], ISSUER);
    assert_eq!(body["token_endpoint"], "https://gw.test/oauth2/token");
    assert_eq!(body["revocation_endpoint"], "https://gw.test/oauth2/revoke");
    assert_eq!(
        body["introspection_endpoint"],
        "https://gw.test/oauth2/introspect"
    );
    assert_eq!(body["jwks_uri"], "https://gw.test/.well-known/jwks.json");
    assert_eq!(
        body["code_challenge_methods_supported"],
        serde_json::json!(["S256"])
    );
    let grants = body["grant_types_supported"].as_array().unwrap();
    assert!(grants.iter().any(|g| g == "client_credentials"));
    assert!(!body.to_string().contains("evil.example"));
    let request = Request::post(s.gw.url("/.well-known/oauth-authorization-server"))
        .body(Full::new(Bytes::new()))
        .unwrap();
    assert_eq!(send(&s.gw.client(false), request).await.status, 405);
}
