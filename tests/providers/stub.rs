//! A stub OpenID Connect provider for tests/providers.rs: plain HTTP/1.1 on 127.0.0.1:0 (the
//! gateway is told `allow_insecure_loopback = true`), serving discovery, `/authorize` (signs the
//! person in at once and sends the browser back with a code, or with an error), `/token`
//! (records the form and the `Authorization` header; answers with an ID token the test
//! controls), `/userinfo` (records the bearer token) and `/jwks` (one fixed RSA key).
//!
//! The ID token's claims are, in this order: the standard ones (`iss` the issuer, `aud` the
//! client id, `exp` in 5 minutes, `iat` now, `nonce` the one the gateway sent to `/authorize`
//! with that code), then [`State::claims`] (the person: `sub`, `email`, …) merged over them,
//! then [`State::edit`] (a test's tampering) run over the result; it is signed by
//! [`State::signer`].

use std::collections::HashMap;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use jsonwebtoken::jwk::{Jwk, JwkSet, PublicKeyUse};
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header};
use serde_json::{Value, json};
use tokio::net::TcpListener;
use tokio::task::AbortHandle;

use crate::support::{get, plain_client};

/// The client id the gateway is registered under at the provider.
pub const CLIENT_ID: &str = "authgate";
/// The client secret (written to [`Provider::secret_file`] with a trailing newline).
pub const CLIENT_SECRET: &str = "provider-secret-0123456789abcdef";
/// The `kid` of the published key (the "other" key signs under the same `kid`).
pub const KID: &str = "idp-rsa-1";

/// A fixed 2048-bit RSA test key (PKCS#8), published at `/jwks`.
const KEY: &str = include_str!("idp-key.pem");
const PUBLIC_KEY: &str = include_str!("idp-key.pub.pem");
/// Another fixed RSA key, never published: a signature by it is a bad signature.
const OTHER_KEY: &str = include_str!("other-key.pem");

/// How the next ID tokens are signed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Signer {
    /// RS256 with the published key.
    Good,
    /// RS256 with a key that is not published, under the published `kid`.
    OtherKey,
    /// HS256 keyed with the client secret (the algorithm-confusion attempt).
    Hs256,
    /// `"alg": "none"` and an empty signature.
    None,
}

/// One request the token endpoint received.
#[derive(Clone, Debug)]
pub struct TokenRequest {
    pub form: HashMap<String, String>,
    pub authorization: Option<String>,
}

/// Edits an ID token's complete claims just before it is signed.
pub type Edit = Box<dyn Fn(&mut Value) + Send>;

/// What the stub answers and what it saw; change it with [`Provider::with`].
pub struct State {
    /// The signed-in person's claims, merged over the standard ones.
    pub claims: Value,
    /// Tampering with the claims (wrong `iss`, `aud`, `nonce`, …).
    pub edit: Option<Edit>,
    pub signer: Signer,
    /// The `/userinfo` answer (`sub` from [`State::claims`] added when missing).
    pub userinfo: Value,
    /// `/authorize` sends the browser back with this `error` and `error_description`.
    pub deny: Option<(String, String)>,
    /// `/token` answers 400 with this OAuth error code.
    pub token_error: Option<String>,
    /// Discovery answers after this long.
    pub discovery_delay: Duration,
    /// `/token` answers after this long.
    pub token_delay: Duration,
    /// Issued codes -> their authorization request (nonce, PKCE challenge, redirect URI).
    codes: HashMap<String, HashMap<String, String>>,
    issued: usize,
    /// The query of every `/authorize` request.
    pub authorize_requests: Vec<HashMap<String, String>>,
    pub token_requests: Vec<TokenRequest>,
    /// The `Authorization` header of every `/userinfo` request.
    pub userinfo_requests: Vec<Option<String>>,
    /// The access tokens `/token` handed out, in order.
    pub access_tokens: Vec<String>,
    pub discovery_requests: usize,
    pub jwks_requests: usize,
}

impl State {
    fn new() -> State {
        State {
            claims: json!({"sub": "sub-default"}),
            edit: None,
            signer: Signer::Good,
            userinfo: json!({}),
            deny: None,
            token_error: None,
            discovery_delay: Duration::ZERO,
            token_delay: Duration::ZERO,
            codes: HashMap::new(),
            issued: 0,
            authorize_requests: Vec::new(),
            token_requests: Vec::new(),
            userinfo_requests: Vec::new(),
            access_tokens: Vec::new(),
            discovery_requests: 0,
            jwks_requests: 0,
        }
    }

    /// Back to honest answers (the records are kept; the person's claims too).
    pub fn reset(&mut self) {
        self.edit = None;
        self.signer = Signer::Good;
        self.deny = None;
        self.token_error = None;
        self.discovery_delay = Duration::ZERO;
        self.token_delay = Duration::ZERO;
    }
}

struct Inner {
    issuer: String,
    state: Mutex<State>,
    connections: Mutex<Vec<AbortHandle>>,
}

/// A running stub provider; dropped (or [`Provider::down`]): its port is closed.
pub struct Provider {
    pub addr: SocketAddr,
    inner: Arc<Inner>,
    accept: AbortHandle,
    secret_file: PathBuf,
    _dir: tempfile::TempDir,
}

impl Provider {
    pub async fn start() -> Provider {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let inner = Arc::new(Inner {
            issuer: format!("http://{addr}"),
            state: Mutex::new(State::new()),
            connections: Mutex::new(Vec::new()),
        });
        let serving = Arc::clone(&inner);
        let accept = tokio::spawn(async move {
            loop {
                let Ok((tcp, _)) = listener.accept().await else {
                    continue;
                };
                let inner = Arc::clone(&serving);
                let connection = tokio::spawn(async move {
                    let handler = Arc::clone(&inner);
                    let service = hyper::service::service_fn(move |request| {
                        let inner = Arc::clone(&handler);
                        async move { Ok::<_, Infallible>(handle(request, &inner).await) }
                    });
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(TokioIo::new(tcp), service)
                        .await;
                });
                let mut open = serving.connections.lock().unwrap();
                open.retain(|c| !c.is_finished());
                open.push(connection.abort_handle());
            }
        })
        .abort_handle();
        let dir = tempfile::tempdir().unwrap();
        let secret_file = dir.path().join("client-secret");
        std::fs::write(&secret_file, format!("{CLIENT_SECRET}\n")).unwrap();
        Provider {
            addr,
            inner,
            accept,
            secret_file,
            _dir: dir,
        }
    }

    /// `http://127.0.0.1:PORT`
    pub fn issuer(&self) -> &str {
        &self.inner.issuer
    }

    /// A file holding the client secret (with a trailing newline).
    pub fn secret_file(&self) -> &Path {
        &self.secret_file
    }

    /// Reads or changes the stub's state.
    pub fn with<T>(&self, f: impl FnOnce(&mut State) -> T) -> T {
        f(&mut self.inner.state.lock().unwrap())
    }

    /// The person signing in from now on.
    pub fn sign_in_as(&self, claims: Value) {
        self.with(|s| s.claims = claims);
    }

    /// Tampers with the next ID tokens' claims.
    pub fn edit(&self, edit: impl Fn(&mut Value) + Send + 'static) {
        self.with(|s| s.edit = Some(Box::new(edit)));
    }

    pub fn token_requests(&self) -> Vec<TokenRequest> {
        self.with(|s| s.token_requests.clone())
    }

    /// Closes the port and every open connection: the provider is down.
    pub fn down(&self) {
        self.accept.abort();
        for connection in self.inner.connections.lock().unwrap().drain(..) {
            connection.abort();
        }
    }

    /// The `[[login.providers]]` table for this stub: `name`, `label`, the issuer, the client
    /// id and secret file, loopback allowed, a 2 s timeout; then `extra` lines.
    pub fn toml(&self, name: &str, label: &str, extra: &str) -> String {
        format!(
            "[[login.providers]]\nname = {name:?}\nlabel = {label:?}\nissuer = {:?}\n\
             client_id = {CLIENT_ID:?}\nclient_secret_file = {:?}\n\
             allow_insecure_loopback = true\ntimeout = \"2s\"\n{extra}\n",
            self.issuer(),
            self.secret_file.display().to_string(),
        )
    }

    /// What a browser does at `location` (the gateway's redirect to `/authorize`): the provider
    /// signs the person in and answers 303 back to the gateway's callback; that URL.
    pub async fn authorize(&self, location: &str) -> String {
        assert!(
            location.starts_with(&format!("{}/authorize?", self.issuer())),
            "not this provider's authorization endpoint: {location}"
        );
        let r = get(&plain_client(), location).await;
        assert_eq!(r.status, 303, "stub /authorize: {}", r.text());
        r.header("location").unwrap().to_owned()
    }
}

impl Drop for Provider {
    fn drop(&mut self) {
        self.down();
    }
}

fn now() -> u64 {
    jsonwebtoken::get_current_timestamp()
}

fn json_response(status: u16, body: &Value) -> Response<Full<Bytes>> {
    Response::builder()
        .status(status)
        .header("content-type", "application/json")
        .header("cache-control", "no-store")
        .body(Full::new(Bytes::from(body.to_string())))
        .unwrap()
}

fn query_of(request: &Request<Incoming>) -> HashMap<String, String> {
    form_urlencoded::parse(request.uri().query().unwrap_or("").as_bytes())
        .into_owned()
        .collect()
}

async fn handle(request: Request<Incoming>, inner: &Inner) -> Response<Full<Bytes>> {
    let issuer = inner.issuer.as_str();
    match request.uri().path() {
        "/.well-known/openid-configuration" => {
            let delay = {
                let mut state = inner.state.lock().unwrap();
                state.discovery_requests += 1;
                state.discovery_delay
            };
            tokio::time::sleep(delay).await;
            json_response(200, &discovery(issuer))
        }
        "/jwks" => {
            inner.state.lock().unwrap().jwks_requests += 1;
            json_response(200, &serde_json::to_value(jwks()).unwrap())
        }
        "/authorize" => authorize(&request, inner),
        "/token" => token(request, inner).await,
        "/userinfo" => {
            let authorization = request
                .headers()
                .get("authorization")
                .map(|v| v.to_str().unwrap().to_owned());
            let mut state = inner.state.lock().unwrap();
            state.userinfo_requests.push(authorization.clone());
            let known = authorization.as_deref().is_some_and(|a| {
                state
                    .access_tokens
                    .iter()
                    .any(|t| a == format!("Bearer {t}"))
            });
            if !known {
                return json_response(401, &json!({"error": "invalid_token"}));
            }
            let mut body = state.userinfo.clone();
            if body.get("sub").is_none() {
                body["sub"] = state.claims["sub"].clone();
            }
            json_response(200, &body)
        }
        _ => json_response(404, &json!({"error": "not_found"})),
    }
}

fn discovery(issuer: &str) -> Value {
    json!({
        "issuer": issuer,
        "authorization_endpoint": format!("{issuer}/authorize"),
        "token_endpoint": format!("{issuer}/token"),
        "userinfo_endpoint": format!("{issuer}/userinfo"),
        "jwks_uri": format!("{issuer}/jwks"),
        "response_types_supported": ["code"],
        "response_modes_supported": ["query"],
        "grant_types_supported": ["authorization_code"],
        "subject_types_supported": ["public"],
        "scopes_supported": ["openid", "profile", "email"],
        "token_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post"],
        "id_token_signing_alg_values_supported": ["RS256"],
        "code_challenge_methods_supported": ["S256"],
        "authorization_response_iss_parameter_supported": true,
    })
}

fn jwks() -> JwkSet {
    let decoding = DecodingKey::from_rsa_pem(PUBLIC_KEY.as_bytes()).unwrap();
    let mut jwk = Jwk::from_decoding_key(&decoding, Some(Algorithm::RS256)).unwrap();
    jwk.common.key_id = Some(KID.into());
    jwk.common.public_key_use = Some(PublicKeyUse::Signature);
    JwkSet { keys: vec![jwk] }
}

/// Signs the person in at once: 303 to `redirect_uri` with a code (or the configured error),
/// `state` and `iss`.
fn authorize(request: &Request<Incoming>, inner: &Inner) -> Response<Full<Bytes>> {
    let query = query_of(request);
    let mut state = inner.state.lock().unwrap();
    state.authorize_requests.push(query.clone());
    let Some(redirect_uri) = query.get("redirect_uri") else {
        return json_response(400, &json!({"error": "invalid_request"}));
    };
    let mut back = form_urlencoded::Serializer::new(String::new());
    if let Some((error, description)) = &state.deny {
        back.append_pair("error", error);
        back.append_pair("error_description", description);
    } else {
        state.issued += 1;
        let code = format!("code-{}-{}", state.issued, uuid::Uuid::new_v4().simple());
        state.codes.insert(code.clone(), query.clone());
        back.append_pair("code", &code);
    }
    if let Some(value) = query.get("state") {
        back.append_pair("state", value);
    }
    back.append_pair("iss", &inner.issuer);
    Response::builder()
        .status(StatusCode::SEE_OTHER)
        .header("location", format!("{redirect_uri}?{}", back.finish()))
        .body(Full::new(Bytes::new()))
        .unwrap()
}

async fn token(request: Request<Incoming>, inner: &Inner) -> Response<Full<Bytes>> {
    let authorization = request
        .headers()
        .get("authorization")
        .map(|v| v.to_str().unwrap().to_owned());
    let body = request.into_body().collect().await.unwrap().to_bytes();
    let form: HashMap<String, String> = form_urlencoded::parse(&body).into_owned().collect();
    let delay = {
        let mut state = inner.state.lock().unwrap();
        state.token_requests.push(TokenRequest {
            form: form.clone(),
            authorization: authorization.clone(),
        });
        state.token_delay
    };
    tokio::time::sleep(delay).await;

    let mut state = inner.state.lock().unwrap();
    if let Some(error) = state.token_error.clone() {
        return json_response(
            400,
            &json!({"error": error, "error_description": "stub refuses"}),
        );
    }
    if !client_authenticated(&form, authorization.as_deref()) {
        return json_response(401, &json!({"error": "invalid_client"}));
    }
    let code = form.get("code").cloned().unwrap_or_default();
    // Like a provider that does PKCE (RFC 7636 §4.6): the verifier must match the code's
    // S256 challenge, the redirect URI the authorization request's.
    let Some(request) = state.codes.remove(&code) else {
        return json_response(400, &json!({"error": "invalid_grant"}));
    };
    if let Some(challenge) = request.get("code_challenge") {
        let verifier = form.get("code_verifier").map(String::as_str).unwrap_or("");
        let digest = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, verifier.as_bytes());
        if URL_SAFE_NO_PAD.encode(digest) != *challenge {
            return json_response(
                400,
                &json!({"error": "invalid_grant", "error_description": "PKCE verification failed"}),
            );
        }
    }
    if form.get("redirect_uri") != request.get("redirect_uri") {
        return json_response(
            400,
            &json!({"error": "invalid_grant", "error_description": "redirect_uri mismatch"}),
        );
    }
    let nonce = request.get("nonce").cloned();
    let mut claims = json!({
        "iss": inner.issuer,
        "aud": CLIENT_ID,
        "exp": now() + 300,
        "iat": now(),
    });
    if let Some(nonce) = nonce {
        claims["nonce"] = Value::String(nonce);
    }
    if let (Some(claims), Some(person)) = (claims.as_object_mut(), state.claims.as_object()) {
        for (name, value) in person {
            claims.insert(name.clone(), value.clone());
        }
    }
    if let Some(edit) = &state.edit {
        edit(&mut claims);
    }
    let id_token = sign(state.signer, &claims);
    let access_token = format!("stub-at-{}", uuid::Uuid::new_v4().simple());
    state.access_tokens.push(access_token.clone());
    json_response(
        200,
        &json!({
            "access_token": access_token,
            "token_type": "Bearer",
            "expires_in": 300,
            "scope": "openid profile email",
            "id_token": id_token,
        }),
    )
}

/// `client_secret_basic` or `client_secret_post` with the right secret.
fn client_authenticated(form: &HashMap<String, String>, authorization: Option<&str>) -> bool {
    let basic = authorization
        .and_then(|a| a.strip_prefix("Basic "))
        .and_then(|b| STANDARD.decode(b).ok())
        .is_some_and(|pair| pair == format!("{CLIENT_ID}:{CLIENT_SECRET}").as_bytes());
    let post = form.get("client_id").map(String::as_str) == Some(CLIENT_ID)
        && form.get("client_secret").map(String::as_str) == Some(CLIENT_SECRET);
    basic || post
}

/// The compact JWT of `claims` signed as `signer` says.
pub fn sign(signer: Signer, claims: &Value) -> String {
    let rs256 = |pem: &str| {
        let mut header = Header::new(Algorithm::RS256);
        header.kid = Some(KID.into());
        let key = EncodingKey::from_rsa_pem(pem.as_bytes()).unwrap();
        jsonwebtoken::encode(&header, claims, &key).unwrap()
    };
    match signer {
        Signer::Good => rs256(KEY),
        Signer::OtherKey => rs256(OTHER_KEY),
        Signer::Hs256 => {
            let mut header = Header::new(Algorithm::HS256);
            header.kid = Some(KID.into());
            let key = EncodingKey::from_secret(CLIENT_SECRET.as_bytes());
            jsonwebtoken::encode(&header, claims, &key).unwrap()
        }
        Signer::None => {
            let header = URL_SAFE_NO_PAD.encode(br#"{"alg":"none","typ":"JWT"}"#);
            let body = URL_SAFE_NO_PAD.encode(claims.to_string());
            format!("{header}.{body}.")
        }
    }
}
