//! External JWKS over HTTPS: refresh when a token names an unknown kid (key rotation at the
//! IdP), rate-limited and negatively cached under a flood of random kids, and the last good
//! keys keep serving when the endpoint fails.
#![allow(clippy::unwrap_used)]

mod support;

use std::convert::Infallible;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::Full;
use hyper::service::service_fn;
use jsonwebtoken::jwk::{Jwk, JwkSet};
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use serde_json::json;
use support::*;

const ISS: &str = "https://idp.test";

struct Key {
    kid: &'static str,
    encoding: EncodingKey,
    jwk: Jwk,
}

fn key(kid: &'static str) -> Key {
    let pair = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).unwrap();
    let decoding = DecodingKey::from_ec_pem(pair.public_key_pem().as_bytes()).unwrap();
    let mut jwk = Jwk::from_decoding_key(&decoding, Some(Algorithm::ES256)).unwrap();
    jwk.common.key_id = Some(kid.into());
    Key {
        kid,
        encoding: EncodingKey::from_ec_pem(pair.serialize_pem().as_bytes()).unwrap(),
        jwk,
    }
}

fn token(key: &Key, kid: &str) -> String {
    let now = jsonwebtoken::get_current_timestamp();
    let mut header = Header::new(Algorithm::ES256);
    header.kid = Some(kid.into());
    let claims = json!({"iss": ISS, "sub": "7", "exp": now + 600, "iat": now});
    jsonwebtoken::encode(&header, &claims, &key.encoding).unwrap()
}

/// An HTTPS JWKS endpoint that counts fetches and can be told to fail.
struct JwksServer {
    url: String,
    ca_file: std::path::PathBuf,
    keys: Arc<Mutex<Vec<Jwk>>>,
    fetches: Arc<AtomicUsize>,
    failing: Arc<AtomicBool>,
    _dir: tempfile::TempDir,
}

impl JwksServer {
    async fn start(initial: Vec<Jwk>) -> JwksServer {
        init_crypto();
        let dir = tempfile::tempdir().unwrap();
        let certified = rcgen::generate_simple_self_signed(vec!["127.0.0.1".to_string()]).unwrap();
        let ca_file = dir.path().join("jwks-ca.pem");
        std::fs::write(&ca_file, certified.cert.pem()).unwrap();
        let chain = vec![CertificateDer::from_pem_slice(certified.cert.pem().as_bytes()).unwrap()];
        let private =
            PrivateKeyDer::from_pem_slice(certified.signing_key.serialize_pem().as_bytes())
                .unwrap();
        let tls = rustls::ServerConfig::builder()
            .with_no_client_auth()
            .with_single_cert(chain, private)
            .unwrap();
        let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(tls));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let keys = Arc::new(Mutex::new(initial));
        let fetches = Arc::new(AtomicUsize::new(0));
        let failing = Arc::new(AtomicBool::new(false));
        let (k, f, x) = (
            Arc::clone(&keys),
            Arc::clone(&fetches),
            Arc::clone(&failing),
        );
        tokio::spawn(async move {
            loop {
                let Ok((tcp, _)) = listener.accept().await else {
                    return;
                };
                let Ok(stream) = acceptor.accept(tcp).await else {
                    continue;
                };
                let (k, f, x) = (Arc::clone(&k), Arc::clone(&f), Arc::clone(&x));
                tokio::spawn(async move {
                    let service = service_fn(move |_request| {
                        f.fetch_add(1, Ordering::SeqCst);
                        let response = if x.load(Ordering::SeqCst) {
                            hyper::Response::builder()
                                .status(500)
                                .body(Full::new(Bytes::from("down")))
                        } else {
                            let set = JwkSet {
                                keys: k.lock().unwrap().clone(),
                            };
                            hyper::Response::builder()
                                .header("cache-control", "max-age=3600")
                                .body(Full::new(Bytes::from(serde_json::to_vec(&set).unwrap())))
                        };
                        async move { Ok::<_, Infallible>(response.unwrap()) }
                    });
                    let io = hyper_util::rt::TokioIo::new(stream);
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(io, service)
                        .await;
                });
            }
        });
        JwksServer {
            url: format!("https://127.0.0.1:{}/jwks", addr.port()),
            ca_file,
            keys,
            fetches,
            failing,
            _dir: dir,
        }
    }

    fn fetches(&self) -> usize {
        self.fetches.load(Ordering::SeqCst)
    }
}

/// A gateway trusting `jwks` with `refresh_min_interval`, and when it was started: its start-up
/// fetch, from which that interval runs, happened before.
async fn gateway(
    jwks: &JwksServer,
    stub: &Stub,
    refresh_min_interval: Duration,
) -> (TestGateway, Instant) {
    let issuer = format!(
        "[[issuers]]\nissuer = {ISS:?}\nsubject = \"local\"\njwks_uri = {:?}\nca_file = {:?}\nalgorithms = [\"ES256\"]\nrefresh_min_interval = \"{}ms\"",
        jwks.url,
        jwks.ca_file.display().to_string(),
        refresh_min_interval.as_millis()
    );
    let gw = TestGateway::start(
        GatewayConfig::new()
            .section(&issuer)
            .route(&format!("prefix = \"/api\"\nupstream = \"{}\"", stub.url())),
    )
    .await;
    (gw, Instant::now())
}

/// Waits until `refresh_min_interval` has passed since `started` (see [`gateway`]), so that
/// an unknown kid may fetch again. The gateway measures this interval on the wall clock
/// (`std::time::Instant`) and no signal says it has passed: this wait is for real time, from
/// when the interval began rather than a fixed span.
async fn refresh_allowed(started: Instant, refresh_min_interval: Duration) {
    let margin = Duration::from_millis(50);
    tokio::time::sleep_until((started + refresh_min_interval + margin).into()).await;
}

async fn status_with(gw: &TestGateway, token: &str) -> u16 {
    let request = hyper::Request::get(gw.url("/api/x"))
        .header("authorization", format!("Bearer {token}"))
        .body(Full::new(Bytes::new()))
        .unwrap();
    send(&gw.client(false), request).await.status.as_u16()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_kid_refreshes_once_and_floods_are_rate_limited() {
    let (a, b) = (key("a"), key("b"));
    let jwks = JwksServer::start(vec![a.jwk.clone()]).await;
    let stub = Stub::start(Mode::Ok).await;
    // Long enough for the flood below to fit in one interval on a busy machine.
    let interval = Duration::from_secs(2);
    let (gw, started) = gateway(&jwks, &stub, interval).await;
    assert_eq!(jwks.fetches(), 1, "keys are loaded at start");
    assert_eq!(status_with(&gw, &token(&a, a.kid)).await, 200);
    assert_eq!(jwks.fetches(), 1, "a known kid needs no fetch");

    // The IdP rotates: a token under the new kid triggers one refresh and passes.
    jwks.keys.lock().unwrap().push(b.jwk.clone());
    refresh_allowed(started, interval).await;
    assert_eq!(status_with(&gw, &token(&b, b.kid)).await, 200);
    assert_eq!(jwks.fetches(), 2);

    // A flood of random kids right after: refused, and at most one more fetch.
    let mut flood = Vec::new();
    for i in 0..30 {
        let token = token(&a, &format!("random-{i}"));
        let gw_url = gw.url("/api/x");
        let client = gw.client(false);
        flood.push(tokio::spawn(async move {
            let request = hyper::Request::get(gw_url)
                .header("authorization", format!("Bearer {token}"))
                .body(Full::new(Bytes::new()))
                .unwrap();
            send(&client, request).await.status.as_u16()
        }));
    }
    for request in flood {
        assert_eq!(request.await.unwrap(), 401);
    }
    assert!(
        jwks.fetches() <= 3,
        "{} fetches for a flood of unknown kids",
        jwks.fetches()
    );
    assert_eq!(stub.records().len(), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failing_endpoint_keeps_the_last_good_keys() {
    let a = key("a");
    let jwks = JwksServer::start(vec![a.jwk.clone()]).await;
    let stub = Stub::start(Mode::Ok).await;
    // No flood here: a short interval will do.
    let interval = Duration::from_millis(300);
    let (gw, started) = gateway(&jwks, &stub, interval).await;
    jwks.failing.store(true, Ordering::SeqCst);
    refresh_allowed(started, interval).await;
    // An unknown kid forces a fetch, which fails ...
    assert_eq!(status_with(&gw, &token(&a, "c")).await, 401);
    assert_eq!(jwks.fetches(), 2);
    // ... and the keys we had still verify.
    assert_eq!(status_with(&gw, &token(&a, a.kid)).await, 200);
}
