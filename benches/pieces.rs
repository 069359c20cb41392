//! The per-request pieces besides token validation (`benches/verify.rs`): the header rewrite on
//! the way to the upstream and back, the legacy-stack checks of a request (framing, path
//! readings), token minting (what `/oauth2/token` signs) and the wire check of HTTP/1 bytes.
//!
//! `cargo bench --bench pieces`

use std::hint::black_box;
use std::net::{IpAddr, Ipv4Addr};
use std::time::Duration;

use authgate::config::DEFAULT_STRIP_HEADERS;
use authgate::http::path;
use authgate::proxy::headers::{self, ClientAddr, IdentityNames, X_REQUEST_ID};
use authgate::proxy::{readings, rules};
use authgate::tokens::{AccessTokenSpec, SigningKey, issue};
use criterion::{BatchSize, Criterion, criterion_group, criterion_main};
use hyper::HeaderMap;
use hyper::header::{HeaderName, HeaderValue};
use jsonwebtoken::{Algorithm, EncodingKey};

/// What a typical API client sends (about 400 bytes of bearer token included).
fn request_headers() -> HeaderMap {
    let mut h = HeaderMap::new();
    let token = format!("Bearer {}", "eyJhbGciOiJFUzI1NiJ9.".repeat(18));
    for (name, value) in [
        ("host", "api.example.com"),
        ("user-agent", "bench-client/1.0"),
        ("accept", "application/json"),
        ("accept-encoding", "gzip, br"),
        ("authorization", token.as_str()),
        ("content-type", "application/json"),
    ] {
        h.append(
            HeaderName::from_static(name),
            HeaderValue::from_str(value).expect("value"),
        );
    }
    h
}

/// What an nginx upstream answers.
fn response_headers() -> HeaderMap {
    let mut h = HeaderMap::new();
    for (name, value) in [
        ("server", "nginx"),
        ("date", "Tue, 24 Nov 2026 20:00:00 GMT"),
        ("content-type", "text/plain"),
        ("content-length", "12"),
        ("connection", "keep-alive"),
    ] {
        h.append(
            HeaderName::from_static(name),
            HeaderValue::from_static(value),
        );
    }
    h
}

fn bench_headers(c: &mut Criterion) {
    let names = [
        HeaderName::from_static("user_id"),
        HeaderName::from_static("group_id"),
        HeaderName::from_static("x-client-id"),
        HeaderName::from_static("x-impersonator-id"),
    ];
    // The identity names plus the built-in strip list, as a gateway with defaults has them.
    let identity = IdentityNames::new(names.iter()).with(DEFAULT_STRIP_HEADERS.iter().map(|n| {
        match n.strip_suffix('*') {
            Some(prefix) => (prefix, true),
            None => (*n, false),
        }
    }));
    let peer = IpAddr::V4(Ipv4Addr::LOCALHOST);
    let client = ClientAddr {
        ip: peer,
        via_trusted_proxy: false,
    };
    let request_id = HeaderValue::from_static("0b6b3c7e-3f3a-4a2e-9d5e-2f1b2c3d4e5f");
    let request = request_headers();
    c.bench_function("headers/request_rewrite", |b| {
        b.iter_batched_ref(
            || request.clone(),
            |h| {
                headers::remove_hop_by_hop(h, false);
                headers::remove_identity(h, &identity);
                headers::set_forwarded(h, peer, client, "http", Some("api.example.com"));
                h.insert(&X_REQUEST_ID, request_id.clone());
                h.insert(&names[0], HeaderValue::from_static("42"));
                h.insert(&names[1], HeaderValue::from_static("7"));
                black_box(h.len())
            },
            BatchSize::SmallInput,
        )
    });
    // Framing checks, normalisation and the path's other readings: a plain path (the common
    // case) and one with a `;` parameter and a suffix (every reading computed).
    for (label, raw) in [
        ("plain", "/api/v1/orders/42"),
        ("readings", "/api/v1/orders;jsessionid=1/42.json"),
    ] {
        c.bench_function(&format!("request/legacy_checks_{label}"), |b| {
            b.iter(|| {
                rules::check_framing(hyper::Version::HTTP_11, &hyper::Method::GET, &request)
                    .expect("framing");
                let normal = path::normalize(black_box(raw)).expect("path");
                black_box(readings::read(&normal).expect("readings").paths.len())
            })
        });
    }
    let response = response_headers();
    c.bench_function("headers/response_hop_by_hop", |b| {
        b.iter_batched_ref(
            || response.clone(),
            |h| {
                headers::remove_hop_by_hop(h, false);
                black_box(h.len())
            },
            BatchSize::SmallInput,
        )
    });
}

fn signing_key(alg: Algorithm) -> SigningKey {
    let rc_alg = match alg {
        Algorithm::ES256 => &rcgen::PKCS_ECDSA_P256_SHA256,
        Algorithm::EdDSA => &rcgen::PKCS_ED25519,
        _ => &rcgen::PKCS_RSA_SHA256,
    };
    let pair = rcgen::KeyPair::generate_for(rc_alg).expect("key pair");
    let pem = pair.serialize_pem();
    let key = match alg {
        Algorithm::ES256 => EncodingKey::from_ec_pem(pem.as_bytes()),
        Algorithm::EdDSA => EncodingKey::from_ed_pem(pem.as_bytes()),
        _ => EncodingKey::from_rsa_pem(pem.as_bytes()),
    }
    .expect("encoding key");
    SigningKey {
        kid: "k1".into(),
        alg,
        key,
    }
}

fn bench_mint(c: &mut Criterion) {
    authgate::install_crypto_provider();
    let spec = AccessTokenSpec {
        user_id: "42".into(),
        group_id: Some(7),
        roles: vec!["user".into()],
        client_id: Some("web".into()),
        audiences: vec!["api".into()],
        scopes: vec!["read".into(), "write".into()],
        ttl: Duration::from_secs(900),
        ..AccessTokenSpec::default()
    };
    let now = jsonwebtoken::get_current_timestamp();
    for alg in [Algorithm::ES256, Algorithm::EdDSA, Algorithm::RS256] {
        let key = signing_key(alg);
        c.bench_function(&format!("mint/{alg:?}"), |b| {
            b.iter(|| issue("https://authgate.bench", &key, black_box(&spec), now).expect("sign"))
        });
    }
}

/// The wire check (`http::wire`) on what the bench client sends: a GET head with a bearer
/// token (about 600 bytes), and a small chunked POST.
fn bench_wire(c: &mut Criterion) {
    let mut get = String::from("GET /api/orders?page=2 HTTP/1.1\r\n");
    for (name, value) in request_headers().iter() {
        get.push_str(&format!("{}: {}\r\n", name, value.to_str().expect("ascii")));
    }
    get.push_str("\r\n");
    let post = "POST /api/orders HTTP/1.1\r\nHost: api.example.com\r\nTransfer-Encoding: chunked\r\n\r\n10;a=b\r\n0123456789abcdef\r\n0\r\n\r\n";
    let mut out = Vec::with_capacity(4096);
    for (name, bytes) in [
        ("wire/GET head", get.as_bytes()),
        ("wire/chunked POST", post.as_bytes()),
    ] {
        c.bench_function(name, |b| {
            b.iter(|| {
                let mut wire = authgate::http::wire::Wire::new(32 * 1024);
                out.clear();
                wire.feed(black_box(bytes), &mut out).expect("valid");
                black_box(out.len())
            })
        });
    }
}

/// What `/metrics` adds to every request: a counter and one or two histograms, by route.
fn bench_metrics(c: &mut Criterion) {
    let metrics = authgate::metrics::Metrics::new();
    let method = hyper::Method::GET;
    let total = std::time::Duration::from_micros(180);
    let upstream = Some(std::time::Duration::from_micros(120));
    c.bench_function("metrics/request (seen route and status)", |b| {
        b.iter(|| metrics.request("orders", &method, 200, total, upstream));
    });
}

criterion_group!(
    benches,
    bench_headers,
    bench_mint,
    bench_metrics,
    bench_wire
);
criterion_main!(benches);
