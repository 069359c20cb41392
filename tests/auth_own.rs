//! Tokens the gateway signs itself: issued with the store's active key, verified on proxied
//! routes, published in the JWKS; revocation, key rotation and retirement take effect within
//! the keyring's refresh interval; admin impersonation is marked, audited, and refused to
//! others.
#![allow(clippy::unwrap_used)]

mod support;

use std::sync::Arc;
use std::time::Duration;

use authgate::authn::keyset::KeySet;
use authgate::keyring::Keyring;
use authgate::store::{KeyAlg, Store};
use authgate::tokens::{self, AccessTokenSpec};
use bytes::Bytes;
use http_body_util::Full;
use support::*;

struct Setup {
    gw: TestGateway,
    store: Store,
    keyring: Keyring,
    issuer: String,
}

async fn setup() -> Setup {
    let gw = TestGateway::start(
        GatewayConfig::new()
            .section("[auth]\nissuer = \"https://gw.test\"\nrefresh_interval = \"100ms\"")
            .route("prefix = \"/echo\"\nupstream = \"builtin:echo\"")
            .route("prefix = \"/admin\"\nupstream = \"builtin:echo\"\nauth = \"admin\""),
    )
    .await;
    let config = authgate::config::load(&gw.config_path).unwrap();
    let store = Store::open(&config.store).await.unwrap();
    let now = authgate::store::now();
    let users = [
        new_user(1, "alice", 10, &[]),
        new_user(2, "bob", 20, &[]),
        new_user(9, "root", 1, &["admin"]),
        new_user(8, "root2", 1, &["admin"]),
    ];
    add_users(&store, users, None, now).await;
    let keyring = Keyring::new(
        store.clone(),
        "https://gw.test",
        Arc::new(KeySet::default()),
    );
    keyring.refresh().await.unwrap();
    Setup {
        gw,
        store,
        keyring,
        issuer: "https://gw.test".into(),
    }
}

impl Setup {
    async fn token(&self, user: i64, group: i64, roles: &[&str]) -> String {
        self.keyring.refresh().await.unwrap();
        access_token(&self.keyring, &self.issuer, user, group, roles)
    }

    async fn get(&self, path: &str, token: &str, extra: &[(&str, &str)]) -> Resp {
        let mut request = hyper::Request::get(self.gw.url(path))
            .header("authorization", format!("Bearer {token}"));
        for (name, value) in extra {
            request = request.header(*name, *value);
        }
        send(
            &self.gw.client(false),
            request.body(Full::new(Bytes::new())).unwrap(),
        )
        .await
    }

    /// Polls until `path` answers `status` (the gateway refreshes every 100 ms).
    async fn eventually(&self, path: &str, token: &str, status: u16) {
        for _ in 0..50 {
            if self.get(path, token, &[]).await.status == status {
                return;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        panic!("{path} never answered {status}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn own_tokens_verify_and_identity_is_injected() {
    let s = setup().await;
    let token = s.token(1, 10, &[]).await;
    let r = s
        .get("/echo/x", &token, &[("User-Id", "1"), ("x_group_id", "10")])
        .await;
    assert_eq!(r.status, 200, "{}", r.text());
    let headers = &r.json()["headers"];
    assert_eq!(headers["user_id"], "1");
    assert_eq!(headers["group_id"], "10");
    assert!(headers.get("user-id").is_none() && headers.get("x_group_id").is_none());
    assert!(headers.get("authorization").is_none());

    // The JWKS publishes the active key.
    let jwks = get(&s.gw.client(false), &s.gw.url("/.well-known/jwks.json")).await;
    assert_eq!(jwks.status, 200);
    assert_eq!(
        jwks.header("content-type"),
        Some("application/jwk-set+json")
    );
    let kid = s.keyring.signing_key(KeyAlg::Es256).unwrap().kid.clone();
    assert!(
        jwks.json()["keys"]
            .as_array()
            .unwrap()
            .iter()
            .any(|k| k["kid"] == kid.as_str())
    );

    // Plain users cannot use admin routes.
    let r = s.get("/admin/x", &token, &[]).await;
    assert_eq!(r.status, 403, "{}", r.text());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn revoke_tokens_takes_effect_even_for_cached_tokens() {
    let s = setup().await;
    let token = s.token(1, 10, &[]).await;
    // Twice: the verified-token cache admits a token on its second use.
    assert_eq!(s.get("/echo", &token, &[]).await.status, 200);
    assert_eq!(s.get("/echo", &token, &[]).await.status, 200);
    s.store
        .revoke_user_tokens(1, authgate::store::now())
        .await
        .unwrap();
    s.eventually("/echo", &token, 401).await;
    let other = s.token(2, 20, &[]).await;
    assert_eq!(
        s.get("/echo", &other, &[]).await.status,
        200,
        "only alice was logged out"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn key_rotation_and_retirement() {
    let s = setup().await;
    let now = authgate::store::now();
    let old_kid = s.keyring.signing_key(KeyAlg::Es256).unwrap().kid.clone();
    let before = s.token(1, 10, &[]).await;
    let new = s
        .store
        .add_key(KeyAlg::Es256, None, None, now)
        .await
        .unwrap();
    s.store.activate_key(&new.kid, now).await.unwrap();
    let after = s.token(1, 10, &[]).await;
    assert_eq!(s.keyring.signing_key(KeyAlg::Es256).unwrap().kid, new.kid);
    s.eventually("/echo", &after, 200).await;
    assert_eq!(
        s.get("/echo", &before, &[]).await.status,
        200,
        "the retiring key still verifies"
    );
    let jwks = get(&s.gw.client(false), &s.gw.url("/.well-known/jwks.json"))
        .await
        .json();
    let kids: Vec<&str> = jwks["keys"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| k["kid"].as_str().unwrap())
        .collect();
    assert!(
        kids.contains(&old_kid.as_str()) && kids.contains(&new.kid.as_str()),
        "{kids:?}"
    );

    s.store.retire_key(&old_kid, now).await.unwrap();
    s.eventually("/echo", &before, 401).await;
    assert_eq!(s.get("/echo", &after, &[]).await.status, 200);

    s.store.revoke_key(&new.kid, now).await.unwrap();
    s.eventually("/echo", &after, 401).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn admins_impersonate_with_a_mark_and_an_audit_record() {
    let s = setup().await;
    let admin = s.token(9, 1, &["admin"]).await;
    let r = s.get("/echo", &admin, &[("user_id", "2")]).await;
    assert_eq!(r.status, 200, "{}", r.text());
    let headers = &r.json()["headers"];
    assert_eq!(headers["user_id"], "2");
    assert_eq!(
        headers["group_id"], "20",
        "the impersonated user's group, from the store"
    );
    assert_eq!(headers["x-impersonator-id"], "9");
    let request_id = r.header("x-request-id").unwrap().to_owned();
    let log = s.store.audit_log(None, 50).await.unwrap();
    let record = log
        .iter()
        .find(|r| r.event.action == "impersonate")
        .expect("audited");
    assert_eq!(record.event.actor.as_deref(), Some("user:9"));
    assert_eq!(record.event.subject.as_deref(), Some("user:2"));
    assert_eq!(
        record.event.request_id.as_deref(),
        Some(request_id.as_str())
    );

    // As the admin of another group: the admin stays the user.
    let r = s.get("/echo", &admin, &[("Group-Id", "77")]).await;
    assert_eq!(r.status, 200, "{}", r.text());
    let headers = &r.json()["headers"];
    assert_eq!(
        (headers["user_id"].as_str(), headers["group_id"].as_str()),
        (Some("9"), Some("77"))
    );

    assert_eq!(
        s.get("/echo", &admin, &[("user_id", "4242")]).await.status,
        404
    );
    assert_eq!(
        s.get("/echo", &admin, &[("user_id", "8")]).await.status,
        403,
        "not another admin"
    );
    let alice = s.token(1, 10, &[]).await;
    assert_eq!(
        s.get("/echo", &alice, &[("user_id", "2")]).await.status,
        403
    );
}

/// A body that sends one data frame, then trailers.
struct WithTrailers(Option<bytes::Bytes>, Option<hyper::HeaderMap>);

impl hyper::body::Body for WithTrailers {
    type Data = bytes::Bytes;
    type Error = std::convert::Infallible;

    fn poll_frame(
        mut self: std::pin::Pin<&mut Self>,
        _: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Result<hyper::body::Frame<Self::Data>, Self::Error>>> {
        let frame = match (self.0.take(), self.1.take()) {
            (Some(data), trailers) => {
                self.1 = trailers;
                Some(Ok(hyper::body::Frame::data(data)))
            }
            (None, Some(trailers)) => Some(Ok(hyper::body::Frame::trailers(trailers))),
            (None, None) => None,
        };
        std::task::Poll::Ready(frame)
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn identity_headers_in_trailers_are_removed() {
    let s = setup().await;
    let token = s.token(1, 10, &[]).await;
    let mut trailers = hyper::HeaderMap::new();
    trailers.insert("user_id", "9".parse().unwrap());
    trailers.insert("x-impersonator-id", "9".parse().unwrap());
    trailers.insert("x-checksum", "abc".parse().unwrap());
    let request = hyper::Request::post(s.gw.url("/echo"))
        .header("authorization", format!("Bearer {token}"))
        .body(WithTrailers(
            Some(bytes::Bytes::from_static(b"hello")),
            Some(trailers),
        ))
        .unwrap();
    let r = send(&https_client::<WithTrailers>(&s.gw.cert, true), request).await;
    assert_eq!(r.status, 200, "{}", r.text());
    let echo = r.json();
    assert_eq!(echo["body_bytes"], 5);
    assert_eq!(
        echo["trailers"]["x-checksum"], "abc",
        "other trailers pass: {echo}"
    );
    assert!(echo["trailers"].get("user_id").is_none(), "{echo}");
    assert!(
        echo["trailers"].get("x-impersonator-id").is_none(),
        "{echo}"
    );
    assert_eq!(echo["headers"]["user_id"], "1");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn identity_assertion_and_scope_header() {
    let gw = TestGateway::start(
        GatewayConfig::new()
            .section("[auth]\nissuer = \"https://gw.test\"\n\n[identity]\nscope_header = \"X-Scopes\"")
            .route("name = \"orders\"\nprefix = \"/orders\"\nupstream = \"builtin:echo\"\nidentity_assertion = true"),
    )
    .await;
    let config = authgate::config::load(&gw.config_path).unwrap();
    let store = Store::open(&config.store).await.unwrap();
    let eve = new_user(5, "eve", 3, &[]);
    add_users(&store, [eve], None, authgate::store::now()).await;
    let keyring = Keyring::new(
        store.clone(),
        "https://gw.test",
        Arc::new(KeySet::default()),
    );
    keyring.refresh().await.unwrap();
    let key = keyring.signing_key(KeyAlg::Es256).unwrap();
    let spec = AccessTokenSpec {
        user_id: "5".into(),
        group_id: Some(3),
        scopes: vec!["read".into(), "write".into()],
        client_id: Some("test-app".into()),
        ttl: Duration::from_secs(600),
        ..AccessTokenSpec::default()
    };
    let token = tokens::issue(
        "https://gw.test",
        &key,
        &spec,
        jsonwebtoken::get_current_timestamp(),
    )
    .unwrap()
    .token;
    let request = |extra: Option<(&str, &str)>, bearer: &str| {
        let mut r = hyper::Request::get(gw.url("/orders"))
            .header("authorization", format!("Bearer {bearer}"));
        if let Some((name, value)) = extra {
            r = r.header(name, value);
        }
        r.body(Full::new(Bytes::new())).unwrap()
    };
    let forged = "eyJhbGciOiJub25lIn0.e30.";
    let r = send(
        &gw.client(false),
        request(Some(("X-Authgate-Assertion", forged)), &token),
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.text());
    let headers = r.json()["headers"].clone();
    assert_eq!(headers["x-scopes"], "read write");
    let assertion = headers["x-authgate-assertion"].as_str().unwrap().to_owned();
    assert_ne!(assertion, forged, "a client-sent assertion is replaced");

    // The upstream can verify it with our published key; it is not an access token.
    let jwks: jsonwebtoken::jwk::JwkSet = serde_json::from_value(
        get(&gw.client(false), &gw.url("/.well-known/jwks.json"))
            .await
            .json(),
    )
    .unwrap();
    let header = jsonwebtoken::decode_header(&assertion).unwrap();
    assert_eq!(
        header.typ.as_deref(),
        Some(authgate::tokens::ASSERTION_TYPE)
    );
    let jwk = jwks.find(header.kid.as_deref().unwrap()).unwrap();
    let mut validation = jsonwebtoken::Validation::new(jsonwebtoken::Algorithm::ES256);
    validation.set_audience(&["orders"]);
    validation.set_issuer(&["https://gw.test"]);
    let claims = jsonwebtoken::decode::<serde_json::Value>(
        &assertion,
        &jsonwebtoken::DecodingKey::from_jwk(jwk).unwrap(),
        &validation,
    )
    .unwrap()
    .claims;
    assert_eq!(
        (claims["sub"].as_str(), claims["gid"].as_str()),
        (Some("5"), Some("3"))
    );
    let r = send(&gw.client(false), request(None, &assertion)).await;
    assert_eq!(
        r.status, 401,
        "an identity assertion is never accepted as an access token"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_denied_jti_is_refused() {
    let s = setup().await;
    s.keyring.refresh().await.unwrap();
    let key = s.keyring.signing_key(KeyAlg::Es256).unwrap();
    let spec = AccessTokenSpec {
        user_id: "2".into(),
        client_id: Some("test-app".into()),
        ttl: Duration::from_secs(600),
        ..AccessTokenSpec::default()
    };
    let issued = tokens::issue(
        &s.issuer,
        &key,
        &spec,
        jsonwebtoken::get_current_timestamp(),
    )
    .unwrap();
    assert_eq!(s.get("/echo", &issued.token, &[]).await.status, 200);
    s.store
        .deny_jti(&issued.jti, i64::try_from(issued.expires_at).unwrap())
        .await
        .unwrap();
    s.eventually("/echo", &issued.token, 401).await;
    let fresh = s.token(2, 20, &[]).await;
    assert_eq!(
        s.get("/echo", &fresh, &[]).await.status,
        200,
        "only that token"
    );
}
