//! Request-header rewriting: identity-header stripping, hop-by-hop removal, request ids, Host,
//! and the builtin echo upstream that shows the rewritten request.
#![allow(clippy::unwrap_used)]

mod support;

use support::*;

/// Identity headers a client may try to smuggle, spelled in every way the gateway must catch.
const SMUGGLED_IDENTITY: &[&str] = &[
    "user_id: 1",
    "User-Id: 2",
    "USER_ID: 3",
    "x_user_id: 4",
    "X-User-Id: 5",
    "group_id: 6",
    "Group-Id: 7",
    "X-Impersonator-Id: 8",
    "x_impersonator_id: 9",
];

fn is_identity_name(name: &str) -> bool {
    let n = name.to_ascii_lowercase().replace('-', "_");
    let n = n.strip_prefix("x_").unwrap_or(&n);
    matches!(n, "user_id" | "group_id" | "impersonator_id")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn client_identity_headers_never_reach_upstream() {
    let stub = Stub::start(Mode::Ok).await;
    let gw = TestGateway::start(GatewayConfig::new().route(&public("/pub", &stub))).await;

    let mut extra: Vec<&str> = SMUGGLED_IDENTITY.to_vec();
    extra.push("x-custom: kept");
    let r = raw_get(&gw, "/pub/x", "localhost", &extra).await;
    assert_eq!(r.status, 200, "{:?}", String::from_utf8_lossy(&r.body));

    let rec = stub.only();
    let leaked: Vec<&str> = rec
        .header_names()
        .into_iter()
        .filter(|n| is_identity_name(n))
        .collect();
    assert!(
        leaked.is_empty(),
        "identity headers reached upstream: {leaked:?}"
    );
    assert_eq!(rec.header("x-custom"), Some("kept"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn identity_headers_stripped_over_http2_too() {
    let stub = Stub::start(Mode::Ok).await;
    let gw = TestGateway::start(GatewayConfig::new().route(&public("/pub", &stub))).await;
    let c = gw.client(true);
    let req = hyper::Request::get(gw.url("/pub/x"))
        .header("user_id", "1")
        .header("user-id", "2")
        .header("x-user-id", "3")
        .header("group_id", "4")
        .header("x-impersonator-id", "5")
        .header("x-custom", "kept")
        .body(http_body_util::Full::new(bytes::Bytes::new()))
        .unwrap();
    let r = send(&c, req).await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.version, hyper::Version::HTTP_2);
    let rec = stub.only();
    let leaked: Vec<&str> = rec
        .header_names()
        .into_iter()
        .filter(|n| is_identity_name(n))
        .collect();
    assert!(
        leaked.is_empty(),
        "identity headers reached upstream: {leaked:?}"
    );
    assert_eq!(rec.header("x-custom"), Some("kept"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn configured_identity_names_are_stripped_everywhere() {
    // Per-route names (x-user / x-group on another route), [identity].strip_headers and a renamed
    // global user header are stripped on every route, in any spelling.
    let stub = Stub::start(Mode::Ok).await;
    let gw = TestGateway::start(
        GatewayConfig::new()
            .section("[identity]\nuser_header = \"x-account\"\nstrip_headers = [\"X-Remote-User\"]")
            .route(&format!(
                "prefix = \"/other\"\nupstream = \"{}\"\nuser_header = \"x-user\"\ngroup_header = \"x-group\"",
                stub.url()
            ))
            .route(&public("/pub", &stub)),
    )
    .await;
    let r = raw_get(
        &gw,
        "/pub/x",
        "localhost",
        &[
            "X-User: a",
            "x_user: b",
            "X-Group: c",
            "x-remote-user: d",
            "X_Remote_User: e",
            "X-Account: f",
            "x_account: g",
            "x-custom: kept",
        ],
    )
    .await;
    assert_eq!(r.status, 200, "{:?}", String::from_utf8_lossy(&r.body));
    let rec = stub.only();
    for name in [
        "x-user",
        "x_user",
        "x-group",
        "x-remote-user",
        "x_remote_user",
        "x-account",
        "x_account",
    ] {
        assert!(
            !rec.has_header(name),
            "{name} reached upstream: {:?}",
            rec.headers
        );
    }
    assert_eq!(rec.header("x-custom"), Some("kept"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hop_by_hop_headers_are_removed() {
    let stub = Stub::start(Mode::Ok).await;
    let gw = TestGateway::start(GatewayConfig::new().route(&public("/pub", &stub))).await;
    let req = "GET /pub/x HTTP/1.1\r\n\
               Host: localhost\r\n\
               Connection: x-foo, keep-alive\r\n\
               x-foo: 1\r\n\
               Keep-Alive: timeout=5\r\n\
               TE: gzip\r\n\
               Trailer: x-trail\r\n\
               Upgrade: foo/1\r\n\
               Proxy-Connection: keep-alive\r\n\
               x-custom: kept\r\n\
               \r\n";
    let r = raw_exchange(&gw, req.as_bytes()).await;
    assert_eq!(r.status, 200, "{:?}", String::from_utf8_lossy(&r.body));
    let rec = stub.only();
    for name in [
        "x-foo",
        "keep-alive",
        "te",
        "trailer",
        "upgrade",
        "proxy-connection",
    ] {
        assert!(
            !rec.has_header(name),
            "hop-by-hop header {name} reached upstream: {:?}",
            rec.headers
        );
    }
    // Whatever Connection the gateway sends upstream is its own, never the client's tokens.
    for v in rec.header_all("connection") {
        assert!(
            !v.to_ascii_lowercase().contains("x-foo"),
            "client's Connection tokens forwarded: {v:?}"
        );
    }
    assert_eq!(rec.header("x-custom"), Some("kept"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connection_header_cannot_remove_forwarding_headers() {
    // A client naming X-Forwarded-For / X-Request-Id in Connection must not make the gateway drop
    // the values it sets itself.
    let stub = Stub::start(Mode::Ok).await;
    let gw = TestGateway::start(GatewayConfig::new().route(&public("/pub", &stub))).await;
    let r = raw_get(
        &gw,
        "/pub/x",
        "localhost",
        &["Connection: X-Forwarded-For, X-Request-Id, X-Forwarded-Proto"],
    )
    .await;
    assert_eq!(r.status, 200, "{:?}", String::from_utf8_lossy(&r.body));
    let rec = stub.only();
    assert_eq!(rec.header("x-forwarded-for"), Some("127.0.0.1"));
    assert_eq!(rec.header("x-forwarded-proto"), Some("https"));
    assert!(rec.has_header("x-request-id"), "{:?}", rec.headers);
}

// ----- request id -----

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn valid_client_request_id_is_propagated_and_returned() {
    let stub = Stub::start(Mode::Ok).await;
    let gw = TestGateway::start(GatewayConfig::new().route(&public("/pub", &stub))).await;
    let r = raw_get(&gw, "/pub/x", "localhost", &["X-Request-Id: abc-123"]).await;
    assert_eq!(r.status, 200);
    assert_eq!(r.header("x-request-id"), Some("abc-123"));
    assert_eq!(stub.only().header_all("x-request-id"), vec!["abc-123"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn invalid_client_request_id_is_replaced() {
    let stub = Stub::start(Mode::Ok).await;
    let gw = TestGateway::start(GatewayConfig::new().route(&public("/pub", &stub))).await;
    let long = "a".repeat(300);
    let bad_ids = [long.as_str(), "has space", "has\"quote", "semi;colon<>"];
    for (i, bad) in bad_ids.iter().enumerate() {
        let hdr = format!("X-Request-Id: {bad}");
        let r = raw_get(&gw, "/pub/x", "localhost", &[&hdr]).await;
        assert_eq!(r.status, 200, "id {bad:?}");
        let returned = r
            .header("x-request-id")
            .expect("x-request-id returned")
            .to_string();
        assert_ne!(returned, *bad, "invalid id {bad:?} was kept");
        assert!(!returned.is_empty());
        let rec = &stub.records()[i];
        assert_eq!(
            rec.header_all("x-request-id"),
            vec![returned.as_str()],
            "upstream should see the generated id that was returned"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn missing_request_id_is_generated_returned_and_forwarded() {
    let stub = Stub::start(Mode::Ok).await;
    let gw = TestGateway::start(GatewayConfig::new().route(&public("/pub", &stub))).await;
    let c = gw.client(false);
    let r1 = get(&c, &gw.url("/pub/1")).await;
    let r2 = get(&c, &gw.url("/pub/2")).await;
    let id1 = r1.header("x-request-id").expect("x-request-id").to_string();
    let id2 = r2.header("x-request-id").expect("x-request-id").to_string();
    assert!(!id1.is_empty());
    assert_ne!(id1, id2, "generated ids must differ per request");
    let recs = stub.records();
    assert_eq!(recs[0].header("x-request-id"), Some(id1.as_str()));
    assert_eq!(recs[1].header("x-request-id"), Some(id2.as_str()));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_response_has_request_id_even_errors() {
    let stub = Stub::start(Mode::Ok).await;
    let gw = TestGateway::start(GatewayConfig::new().route(&public("/pub", &stub))).await;
    let c = gw.client(false);
    let r = get(&c, &gw.url("/nope")).await;
    r.assert_error(404, "not_found"); // checks request_id == x-request-id
    let r = raw_get(&gw, "/nope", "localhost", &["X-Request-Id: mine-42"]).await;
    r.assert_error(404, "not_found");
    assert_eq!(r.header("x-request-id"), Some("mine-42"));
}

// ----- Host -----

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn host_is_rewritten_to_upstream_authority_by_default() {
    let stub = Stub::start(Mode::Ok).await;
    let gw = TestGateway::start(GatewayConfig::new().route(&public("/pub", &stub))).await;
    let r = raw_get(&gw, "/pub/x", "front.example", &[]).await;
    assert_eq!(r.status, 200);
    let rec = stub.only();
    assert_eq!(rec.header_all("host"), vec![stub.addr.to_string().as_str()]);
    assert_eq!(rec.header("x-forwarded-host"), Some("front.example"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn preserve_host_keeps_client_host() {
    let stub = Stub::start(Mode::Ok).await;
    let gw = TestGateway::start(
        GatewayConfig::new().route(&format!("{}\npreserve_host = true", public("/pub", &stub))),
    )
    .await;
    let r = raw_get(&gw, "/pub/x", "front.example", &[]).await;
    assert_eq!(r.status, 200);
    assert_eq!(stub.only().header_all("host"), vec!["front.example"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn upstream_response_headers_and_body_pass_through() {
    let stub = Stub::start(Mode::Ok).await;
    let gw = TestGateway::start(GatewayConfig::new().route(&public("/pub", &stub))).await;
    let r = get(&gw.client(false), &gw.url("/pub/x")).await;
    assert_eq!(r.status, 200);
    assert_eq!(r.header("x-stub"), Some("ok"));
    assert_eq!(r.json(), serde_json::json!({"ok": true}));
}

// ----- builtin:echo -----

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn builtin_echo_reflects_rewritten_request() {
    let gw = TestGateway::start(GatewayConfig::new().public_route("/echo", "builtin:echo")).await;
    let body = "hello";
    let req = format!(
        "POST /echo/x/./y?a=1&b=%41 HTTP/1.1\r\n\
         Host: front.example\r\n\
         Content-Length: {}\r\n\
         user_id: 99\r\n\
         X-User-Id: 99\r\n\
         X-Custom: v\r\n\
         X-Forwarded-For: 1.2.3.4\r\n\
         Connection: close\r\n\
         \r\n{body}",
        body.len()
    );
    let r = raw_exchange(&gw, req.as_bytes()).await;
    assert_eq!(r.status, 200, "{:?}", String::from_utf8_lossy(&r.body));
    let v = r.json();
    assert_eq!(v["method"], "POST", "{v}");
    assert_eq!(v["path"], "/echo/x/y", "{v}");
    assert_eq!(v["query"], "a=1&b=%41", "{v}");
    assert!(
        v["version"].as_str().unwrap_or("").contains("1.1"),
        "version in {v}"
    );
    assert_eq!(v["body_bytes"], 5, "{v}");
    let h = v["headers"].as_object().expect("headers object");
    for k in h.keys() {
        assert_eq!(
            *k,
            k.to_ascii_lowercase(),
            "header names must be lower-case: {k}"
        );
        assert!(
            !is_identity_name(k),
            "identity header {k} visible to the upstream: {v}"
        );
    }
    assert_eq!(h.get("x-custom").and_then(|x| x.as_str()), Some("v"), "{v}");
    assert_eq!(
        h.get("x-forwarded-for").and_then(|x| x.as_str()),
        Some("127.0.0.1"),
        "{v}"
    );
    assert_eq!(
        h.get("x-forwarded-proto").and_then(|x| x.as_str()),
        Some("https"),
        "{v}"
    );
    assert_eq!(
        h.get("x-forwarded-host").and_then(|x| x.as_str()),
        Some("front.example"),
        "{v}"
    );
    assert_eq!(
        h.get("x-request-id").and_then(|x| x.as_str()),
        r.header("x-request-id"),
        "{v}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn builtin_echo_over_http2() {
    let gw = TestGateway::start(GatewayConfig::new().public_route("/echo", "builtin:echo")).await;
    let r = get(&gw.client(true), &gw.url("/echo?z=1")).await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.version, hyper::Version::HTTP_2);
    let v = r.json();
    assert_eq!(v["method"], "GET");
    assert_eq!(v["path"], "/echo");
    assert_eq!(v["body_bytes"], 0);
    assert_eq!(v["query"], "z=1");
    // "version" is the version an upstream would see (HTTP/1.1 unless h2c), not the client's.
    assert!(v["version"].is_string(), "version in {v}");
}
