//! Bearer validation on proxied routes with an external issuer (static JWKS file): every bad
//! token is a 401 that reaches no upstream; a good one reaches it with the verified identity
//! injected and every client-sent identity header gone.
#![allow(clippy::unwrap_used)]

mod support;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use bytes::Bytes;
use http_body_util::Full;
use jsonwebtoken::jwk::{Jwk, JwkSet};
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header};
use serde_json::{Value, json};
use support::*;

const ISS: &str = "https://idp.test";

struct Idp {
    encoding: EncodingKey,
    public_pem: String,
    _dir: tempfile::TempDir,
    jwks_path: std::path::PathBuf,
}

fn idp() -> Idp {
    let pair = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).unwrap();
    let public_pem = pair.public_key_pem();
    let decoding = DecodingKey::from_ec_pem(public_pem.as_bytes()).unwrap();
    let mut jwk = Jwk::from_decoding_key(&decoding, Some(Algorithm::ES256)).unwrap();
    jwk.common.key_id = Some("idp-1".into());
    let dir = tempfile::tempdir().unwrap();
    let jwks_path = dir.path().join("jwks.json");
    std::fs::write(
        &jwks_path,
        serde_json::to_string(&JwkSet { keys: vec![jwk] }).unwrap(),
    )
    .unwrap();
    Idp {
        encoding: EncodingKey::from_ec_pem(pair.serialize_pem().as_bytes()).unwrap(),
        public_pem,
        _dir: dir,
        jwks_path,
    }
}

fn now() -> u64 {
    jsonwebtoken::get_current_timestamp()
}

fn claims() -> Value {
    json!({"iss": ISS, "sub": "1001", "aud": "orders", "exp": now() + 600, "nbf": now() - 5,
           "iat": now(), "gid": 77})
}

fn sign(idp: &Idp, kid: &str, claims: &Value) -> String {
    let mut header = Header::new(Algorithm::ES256);
    header.kid = Some(kid.into());
    jsonwebtoken::encode(&header, claims, &idp.encoding).unwrap()
}

async fn gateway(idp: &Idp, stub: &Stub) -> TestGateway {
    gateway_with(idp, stub, "subject = \"local\"").await
}

/// The issuer's `extra` lines decide how its subjects map (`subject` / `subject_prefix`) and
/// whether its `act` is believed.
async fn gateway_with(idp: &Idp, stub: &Stub, extra: &str) -> TestGateway {
    let issuer = format!(
        "[[issuers]]\nissuer = {ISS:?}\n{extra}\njwks_file = {:?}\nalgorithms = [\"ES256\"]\naudiences = [\"orders\"]\ngroup_claim = \"gid\"",
        idp.jwks_path.display().to_string()
    );
    TestGateway::start(
        GatewayConfig::new()
            .section(&issuer)
            .route(&format!("prefix = \"/api\"\nupstream = \"{}\"", stub.url()))
            .route(&format!(
                "prefix = \"/admin\"\nupstream = \"{}\"\nauth = \"admin\"",
                stub.url()
            )),
    )
    .await
}

async fn call(gw: &TestGateway, path: &str, headers: &[(&str, &str)]) -> Resp {
    let mut request = hyper::Request::get(gw.url(path));
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    send(
        &gw.client(false),
        request.body(Full::new(Bytes::new())).unwrap(),
    )
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_valid_token_reaches_the_upstream_with_the_verified_identity_only() {
    let (idp, stub) = (idp(), Stub::start(Mode::Ok).await);
    let gw = gateway(&idp, &stub).await;
    let bearer = format!("Bearer {}", sign(&idp, "idp-1", &claims()));
    let r = call(
        &gw,
        "/api/orders",
        &[
            ("authorization", &bearer),
            ("User-Id", "1001"),
            ("x_user_id", "1001"),
            ("GROUP_ID", "77"),
            ("x-impersonator-id", "9"),
            ("connection", "user_id, group_id"),
        ],
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.text());
    let seen = stub.only();
    assert_eq!(seen.header_all("user_id"), vec!["1001"]);
    assert_eq!(seen.header_all("group_id"), vec!["77"]);
    for name in seen.header_names() {
        let canonical = name.to_ascii_lowercase().replace('_', "-");
        assert!(
            ![
                "user-id",
                "x-user-id",
                "group-id",
                "x-group-id",
                "x-impersonator-id"
            ]
            .contains(&canonical.as_str())
                || name == "user_id"
                || name == "group_id",
            "client identity header {name} reached the upstream"
        );
    }
    assert!(
        !seen.has_header("authorization"),
        "the bearer token is not forwarded by default"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_tokens_are_401_and_reach_nothing() {
    let (idp, stub) = (idp(), Stub::start(Mode::Ok).await);
    let gw = gateway(&idp, &stub).await;
    let with = |name: &str, value: Value| {
        let mut c = claims();
        c[name] = value;
        sign(&idp, "idp-1", &c)
    };
    let part = |v: &Value| URL_SAFE_NO_PAD.encode(v.to_string());
    let none = format!(
        "{}.{}.",
        part(&json!({"alg": "none", "kid": "idp-1"})),
        part(&claims())
    );
    let mut hs_header = Header::new(Algorithm::HS256);
    hs_header.kid = Some("idp-1".into());
    let hmac = jsonwebtoken::encode(
        &hs_header,
        &claims(),
        &EncodingKey::from_secret(idp.public_pem.as_bytes()),
    )
    .unwrap();
    let good = sign(&idp, "idp-1", &claims());
    let pieces: Vec<&str> = good.split('.').collect();
    let mut evil = claims();
    evil["sub"] = json!("1");
    let tampered = format!("{}.{}.{}", pieces[0], part(&evil), pieces[2]);
    let cases = [
        ("alg none", none),
        ("HS256 with the public key as secret", hmac),
        ("tampered payload", tampered),
        ("unknown kid", sign(&idp, "idp-2", &claims())),
        ("expired", with("exp", json!(now() - 3600))),
        ("nbf in the future", with("nbf", json!(now() + 3600))),
        (
            "exp as a string",
            with("exp", json!((now() + 600).to_string())),
        ),
        ("nbf as a string", with("nbf", json!(now().to_string()))),
        ("wrong issuer", with("iss", json!("https://evil.test"))),
        ("wrong audience", with("aud", json!("billing"))),
        ("garbage", "garbage".to_owned()),
    ];
    for (what, token) in cases {
        let r = call(
            &gw,
            "/api/x",
            &[("authorization", &format!("Bearer {token}"))],
        )
        .await;
        assert_eq!(r.status, 401, "{what}: {}", r.text());
        assert_eq!(r.json()["error"], "invalid_token", "{what}");
        let challenge = r.header("www-authenticate").unwrap_or_default();
        assert!(
            challenge.contains("error=\"invalid_token\""),
            "{what}: {challenge}"
        );
    }
    assert!(
        stub.records().is_empty(),
        "a bad token reached the upstream"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rfc_6750_answers_for_missing_duplicate_and_insufficient() {
    let (idp, stub) = (idp(), Stub::start(Mode::Ok).await);
    let gw = gateway(&idp, &stub).await;
    let token = sign(&idp, "idp-1", &claims());
    let bearer = format!("Bearer {token}");

    let r = call(&gw, "/api/x", &[]).await;
    assert_eq!(r.status, 401);
    assert_eq!(
        r.header("www-authenticate"),
        Some("Bearer realm=\"authgate\"")
    );

    let r = call(
        &gw,
        "/api/x",
        &[("authorization", &bearer), ("access-token", &token)],
    )
    .await;
    assert_eq!(r.status, 400, "{}", r.text());
    assert_eq!(r.json()["error"], "invalid_request");

    let r = call(&gw, "/api/x", &[("authorization", "Bearer a b")]).await;
    assert_eq!(r.status, 400, "{}", r.text());

    // External tokens carry no roles unless the issuer maps a claim to them.
    let r = call(&gw, "/admin/x", &[("authorization", &bearer)]).await;
    assert_eq!(r.status, 403, "{}", r.text());
    assert_eq!(r.json()["error"], "insufficient_scope");

    // The `access-token` header works on its own.
    let r = call(&gw, "/api/x", &[("access-token", &token)]).await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(stub.records().len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_non_admin_cannot_act_as_someone_else() {
    let (idp, stub) = (idp(), Stub::start(Mode::Ok).await);
    let gw = gateway(&idp, &stub).await;
    let bearer = format!("Bearer {}", sign(&idp, "idp-1", &claims()));
    for (name, value) in [
        ("user_id", "2002"),
        ("User-Id", "2002"),
        ("group_id", "88"),
        ("X-Group-Id", "88"),
    ] {
        let r = call(&gw, "/api/x", &[("authorization", &bearer), (name, value)]).await;
        assert_eq!(r.status, 403, "{name}: {}", r.text());
    }
    assert!(stub.records().is_empty());
    // Naming yourself is harmless.
    let r = call(
        &gw,
        "/api/x",
        &[("authorization", &bearer), ("user_id", "1001")],
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.text());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_subject_prefix_keeps_external_subjects_apart_from_local_ids() {
    let (idp, stub) = (idp(), Stub::start(Mode::Ok).await);
    let gw = gateway_with(&idp, &stub, "subject_prefix = \"idp:\"").await;
    let bearer = format!("Bearer {}", sign(&idp, "idp-1", &claims()));
    let r = call(&gw, "/api/x", &[("authorization", &bearer)]).await;
    assert_eq!(r.status, 200, "{}", r.text());
    let seen = stub.only();
    assert_eq!(seen.header_all("user_id"), vec!["idp:1001"]);
    assert_eq!(seen.header_all("group_id"), vec!["idp:77"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn identity_claims_that_are_not_one_plain_value_are_401() {
    let (idp, stub) = (idp(), Stub::start(Mode::Ok).await);
    let gw = gateway(&idp, &stub).await;
    let long = "9".repeat(300);
    for (claim, value) in [
        ("sub", json!(" 1")),
        ("sub", json!("1002, 1")),
        ("sub", json!("1\t2")),
        ("sub", json!("1\r\nX-Evil: 1")),
        ("sub", json!(long)),
        ("gid", json!("7 8")),
        ("gid", json!("7,8")),
    ] {
        let mut c = claims();
        c[claim] = value.clone();
        let bearer = format!("Bearer {}", sign(&idp, "idp-1", &c));
        let r = call(&gw, "/api/x", &[("authorization", &bearer)]).await;
        assert_eq!(r.status, 401, "{claim} = {value}: {}", r.text());
    }
    assert!(stub.records().is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_external_act_is_ignored_unless_the_issuer_is_trusted_for_delegation() {
    let (idp, stub) = (idp(), Stub::start(Mode::Ok).await);
    let mut c = claims();
    c["act"] = json!({"sub": "9"});
    let bearer = format!("Bearer {}", sign(&idp, "idp-1", &c));

    let gw = gateway(&idp, &stub).await;
    let r = call(&gw, "/api/x", &[("authorization", &bearer)]).await;
    assert_eq!(r.status, 200, "{}", r.text());
    let seen = stub.only();
    assert_eq!(seen.header_all("user_id"), vec!["1001"]);
    assert!(
        !seen.has_header("x-impersonator-id"),
        "an untrusted act became the impersonator: {:?}",
        seen.headers
    );

    let stub = Stub::start(Mode::Ok).await;
    let gw = gateway_with(
        &idp,
        &stub,
        "subject = \"local\"\ntrusted_for_delegation = true",
    )
    .await;
    let r = call(&gw, "/api/x", &[("authorization", &bearer)]).await;
    assert_eq!(r.status, 200, "{}", r.text());
    let seen = stub.only();
    assert_eq!(seen.header_all("x-impersonator-id"), vec!["9"]);
    // Acting is audited on every request.
    let config = authgate::config::load(&gw.config_path).unwrap();
    let store = authgate::store::Store::open(&config.store).await.unwrap();
    let filter = authgate::store::AuditFilter {
        kind: Some("impersonate".into()),
        limit: 10,
        ..Default::default()
    };
    let records = store.audit_search(&filter).await.unwrap();
    assert_eq!(records.len(), 1, "{records:?}");
    assert_eq!(records[0].event.actor.as_deref(), Some("user:9"));
    assert_eq!(records[0].event.subject.as_deref(), Some("user:1001"));
}

#[test]
fn an_issuer_must_say_how_its_subjects_map() {
    let idp = idp();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("gateway.toml");
    for (extra, key) in [
        ("", "issuers[0].subject_prefix"),
        ("subject = \"remote\"", "issuers[0].subject"),
        ("subject_prefix = \"42\"", "issuers[0].subject_prefix"),
        (
            "subject = \"local\"\nsubject_prefix = \"idp:\"",
            "issuers[0].subject_prefix",
        ),
    ] {
        let toml = format!(
            "[server]\nlisten = \"127.0.0.1:0\"\n[tls]\ncert = \"c.pem\"\nkey = \"k.pem\"\n[[issuers]]\nissuer = {ISS:?}\n{extra}\njwks_file = {:?}\nalgorithms = [\"ES256\"]\n",
            idp.jwks_path.display().to_string()
        );
        std::fs::write(&path, &toml).unwrap();
        let error = authgate::config::load(&path).expect_err(extra).to_string();
        assert!(error.contains(key), "{extra:?}: {error}");
    }
}
