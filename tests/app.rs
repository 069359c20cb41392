//! The `app` dialect (seed 002) over real TLS: the document's envelope and `data` field by field
//! (names and JSON types), the three login endpoints with JSON and form bodies, the companion
//! credentials (store/push tokens, access key secret, public key) checked cryptographically,
//! every error shape, and admins acting for users and groups.
#![allow(clippy::unwrap_used)]

mod support;

#[path = "oauth2/harness.rs"]
#[allow(dead_code)]
mod harness;

use aws_lc_rs::hmac;
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use bytes::Bytes;
use harness::*;
use http_body_util::Full;
use hyper::Request;
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use serde_json::{Value, json};
use support::{GatewayConfig, Resp, add_clients, jwt_header, new_client, send};

const APP_ID: &str = "app-1";

async fn app() -> Setup {
    let s = setup_with(GatewayConfig::new().section("[dialects.app]\nencrypt_type = 1")).await;
    let now = authgate::store::now();
    use authgate::store::GrantType::{Password, TokenExchange};
    let clients =
        [("mobile", APP_ID, true), ("backend", "app-conf", false)].map(|(id, app_id, public)| {
            authgate::store::NewClient {
                app_id: Some(app_id.into()),
                ..new_client(id, public, vec![Password, TokenExchange])
            }
        });
    add_clients(&s.store, clients, SECRET, now).await;
    s
}

/// A request to `path` with the given headers and a body (`json` or form).
enum Body<'a> {
    Json(Value),
    Form(&'a [(&'a str, &'a str)]),
    Empty,
}

async fn call(s: &Setup, path: &str, headers: &[(&str, &str)], body: Body<'_>) -> Resp {
    let mut request = Request::post(s.gw.url(path));
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    let bytes = match body {
        Body::Json(value) => {
            request = request.header("content-type", "application/json");
            value.to_string()
        }
        Body::Form(pairs) => {
            request = request.header("content-type", "application/x-www-form-urlencoded");
            let mut form = form_urlencoded::Serializer::new(String::new());
            for (name, value) in pairs {
                form.append_pair(name, value);
            }
            form.finish()
        }
        Body::Empty => String::new(),
    };
    send(
        &s.gw.client(false),
        request.body(Full::new(Bytes::from(bytes))).unwrap(),
    )
    .await
}

fn kind(value: &Value) -> &'static str {
    match value {
        Value::String(_) => "string",
        Value::Number(n) if n.is_i64() || n.is_u64() => "integer",
        Value::Number(_) => "number",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
        Value::Bool(_) => "bool",
        Value::Null => "null",
    }
}

fn sorted_keys(value: &Value) -> Vec<String> {
    let mut keys: Vec<String> = value.as_object().unwrap().keys().cloned().collect();
    keys.sort_unstable();
    keys
}

/// Asserts the envelope of a failure: `{code, data: null, message}` with `code` = status.
fn assert_failure(r: &Resp, status: u16) -> String {
    assert_eq!(r.status, status, "{}", r.text());
    let body = r.json();
    assert_eq!(sorted_keys(&body), ["code", "data", "message"], "{body}");
    assert_eq!(body["code"], status);
    assert_eq!(body["data"], Value::Null);
    let message = body["message"].as_str().unwrap().to_owned();
    assert!(!message.is_empty());
    message
}

/// Logs in by user id with a JSON body; panics unless it succeeds. Returns `data`.
async fn login_by_id(s: &Setup, user: i64, device: Option<&str>) -> Value {
    let mut body = json!({ "user_id": user, "password": PASSWORD });
    if let Some(device) = device {
        body["device_guid"] = device.into();
    }
    let r = call(s, "/token/id", &[("app_id", APP_ID)], Body::Json(body)).await;
    assert_eq!(r.status, 200, "{}", r.text());
    r.json()["data"].clone()
}

/// GET /echo with the token in the `access-token` header, as the document's clients send it.
async fn echo_access_token(s: &Setup, token: &str) -> Resp {
    let request = Request::get(s.gw.url("/echo"))
        .header("access-token", token)
        .body(Full::new(Bytes::new()))
        .unwrap();
    send(&s.gw.client(false), request).await
}

#[tokio::test]
async fn the_documents_answer_field_by_field() {
    let s = app().await;
    let r = call(
        &s,
        "/token/id",
        &[("app_id", APP_ID)],
        Body::Json(json!({ "user_id": ALICE, "password": PASSWORD, "device_guid": "dev-1" })),
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.header("cache-control"), Some("no-store"));
    let body = r.json();
    assert_eq!(sorted_keys(&body), ["code", "data", "message"]);
    assert_eq!(body["code"], 200);
    assert_eq!(body["message"], Value::Null);
    let data = &body["data"];
    assert_eq!(
        sorted_keys(data),
        [
            "access_key_secret",
            "encrypt_type",
            "expire",
            "public_key",
            "push_token",
            "store_token",
            "token",
            "user_id"
        ]
    );
    for (name, expected) in [
        ("access_key_secret", "string"),
        ("encrypt_type", "integer"),
        ("expire", "integer"),
        ("public_key", "string"),
        ("push_token", "string"),
        ("store_token", "string"),
        ("token", "string"),
        ("user_id", "integer"),
    ] {
        assert_eq!(kind(&data[name]), expected, "{name}: {data}");
    }
    assert_eq!(data["user_id"], ALICE);
    assert_eq!(data["encrypt_type"], 1);
    let token = data["token"].as_str().unwrap();
    let token_claims = claims(token);
    assert_eq!(data["expire"], token_claims["exp"]);
    // Seven days by default (the document offers no refresh).
    assert_eq!(
        token_claims["exp"].as_i64().unwrap() - token_claims["iat"].as_i64().unwrap(),
        7 * 86_400
    );
    assert_eq!(token_claims["client_id"], "mobile");

    // `public_key` is the PEM key that verifies `token`.
    let pem = data["public_key"].as_str().unwrap();
    assert!(pem.starts_with("-----BEGIN PUBLIC KEY-----\n"), "{pem}");
    let key = DecodingKey::from_ec_pem(pem.as_bytes()).unwrap();
    let mut validation = Validation::new(Algorithm::ES256);
    validation.validate_aud = false;
    let verified = jsonwebtoken::decode::<Value>(token, &key, &validation).unwrap();
    assert_eq!(verified.claims["sub"], ALICE.to_string());

    // `store_token`: its own type, the storage audience, the session id; verifies too.
    let store_token = data["store_token"].as_str().unwrap();
    assert_eq!(jwt_header(store_token)["typ"], "authgate-store+jwt");
    let mut storage = Validation::new(Algorithm::ES256);
    storage.set_audience(&["authgate:storage"]);
    let store_claims = jsonwebtoken::decode::<Value>(store_token, &key, &storage)
        .unwrap()
        .claims;
    assert_eq!(store_claims["sid"], token_claims["jti"]);
    assert_eq!(store_claims["sub"], ALICE.to_string());
    assert_eq!(store_claims["exp"], token_claims["exp"]);

    // `access_key_secret` = base64url(HMAC-SHA256(storage secret, sid)): a storage service
    // holding the secret recomputes it from the store token.
    let config = authgate::config::load(&s.gw.config_path).unwrap();
    let authgate::config::StoreBackend::Sqlite { path } = &config.store.backend else {
        panic!("the test gateway runs on SQLite");
    };
    let secret = std::fs::read_to_string(path.with_file_name("storage-secret")).unwrap();
    let hmac_key = hmac::Key::new(hmac::HMAC_SHA256, secret.trim().as_bytes());
    let sid = store_claims["sid"].as_str().unwrap();
    let expected = URL_SAFE_NO_PAD.encode(hmac::sign(&hmac_key, sid.as_bytes()).as_ref());
    assert_eq!(data["access_key_secret"], expected);

    // `push_token`: bound to the device, the push audience.
    let push_token = data["push_token"].as_str().unwrap();
    assert_eq!(jwt_header(push_token)["typ"], "authgate-push+jwt");
    let mut push = Validation::new(Algorithm::ES256);
    push.set_audience(&["authgate:push"]);
    let push_claims = jsonwebtoken::decode::<Value>(push_token, &key, &push)
        .unwrap()
        .claims;
    assert_eq!(push_claims["device_guid"], "dev-1");
    assert_eq!(push_claims["sid"], token_claims["jti"]);

    // The token passes the proxy path, sent the document's way; the others never do.
    let r = echo_access_token(&s, token).await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.json()["headers"]["user_id"], ALICE.to_string());
    assert_eq!(r.json()["headers"]["group_id"], "7");
    for other in [store_token, push_token] {
        assert_eq!(echo_access_token(&s, other).await.status, 401);
        assert_eq!(s.echo(other).await.0, 401);
    }
}

#[tokio::test]
async fn three_ways_to_name_the_user_with_json_or_form_bodies() {
    let s = app().await;
    // /token/login: phone, e-mail or user name; form body; no device → push_token "".
    for name in ["+86 138 0000 0000", "alice@example.com", "alice"] {
        let r = call(
            &s,
            "/token/login",
            &[("app_id", APP_ID)],
            Body::Form(&[("login_name", name), ("password", PASSWORD)]),
        )
        .await;
        assert_eq!(r.status, 200, "{name}: {}", r.text());
        assert_eq!(r.json()["data"]["user_id"], ALICE);
        assert_eq!(r.json()["data"]["push_token"], "");
    }
    // /token/user: the user name only.
    let r = call(
        &s,
        "/token/user",
        &[("app_id", APP_ID)],
        Body::Json(json!({ "name": "bob", "password": PASSWORD })),
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.json()["data"]["user_id"], BOB);
    let r = call(
        &s,
        "/token/user",
        &[("app_id", APP_ID)],
        Body::Json(json!({ "name": "alice@example.com", "password": PASSWORD })),
    )
    .await;
    assert_failure(&r, 401);
    // /token/id with a form body and the id as text.
    let id = ALICE.to_string();
    let r = call(
        &s,
        "/token/id",
        &[("app_id", APP_ID)],
        Body::Form(&[("user_id", &id), ("password", PASSWORD)]),
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.text());
}

#[tokio::test]
async fn every_error_is_the_envelope_with_the_http_status() {
    let s = app().await;
    let good = || json!({ "user_id": ALICE, "password": PASSWORD });
    // No app_id, an unknown one, a confidential client's (it must use its secret elsewhere).
    let r = call(&s, "/token/id", &[], Body::Json(good())).await;
    assert!(assert_failure(&r, 400).contains("app_id"));
    for app_id in ["nope", "app-conf"] {
        let r = call(&s, "/token/id", &[("app_id", app_id)], Body::Json(good())).await;
        assert_failure(&r, 401);
    }
    // Wrong password and unknown user look the same.
    let wrong = call(
        &s,
        "/token/id",
        &[("app_id", APP_ID)],
        Body::Json(json!({ "user_id": ALICE, "password": "nope" })),
    )
    .await;
    let unknown = call(
        &s,
        "/token/id",
        &[("app_id", APP_ID)],
        Body::Json(json!({ "user_id": 999_999, "password": "nope" })),
    )
    .await;
    assert_failure(&wrong, 401);
    assert_eq!(wrong.json(), unknown.json(), "no user enumeration");
    // Malformed requests: 400.
    for body in [
        json!({ "user_id": ALICE }),
        json!({ "password": PASSWORD }),
        json!({ "user_id": "alice", "password": PASSWORD }),
        json!({ "user_id": [1], "password": PASSWORD }),
    ] {
        let r = call(&s, "/token/id", &[("app_id", APP_ID)], Body::Json(body)).await;
        assert_failure(&r, 400);
    }
    let r = call(
        &s,
        "/token/id",
        &[("app_id", APP_ID), ("content-type", "text/plain")],
        Body::Empty,
    )
    .await;
    assert_failure(&r, 400);
    let request = Request::post(s.gw.url("/token/login"))
        .header("app_id", APP_ID)
        .header("content-type", "text/plain")
        .body(Full::new(Bytes::from("login_name=alice")))
        .unwrap();
    assert_failure(&send(&s.gw.client(false), request).await, 400);
    // Only POST.
    let request = Request::get(s.gw.url("/token/id"))
        .header("app_id", APP_ID)
        .body(Full::new(Bytes::new()))
        .unwrap();
    let r = send(&s.gw.client(false), request).await;
    assert_failure(&r, 405);
    assert_eq!(r.header("allow"), Some("POST"));
    // Guessing: the engine's back-off answers 429 with Retry-After.
    let mut blocked = None;
    for _ in 0..10 {
        let r = call(
            &s,
            "/token/user",
            &[("app_id", APP_ID)],
            Body::Json(json!({ "name": "bob", "password": "nope" })),
        )
        .await;
        if r.status == 429 {
            blocked = Some(r);
            break;
        }
        assert_failure(&r, 401);
    }
    let blocked = blocked.expect("the back-off answers 429 within ten failures");
    assert_failure(&blocked, 429);
    assert!(
        blocked
            .header("retry-after")
            .unwrap()
            .parse::<u64>()
            .unwrap()
            >= 1
    );
}

#[tokio::test]
async fn admins_act_for_users_and_groups_everyone_else_is_refused() {
    let s = app().await;
    let boss = login_by_id(&s, BOSS, None).await;
    let boss_token = boss["token"].as_str().unwrap();
    let alice = login_by_id(&s, ALICE, None).await;
    let alice_token = alice["token"].as_str().unwrap();
    let alice_id = ALICE.to_string();

    // An admin's token + user_id: a token for that user, no password, `act` names the admin.
    let r = call(
        &s,
        "/token/id",
        &[
            ("app_id", APP_ID),
            ("access-token", boss_token),
            ("user_id", &alice_id),
        ],
        Body::Empty,
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.text());
    let data = r.json()["data"].clone();
    assert_eq!(data["user_id"], ALICE);
    let token = data["token"].as_str().unwrap();
    let acting = claims(token);
    assert_eq!(acting["sub"], alice_id);
    assert_eq!(acting["act"]["sub"], BOSS.to_string());
    let r = echo_access_token(&s, token).await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.json()["headers"]["user_id"], alice_id);
    // Audited at issue.
    let log = s.store.audit_log(None, 20).await.unwrap();
    assert!(
        log.iter()
            .any(|record| record.event.action == "token.exchange"
                && record.event.actor.as_deref() == Some("user:1")
                && record.event.subject.as_deref() == Some(&*format!("user:{ALICE}"))),
        "{log:?}"
    );

    // group_id alone: the admin's own token, acting as admin of that group.
    let r = call(
        &s,
        "/token/login",
        &[
            ("app_id", APP_ID),
            ("access-token", boss_token),
            ("group_id", "42"),
        ],
        Body::Empty,
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.text());
    let data = r.json()["data"].clone();
    assert_eq!(data["user_id"], BOSS);
    let group_claims = claims(data["token"].as_str().unwrap());
    assert_eq!(group_claims["gid"], 42);
    assert_eq!(group_claims["sub"], BOSS.to_string());

    // A non-admin's token: refused. No token at all: 401. Another admin: refused.
    let r = call(
        &s,
        "/token/id",
        &[
            ("app_id", APP_ID),
            ("access-token", alice_token),
            ("user_id", &BOB.to_string()),
        ],
        Body::Empty,
    )
    .await;
    assert_failure(&r, 403);
    let r = call(
        &s,
        "/token/id",
        &[("app_id", APP_ID), ("group_id", "42")],
        Body::Empty,
    )
    .await;
    assert_failure(&r, 401);
    let r = call(
        &s,
        "/token/id",
        &[
            ("app_id", APP_ID),
            ("access-token", boss_token),
            ("user_id", &ROOT2.to_string()),
        ],
        Body::Empty,
    )
    .await;
    assert_failure(&r, 403);
    let r = call(
        &s,
        "/token/id",
        &[
            ("app_id", APP_ID),
            ("access-token", boss_token),
            ("user_id", "alice"),
        ],
        Body::Empty,
    )
    .await;
    assert_failure(&r, 400);
}

#[tokio::test]
async fn opaque_tokens_are_a_setting_here_too() {
    let s =
        setup_with(GatewayConfig::new().section("[dialects.app]\ntoken_format = \"opaque\"")).await;
    let client = authgate::store::NewClient {
        id: "mobile".into(),
        public: true,
        app_id: Some(APP_ID.into()),
        grants: vec![authgate::store::GrantType::Password],
        ..authgate::store::NewClient::default()
    };
    s.store
        .add_client(client, None, authgate::store::now())
        .await
        .unwrap();
    let data = login_by_id(&s, ALICE, None).await;
    let token = data["token"].as_str().unwrap();
    assert_eq!(token.len(), 43, "{token}");
    // The PEM verifies the store token (the access token has no signature).
    let key = DecodingKey::from_ec_pem(data["public_key"].as_str().unwrap().as_bytes()).unwrap();
    let mut storage = Validation::new(Algorithm::ES256);
    storage.set_audience(&["authgate:storage"]);
    jsonwebtoken::decode::<Value>(data["store_token"].as_str().unwrap(), &key, &storage).unwrap();
    let r = echo_access_token(&s, token).await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.json()["headers"]["user_id"], ALICE.to_string());
}
