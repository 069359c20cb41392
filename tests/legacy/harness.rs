//! Shared pieces of `tests/legacy.rs`: a gateway with a store of three users (alice 1/10,
//! bob 2/20, root 9/1 admin) and tokens minted with its active key; raw-request helpers; a
//! status + JSON-shape check that does not insist on one error code.

use std::sync::Arc;

use authgate::authn::keyset::KeySet;
use authgate::keyring::Keyring;
use authgate::store::Store;

use crate::support::*;

pub const ISSUER: &str = "https://gw.test";

/// A running gateway plus what it takes to mint tokens it accepts.
pub struct Env {
    pub gw: TestGateway,
    keyring: Keyring,
    _store: Store,
}

impl Env {
    /// Start a gateway with `cfg` (an `[auth]` section naming our issuer is added) and the
    /// three users in its store.
    pub async fn start(cfg: GatewayConfig) -> Env {
        let gw = TestGateway::start(cfg.section(&format!("[auth]\nissuer = {ISSUER:?}"))).await;
        let config = authgate::config::load(&gw.config_path).unwrap();
        let store = Store::open(&config.store).await.unwrap();
        let now = authgate::store::now();
        let users = [
            new_user(1, "alice", 10, &[]),
            new_user(2, "bob", 20, &[]),
            new_user(9, "root", 1, &["admin"]),
        ];
        add_users(&store, users, None, now).await;
        let keyring = Keyring::new(store.clone(), ISSUER, Arc::new(KeySet::default()));
        keyring.refresh().await.unwrap();
        Env {
            gw,
            keyring,
            _store: store,
        }
    }

    pub fn token(&self, user: i64, group: i64, roles: &[&str]) -> String {
        access_token(&self.keyring, ISSUER, user, group, roles)
    }

    /// alice: user 1, group 10, no roles.
    pub fn alice(&self) -> String {
        self.token(1, 10, &[])
    }

    /// root: user 9, group 1, admin.
    pub fn admin(&self) -> String {
        self.token(9, 1, &["admin"])
    }
}

/// `Authorization: Bearer …` as a raw header line.
pub fn bearer(token: &str) -> String {
    format!("Authorization: Bearer {token}")
}

/// `{method} {target} HTTP/1.1` with `Host: localhost`, the given header lines, `Connection:
/// close` and `body` (the caller sets Content-Length / Transfer-Encoding), over raw TLS.
pub async fn raw_request(
    gw: &TestGateway,
    method: &str,
    target: &str,
    headers: &[&str],
    body: &[u8],
) -> RawResponse {
    let mut req = format!("{method} {target} HTTP/1.1\r\nHost: localhost\r\n");
    for h in headers {
        req.push_str(h);
        req.push_str("\r\n");
    }
    req.push_str("Connection: close\r\n\r\n");
    let mut bytes = req.into_bytes();
    bytes.extend_from_slice(body);
    raw_exchange(gw, &bytes).await
}

/// `GET target` with header lines (owned strings).
pub async fn raw_get_with(gw: &TestGateway, target: &str, headers: &[String]) -> RawResponse {
    let refs: Vec<&str> = headers.iter().map(String::as_str).collect();
    raw_get(gw, target, "localhost", &refs).await
}

/// The gateway's refusal: `status`, a JSON body `{"error", "error_description", "request_id"}`
/// with a non-empty code and description, `request_id` equal to `x-request-id`.
pub fn assert_refusal(
    what: &str,
    status: u16,
    r_status: u16,
    headers: &[(String, String)],
    body: &[u8],
) {
    let text = String::from_utf8_lossy(body);
    assert_eq!(r_status, status, "{what}: status; body: {text}");
    let ct = header_in(headers, "content-type").unwrap_or("");
    assert!(
        ct.starts_with("application/json"),
        "{what}: a refusal is JSON, got content-type {ct:?}; body: {text}"
    );
    let v: serde_json::Value = serde_json::from_slice(body)
        .unwrap_or_else(|e| panic!("{what}: refusal body is not JSON ({e}): {text}"));
    assert!(
        v["error"].as_str().is_some_and(|s| !s.is_empty()),
        "{what}: `error` code in {v}"
    );
    assert!(
        v["error_description"]
            .as_str()
            .is_some_and(|s| !s.is_empty()),
        "{what}: `error_description` in {v}"
    );
    let rid = header_in(headers, "x-request-id");
    assert!(rid.is_some(), "{what}: x-request-id on the refusal");
    assert_eq!(v["request_id"], rid.unwrap(), "{what}: request_id in {v}");
}

pub fn assert_raw_refusal(what: &str, r: &RawResponse, status: u16) {
    assert_refusal(what, status, r.status, &r.headers, &r.body);
}

pub fn assert_resp_refusal(what: &str, r: &Resp, status: u16) {
    assert_refusal(what, status, r.status.as_u16(), &r.header_pairs(), &r.body);
}

/// Asserts the stub recorded nothing new since `before` records.
pub fn assert_not_forwarded(what: &str, stub: &Stub, before: usize) {
    let recs = stub.records();
    assert_eq!(
        recs.len(),
        before,
        "{what}: the upstream must not be reached, it recorded {:#?}",
        &recs[before.min(recs.len())..]
    );
}

/// The one record the stub added since `before` records.
pub fn forwarded_once(what: &str, stub: &Stub, before: usize) -> Recorded {
    let recs = stub.records();
    assert_eq!(
        recs.len(),
        before + 1,
        "{what}: expected exactly one new upstream request, got {:#?}",
        &recs[before.min(recs.len())..]
    );
    recs[before].clone()
}

pub fn body_text(r: &RawResponse) -> String {
    String::from_utf8_lossy(&r.body).into_owned()
}
