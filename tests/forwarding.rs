//! Forwarding: X-Forwarded-*, protocol versions, upstream failures, auth gating, WebSocket
//! upgrades, the plain listener.
#![allow(clippy::unwrap_used)]

mod support;

use std::time::Duration;

use support::*;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

// ----- X-Forwarded-* -----

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn untrusted_peer_forwarding_headers_are_replaced() {
    let stub = Stub::start(Mode::Ok).await;
    let gw = TestGateway::start(GatewayConfig::new().route(&public("/pub", &stub.url()))).await;
    let r = raw_get(
        &gw,
        "/pub/x",
        "front.example",
        &[
            "X-Forwarded-For: 1.2.3.4",
            "Forwarded: for=1.2.3.4;proto=http",
            "X-Forwarded-Host: evil",
            "X-Forwarded-Proto: http",
        ],
    )
    .await;
    assert_eq!(r.status, 200, "{:?}", String::from_utf8_lossy(&r.body));
    let rec = stub.only();
    assert_eq!(rec.header_all("x-forwarded-for"), vec!["127.0.0.1"]);
    assert_eq!(rec.header_all("x-forwarded-proto"), vec!["https"]);
    assert_eq!(rec.header_all("x-forwarded-host"), vec!["front.example"]);
    // The client's `Forwarded` is gone; the gateway's own names the real peer.
    assert_eq!(
        rec.header_all("forwarded"),
        vec!["for=127.0.0.1;proto=https;host=\"front.example\""],
        "{:?}",
        rec.headers
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forwarding_headers_set_when_client_sends_none() {
    let stub = Stub::start(Mode::Ok).await;
    let gw = TestGateway::start(GatewayConfig::new().route(&public("/pub", &stub.url()))).await;
    let r = get(&gw.client(false), &gw.url("/pub/x")).await;
    assert_eq!(r.status, 200);
    let rec = stub.only();
    assert_eq!(rec.header_all("x-forwarded-for"), vec!["127.0.0.1"]);
    assert_eq!(rec.header_all("x-forwarded-proto"), vec!["https"]);
    assert_eq!(
        rec.header_all("x-forwarded-host"),
        vec![gw.https_addr.to_string().as_str()]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn trusted_proxy_forwarded_for_is_extended() {
    let stub = Stub::start(Mode::Ok).await;
    let gw = TestGateway::start(
        GatewayConfig::new()
            .server("trusted_proxies = [\"127.0.0.0/8\"]")
            .route(&public("/pub", &stub.url())),
    )
    .await;
    let r = raw_get(
        &gw,
        "/pub/x",
        "front.example",
        &["X-Forwarded-For: 203.0.113.7"],
    )
    .await;
    assert_eq!(r.status, 200);
    let rec = stub.only();
    assert_eq!(
        rec.header_all("x-forwarded-for"),
        vec!["203.0.113.7, 127.0.0.1"]
    );
    assert_eq!(rec.header_all("x-forwarded-proto"), vec!["https"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn untrusted_when_peer_outside_trusted_cidrs() {
    let stub = Stub::start(Mode::Ok).await;
    let gw = TestGateway::start(
        GatewayConfig::new()
            .server("trusted_proxies = [\"10.0.0.0/8\"]")
            .route(&public("/pub", &stub.url())),
    )
    .await;
    let r = raw_get(&gw, "/pub/x", "h", &["X-Forwarded-For: 203.0.113.7"]).await;
    assert_eq!(r.status, 200);
    assert_eq!(stub.only().header_all("x-forwarded-for"), vec!["127.0.0.1"]);
}

// ----- protocol versions -----

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http1_and_http2_via_alpn() {
    let stub = Stub::start(Mode::Ok).await;
    let gw = TestGateway::start(GatewayConfig::new().route(&public("/pub", &stub.url()))).await;

    let r1 = get(&gw.client(false), &gw.url("/pub/1")).await;
    assert_eq!(r1.status, 200);
    assert_eq!(r1.version, hyper::Version::HTTP_11);
    assert_eq!(r1.json(), serde_json::json!({"ok": true}));
    assert!(r1.header("x-request-id").is_some());

    let r2 = get(&gw.client(true), &gw.url("/pub/2")).await;
    assert_eq!(r2.status, 200);
    assert_eq!(r2.version, hyper::Version::HTTP_2);
    assert_eq!(r2.json(), serde_json::json!({"ok": true}));
    assert!(r2.header("x-request-id").is_some());

    let recs = stub.records();
    assert_eq!(recs.len(), 2);
    assert_eq!(recs[1].path, "/pub/2");
    // Default upstream protocol is HTTP/1.1 whatever the client spoke.
    assert_eq!(recs[1].version, hyper::Version::HTTP_11);
    // An HTTP/2 client's :authority becomes the forwarded host.
    assert_eq!(
        recs[1].header("x-forwarded-host"),
        Some(gw.https_addr.to_string().as_str())
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn h2c_upstream_gets_http2() {
    let stub = Stub::start(Mode::CountBody).await;
    let gw = TestGateway::start(
        GatewayConfig::new().route(&format!("{}\nh2c = true", public("/pub", &stub.url()))),
    )
    .await;
    let req = hyper::Request::post(gw.url("/pub/x"))
        .body(http_body_util::Full::new(bytes::Bytes::from_static(
            b"12345",
        )))
        .unwrap();
    let r = send(&gw.client(false), req).await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.text(), "5");
    let rec = stub.only();
    assert_eq!(rec.version, hyper::Version::HTTP_2);
    assert_eq!(rec.path, "/pub/x");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn request_body_is_forwarded() {
    let stub = Stub::start(Mode::CountBody).await;
    let gw = TestGateway::start(GatewayConfig::new().route(&public("/pub", &stub.url()))).await;
    for h2 in [false, true] {
        let req = hyper::Request::post(gw.url("/pub/x"))
            .body(http_body_util::Full::new(bytes::Bytes::from(vec![
                7u8;
                100_000
            ])))
            .unwrap();
        let r = send(&gw.client(h2), req).await;
        assert_eq!(r.status, 200, "h2={h2}: {}", r.text());
        assert_eq!(r.text(), "100000", "h2={h2}");
    }
}

// ----- upstream failures -----

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn upstream_port_closed_is_502() {
    let port = closed_port().await;
    let gw = TestGateway::start(
        GatewayConfig::new().route(&public("/pub", &format!("http://127.0.0.1:{port}"))),
    )
    .await;
    let r = get(&gw.client(false), &gw.url("/pub/x")).await;
    r.assert_error(502, "bad_gateway");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slow_upstream_is_504() {
    let stub = Stub::start(Mode::Sleep(Duration::from_secs(2))).await;
    let gw = TestGateway::start(GatewayConfig::new().route(&format!(
        "{}\ntimeout = \"300ms\"",
        public("/pub", &stub.url())
    )))
    .await;
    let r = get(&gw.client(false), &gw.url("/pub/x")).await;
    r.assert_error(504, "gateway_timeout");
    assert_eq!(
        stub.records().len(),
        1,
        "the request did reach the upstream"
    );
}

// ----- auth gating -----

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn non_public_routes_answer_401_and_never_reach_upstream() {
    let stub = Stub::start(Mode::Ok).await;
    let gw = TestGateway::start(
        GatewayConfig::new()
            .route(&format!(
                "prefix = \"/default\"\nupstream = \"{}\"",
                stub.url()
            ))
            .route(&format!(
                "prefix = \"/authn\"\nupstream = \"{}\"\nauth = \"authenticated\"",
                stub.url()
            ))
            .route(&format!(
                "prefix = \"/adm\"\nupstream = \"{}\"\nauth = \"admin\"",
                stub.url()
            ))
            .route("prefix = \"/echo\"\nupstream = \"builtin:echo\""),
    )
    .await;
    let c = gw.client(false);
    for path in ["/default/x", "/authn/x", "/adm/x", "/echo"] {
        let r = get(&c, &gw.url(path)).await;
        r.assert_error(401, "unauthorized");
        assert_eq!(
            r.header("www-authenticate"),
            Some("Bearer realm=\"authgate\""),
            "{path}"
        );
        // A bearer token we cannot validate yet does not get through either.
        let req = hyper::Request::get(gw.url(path))
            .header("authorization", "Bearer not-a-real-token")
            .body(http_body_util::Full::new(bytes::Bytes::new()))
            .unwrap();
        let r = send(&c, req).await;
        assert_eq!(r.status, 401, "{path} with a bogus token");
        assert!(
            r.header("www-authenticate")
                .unwrap_or("")
                .starts_with("Bearer")
        );
    }
    assert!(
        stub.records().is_empty(),
        "upstream was reached: {:#?}",
        stub.records()
    );
}

// ----- WebSocket upgrade -----

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn websocket_upgrade_passthrough() {
    let stub = Stub::start(Mode::UpgradeEcho).await;
    let gw = TestGateway::start(GatewayConfig::new().route(&public("/ws", &stub.url()))).await;

    let mut s = tls_connect(gw.https_addr, &gw.cert, &[b"http/1.1"]).await;
    let req = "GET /ws/chat HTTP/1.1\r\n\
               Host: localhost\r\n\
               Connection: Upgrade\r\n\
               Upgrade: websocket\r\n\
               Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\
               Sec-WebSocket-Version: 13\r\n\
               \r\n";
    s.write_all(req.as_bytes()).await.unwrap();
    let resp = within("101 response", read_response(&mut s)).await;
    assert_eq!(resp.status, 101, "{resp:?}");
    assert!(
        resp.header("upgrade")
            .unwrap_or("")
            .eq_ignore_ascii_case("websocket"),
        "{resp:?}"
    );
    assert!(resp.body.is_empty(), "no bytes should follow the 101 yet");

    // The upstream saw a real upgrade request.
    let rec = stub.only();
    assert_eq!(rec.path, "/ws/chat");
    assert!(
        rec.header("upgrade")
            .unwrap_or("")
            .eq_ignore_ascii_case("websocket"),
        "{:?}",
        rec.headers
    );
    assert!(
        rec.header("connection")
            .unwrap_or("")
            .to_ascii_lowercase()
            .contains("upgrade"),
        "{:?}",
        rec.headers
    );
    assert_eq!(
        rec.header("sec-websocket-key"),
        Some("dGhlIHNhbXBsZSBub25jZQ==")
    );

    for msg in [
        &b"hello through the tunnel"[..],
        &[0u8, 1, 2, 255, 13, 10][..],
    ] {
        s.write_all(msg).await.unwrap();
        s.flush().await.unwrap();
        let mut back = vec![0u8; msg.len()];
        within("echo over the upgraded connection", s.read_exact(&mut back))
            .await
            .unwrap();
        assert_eq!(back, msg);
    }
}

// ----- plain listener -----

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn plain_listener_serves_routes_with_proto_http() {
    let stub = Stub::start(Mode::Ok).await;
    let gw = TestGateway::start(
        GatewayConfig::new()
            .plain_listener()
            .route(&public("/pub", &stub.url())),
    )
    .await;
    assert!(gw.plain_addr.is_some());
    let c = plain_client();
    let r = get(&c, &gw.plain_url("/pub/x")).await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert!(r.header("x-request-id").is_some());
    let r = get(&c, &gw.plain_url("/missing")).await;
    r.assert_error(404, "not_found");
    let rec = stub.only();
    assert_eq!(rec.header_all("x-forwarded-proto"), vec!["http"]);
    assert_eq!(rec.header_all("x-forwarded-for"), vec!["127.0.0.1"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_plain_or_admin_listener_unless_configured() {
    let stub = Stub::start(Mode::Ok).await;
    let gw = TestGateway::start(GatewayConfig::new().route(&public("/pub", &stub.url()))).await;
    assert!(gw.plain_addr.is_none());
    assert!(gw.admin_addr.is_none());
}
