//! Protocol upgrades: only a well-formed WebSocket handshake is forwarded as an upgrade, and
//! only where the route allows WebSocket; any other `Upgrade` is removed and the request goes
//! on as a plain one.

use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::harness::*;
use crate::support::*;

const KEY: &str = "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==";
const VERSION: &str = "Sec-WebSocket-Version: 13";

/// `GET target` with `Connection: Upgrade`, `Upgrade: upgrade` and `extra`, one response read.
async fn upgrade_request(
    gw: &TestGateway,
    target: &str,
    upgrade: &str,
    extra: &[&str],
) -> RawResponse {
    let mut req = format!(
        "GET {target} HTTP/1.1\r\nHost: localhost\r\nConnection: Upgrade\r\nUpgrade: {upgrade}\r\n"
    );
    for h in extra {
        req.push_str(h);
        req.push_str("\r\n");
    }
    req.push_str("\r\n");
    raw_exchange(gw, req.as_bytes()).await
}

fn assert_plain_request(what: &str, rec: &Recorded) {
    assert_eq!(rec.method, "GET", "{what}");
    assert!(
        !rec.has_header("upgrade"),
        "{what}: upgrade forwarded: {:?}",
        rec.headers
    );
    assert!(
        !rec.has_header("http2-settings"),
        "{what}: http2-settings forwarded: {:?}",
        rec.headers
    );
    for v in rec.header_all("connection") {
        assert!(
            !v.to_ascii_lowercase().contains("upgrade"),
            "{what}: Connection names upgrade: {v:?}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn websocket_upgrade_needs_key_and_version() {
    let stub = Stub::start(Mode::UpgradeEcho).await;
    let env = Env::start(GatewayConfig::new().route(&public("/ws", &stub))).await;

    for (what, extra) in [
        ("no Sec-WebSocket-Key", vec![VERSION]),
        ("no Sec-WebSocket-Version", vec![KEY]),
        ("neither", vec![]),
    ] {
        let r = upgrade_request(&env.gw, "/ws/chat", "websocket", &extra).await;
        assert_raw_refusal(what, &r, 400);
        assert_not_forwarded(what, &stub, 0);
    }

    // RFC 6455 §4.2.2: another version is 426, naming the one spoken.
    let v8 = upgrade_request(
        &env.gw,
        "/ws/chat",
        "websocket",
        &[KEY, "Sec-WebSocket-Version: 8"],
    )
    .await;
    assert_raw_refusal("version 8", &v8, 426);
    assert_eq!(v8.header("sec-websocket-version"), Some("13"), "{v8:?}");
    assert_not_forwarded("version 8", &stub, 0);

    // Frames sent right behind the handshake, before its 101: the wire check holds them until
    // the upgrade is answered, then they are the tunnel's (not read as a next request).
    let mut early = tls_connect(env.gw.https_addr, &env.gw.cert, &[b"http/1.1"]).await;
    let both = format!(
        "GET /ws/early HTTP/1.1\r\nHost: localhost\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n{KEY}\r\n{VERSION}\r\n\r\nnot an HTTP request\r\n\r\n"
    );
    early.write_all(both.as_bytes()).await.unwrap();
    let resp = within("101 response", read_response(&mut early)).await;
    assert_eq!(resp.status, 101, "{resp:?}");
    let mut back = resp.body;
    while back.len() < 23 {
        let mut chunk = [0u8; 64];
        let n = within("early echo", early.read(&mut chunk)).await.unwrap();
        assert!(n > 0, "tunnel closed after {back:?}");
        back.extend_from_slice(&chunk[..n]);
    }
    assert_eq!(back, b"not an HTTP request\r\n\r\n");
    drop(early);
    stub.wait_for(1).await;

    // A complete handshake is still tunnelled.
    let mut s = tls_connect(env.gw.https_addr, &env.gw.cert, &[b"http/1.1"]).await;
    let req = format!(
        "GET /ws/chat HTTP/1.1\r\nHost: localhost\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n{KEY}\r\n{VERSION}\r\n\r\n"
    );
    s.write_all(req.as_bytes()).await.unwrap();
    let resp = within("101 response", read_response(&mut s)).await;
    assert_eq!(resp.status, 101, "{resp:?}");
    stub.wait_for(2).await;
    let rec = stub.records().pop().unwrap();
    assert!(
        rec.header("upgrade")
            .is_some_and(|v| v.eq_ignore_ascii_case("websocket")),
        "{:?}",
        rec.headers
    );
    let msg = b"through the tunnel";
    s.write_all(msg).await.unwrap();
    s.flush().await.unwrap();
    let mut back = vec![0u8; msg.len()];
    within("echo", s.read_exact(&mut back)).await.unwrap();
    assert_eq!(&back, msg);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn websocket_off_on_a_route_makes_it_a_plain_request() {
    let stub = Stub::start(Mode::Ok).await;
    let env = Env::start(
        GatewayConfig::new().route(&format!("{}\nwebsocket = false", public("/nows", &stub))),
    )
    .await;
    let r = upgrade_request(&env.gw, "/nows/chat", "websocket", &[KEY, VERSION]).await;
    assert_eq!(r.status, 200, "{r:?}");
    assert_eq!(r.header("x-stub"), Some("ok"));
    let rec = stub.only();
    assert_eq!(rec.path, "/nows/chat");
    assert_plain_request("websocket = false", &rec);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn other_upgrades_are_removed_and_the_request_proceeds() {
    let stub = Stub::start(Mode::Ok).await;
    let env = Env::start(GatewayConfig::new().route(&public("/pub", &stub))).await;

    // h2c: `Connection: Upgrade, HTTP2-Settings` (RFC 7540 §3.2).
    let req = "GET /pub/h2c HTTP/1.1\r\n\
               Host: localhost\r\n\
               Connection: Upgrade, HTTP2-Settings\r\n\
               Upgrade: h2c\r\n\
               HTTP2-Settings: AAMAAABkAARAAAAAAAIAAAAA\r\n\
               \r\n";
    let r = raw_exchange(&env.gw, req.as_bytes()).await;
    assert_eq!(r.status, 200, "h2c: {r:?}");
    assert_plain_request("Upgrade: h2c", &forwarded_once("h2c", &stub, 0));

    // The same with HTTP2-Settings not named in Connection.
    let r = upgrade_request(
        &env.gw,
        "/pub/h2c2",
        "h2c",
        &["HTTP2-Settings: AAMAAABkAARAAAAAAAIAAAAA"],
    )
    .await;
    assert_eq!(r.status, 200, "h2c (2): {r:?}");
    assert_plain_request("Upgrade: h2c (2)", &forwarded_once("h2c (2)", &stub, 1));

    // Anything else.
    for (i, proto) in ["foo", "foo/1, bar", "TLS/1.2"].iter().enumerate() {
        let r = upgrade_request(&env.gw, "/pub/foo", proto, &[]).await;
        assert_eq!(r.status, 200, "Upgrade: {proto}: {r:?}");
        assert_plain_request(proto, &forwarded_once(proto, &stub, 2 + i));
    }
}
