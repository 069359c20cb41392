//! The `passport` dialect (seed 001) over real TLS: the document's answer field by field, its
//! RS256 token's header and claims, Passport's error shapes, form and JSON bodies.
#![allow(clippy::unwrap_used)]

mod support;

#[path = "oauth2/harness.rs"]
#[allow(dead_code)]
mod harness;

use bytes::Bytes;
use harness::*;
use http_body_util::Full;
use hyper::Request;
use serde_json::{Value, json};
use support::{GatewayConfig, Resp, jwt_part, send};

const PASSPORT: &str = "[dialects.passport]\nrsa_bits = 2048";
const PHONE: &str = "+86 138 0000 0000";

async fn passport(extra: &str) -> Setup {
    setup_with(GatewayConfig::new().section(&format!("{PASSPORT}\n{extra}"))).await
}

async fn post_json(s: &Setup, body: &Value) -> Resp {
    let request = Request::post(s.gw.url("/oauth/token"))
        .header("content-type", "application/json")
        .body(Full::new(Bytes::from(body.to_string())))
        .unwrap();
    send(&s.gw.client(false), request).await
}

fn login<'a>(username: &'a str, password: &'a str) -> Vec<(&'static str, &'a str)> {
    vec![
        ("grant_type", "password"),
        ("username", username),
        ("password", password),
        ("scope", ""),
    ]
}

fn kind(value: &Value) -> &'static str {
    match value {
        Value::String(_) => "string",
        Value::Number(_) => "number",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
        Value::Bool(_) => "bool",
        Value::Null => "null",
    }
}

#[tokio::test]
async fn the_documents_answer_field_by_field() {
    let s = passport("").await;
    let r = s
        .post(
            "/oauth/token",
            Auth::Post("web", SECRET),
            &login(PHONE, PASSWORD),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text());
    let body = r.json();
    // The document: token_type, expires_in, access_token, refresh_token — nothing else.
    let mut keys: Vec<&str> = body
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    keys.sort_unstable();
    assert_eq!(
        keys,
        ["access_token", "expires_in", "refresh_token", "token_type"]
    );
    assert_eq!(body["token_type"], "Bearer");
    assert_eq!(body["expires_in"], 31_536_000);
    assert_eq!(kind(&body["refresh_token"]), "string");
    let token = body["access_token"].as_str().unwrap();
    // Header: typ JWT, alg RS256, jti (and our kid).
    let header = jwt_part(token, 0);
    assert_eq!(header["typ"], "JWT");
    assert_eq!(header["alg"], "RS256");
    assert_eq!(kind(&header["jti"]), "string");
    assert_eq!(kind(&header["kid"]), "string");
    // Claims: the document's, with its JSON types, plus what the proxy needs.
    let claims = jwt_part(token, 1);
    for (name, expected) in [
        ("aud", "string"),
        ("jti", "string"),
        ("iat", "number"),
        ("nbf", "number"),
        ("exp", "number"),
        ("sub", "string"),
        ("scopes", "array"),
    ] {
        assert_eq!(kind(&claims[name]), expected, "{name}: {claims}");
    }
    assert_eq!(claims["aud"], "web");
    assert_eq!(claims["sub"], ALICE.to_string());
    assert_eq!(claims["jti"], header["jti"]);
    assert_eq!(claims["scopes"], json!([]));
    assert_eq!(
        claims["exp"].as_u64().unwrap() - claims["iat"].as_u64().unwrap(),
        31_536_000
    );
    assert_eq!(claims["iss"], ISSUER);
    // It works on every route without a store lookup; the identity is injected.
    assert_eq!(s.echo(token).await, (200, Some(ALICE.to_string())));
    // The same with a JSON body, and with scopes.
    let r = post_json(
        &s,
        &json!({"grant_type": "password", "client_id": "web", "client_secret": SECRET,
                "username": "8613800000000", "password": PASSWORD, "scope": "read"}),
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.text());
    let claims = jwt_part(r.json()["access_token"].as_str().unwrap(), 1);
    assert_eq!(claims["scopes"], json!(["read"]));
}

#[tokio::test]
async fn failures_in_passports_shapes() {
    let s = passport("").await;
    let wrong =
        json!({"error": "invalid_credentials", "message": "The user credentials were incorrect."});
    // Wrong password, unknown user, and (by default) a login name that is not a phone number.
    for (user, password) in [
        (PHONE, "nope"),
        ("+1 555 0100", PASSWORD),
        ("alice", PASSWORD),
        ("alice@example.com", PASSWORD),
    ] {
        let r = s
            .post(
                "/oauth/token",
                Auth::Post("web", SECRET),
                &login(user, password),
            )
            .await;
        assert_eq!(r.status, 401, "{user}");
        assert_eq!(r.json(), wrong, "{user}");
    }
    let r = s
        .post(
            "/oauth/token",
            Auth::Post("web", "bad-secret"),
            &login(PHONE, PASSWORD),
        )
        .await;
    assert_eq!(r.status, 401);
    assert_eq!(
        r.json(),
        json!({"error": "invalid_client", "message": "Client authentication failed"})
    );
    let r = s
        .post(
            "/oauth/token",
            Auth::Post("svc", SECRET),
            &[("grant_type", "client_credentials")],
        )
        .await;
    assert_eq!(r.status, 400);
    assert_eq!(r.json()["error"], "unsupported_grant_type");
    let r = s
        .post(
            "/oauth/token",
            Auth::Post("web", SECRET),
            &[("grant_type", "password"), ("username", PHONE)],
        )
        .await;
    assert_eq!(r.status, 400);
    assert_eq!(r.json()["error"], "invalid_request");
    assert!(r.json()["message"].as_str().unwrap().contains("password"));
    let mut scoped = login(PHONE, PASSWORD);
    scoped[3] = ("scope", "admin");
    let r = s
        .post("/oauth/token", Auth::Post("web", SECRET), &scoped)
        .await;
    assert_eq!(r.status, 400);
    assert_eq!(r.json()["error"], "invalid_scope");
    // An error has exactly the two fields.
    let body = r.json();
    assert_eq!(body.as_object().unwrap().len(), 2, "{body}");
    assert_eq!(kind(&body["message"]), "string");
    let r = send(
        &s.gw.client(false),
        Request::get(s.gw.url("/oauth/token"))
            .body(Full::new(Bytes::new()))
            .unwrap(),
    )
    .await;
    assert_eq!(r.status, 405);
    let r = post_json(&s, &json!(["not", "an", "object"])).await;
    assert_eq!(r.status, 400);
    assert_eq!(r.json()["error"], "invalid_request");
}

#[tokio::test]
async fn refresh_at_the_same_path_rotates() {
    let s = passport("").await;
    let first = s
        .post(
            "/oauth/token",
            Auth::Post("web", SECRET),
            &login(PHONE, PASSWORD),
        )
        .await
        .json();
    let old = first["refresh_token"].as_str().unwrap();
    let params = [("grant_type", "refresh_token"), ("refresh_token", old)];
    let r = s
        .post("/oauth/token", Auth::Post("web", SECRET), &params)
        .await;
    assert_eq!(r.status, 200, "{}", r.text());
    let second = r.json();
    assert_ne!(second["refresh_token"], first["refresh_token"]);
    assert_eq!(
        jwt_part(second["access_token"].as_str().unwrap(), 0)["alg"],
        "RS256"
    );
    let r = s
        .post("/oauth/token", Auth::Post("web", SECRET), &params)
        .await;
    assert_eq!(r.status, 401);
    assert_eq!(
        r.json(),
        json!({"error": "invalid_request", "message": "The refresh token is invalid."})
    );
    // The reuse revoked the family, the access token issued with it included.
    assert_eq!(
        s.echo(second["access_token"].as_str().unwrap()).await.0,
        401
    );
}

#[tokio::test]
async fn any_login_name_when_configured() {
    let s = passport("login = \"any\"").await;
    for user in ["alice", "alice@example.com", PHONE] {
        let r = s
            .post(
                "/oauth/token",
                Auth::Post("web", SECRET),
                &login(user, PASSWORD),
            )
            .await;
        assert_eq!(r.status, 200, "{user}: {}", r.text());
    }
}
