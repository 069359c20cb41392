//! A gateway serving the `oauth2` dialect, with users and clients in its store, and helpers
//! to call the token endpoints the way a client would (form bodies, Basic or post auth).

use std::sync::Arc;

use authgate::authn::keyset::KeySet;
use authgate::authn::{IssuerPolicy, Verifier};
use authgate::grant::{AuthorizationRequest, Engine, EngineConfig, Throttle, ThrottlePolicy};
use authgate::keyring::Keyring;
use authgate::store::{GrantType, NewUser, Store};
use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use bytes::Bytes;
use http_body_util::Full;
use hyper::Request;

use crate::support::*;

pub const ISSUER: &str = "https://gw.test";
pub const PASSWORD: &str = "correct horse battery staple";
pub const SECRET: &str = "client-secret-0123456789abcdef";
pub const REDIRECT: &str = "https://app.example/cb";
pub const ALICE: i64 = 100;
pub const BOB: i64 = 101;
pub const BOSS: i64 = 1;
pub const ROOT2: i64 = 2;

/// How a request authenticates its client.
#[derive(Clone, Copy)]
pub enum Auth<'a> {
    None,
    /// `client_secret_basic`
    Basic(&'a str, &'a str),
    /// `client_secret_post` (`client_id` + `client_secret` in the body)
    Post(&'a str, &'a str),
    /// A public client: `client_id` only
    PublicId(&'a str),
}

pub struct Setup {
    pub gw: TestGateway,
    pub store: Store,
    /// An engine over the gateway's store, to create authorization codes (the login page's
    /// job, issue 7).
    pub engine: Engine,
}

pub async fn setup() -> Setup {
    setup_with(GatewayConfig::new()).await
}

pub async fn setup_with(config: GatewayConfig) -> Setup {
    let gw = TestGateway::start(
        config
            .section("[auth]\nissuer = \"https://gw.test\"\nrefresh_interval = \"100ms\"")
            .route("prefix = \"/echo\"\nupstream = \"builtin:echo\"")
            .route("prefix = \"/service\"\nupstream = \"builtin:echo\"\nallow_clients = true"),
    )
    .await;
    let config = authgate::config::load(&gw.config_path).unwrap();
    let store = Store::open(&config.store).await.unwrap();
    populate(&store).await;
    let keys = Arc::new(KeySet::default());
    let keyring = Arc::new(Keyring::new(store.clone(), ISSUER, Arc::clone(&keys)));
    keyring.refresh().await.unwrap();
    let verifier = Verifier::new(
        keys,
        vec![IssuerPolicy::own(&config.auth)],
        5,
        10,
        keyring.revocations(),
    );
    let engine = Engine::new(
        store.clone(),
        keyring,
        Arc::new(verifier),
        Arc::new(Throttle::new(ThrottlePolicy::default())),
        EngineConfig::new(ISSUER),
    );
    Setup { gw, store, engine }
}

async fn populate(store: &Store) {
    let now = authgate::store::now();
    let users = [
        NewUser {
            phone: Some("+86 138 0000 0000".into()),
            email: Some("alice@example.com".into()),
            ..new_user(ALICE, "alice", 7, &[])
        },
        new_user(BOB, "bob", 8, &[]),
        new_user(BOSS, "boss", 1, &["admin"]),
        new_user(ROOT2, "root2", 1, &["admin"]),
    ];
    add_users(store, users, Some(PASSWORD), now).await;
    use GrantType::*;
    let clients = [
        (
            "web",
            false,
            vec![Password, RefreshToken, AuthorizationCode, TokenExchange],
        ),
        ("other", false, vec![Password, RefreshToken]),
        ("svc", false, vec![ClientCredentials]),
        ("spa", true, vec![AuthorizationCode, RefreshToken]),
        ("norefresh", false, vec![Password]),
        ("imp", true, vec![Implicit]),
    ];
    let clients = clients.map(|(id, public, grants)| oauth_client(id, public, grants, REDIRECT));
    add_clients(store, clients, SECRET, now).await;
}

impl Setup {
    /// POSTs a form to `path`.
    pub async fn post(&self, path: &str, auth: Auth<'_>, params: &[(&str, &str)]) -> Resp {
        let mut form = form_urlencoded::Serializer::new(String::new());
        let mut request = Request::post(self.gw.url(path))
            .header("content-type", "application/x-www-form-urlencoded");
        match auth {
            Auth::None => {}
            Auth::Basic(id, secret) => {
                let pair = STANDARD.encode(format!("{id}:{secret}"));
                request = request.header("authorization", format!("Basic {pair}"));
            }
            Auth::Post(id, secret) => {
                form.append_pair("client_id", id);
                form.append_pair("client_secret", secret);
            }
            Auth::PublicId(id) => {
                form.append_pair("client_id", id);
            }
        }
        for (name, value) in params {
            form.append_pair(name, value);
        }
        let body = Full::new(Bytes::from(form.finish()));
        send(&self.gw.client(false), request.body(body).unwrap()).await
    }

    /// A password grant for `account` at `/oauth2/token`; panics unless it succeeds.
    pub async fn login(&self, client: &str, account: &str) -> serde_json::Value {
        let r = self
            .post(
                "/oauth2/token",
                Auth::Basic(client, SECRET),
                &[
                    ("grant_type", "password"),
                    ("username", account),
                    ("password", PASSWORD),
                ],
            )
            .await;
        assert_eq!(r.status, 200, "login {account}: {}", r.text());
        r.json()
    }

    /// A `client_credentials` access token of `client` (a client acting for itself); panics
    /// unless the grant succeeds.
    pub async fn client_token(&self, client: &str) -> String {
        let r = self
            .post(
                "/oauth2/token",
                Auth::Basic(client, SECRET),
                &[("grant_type", "client_credentials")],
            )
            .await;
        assert_eq!(
            r.status,
            200,
            "client_credentials for {client}: {}",
            r.text()
        );
        r.json()["access_token"].as_str().unwrap().to_owned()
    }

    pub async fn refresh(&self, client: &str, token: &str) -> Resp {
        self.post(
            "/oauth2/token",
            Auth::Basic(client, SECRET),
            &[("grant_type", "refresh_token"), ("refresh_token", token)],
        )
        .await
    }

    /// GET /echo with the bearer token: the status, and the identity the upstream received.
    pub async fn echo(&self, token: &str) -> (u16, Option<String>) {
        let (status, headers) = self.echo_headers(token).await;
        let user = headers.map(|h| h["user_id"].as_str().unwrap_or_default().to_owned());
        (status, user)
    }

    /// GET /echo with the bearer token: the status, and the headers the upstream received.
    pub async fn echo_headers(&self, token: &str) -> (u16, Option<serde_json::Value>) {
        let request = Request::get(self.gw.url("/echo"))
            .header("authorization", format!("Bearer {token}"))
            .body(Full::new(Bytes::new()))
            .unwrap();
        let r = send(&self.gw.client(false), request).await;
        let headers = (r.status == 200).then(|| r.json()["headers"].clone());
        (r.status.as_u16(), headers)
    }

    pub async fn code(&self, client: &str, challenge: Option<&str>) -> String {
        let request = AuthorizationRequest {
            client_id: client.into(),
            user_id: ALICE,
            redirect_uri: Some(REDIRECT.into()),
            scope: None,
            code_challenge: challenge.map(Into::into),
            code_challenge_method: challenge.map(|_| "S256".into()),
            nonce: None,
            auth_time: None,
            resources: Vec::new(),
        };
        self.engine.issue_code(request).await.unwrap()
    }
}

/// The claims of a JWT (not verified: the gateway did that).
#[allow(unused_imports)] // not every test file that includes this harness reads claims
pub use crate::support::jwt_claims as claims;

/// RFC 7636 S256 challenge of `verifier`.
pub fn challenge(verifier: &str) -> String {
    let digest = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, verifier.as_bytes());
    URL_SAFE_NO_PAD.encode(digest)
}

/// Asserts an RFC 6749 §5.2 error answer.
pub fn assert_oauth_error(r: &Resp, status: u16, error: &str) {
    assert_eq!(r.status, status, "{}", r.text());
    let body = r.json();
    assert_eq!(body["error"], error, "{body}");
    assert!(
        body["error_description"]
            .as_str()
            .is_some_and(|d| !d.is_empty()),
        "{body}"
    );
    assert_eq!(r.header("cache-control"), Some("no-store"));
}
