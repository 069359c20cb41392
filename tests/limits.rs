//! Size limits (413, 431) and slow-client defences (header read and TLS handshake timeouts).
#![allow(clippy::unwrap_used)]

mod support;

use std::time::Duration;

use support::*;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

// ----- 413 -----

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn content_length_over_limit_is_413() {
    let stub = Stub::start(Mode::CountBody).await;
    let gw = TestGateway::start(
        GatewayConfig::new()
            .server("max_body_bytes = \"1KiB\"")
            .route(&public("/pub", &stub)),
    )
    .await;
    let body = vec![b'x'; 2048];
    let mut req = format!(
        "POST /pub/x HTTP/1.1\r\nHost: localhost\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    )
    .into_bytes();
    req.extend_from_slice(&body);
    let r = raw_exchange(&gw, &req).await;
    r.assert_error(413, "payload_too_large");
    assert!(
        stub.records().is_empty(),
        "a declared-too-large body must be refused before contacting the upstream: {:#?}",
        stub.records()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn body_at_limit_is_accepted() {
    let stub = Stub::start(Mode::CountBody).await;
    let gw = TestGateway::start(
        GatewayConfig::new()
            .server("max_body_bytes = \"1KiB\"")
            .route(&public("/pub", &stub)),
    )
    .await;
    let req = hyper::Request::post(gw.url("/pub/x"))
        .body(http_body_util::Full::new(bytes::Bytes::from(vec![
            b'x';
            1024
        ])))
        .unwrap();
    let r = send(&gw.client(false), req).await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.text(), "1024");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chunked_body_exceeding_limit_mid_stream_is_413() {
    let stub = Stub::start(Mode::CountBody).await;
    let gw = TestGateway::start(
        GatewayConfig::new()
            .server("max_body_bytes = \"1KiB\"")
            .route(&public("/pub", &stub)),
    )
    .await;
    let mut req = b"POST /pub/x HTTP/1.1\r\nHost: localhost\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n".to_vec();
    let chunk = vec![b'y'; 512];
    for _ in 0..8 {
        req.extend_from_slice(format!("{:x}\r\n", chunk.len()).as_bytes());
        req.extend_from_slice(&chunk);
        req.extend_from_slice(b"\r\n");
    }
    req.extend_from_slice(b"0\r\n\r\n");
    let r = raw_exchange(&gw, &req).await;
    r.assert_error(413, "payload_too_large");
    // If the upstream was contacted, it must not have received more than the limit as a
    // complete body.
    for rec in stub.records() {
        assert!(
            rec.body_error || rec.body_len <= 1024,
            "upstream got a complete over-limit body: {rec:#?}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chunked_body_over_limit_via_http2_is_413() {
    let stub = Stub::start(Mode::CountBody).await;
    let gw = TestGateway::start(
        GatewayConfig::new()
            .server("max_body_bytes = \"1KiB\"")
            .route(&public("/pub", &stub)),
    )
    .await;
    // No content-length: the limit can only be noticed while streaming.
    let c: HttpsClient<ZeroBody> = https_client(&gw.cert, true);
    let req = hyper::Request::post(gw.url("/pub/x"))
        .body(ZeroBody::unsized_len(300 * 1024))
        .unwrap();
    let r = send(&c, req).await;
    r.assert_error(413, "payload_too_large");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn route_max_body_bytes_overrides_server_default() {
    let stub = Stub::start(Mode::CountBody).await;
    let gw = TestGateway::start(
        GatewayConfig::new()
            .server("max_body_bytes = \"1KiB\"")
            .route(&format!(
                "{}\nmax_body_bytes = \"64KiB\"",
                public("/big", &stub)
            ))
            .route(&public("/default", &stub)),
    )
    .await;
    let c = gw.client(false);
    let post = |path: &str, n: usize| {
        hyper::Request::post(gw.url(path))
            .body(http_body_util::Full::new(bytes::Bytes::from(vec![b'z'; n])))
            .unwrap()
    };
    let r = send(&c, post("/big/x", 32 * 1024)).await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.text(), "32768");
    send(&c, post("/big/x", 65 * 1024))
        .await
        .assert_error(413, "payload_too_large");
    send(&c, post("/default/x", 1025))
        .await
        .assert_error(413, "payload_too_large");
    assert_eq!(send(&c, post("/default/x", 1024)).await.status, 200);
}

// ----- 431 -----

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn headers_over_limit_is_431_json() {
    let stub = Stub::start(Mode::Ok).await;
    let gw = TestGateway::start(
        GatewayConfig::new()
            .server("max_header_bytes = \"4KiB\"")
            .route(&public("/pub", &stub)),
    )
    .await;
    // 6 x ~1 KiB headers = ~6 KiB in total, each one well under the limit on its own.
    let pad = "p".repeat(1000);
    let hdrs: Vec<String> = (0..6).map(|i| format!("x-pad-{i}: {pad}")).collect();
    let refs: Vec<&str> = hdrs.iter().map(String::as_str).collect();
    let r = raw_get(&gw, "/pub/x", "localhost", &refs).await;
    r.assert_error(431, "request_header_fields_too_large");
    assert!(stub.records().is_empty());

    // Under the limit still works.
    let r = raw_get(&gw, "/pub/x", "localhost", &refs[..2]).await;
    assert_eq!(r.status, 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn headers_over_limit_is_431_json_over_http2() {
    let stub = Stub::start(Mode::Ok).await;
    let gw = TestGateway::start(
        GatewayConfig::new()
            .server("max_header_bytes = \"4KiB\"")
            .route(&public("/pub", &stub)),
    )
    .await;
    let pad = "p".repeat(1000);
    let mut b = hyper::Request::get(gw.url("/pub/x"));
    for i in 0..6 {
        b = b.header(format!("x-pad-{i}"), pad.as_str());
    }
    let r = send(
        &gw.client(true),
        b.body(http_body_util::Full::new(bytes::Bytes::new()))
            .unwrap(),
    )
    .await;
    r.assert_error(431, "request_header_fields_too_large");
    assert!(stub.records().is_empty());
}

// ----- slow clients -----

/// Read until EOF or error; returns how long it took, or None if still open after `limit`.
async fn wait_closed<S: tokio::io::AsyncRead + Unpin>(
    s: &mut S,
    limit: Duration,
) -> Option<Duration> {
    let start = std::time::Instant::now();
    let res = tokio::time::timeout(limit, async {
        let mut buf = [0u8; 1024];
        loop {
            match s.read(&mut buf).await {
                Ok(0) | Err(_) => return,
                Ok(_) => continue, // e.g. a 408 answer; keep reading until closed
            }
        }
    })
    .await;
    res.ok().map(|_| start.elapsed())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slowloris_partial_request_is_closed() {
    let stub = Stub::start(Mode::Ok).await;
    let gw = TestGateway::start(
        GatewayConfig::new()
            .server("header_read_timeout = \"500ms\"")
            .route(&public("/pub", &stub)),
    )
    .await;
    let mut s = tls_connect(gw.https_addr, &gw.cert, &[b"http/1.1"]).await;
    s.write_all(b"GET /pub/x HTTP/1.1\r\nHost: loc")
        .await
        .unwrap();
    s.flush().await.unwrap();
    let closed = wait_closed(&mut s, Duration::from_secs(5)).await;
    assert!(
        closed.is_some(),
        "connection with a stalled request head still open after 5 s (header_read_timeout 500ms)"
    );
    assert!(stub.records().is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stalled_tls_handshake_is_closed() {
    let stub = Stub::start(Mode::Ok).await;
    let gw = TestGateway::start(
        GatewayConfig::new()
            .server("tls_handshake_timeout = \"500ms\"")
            .route(&public("/pub", &stub)),
    )
    .await;
    // TCP connect, then say nothing.
    let mut tcp = tokio::net::TcpStream::connect(gw.https_addr).await.unwrap();
    let closed = wait_closed(&mut tcp, Duration::from_secs(5)).await;
    assert!(
        closed.is_some(),
        "silent TCP connection still open after 5 s (tls_handshake_timeout 500ms)"
    );
    // The gateway still serves others.
    assert_eq!(get(&gw.client(false), &gw.url("/pub/x")).await.status, 200);
}
