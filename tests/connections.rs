//! Connection-level defences (issue 17, item 5): the first request head under
//! `header_read_timeout` (plain and after TLS), `max_connections_per_ip`, and the PROXY
//! protocol (v1 and v2): refused from untrusted peers, and from a trusted proxy the client
//! address for the rate limiter, the upstream headers, the login back-off and the audit log.
#![allow(clippy::unwrap_used)]

mod support;

#[path = "oauth2/harness.rs"]
#[allow(dead_code)]
mod harness;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use base64::Engine as _;
use rustls::pki_types::{CertificateDer, ServerName};
use support::*;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpSocket, TcpStream};
use tokio_rustls::TlsConnector;
use tokio_rustls::client::TlsStream;

/// A TCP connection to `to` from the loopback address `from` (Linux accepts any 127/8 source).
async fn connect_from(from: &str, to: SocketAddr) -> TcpStream {
    let socket = TcpSocket::new_v4().unwrap();
    socket
        .bind(SocketAddr::new(from.parse().unwrap(), 0))
        .unwrap();
    within("TCP connect", socket.connect(to)).await.unwrap()
}

/// A PROXY v1 line for a TCP connection from `source` (IPv4) to 10.0.0.1:443.
fn proxy_v1(source: &str) -> Vec<u8> {
    let source: SocketAddr = source.parse().unwrap();
    format!(
        "PROXY TCP4 {} 10.0.0.1 {} 443\r\n",
        source.ip(),
        source.port()
    )
    .into_bytes()
}

/// A PROXY v2 header: `PROXY` from `source` (IPv4) with one TLV, or `LOCAL` when `None`.
fn proxy_v2(source: Option<&str>) -> Vec<u8> {
    let mut out = b"\r\n\r\n\0\r\nQUIT\n".to_vec();
    let Some(source) = source else {
        out.extend_from_slice(&[0x20, 0x00, 0x00, 0x00]);
        return out;
    };
    let SocketAddr::V4(source) = source.parse::<SocketAddr>().unwrap() else {
        panic!("IPv4 only")
    };
    let mut payload = source.ip().octets().to_vec();
    payload.extend_from_slice(&[10, 0, 0, 1]);
    payload.extend_from_slice(&source.port().to_be_bytes());
    payload.extend_from_slice(&443u16.to_be_bytes());
    payload.extend_from_slice(&[0xEA, 0x00, 0x04, b'v', b'p', b'c', b'e']);
    out.extend_from_slice(&[0x21, 0x11]);
    out.extend_from_slice(&u16::try_from(payload.len()).unwrap().to_be_bytes());
    out.extend_from_slice(&payload);
    out
}

/// TLS (ALPN `alpn`) over an already connected (and possibly already written to) stream.
async fn tls_over(
    tcp: TcpStream,
    cert: &CertificateDer<'static>,
    alpn: &[&[u8]],
) -> TlsStream<TcpStream> {
    let connector = TlsConnector::from(Arc::new(tls_client_config(cert, alpn)));
    within(
        "TLS handshake",
        connector.connect(ServerName::try_from("localhost").unwrap(), tcp),
    )
    .await
    .expect("TLS handshake with gateway")
}

/// From 127.0.0.1: `header`, then TLS, then `request` (a whole HTTP/1.1 request) and its answer.
async fn via_proxy(gw: &TestGateway, header: &[u8], request: &[u8]) -> RawResponse {
    let mut tcp = connect_from("127.0.0.1", gw.https_addr).await;
    tcp.write_all(header).await.unwrap();
    let mut tls = tls_over(tcp, &gw.cert, &[b"http/1.1"]).await;
    write_all_ignoring_reset(&mut tls, request).await;
    within("response", read_response(&mut tls)).await
}

fn get_request(path: &str, extra: &[(&str, &str)]) -> Vec<u8> {
    let mut request = format!("GET {path} HTTP/1.1\r\nHost: localhost\r\n");
    for (name, value) in extra {
        request.push_str(&format!("{name}: {value}\r\n"));
    }
    request.push_str("Connection: close\r\n\r\n");
    request.into_bytes()
}

/// Reads until the peer closes; the bytes it sent and how long that took from `since`, or
/// `None` if it is still open after `limit`.
async fn closed<S: AsyncRead + Unpin>(
    stream: &mut S,
    since: Instant,
    limit: Duration,
) -> Option<(Vec<u8>, Duration)> {
    let mut got = Vec::new();
    let read = tokio::time::timeout(limit, async {
        let mut buf = [0u8; 4096];
        loop {
            match stream.read(&mut buf).await {
                Ok(0) | Err(_) => return,
                Ok(n) => got.extend_from_slice(&buf[..n]),
            }
        }
    })
    .await;
    read.ok().map(|()| (got, since.elapsed()))
}

/// The value of the series `name{labels}` on the gateway's `/metrics` (0 when absent).
async fn metric(gw: &TestGateway, series: &str) -> f64 {
    let text = get(&plain_client(), &gw.admin_url("/metrics")).await.text();
    text.lines()
        .filter(|line| !line.starts_with('#'))
        .find_map(|line| {
            let (name, value) = line.rsplit_once(' ')?;
            (name == series).then(|| value.parse().ok())?
        })
        .unwrap_or(0.0)
}

// ----- first request head and per-address cap -----

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn silent_connections_are_capped_per_address_and_closed_after_the_header_timeout() {
    let stub = Stub::start(Mode::Ok).await;
    let gw = TestGateway::start(
        GatewayConfig::new()
            .server("header_read_timeout = \"1s\"\nmax_connections_per_ip = 50")
            .plain_listener()
            .admin()
            .route(&public("/pub", &stub)),
    )
    .await;
    let plain = gw.plain_addr.unwrap();
    let mut watchers = Vec::new();
    for _ in 0..300 {
        let mut tcp = connect_from("127.0.0.1", plain).await;
        let opened = Instant::now();
        watchers.push(tokio::spawn(async move {
            closed(&mut tcp, opened, Duration::from_secs(10)).await
        }));
    }
    // While the 50 silent ones hold their slots, another address is served.
    let mut other = connect_from("127.0.0.2", plain).await;
    other.write_all(&get_request("/pub/x", &[])).await.unwrap();
    let r = within("answer to 127.0.0.2", read_response(&mut other)).await;
    assert_eq!(r.status, 200);
    assert_eq!(stub.only().header("x-real-ip"), Some("127.0.0.2"));

    let (mut at_once, mut timed_out) = (0, 0);
    for watcher in watchers {
        let (bytes, after) = watcher
            .await
            .unwrap()
            .expect("a silent connection still open after 10 s");
        assert!(bytes.is_empty(), "{:?}", String::from_utf8_lossy(&bytes));
        // The cap closes at accept, within milliseconds; the header deadline 1 s after accept
        // (the client's clock starts a little after the server's accept at worst, so the line
        // is drawn halfway).
        if after < Duration::from_millis(500) {
            at_once += 1;
        } else {
            assert!(after < Duration::from_secs(5), "closed after {after:?}");
            timed_out += 1;
        }
    }
    assert_eq!(
        (at_once, timed_out),
        (250, 50),
        "closed at once, after the timeout"
    );
    let refused = "authgate_connections_refused_total{reason=\"per_address_limit\"}";
    assert_eq!(metric(&gw, refused).await, 250.0);
    let head = "authgate_connections_timed_out_total{phase=\"request_head\"}";
    assert_eq!(metric(&gw, head).await, 50.0);
    // Every count was given back: the address gets its 50 again.
    let mut again = connect_from("127.0.0.1", plain).await;
    again.write_all(&get_request("/pub/y", &[])).await.unwrap();
    assert_eq!(
        within("answer", read_response(&mut again)).await.status,
        200
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn silent_tls_connection_is_closed_after_the_header_timeout() {
    let stub = Stub::start(Mode::Ok).await;
    let gw = TestGateway::start(
        GatewayConfig::new()
            .server("header_read_timeout = \"1s\"")
            .admin()
            .route(&public("/pub", &stub)),
    )
    .await;
    for alpn in [&b"http/1.1"[..], b"h2"] {
        let tcp = connect_from("127.0.0.1", gw.https_addr).await;
        let mut tls = tls_over(tcp, &gw.cert, &[alpn]).await;
        let handshaken = Instant::now();
        let (_, after) = closed(&mut tls, handshaken, Duration::from_secs(5))
            .await
            .unwrap_or_else(|| {
                panic!(
                    "{} connection silent after the handshake still open after 5 s",
                    String::from_utf8_lossy(alpn)
                )
            });
        assert!(
            after >= Duration::from_millis(900),
            "closed after {after:?}"
        );
    }
    let head = "authgate_connections_timed_out_total{phase=\"request_head\"}";
    assert_eq!(metric(&gw, head).await, 2.0);
    // A connection that asks in time is served.
    let r = raw_get(&gw, "/pub/x", "localhost", &[]).await;
    assert_eq!(r.status, 200);
}

// ----- PROXY protocol -----

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn proxy_headers_from_untrusted_peers_are_refused() {
    let stub = Stub::start(Mode::Ok).await;
    let gw = TestGateway::start(
        GatewayConfig::new()
            .server("proxy_protocol = true\ntrusted_proxies = [\"127.0.0.2\"]")
            .plain_listener()
            .admin()
            .route(&public("/pub", &stub)),
    )
    .await;
    let plain = gw.plain_addr.unwrap();
    for header in [
        proxy_v1("203.0.113.1:4000"),
        proxy_v2(Some("203.0.113.1:4000")),
    ] {
        for listener in [plain, gw.https_addr] {
            let mut tcp = connect_from("127.0.0.1", listener).await;
            let mut bytes = header.clone();
            // A request would follow on the plain listener; a ClientHello on the TLS one is
            // never reached (the gateway closes first), so any bytes do.
            bytes.extend_from_slice(&get_request("/pub/x", &[]));
            write_all_ignoring_reset(&mut tcp, &bytes).await;
            let (answer, _) = closed(&mut tcp, Instant::now(), Duration::from_secs(5))
                .await
                .expect("closed");
            assert!(
                answer.is_empty(),
                "an untrusted PROXY header got an answer: {:?}",
                String::from_utf8_lossy(&answer)
            );
        }
    }
    assert!(stub.records().is_empty());
    let untrusted = "authgate_proxy_headers_total{result=\"untrusted\"}";
    assert_eq!(metric(&gw, untrusted).await, 4.0);
    // Without a header the same peer is served, on both listeners, as itself.
    let mut tcp = connect_from("127.0.0.1", plain).await;
    tcp.write_all(&get_request("/pub/x", &[])).await.unwrap();
    assert_eq!(within("answer", read_response(&mut tcp)).await.status, 200);
    assert_eq!(raw_get(&gw, "/pub/x", "localhost", &[]).await.status, 200);
    for record in stub.records() {
        assert_eq!(record.header("x-real-ip"), Some("127.0.0.1"));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn proxy_header_from_a_trusted_proxy_is_the_client_address() {
    let stub = Stub::start(Mode::Ok).await;
    let gw = TestGateway::start(
        GatewayConfig::new()
            .server("proxy_protocol = true\ntrusted_proxies = [\"127.0.0.1\"]")
            .admin()
            .route(&format!(
                "{}\nrate_limit = {{ requests = 1, per = \"1m\", key = \"client\" }}",
                public("/rl", &stub)
            )),
    )
    .await;
    // The client's own claims are not believed: the PROXY header is the truth.
    let request = get_request("/rl/x", &[("X-Forwarded-For", "198.51.100.99")]);
    let one = via_proxy(&gw, &proxy_v1("203.0.113.1:4001"), &request).await;
    assert_eq!(one.status, 200);
    let two = via_proxy(&gw, &proxy_v2(Some("203.0.113.2:4002")), &request).await;
    assert_eq!(two.status, 200, "another PROXY source has its own bucket");
    let again = via_proxy(&gw, &proxy_v2(Some("203.0.113.1:4003")), &request).await;
    assert_eq!(again.status, 429, "the same PROXY source, v1 then v2");
    let seen: Vec<_> = stub
        .records()
        .iter()
        .map(|r| {
            (
                r.header("x-forwarded-for").unwrap().to_owned(),
                r.header("x-real-ip").unwrap().to_owned(),
            )
        })
        .collect();
    assert_eq!(
        seen,
        [
            ("203.0.113.1".to_owned(), "203.0.113.1".to_owned()),
            ("203.0.113.2".to_owned(), "203.0.113.2".to_owned()),
        ]
    );

    // LOCAL (the balancer's health check): the socket peer stands.
    let local = via_proxy(&gw, &proxy_v2(None), &get_request("/rl/x", &[])).await;
    assert_eq!(local.status, 200);
    assert_eq!(stub.records()[2].header("x-real-ip"), Some("127.0.0.1"));

    // From a trusted proxy the header is required, and must be well formed.
    for bad in [
        &b"\x16\x03\x01"[..],
        b"PROXY TCP4 203.0.113.1 10.0.0.1 4242\r\n\x16\x03\x01",
        b"PROXY TCP4 203.0.113.1 10.0.0.1 04242 443\r\n",
    ] {
        let mut tcp = connect_from("127.0.0.1", gw.https_addr).await;
        write_all_ignoring_reset(&mut tcp, bad).await;
        let (answer, _) = closed(&mut tcp, Instant::now(), Duration::from_secs(5))
            .await
            .expect("closed");
        assert!(answer.is_empty(), "{answer:?}");
    }
    assert_eq!(
        metric(&gw, "authgate_proxy_headers_total{result=\"invalid\"}").await,
        3.0
    );
    assert_eq!(
        metric(&gw, "authgate_proxy_headers_total{result=\"accepted\"}").await,
        3.0
    );
    assert_eq!(
        metric(&gw, "authgate_proxy_headers_total{result=\"local\"}").await,
        1.0
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn per_address_cap_counts_the_proxy_source_not_the_proxy() {
    let stub = Stub::start(Mode::Ok).await;
    let gw = TestGateway::start(
        GatewayConfig::new()
            .server(
                "proxy_protocol = true\ntrusted_proxies = [\"127.0.0.1\"]\n\
                 max_connections_per_ip = 2",
            )
            .admin()
            .route(&public("/pub", &stub)),
    )
    .await;
    // Two silent connections each from two sources: the proxy itself is exempt.
    let mut held = Vec::new();
    for source in [
        "203.0.113.5:1",
        "203.0.113.5:2",
        "203.0.113.6:1",
        "203.0.113.6:2",
    ] {
        let mut tcp = connect_from("127.0.0.1", gw.https_addr).await;
        tcp.write_all(&proxy_v1(source)).await.unwrap();
        held.push(tcp);
    }
    // Connections are admitted in tasks of their own: wait until all four are counted, or
    // the next one could overtake them on a busy machine.
    let accepted = "authgate_proxy_headers_total{result=\"accepted\"}";
    let deadline = Instant::now() + Duration::from_secs(10);
    while metric(&gw, accepted).await < 4.0 {
        assert!(
            Instant::now() < deadline,
            "the four PROXY headers were not all accepted"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    // A third from 203.0.113.5 is closed before TLS.
    let mut tcp = connect_from("127.0.0.1", gw.https_addr).await;
    tcp.write_all(&proxy_v1("203.0.113.5:3")).await.unwrap();
    let (answer, _) = closed(&mut tcp, Instant::now(), Duration::from_secs(5))
        .await
        .expect("over the cap: closed");
    assert!(answer.is_empty());
    // Another source is served.
    let r = via_proxy(&gw, &proxy_v1("203.0.113.7:1"), &get_request("/pub/x", &[])).await;
    assert_eq!(r.status, 200);
    let refused = "authgate_connections_refused_total{reason=\"per_address_limit\"}";
    assert_eq!(metric(&gw, refused).await, 1.0);
    drop(held);
}

// ----- the token endpoints' login back-off and the audit log -----

/// A form POST with HTTP Basic client authentication.
fn token_request(params: &[(&str, &str)]) -> Vec<u8> {
    let body = form_urlencoded::Serializer::new(String::new())
        .extend_pairs(params)
        .finish();
    let basic =
        base64::engine::general_purpose::STANDARD.encode(format!("web:{}", harness::SECRET));
    format!(
        "POST /oauth2/token HTTP/1.1\r\nHost: localhost\r\nAuthorization: Basic {basic}\r\n\
         Content-Type: application/x-www-form-urlencoded\r\nContent-Length: {}\r\n\
         Connection: close\r\n\r\n{body}",
        body.len()
    )
    .into_bytes()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn login_back_off_and_audit_see_the_proxy_source() {
    let s = harness::setup_with(
        GatewayConfig::new().server("proxy_protocol = true\ntrusted_proxies = [\"127.0.0.1\"]"),
    )
    .await;
    let wrong = token_request(&[
        ("grant_type", "password"),
        ("username", "alice"),
        ("password", "wrong"),
    ]);
    let attacker = proxy_v1("203.0.113.66:5000");
    for _ in 0..5 {
        let r = via_proxy(&s.gw, &attacker, &wrong).await;
        assert_eq!(r.status, 400, "{}", String::from_utf8_lossy(&r.body));
    }
    let r = via_proxy(&s.gw, &attacker, &wrong).await;
    assert_eq!(r.status, 429, "the (account, source) pair is backed off");
    // Alice herself, from another address behind the same balancer, is not.
    let right = token_request(&[
        ("grant_type", "password"),
        ("username", "alice"),
        ("password", harness::PASSWORD),
    ]);
    let r = via_proxy(&s.gw, &proxy_v2(Some("198.51.100.23:6000")), &right).await;
    assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));

    // An admin's impersonation is audited with the PROXY source.
    let boss = token_request(&[
        ("grant_type", "password"),
        ("username", "boss"),
        ("password", harness::PASSWORD),
    ]);
    let r = via_proxy(&s.gw, &proxy_v1("198.51.100.24:6001"), &boss).await;
    assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
    let token = r.json()["access_token"].as_str().unwrap().to_owned();
    let echo = get_request(
        "/echo",
        &[
            ("Authorization", &format!("Bearer {token}")),
            ("user_id", &harness::ALICE.to_string()),
        ],
    );
    let r = via_proxy(&s.gw, &proxy_v1("198.51.100.25:6002"), &echo).await;
    assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
    let log = s.store.audit_log(None, 50).await.unwrap();
    let record = log
        .iter()
        .find(|r| r.event.action == "impersonate")
        .expect("audited");
    assert_eq!(record.event.source_addr.as_deref(), Some("198.51.100.25"));
}

/// The gateway picks the TLS suite, AES-128-GCM with SHA-256 first (its key schedule runs on
/// SHA-256, which CPUs accelerate), even for a client that asks for AES-256 / SHA-384 first as
/// OpenSSL does; a client offering only another suite still gets it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_gateway_prefers_aes_128_gcm_sha256_over_the_clients_order() {
    use rustls::CipherSuite;
    let gw = TestGateway::start(GatewayConfig::new().public_route("/", "builtin:echo")).await;
    let negotiated = |suites: &'static [CipherSuite]| {
        let gw = &gw;
        async move {
            let mut provider = rustls::crypto::aws_lc_rs::default_provider();
            provider
                .cipher_suites
                .retain(|s| suites.contains(&s.suite()));
            provider
                .cipher_suites
                .sort_by_key(|s| suites.iter().position(|x| *x == s.suite()));
            let mut roots = rustls::RootCertStore::empty();
            roots.add(gw.cert.clone()).unwrap();
            let config = rustls::ClientConfig::builder_with_provider(Arc::new(provider))
                .with_protocol_versions(&[&rustls::version::TLS13])
                .unwrap()
                .with_root_certificates(roots)
                .with_no_client_auth();
            let tcp = TcpStream::connect(gw.https_addr).await.unwrap();
            let tls = TlsConnector::from(Arc::new(config))
                .connect(ServerName::try_from("localhost").unwrap(), tcp)
                .await
                .unwrap();
            tls.get_ref().1.negotiated_cipher_suite().unwrap().suite()
        }
    };
    assert_eq!(
        negotiated(&[
            CipherSuite::TLS13_AES_256_GCM_SHA384,
            CipherSuite::TLS13_CHACHA20_POLY1305_SHA256,
            CipherSuite::TLS13_AES_128_GCM_SHA256,
        ])
        .await,
        CipherSuite::TLS13_AES_128_GCM_SHA256
    );
    assert_eq!(
        negotiated(&[CipherSuite::TLS13_CHACHA20_POLY1305_SHA256]).await,
        CipherSuite::TLS13_CHACHA20_POLY1305_SHA256
    );
}
