//! Per-route rate limits over real TLS: a bucket per client address or per user, 429 with
//! `Retry-After` when empty, and a rotating `X-Forwarded-For` from an untrusted peer changing
//! nothing (only `trusted_proxies` may name the client).
#![allow(clippy::unwrap_used)]

mod support;

#[path = "oauth2/harness.rs"]
#[allow(dead_code)]
mod harness;

use bytes::Bytes;
use harness::*;
use http_body_util::Full;
use hyper::Request;
use support::{GatewayConfig, Resp, send};

async fn get(s: &Setup, path: &str, headers: &[(&str, String)]) -> Resp {
    let mut request = Request::get(s.gw.url(path));
    for (name, value) in headers {
        request = request.header(*name, value);
    }
    send(
        &s.gw.client(false),
        request.body(Full::new(Bytes::new())).unwrap(),
    )
    .await
}

fn limited(trusted: &str) -> GatewayConfig {
    GatewayConfig::new()
        .server(&format!("trusted_proxies = [{trusted}]"))
        .route(
            "prefix = \"/by-address\"\nupstream = \"builtin:echo\"\nauth = \"public\"\n\
             rate_limit = { requests = 3, per = \"1m\", key = \"client\" }",
        )
        .route(
            "prefix = \"/by-user\"\nupstream = \"builtin:echo\"\n\
             rate_limit = { requests = 2, per = \"1m\" }",
        )
}

#[tokio::test]
async fn a_rotating_forwarded_for_from_an_untrusted_peer_changes_nothing() {
    let s = setup_with(limited("")).await;
    let mut statuses = Vec::new();
    for i in 0..5 {
        let spoofed = vec![("x-forwarded-for", format!("203.0.113.{i}"))];
        let r = get(&s, "/by-address/x", &spoofed).await;
        statuses.push(r.status.as_u16());
        if r.status == 429 {
            let retry: u64 = r.header("retry-after").unwrap().parse().unwrap();
            assert!((1..=60).contains(&retry), "{retry}");
            assert_eq!(r.json()["error"], "rate_limited");
        }
    }
    assert_eq!(statuses, [200, 200, 200, 429, 429]);
}

#[tokio::test]
async fn behind_a_trusted_proxy_each_client_has_its_own_bucket() {
    let s = setup_with(limited("\"127.0.0.1/32\"")).await;
    for i in 0..4 {
        let client = vec![("x-forwarded-for", format!("203.0.113.{i}"))];
        for _ in 0..3 {
            assert_eq!(get(&s, "/by-address/x", &client).await.status, 200);
        }
        assert_eq!(get(&s, "/by-address/x", &client).await.status, 429);
    }
}

#[tokio::test]
async fn users_have_their_own_buckets() {
    let s = setup_with(limited("")).await;
    let alice = s.login("web", "alice").await["access_token"]
        .as_str()
        .unwrap()
        .to_owned();
    let bob = s.login("web", "bob").await["access_token"]
        .as_str()
        .unwrap()
        .to_owned();
    let bearer = |token: &str| vec![("authorization", format!("Bearer {token}"))];
    assert_eq!(get(&s, "/by-user", &bearer(&alice)).await.status, 200);
    assert_eq!(get(&s, "/by-user", &bearer(&alice)).await.status, 200);
    let r = get(&s, "/by-user", &bearer(&alice)).await;
    assert_eq!(r.status, 429, "{}", r.text());
    assert!(r.header("retry-after").is_some());
    // Bob, from the same address, is not affected; a new token for Alice does not help her.
    assert_eq!(get(&s, "/by-user", &bearer(&bob)).await.status, 200);
    let again = s.login("web", "alice").await["access_token"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_eq!(get(&s, "/by-user", &bearer(&again)).await.status, 429);
    // A refused token never takes from anyone's bucket.
    assert_eq!(get(&s, "/by-user", &bearer("garbage")).await.status, 401);
}

#[test]
fn bad_limits_are_config_errors_naming_the_key() {
    let dir = tempfile::tempdir().unwrap();
    for (limit, key) in [
        ("{ requests = 0 }", "routes[0].rate_limit.requests"),
        ("{ requests = 5, per = \"0s\" }", "routes[0].rate_limit.per"),
        (
            "{ requests = 5, key = \"cookie\" }",
            "routes[0].rate_limit.key",
        ),
        ("{ requests = 5, every = \"1s\" }", "routes[0].rate_limit"),
    ] {
        let path = dir.path().join("gateway.toml");
        std::fs::write(
            &path,
            format!(
                "[server]\nlisten = \"127.0.0.1:0\"\n[tls]\ncert = \"c.pem\"\nkey = \"k.pem\"\n\
                 [[routes]]\nprefix = \"/x\"\nupstream = \"builtin:echo\"\nrate_limit = {limit}\n"
            ),
        )
        .unwrap();
        let error = authgate::config::load(&path).unwrap_err().to_string();
        assert!(error.contains(key), "{limit}: {error}");
    }
}
