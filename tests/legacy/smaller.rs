//! Smaller items: tokens in the query, Host, TRACE, HEAD over HTTP/2, transfer codings,
//! malformed chunked bodies, early refusals of HTTP/2 requests with bodies.

use bytes::Bytes;
use http_body_util::{BodyExt, Full};

use crate::harness::*;
use crate::support::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn access_token_in_the_query_is_refused() {
    let stub = Stub::start(Mode::Ok).await;
    let env = Env::start(
        GatewayConfig::new()
            .route(&public("/pub", &stub))
            .route(&route_body("/app", &stub, "authenticated")),
    )
    .await;
    let token = env.alice();
    let auth = bearer(&token);
    let cases: Vec<(String, Vec<String>)> = vec![
        ("/pub/x?access_token=x".into(), vec![]),
        ("/pub/x?a=1&access_token=x&b=2".into(), vec![]),
        (format!("/pub/x?access_token={token}"), vec![]),
        ("/app/x?access_token=x".into(), vec![]),
        (format!("/app/x?access_token={token}"), vec![]),
        ("/app/x?access_token=x".into(), vec![auth.clone()]),
        (format!("/app/x?access_token={token}"), vec![auth.clone()]),
        ("/pub/x?access_token=x".into(), vec![auth.clone()]),
    ];
    for (target, headers) in &cases {
        let r = raw_get_with(&env.gw, target, headers).await;
        assert_raw_refusal(&format!("{target} {headers:?}"), &r, 400);
    }
    assert_not_forwarded("access_token in the query", &stub, 0);
    // Control: the header alone works.
    let r = raw_get_with(&env.gw, "/app/x?a=1", &[auth]).await;
    assert_eq!(r.status, 200, "{}", body_text(&r));
    assert_eq!(stub.only().query.as_deref(), Some("a=1"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn allow_query_token_authenticates_and_removes_it_from_the_query() {
    let stub = Stub::start(Mode::Ok).await;
    let env = Env::start(GatewayConfig::new().route(&format!(
        "{}\nallow_query_token = true",
        route_body("/app", &stub, "authenticated")
    )))
    .await;
    let token = env.alice();

    let r = raw_get(
        &env.gw,
        &format!("/app/x?a=1&access_token={token}&b=2"),
        "localhost",
        &[],
    )
    .await;
    assert_eq!(r.status, 200, "{}", body_text(&r));
    let rec = stub.only();
    assert_eq!(rec.path, "/app/x");
    assert_eq!(rec.query.as_deref(), Some("a=1&b=2"), "{}", rec.target);
    assert!(
        !rec.target.contains(&token),
        "the token reached upstream: {}",
        rec.target
    );
    assert_eq!(rec.header("user_id"), Some("1"), "{:?}", rec.headers);
    assert!(!rec.has_header("authorization"));

    // Both a query token and an Authorization header: refused (RFC 6750 §2: one method only).
    let r = raw_get_with(
        &env.gw,
        &format!("/app/x?a=1&access_token={token}"),
        &[bearer(&token)],
    )
    .await;
    assert_raw_refusal("query token + Authorization", &r, 400);
    // A bad token in the query is still a bad token.
    let r = raw_get(&env.gw, "/app/x?access_token=nope", "localhost", &[]).await;
    assert_eq!(r.status, 401, "{}", body_text(&r));
    assert_eq!(stub.records().len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http11_request_needs_exactly_one_host() {
    let stub = Stub::start(Mode::Ok).await;
    let env = Env::start(GatewayConfig::new().route(&public("/pub", &stub))).await;
    let no_host = "GET /pub/x HTTP/1.1\r\nConnection: close\r\n\r\n";
    let r = raw_exchange(&env.gw, no_host.as_bytes()).await;
    assert_raw_refusal("no Host", &r, 400);
    let two_hosts =
        "GET /pub/x HTTP/1.1\r\nHost: localhost\r\nHost: evil.example\r\nConnection: close\r\n\r\n";
    let r = raw_exchange(&env.gw, two_hosts.as_bytes()).await;
    assert_raw_refusal("two Host lines", &r, 400);
    let same_twice =
        "GET /pub/x HTTP/1.1\r\nHost: localhost\r\nHost: localhost\r\nConnection: close\r\n\r\n";
    let r = raw_exchange(&env.gw, same_twice.as_bytes()).await;
    assert_raw_refusal("Host twice", &r, 400);
    assert_not_forwarded("Host problems", &stub, 0);
    // Control.
    let r = raw_get(&env.gw, "/pub/x", "localhost", &[]).await;
    assert_eq!(r.status, 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn trace_is_405_unless_the_route_lists_it() {
    let stub = Stub::start(Mode::Ok).await;
    let u = stub.url();
    let env = Env::start(
        GatewayConfig::new()
            .route(&public("/pub", &stub))
            .route(&format!(
                "prefix = \"/t\"\nupstream = \"{u}\"\nauth = \"public\"\nmethods = [\"GET\", \"TRACE\"]"
            ))
            .route(&format!(
                "prefix = \"/getonly\"\nupstream = \"{u}\"\nauth = \"public\"\nmethods = [\"GET\"]"
            )),
    )
    .await;
    for target in ["/pub/x", "/getonly/x"] {
        let r = raw_request(&env.gw, "TRACE", target, &[], b"").await;
        assert_raw_refusal(&format!("TRACE {target}"), &r, 405);
    }
    assert_not_forwarded("TRACE", &stub, 0);
    let r = raw_request(&env.gw, "TRACE", "/t/x", &[], b"").await;
    assert_eq!(
        r.status,
        200,
        "TRACE on a route listing it: {}",
        body_text(&r)
    );
    assert_eq!(stub.only().method, "TRACE");
}

/// HEAD over HTTP/2: the answer has headers only, and the client reads it without error.
async fn head_h2(gw: &TestGateway, path: &str) -> (u16, Bytes) {
    let client = gw.client(true);
    let req = hyper::Request::head(gw.url(path))
        .body(Full::new(Bytes::new()))
        .unwrap();
    within(&format!("HEAD {path} over HTTP/2"), async {
        let resp = client
            .request(req)
            .await
            .unwrap_or_else(|e| panic!("HEAD {path} over HTTP/2 failed: {e:?}"));
        assert_eq!(resp.version(), hyper::Version::HTTP_2);
        let status = resp.status().as_u16();
        let body = resp
            .into_body()
            .collect()
            .await
            .unwrap_or_else(|e| {
                panic!("HEAD {path} over HTTP/2: reading the (empty) body failed: {e:?}")
            })
            .to_bytes();
        (status, body)
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn head_over_http2_has_no_body() {
    let stub = Stub::start(Mode::Ok).await;
    let env = Env::start(
        GatewayConfig::new()
            .public_route("/echo", "builtin:echo")
            .route(&public("/pub", &stub)),
    )
    .await;
    for path in ["/echo/x", "/pub/x"] {
        for _ in 0..3 {
            let (status, body) = head_h2(&env.gw, path).await;
            assert_eq!(status, 200, "HEAD {path}");
            assert!(body.is_empty(), "HEAD {path} got a body: {body:?}");
        }
    }
    assert!(stub.records().iter().all(|r| r.method == "HEAD"));
    assert_eq!(stub.records().len(), 3);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn transfer_codings_other_than_chunked_are_501() {
    let stub = Stub::start(Mode::CountBody).await;
    let env = Env::start(GatewayConfig::new().route(&public("/pub", &stub))).await;
    for te in ["gzip, chunked", "deflate, chunked", "gzip,chunked"] {
        let header = format!("Transfer-Encoding: {te}");
        let r = raw_request(
            &env.gw,
            "POST",
            "/pub/x",
            &[&header],
            b"5\r\nhello\r\n0\r\n\r\n",
        )
        .await;
        assert_raw_refusal(&header, &r, 501);
        assert_not_forwarded(&header, &stub, 0);
    }
    // Control: plain chunked works.
    let r = raw_request(
        &env.gw,
        "POST",
        "/pub/x",
        &["Transfer-Encoding: chunked"],
        b"5\r\nhello\r\n0\r\n\r\n",
    )
    .await;
    assert_eq!(r.status, 200, "{}", body_text(&r));
    assert_eq!(stub.only().body_len, 5);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_chunked_body_is_400_not_502() {
    let stub = Stub::start(Mode::CountBody).await;
    let env = Env::start(GatewayConfig::new().route(&public("/pub", &stub))).await;
    for (what, body) in [
        ("bad chunk size", &b"5\r\nabcde\r\nzz\r\n\r\n"[..]),
        ("chunk longer than its size", &b"5\r\nabzz\r\nzz\r\n"[..]),
    ] {
        let r = raw_request(
            &env.gw,
            "POST",
            "/pub/x",
            &["Transfer-Encoding: chunked"],
            body,
        )
        .await;
        assert_raw_refusal(what, &r, 400);
    }
    // The upstream never got a complete body (at most an aborted one).
    let complete: Vec<Recorded> = stub
        .records()
        .into_iter()
        .filter(|r| !r.body_error)
        .collect();
    assert!(
        complete.is_empty(),
        "the upstream received a complete body: {complete:#?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http2_body_refused_early_gets_its_401_cleanly() {
    const LEN: u64 = 256 * 1024;
    const TRIES: usize = 20;
    let stub = Stub::start(Mode::Ok).await;
    let env =
        Env::start(GatewayConfig::new().route(&route_body("/app", &stub, "authenticated"))).await;
    let mut failures = Vec::new();

    // hyper's client: the 401 with its JSON body.
    for i in 0..TRIES {
        let client: HttpsClient<ZeroBody> = https_client(&env.gw.cert, true);
        let req = hyper::Request::post(env.gw.url("/app/upload"))
            .header("content-type", "application/octet-stream")
            .body(ZeroBody::new(LEN))
            .unwrap();
        let outcome = within("HTTP/2 POST without a token", async {
            let resp = client
                .request(req)
                .await
                .map_err(|e| format!("request: {e:?}"))?;
            let status = resp.status().as_u16();
            let headers = resp.headers().clone();
            let body = resp
                .into_body()
                .collect()
                .await
                .map_err(|e| format!("body: {e:?}"))?
                .to_bytes();
            Ok::<_, String>((status, headers, body))
        })
        .await;
        match outcome {
            Ok((status, headers, body)) => {
                let pairs: Vec<(String, String)> = headers
                    .iter()
                    .map(|(k, v)| {
                        (
                            k.to_string(),
                            String::from_utf8_lossy(v.as_bytes()).into_owned(),
                        )
                    })
                    .collect();
                assert_refusal(&format!("hyper attempt {i}"), 401, status, &pairs, &body);
            }
            Err(e) => failures.push(format!("hyper attempt {i}: {e}")),
        }
    }

    // Frame by frame: the response completes and the stream is not reset, so a client still
    // uploading (the whole body goes out at once here) reads the answer.
    for i in 0..TRIES {
        let exchange = crate::h2raw::post(
            &env.gw,
            "/app/upload",
            LEN,
            std::time::Duration::from_millis(50),
        )
        .await;
        if let Some(why) = exchange.unclean() {
            failures.push(format!("raw HTTP/2 attempt {i}: {why}"));
        }
    }

    // curl: the client that showed the failure. Required (the README walks need it too), so
    // this part can never be skipped silently.
    let curl = tokio::process::Command::new("curl")
        .arg("--version")
        .output()
        .await;
    assert!(
        curl.is_ok_and(|o| o.status.success()),
        "this test needs curl (Debian package curl)"
    );
    let file = env.gw.dir.path().join("upload.bin");
    std::fs::write(&file, vec![0u8; LEN as usize]).unwrap();
    for i in 0..TRIES {
        let out = within(
            "curl",
            tokio::process::Command::new("curl")
                .args([
                    "-sS",
                    "-k",
                    "--http2",
                    "-o",
                    "/dev/null",
                    "-w",
                    "%{http_code}",
                ])
                .arg("--data-binary")
                .arg(format!("@{}", file.display()))
                .arg(env.gw.url("/app/upload"))
                .output(),
        )
        .await
        .unwrap();
        let code = String::from_utf8_lossy(&out.stdout).into_owned();
        if !out.status.success() || code != "401" {
            failures.push(format!(
                "curl attempt {i}: exit {:?}, status {code:?}, {}",
                out.status.code(),
                String::from_utf8_lossy(&out.stderr).trim()
            ));
        }
    }

    assert!(
        failures.is_empty(),
        "{} attempts did not read the 401 cleanly:\n{}",
        failures.len(),
        failures.join("\n")
    );
    assert_not_forwarded("no token", &stub, 0);
}
