//! Route selection, path normalisation, strip_prefix, error answers for unrouted requests.
#![allow(clippy::unwrap_used)]

mod support;

use support::*;

/// Routes distinguished by their upstream base path, all on one stub.
fn route(prefix: &str, stub: &Stub, base: &str) -> String {
    public(prefix, &format!("{}{base}", stub.url()))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn longest_prefix_wins_regardless_of_order() {
    let stub = Stub::start(Mode::Ok).await;
    let gw = TestGateway::start(
        GatewayConfig::new()
            .route(&route("/api", &stub, "/short"))
            .route(&route("/api/v2", &stub, "/long"))
            .route(&route("/", &stub, "/root")),
    )
    .await;
    let c = gw.client(false);

    let r = get(&c, &gw.url("/api/v2/users")).await;
    assert_eq!(r.status, 200, "{}", r.text());
    let r = get(&c, &gw.url("/api/v1/users")).await;
    assert_eq!(r.status, 200, "{}", r.text());
    let r = get(&c, &gw.url("/other")).await;
    assert_eq!(r.status, 200, "{}", r.text());

    let recs = stub.records();
    let paths: Vec<&str> = recs.iter().map(|r| r.path.as_str()).collect();
    assert_eq!(
        paths,
        vec!["/long/api/v2/users", "/short/api/v1/users", "/root/other"]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn equal_prefixes_first_route_wins() {
    // Same prefix, overlapping methods (GET): the first in file order wins for GET; POST only
    // matches the second. (A later route that can never match is a config error, see
    // config_cli.rs.)
    let stub = Stub::start(Mode::Ok).await;
    let gw = TestGateway::start(
        GatewayConfig::new()
            .route(&format!(
                "prefix = \"/dup\"\nupstream = \"{}/first\"\nauth = \"public\"\nmethods = [\"GET\"]",
                stub.url()
            ))
            .route(&format!(
                "prefix = \"/dup\"\nupstream = \"{}/second\"\nauth = \"public\"\nmethods = [\"GET\", \"POST\"]",
                stub.url()
            )),
    )
    .await;
    let c = gw.client(false);
    let r = get(&c, &gw.url("/dup/x")).await;
    assert_eq!(r.status, 200, "{}", r.text());
    let post = hyper::Request::post(gw.url("/dup/y"))
        .body(http_body_util::Full::new(bytes::Bytes::new()))
        .unwrap();
    assert_eq!(send(&c, post).await.status, 200);
    let recs = stub.records();
    let seen: Vec<(&str, &str)> = recs
        .iter()
        .map(|r| (r.method.as_str(), r.path.as_str()))
        .collect();
    assert_eq!(
        seen,
        vec![("GET", "/first/dup/x"), ("POST", "/second/dup/y")]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn prefix_matches_on_segment_boundary() {
    let stub = Stub::start(Mode::Ok).await;
    let gw = TestGateway::start(GatewayConfig::new().route(&route("/api", &stub, ""))).await;
    let c = gw.client(false);

    assert_eq!(get(&c, &gw.url("/api")).await.status, 200);
    assert_eq!(get(&c, &gw.url("/api/")).await.status, 200);
    assert_eq!(get(&c, &gw.url("/api/x/y")).await.status, 200);
    assert_eq!(get(&c, &gw.url("/api?q=1")).await.status, 200);
    get(&c, &gw.url("/apiary"))
        .await
        .assert_error(404, "not_found");
    get(&c, &gw.url("/api-x"))
        .await
        .assert_error(404, "not_found");
    get(&c, &gw.url("/")).await.assert_error(404, "not_found");

    let recs = stub.records();
    let targets: Vec<&str> = recs.iter().map(|r| r.target.as_str()).collect();
    assert_eq!(targets, vec!["/api", "/api/", "/api/x/y", "/api?q=1"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_route_is_404_json() {
    let stub = Stub::start(Mode::Ok).await;
    let gw = TestGateway::start(GatewayConfig::new().route(&route("/api", &stub, ""))).await;
    let r = get(&gw.client(false), &gw.url("/nothing/here")).await;
    r.assert_error(404, "not_found");
    assert!(stub.records().is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn host_matching_exact_and_wildcard() {
    let stub = Stub::start(Mode::Ok).await;
    let gw = TestGateway::start(
        GatewayConfig::new()
            .route(&format!(
                "host = \"api.example.com\"\n{}",
                route("/h", &stub, "/exact")
            ))
            .route(&format!(
                "host = \"*.example.com\"\n{}",
                route("/h", &stub, "/wild")
            )),
    )
    .await;

    // Exact host, port ignored.
    let r = raw_get(&gw, "/h/1", "api.example.com", &[]).await;
    assert_eq!(r.status, 200, "{:?}", String::from_utf8_lossy(&r.body));
    let r = raw_get(&gw, "/h/2", "api.example.com:8443", &[]).await;
    assert_eq!(r.status, 200, "{:?}", String::from_utf8_lossy(&r.body));
    // Host names are case-insensitive.
    let r = raw_get(&gw, "/h/3", "API.Example.COM", &[]).await;
    assert_eq!(r.status, 200, "{:?}", String::from_utf8_lossy(&r.body));
    // Wildcard.
    let r = raw_get(&gw, "/h/4", "other.example.com", &[]).await;
    assert_eq!(r.status, 200, "{:?}", String::from_utf8_lossy(&r.body));
    // No host route matches.
    raw_get(&gw, "/h/5", "example.org", &[])
        .await
        .assert_error(404, "not_found");
    raw_get(&gw, "/h/6", "api.example.com.evil.org", &[])
        .await
        .assert_error(404, "not_found");

    let recs = stub.records();
    let paths: Vec<&str> = recs.iter().map(|r| r.path.as_str()).collect();
    assert_eq!(
        paths,
        vec!["/exact/h/1", "/exact/h/2", "/exact/h/3", "/wild/h/4"]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn methods_select_route_and_405_when_none_allows() {
    let stub = Stub::start(Mode::Ok).await;
    let gw = TestGateway::start(
        GatewayConfig::new()
            .route(&format!(
                "methods = [\"GET\"]\n{}",
                route("/m", &stub, "/get")
            ))
            .route(&format!(
                "methods = [\"POST\", \"PUT\"]\n{}",
                route("/m", &stub, "/write")
            )),
    )
    .await;
    let c = gw.client(false);
    let mk = |m: &str| {
        hyper::Request::builder()
            .method(m)
            .uri(gw.url("/m/x"))
            .body(http_body_util::Full::new(bytes::Bytes::new()))
            .unwrap()
    };
    assert_eq!(send(&c, mk("GET")).await.status, 200);
    assert_eq!(send(&c, mk("POST")).await.status, 200);
    assert_eq!(send(&c, mk("PUT")).await.status, 200);
    send(&c, mk("DELETE"))
        .await
        .assert_error(405, "method_not_allowed");
    // A path no route prefix matches stays 404 whatever the method.
    let r = send(
        &c,
        hyper::Request::builder()
            .method("DELETE")
            .uri(gw.url("/zzz"))
            .body(http_body_util::Full::new(bytes::Bytes::new()))
            .unwrap(),
    )
    .await;
    r.assert_error(404, "not_found");

    let recs = stub.records();
    let seen: Vec<(String, String)> = recs
        .iter()
        .map(|r| (r.method.clone(), r.path.clone()))
        .collect();
    assert_eq!(
        seen,
        vec![
            ("GET".to_string(), "/get/m/x".to_string()),
            ("POST".to_string(), "/write/m/x".to_string()),
            ("PUT".to_string(), "/write/m/x".to_string()),
        ]
    );
}

// ----- path normalisation (raw requests; client libraries would normalise themselves) -----

async fn norm_gateway() -> (Stub, TestGateway) {
    let stub = Stub::start(Mode::Ok).await;
    let gw = TestGateway::start(
        GatewayConfig::new()
            .route(&route("/a", &stub, ""))
            .route(&route("/api", &stub, "")),
    )
    .await;
    (stub, gw)
}

/// Send `target` raw, expect 200 and return the target the upstream saw.
async fn forwarded_target(gw: &TestGateway, stub: &Stub, target: &str) -> String {
    let before = stub.records().len();
    let r = raw_get(gw, target, "localhost", &[]).await;
    assert_eq!(
        r.status,
        200,
        "request target {target:?}: body {:?}",
        String::from_utf8_lossy(&r.body)
    );
    let recs = stub.records();
    assert_eq!(
        recs.len(),
        before + 1,
        "upstream should see {target:?} once"
    );
    recs[before].target.clone()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dot_segments_are_resolved_before_forwarding() {
    let (stub, gw) = norm_gateway().await;
    assert_eq!(forwarded_target(&gw, &stub, "/a/./b/../c").await, "/a/c");
    assert_eq!(forwarded_target(&gw, &stub, "/a/b/./c").await, "/a/b/c");
    assert_eq!(forwarded_target(&gw, &stub, "/a/b/c/../../d").await, "/a/d");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn encoded_dots_are_dot_segments() {
    let (stub, gw) = norm_gateway().await;
    assert_eq!(forwarded_target(&gw, &stub, "/a/b/%2e%2e/c").await, "/a/c");
    assert_eq!(forwarded_target(&gw, &stub, "/a/b/%2E%2e/c").await, "/a/c");
    assert_eq!(forwarded_target(&gw, &stub, "/a/b/.%2E/c").await, "/a/c");
    assert_eq!(forwarded_target(&gw, &stub, "/a/%2e/c").await, "/a/c");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unreserved_percent_escapes_are_decoded_others_kept() {
    let (stub, gw) = norm_gateway().await;
    assert_eq!(forwarded_target(&gw, &stub, "/a/%41bc").await, "/a/Abc");
    assert_eq!(
        forwarded_target(&gw, &stub, "/a/%7euser%2D1").await,
        "/a/~user-1"
    );
    // Space and '?' are not unreserved: they stay encoded.
    assert_eq!(forwarded_target(&gw, &stub, "/a/x%20y").await, "/a/x%20y");
    assert_eq!(forwarded_target(&gw, &stub, "/a/x%3Fy").await, "/a/x%3Fy");
    // The route prefix itself may be spelled with escapes.
    assert_eq!(forwarded_target(&gw, &stub, "/%61/z").await, "/a/z");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn repeated_slashes_are_collapsed() {
    let (stub, gw) = norm_gateway().await;
    assert_eq!(forwarded_target(&gw, &stub, "//a///b//c").await, "/a/b/c");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn query_string_is_forwarded_unchanged() {
    let (stub, gw) = norm_gateway().await;
    let q = "x=%2e%2e/../&y=%41&z=a%2Fb&w=//";
    assert_eq!(
        forwarded_target(&gw, &stub, &format!("/a/./b/../c?{q}")).await,
        format!("/a/c?{q}")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn normalisation_happens_before_matching() {
    let (stub, gw) = norm_gateway().await;
    // Leaves no route prefix as written, but lands in /api once normalised.
    assert_eq!(
        forwarded_target(&gw, &stub, "/zzz/../api/x").await,
        "/api/x"
    );
    // Starts with /api as written, but normalises out of it: must not be routed to /api.
    raw_get(&gw, "/api/../secret", "localhost", &[])
        .await
        .assert_error(404, "not_found");
    raw_get(&gw, "/api/%2e%2e/secret", "localhost", &[])
        .await
        .assert_error(404, "not_found");
    assert_eq!(stub.records().len(), 1, "{:#?}", stub.records());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn encoded_slash_is_400() {
    let (stub, gw) = norm_gateway().await;
    raw_get(&gw, "/a/x%2fy", "localhost", &[])
        .await
        .assert_error(400, "invalid_request");
    raw_get(&gw, "/a/x%2Fy", "localhost", &[])
        .await
        .assert_error(400, "invalid_request");
    assert!(stub.records().is_empty(), "{:#?}", stub.records());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dot_dot_escaping_root_is_400() {
    let (stub, gw) = norm_gateway().await;
    for target in [
        "/../x",
        "/%2e%2e/x",
        "/a/../../x",
        "/a/%2E%2E/%2e%2e/x",
        "/..",
    ] {
        raw_get(&gw, target, "localhost", &[])
            .await
            .assert_error(400, "invalid_request");
    }
    assert!(stub.records().is_empty(), "{:#?}", stub.records());
}

// ----- strip_prefix -----

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn strip_prefix_joins_rest_onto_upstream_base_path() {
    let stub = Stub::start(Mode::Ok).await;
    let gw = TestGateway::start(GatewayConfig::new().route(&format!(
        "prefix = \"/svc\"\nupstream = \"{}/base\"\nstrip_prefix = true\nauth = \"public\"",
        stub.url()
    )))
    .await;
    let c = gw.client(false);
    assert_eq!(get(&c, &gw.url("/svc/x?q=1")).await.status, 200);
    assert_eq!(get(&c, &gw.url("/svc/x/y/")).await.status, 200);
    assert_eq!(get(&c, &gw.url("/svc")).await.status, 200);
    assert_eq!(get(&c, &gw.url("/svc?q=2")).await.status, 200);
    let recs = stub.records();
    assert_eq!(recs[0].target, "/base/x?q=1");
    assert_eq!(recs[1].target, "/base/x/y/");
    // "/svc" alone: either "/base" or "/base/" is acceptable; the query is kept.
    assert!(
        recs[2].target == "/base" || recs[2].target == "/base/",
        "/svc alone forwarded as {:?}",
        recs[2].target
    );
    assert!(
        recs[3].target == "/base?q=2" || recs[3].target == "/base/?q=2",
        "/svc?q=2 forwarded as {:?}",
        recs[3].target
    );
    eprintln!(
        "strip_prefix: /svc alone reached upstream as {:?}",
        recs[2].target
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn strip_prefix_without_base_path() {
    let stub = Stub::start(Mode::Ok).await;
    let gw = TestGateway::start(GatewayConfig::new().route(&format!(
        "prefix = \"/svc\"\nupstream = \"{}\"\nstrip_prefix = true\nauth = \"public\"",
        stub.url()
    )))
    .await;
    let c = gw.client(false);
    assert_eq!(get(&c, &gw.url("/svc/x?q=1")).await.status, 200);
    assert_eq!(get(&c, &gw.url("/svc")).await.status, 200);
    let recs = stub.records();
    assert_eq!(recs[0].target, "/x?q=1");
    assert_eq!(
        recs[1].target, "/",
        "/svc alone with no base path should reach upstream as /"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_strip_prefix_full_path_is_appended_to_base() {
    let stub = Stub::start(Mode::Ok).await;
    let gw = TestGateway::start(GatewayConfig::new().route(&format!(
        "prefix = \"/svc\"\nupstream = \"{}/base\"\nauth = \"public\"",
        stub.url()
    )))
    .await;
    assert_eq!(
        get(&gw.client(false), &gw.url("/svc/x?q=1")).await.status,
        200
    );
    assert_eq!(stub.only().target, "/base/svc/x?q=1");
}
