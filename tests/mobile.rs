//! The `mobile` dialect (seed 000) over real TLS: the document's answer field by field (names,
//! JSON types, `user` twice), GET and POST, the opaque reference tokens on the proxy path and
//! their revocation, refresh rotation and reuse, the error shape and its codes.
#![allow(clippy::unwrap_used)]

mod support;

#[path = "oauth2/harness.rs"]
#[allow(dead_code)]
mod harness;

use std::time::Duration;

use authgate::store::{GrantType, UserPatch};
use bytes::Bytes;
use harness::*;
use http_body_util::Full;
use hyper::Request;
use serde_json::Value;
use support::{
    GatewayConfig, Resp, add_clients, eventually, eventually_some_within, new_client,
    read_response, send, tls_connect, within, write_all_ignoring_reset,
};

/// The document's client id and secret; registered public (the secret ships in the app).
const CLIENT_ID: &str = "MOBrBDS8blbauoSck0ZfDbtuzpyT";
const CLIENT_SECRET: &str = "lsACyCD94FhDUtGTXi3QzcFE2uU1hqtDaKeqrdwj";
const IMAGE: &str = "http://img.example/u/100";

async fn mobile(section: &str) -> Setup {
    let s = setup_with(GatewayConfig::new().section(section)).await;
    let now = authgate::store::now();
    let clients = [(CLIENT_ID, true), ("mobile-conf", false)].map(|(id, public)| {
        new_client(
            id,
            public,
            vec![GrantType::Password, GrantType::RefreshToken],
        )
    });
    add_clients(&s.store, clients, SECRET, now).await;
    let patch = UserPatch {
        display_name: Some(Some("某亚瑟".into())),
        image_small: Some(Some(format!("{IMAGE}_16.jpg"))),
        image_medium: Some(Some(format!("{IMAGE}_50.jpg"))),
        image_large: Some(Some(format!("{IMAGE}_170.jpg"))),
        premium: Some(true),
        content_restriction: Some(1),
        mail_verified: Some(true),
        ..UserPatch::default()
    };
    s.store.update_user(ALICE, patch, now).await.unwrap();
    s
}

async fn get(s: &Setup, params: &[(&str, &str)]) -> Resp {
    let mut query = form_urlencoded::Serializer::new(String::new());
    for (name, value) in params {
        query.append_pair(name, value);
    }
    let url = s.gw.url(&format!("/auth/token?{}", query.finish()));
    let request = Request::get(url).body(Full::new(Bytes::new())).unwrap();
    send(&s.gw.client(false), request).await
}

fn password<'a>(username: &'a str, password: &'a str) -> Vec<(&'static str, &'a str)> {
    vec![
        ("client_id", CLIENT_ID),
        ("client_secret", CLIENT_SECRET),
        ("grant_type", "password"),
        ("username", username),
        ("password", password),
    ]
}

fn sorted_keys(value: &Value) -> Vec<String> {
    let mut keys: Vec<String> = value.as_object().unwrap().keys().cloned().collect();
    keys.sort_unstable();
    keys
}

/// The document's error shape with `code`; returns the message.
fn assert_failure(r: &Resp, status: u16, code: i64) -> String {
    assert_eq!(r.status, status, "{}", r.text());
    let body = r.json();
    assert_eq!(sorted_keys(&body), ["errors", "has_error"], "{body}");
    assert_eq!(body["has_error"], true);
    assert_eq!(sorted_keys(&body["errors"]), ["system"]);
    assert_eq!(sorted_keys(&body["errors"]["system"]), ["code", "message"]);
    assert_eq!(body["errors"]["system"]["code"], code, "{body}");
    body["errors"]["system"]["message"]
        .as_str()
        .unwrap()
        .to_owned()
}

/// Polls `/echo` until `token` is refused (revocations reach the gateway within its refresh
/// interval); panics after a generous deadline.
async fn refused_soon(s: &Setup, token: &str) {
    let refused = || async move {
        match s.echo(token).await.0 {
            401 => Some(()),
            200 => None,
            other => panic!("expected the token to be refused, got {other}"),
        }
    };
    eventually_some_within("the token to be refused", Duration::from_secs(10), refused).await
}

#[tokio::test]
async fn the_documents_answer_field_by_field() {
    let s = mobile("[dialects.mobile]").await;
    let mut params = password("alice", PASSWORD);
    params.extend([("get_secure_url", "true"), ("include_policy", "true")]);
    let r = get(&s, &params).await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.header("cache-control"), Some("no-store"));
    let body = r.json();
    assert_eq!(
        sorted_keys(&body),
        [
            "access_token",
            "expires_in",
            "refresh_token",
            "response",
            "scope",
            "token_type",
            "user"
        ]
    );
    let token = body["access_token"].as_str().unwrap();
    // Opaque, 43 characters of base64url, like the document's.
    assert_eq!(token.len(), 43, "{token}");
    assert!(!token.contains('.'));
    assert_eq!(body["refresh_token"].as_str().unwrap().len(), 43);
    assert_eq!(body["expires_in"], 3600);
    assert_eq!(body["token_type"], "bearer");
    assert_eq!(body["scope"], "");
    let user = &body["user"];
    assert_eq!(
        sorted_keys(user),
        [
            "account",
            "groupid",
            "id",
            "is_mail_authorized",
            "is_premium",
            "mail_address",
            "name",
            "profile_image_urls",
            "require_policy_agreement",
            "x_restrict"
        ]
    );
    assert_eq!(user["id"], ALICE.to_string(), "id is a string");
    assert_eq!(user["name"], "某亚瑟");
    assert_eq!(user["account"], "alice");
    assert_eq!(user["mail_address"], "alice@example.com");
    assert_eq!(user["is_premium"], true);
    assert_eq!(user["x_restrict"], 1);
    assert_eq!(user["is_mail_authorized"], true);
    assert_eq!(user["require_policy_agreement"], false);
    assert_eq!(user["groupid"], 2, "a role code: 2 for everyone but admins");
    assert_eq!(
        user["profile_image_urls"],
        serde_json::json!({
            "px_16x16": "https://img.example/u/100_16.jpg",
            "px_50x50": "https://img.example/u/100_50.jpg",
            "px_170x170": "https://img.example/u/100_170.jpg",
        })
    );
    // The same again under `response`.
    let mut top = body.clone();
    top.as_object_mut().unwrap().remove("response");
    assert_eq!(body["response"], top);

    // The opaque token passes the proxy path and injects the identity.
    let (status, headers) = s.echo_headers(token).await;
    assert_eq!(status, 200);
    let headers = headers.unwrap();
    assert_eq!(headers["user_id"], ALICE.to_string());
    assert_eq!(headers["group_id"], "7");

    // POST form; no flags: stored URLs as they are, no policy field. An admin is groupid 1.
    let r = s
        .post("/auth/token", Auth::None, &password("boss", PASSWORD))
        .await;
    assert_eq!(r.status, 200, "{}", r.text());
    let user = &r.json()["user"];
    assert_eq!(user["groupid"], 1);
    assert!(user.get("require_policy_agreement").is_none());
    let r = s
        .post("/auth/token", Auth::None, &password("alice", PASSWORD))
        .await;
    assert_eq!(
        r.json()["user"]["profile_image_urls"]["px_16x16"],
        format!("{IMAGE}_16.jpg")
    );
}

#[tokio::test]
async fn refresh_rotates_and_reuse_or_revocation_kills_the_opaque_tokens() {
    let s = mobile("[dialects.mobile]").await;
    let first = get(&s, &password("alice", PASSWORD)).await.json();
    let refresh = |token: &str| {
        vec![
            ("client_id", CLIENT_ID),
            ("client_secret", CLIENT_SECRET),
            ("grant_type", "refresh_token"),
            ("refresh_token", token),
        ]
        .into_iter()
        .map(|(k, v)| (k, v.to_owned()))
        .collect::<Vec<_>>()
    };
    let old_refresh = first["refresh_token"].as_str().unwrap();
    let params = refresh(old_refresh);
    let pairs: Vec<(&str, &str)> = params.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let r = s.post("/auth/token", Auth::None, &pairs).await;
    assert_eq!(r.status, 200, "{}", r.text());
    let second = r.json();
    let token = second["access_token"].as_str().unwrap();
    assert_ne!(token, first["access_token"].as_str().unwrap());
    assert_eq!(s.echo(token).await, (200, Some(ALICE.to_string())));
    // Reusing the spent refresh token: refused, and the family's tokens die everywhere.
    let r = get(&s, &pairs).await;
    assert_failure(&r, 400, 1508);
    refused_soon(&s, token).await;

    // Per-user revocation (password change, `user revoke-tokens`) refuses opaque tokens too.
    let third = get(&s, &password("alice", PASSWORD)).await.json();
    let token = third["access_token"].as_str().unwrap();
    assert_eq!(s.echo(token).await.0, 200);
    // Whole seconds: a revocation in the token's own second refuses it too.
    let revoked_at = authgate::store::now();
    s.store.revoke_user_tokens(ALICE, revoked_at).await.unwrap();
    refused_soon(&s, token).await;

    // RFC 7009 revocation at the oauth2 endpoint works for opaque tokens as well. The next
    // token must be issued after the revocation's second (the wall clock the gateway stamps
    // tokens with), or the revocation refuses it too.
    eventually("the second after the revocation", || async {
        authgate::store::now() > revoked_at
    })
    .await;
    let fourth = get(&s, &password("alice", PASSWORD)).await.json();
    let token = fourth["access_token"].as_str().unwrap();
    assert_eq!(s.echo(token).await.0, 200);
    let r = s
        .post(
            "/oauth2/revoke",
            Auth::PublicId(CLIENT_ID),
            &[("token", token), ("token_type_hint", "access_token")],
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(
        s.echo(token).await.0,
        401,
        "refused at once on this instance"
    );

    // A token that looks opaque but was never issued.
    assert_eq!(
        s.echo("AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA")
            .await
            .0,
        401
    );
}

#[tokio::test]
async fn every_error_has_the_documented_shape_and_code() {
    let s = mobile("[dialects.mobile]").await;
    // Wrong password and unknown user: the same answer.
    let wrong = get(&s, &password("alice", "nope")).await;
    let unknown = get(&s, &password("nobody", "nope")).await;
    assert_failure(&wrong, 400, 1508);
    assert_eq!(wrong.json(), unknown.json(), "no user enumeration");
    // Clients: unknown; a confidential one with a wrong secret (401); with the right one (200).
    let mut params = password("alice", PASSWORD);
    params[0] = ("client_id", "nope");
    assert_failure(&get(&s, &params).await, 401, 1502);
    params[0] = ("client_id", "mobile-conf");
    assert_failure(&get(&s, &params).await, 401, 1502);
    params[1] = ("client_secret", SECRET);
    assert_eq!(get(&s, &params).await.status, 200);
    // Malformed requests.
    let no_grant: Vec<_> = password("alice", PASSWORD)
        .into_iter()
        .filter(|(k, _)| *k != "grant_type")
        .collect();
    assert_failure(&get(&s, &no_grant).await, 400, 1501);
    let mut other = password("alice", PASSWORD);
    other[2] = ("grant_type", "client_credentials");
    assert_failure(&get(&s, &other).await, 400, 1503);
    let no_password: Vec<_> = password("alice", PASSWORD)
        .into_iter()
        .filter(|(k, _)| *k != "password")
        .collect();
    assert_failure(&get(&s, &no_password).await, 400, 1501);
    let request = Request::put(s.gw.url("/auth/token"))
        .body(Full::new(Bytes::new()))
        .unwrap();
    let r = send(&s.gw.client(false), request).await;
    assert_failure(&r, 405, 1501);
    assert_eq!(r.header("allow"), Some("GET, POST"));
    // The back-off: 429 with Retry-After.
    let mut blocked = None;
    for _ in 0..10 {
        let r = get(&s, &password("bob", "nope")).await;
        if r.status == 429 {
            blocked = Some(r);
            break;
        }
        assert_failure(&r, 400, 1508);
    }
    let blocked = blocked.expect("the back-off answers 429 within ten failures");
    assert_failure(&blocked, 429, 1506);
    assert!(blocked.header("retry-after").is_some());
}

#[tokio::test]
async fn the_token_format_is_a_setting() {
    let s = mobile("[dialects.mobile]\ntoken_format = \"jwt\"\naccess_ttl = \"10m\"").await;
    let body = get(&s, &password("alice", PASSWORD)).await.json();
    let token = body["access_token"].as_str().unwrap();
    assert_eq!(token.split('.').count(), 3, "a JWT: {token}");
    assert_eq!(body["expires_in"], 600);
    assert_eq!(claims(token)["sub"], ALICE.to_string());
    assert_eq!(s.echo(token).await, (200, Some(ALICE.to_string())));
}

/// A client connection remembers its last token (`authn/memo.rs`): revoking the token still
/// refuses its next request on that same keep-alive connection, opaque or JWT.
#[tokio::test]
async fn a_token_repeated_on_one_connection_is_refused_once_revoked() {
    let s = mobile("[dialects.mobile]").await;
    let opaque = get(&s, &password("alice", PASSWORD)).await.json()["access_token"]
        .as_str()
        .unwrap()
        .to_owned();
    let jwt = s.login("mobile-conf", "alice").await["access_token"]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(jwt.starts_with("eyJ") && !opaque.starts_with("eyJ"));
    for (token, revoker) in [
        (&opaque, Auth::PublicId(CLIENT_ID)),
        (&jwt, Auth::Basic("mobile-conf", SECRET)),
    ] {
        let mut conn = tls_connect(s.gw.https_addr, &s.gw.cert, &[b"http/1.1"]).await;
        let head =
            format!("GET /echo HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {token}\r\n\r\n");
        for _ in 0..3 {
            write_all_ignoring_reset(&mut conn, head.as_bytes()).await;
            assert_eq!(within("echo", read_response(&mut conn)).await.status, 200);
        }
        let r = s
            .post("/oauth2/revoke", revoker, &[("token", token.as_str())])
            .await;
        assert_eq!(r.status, 200, "{}", r.text());
        write_all_ignoring_reset(&mut conn, head.as_bytes()).await;
        assert_eq!(
            within("echo", read_response(&mut conn)).await.status,
            401,
            "the same connection, after the revocation"
        );
    }
}
