//! `authgate explain` asks the serving code about one request: route choice, header
//! stripping and injection, impersonation — and it writes no audit record and sends nothing.
#![allow(clippy::unwrap_used)]

mod support;

#[path = "oauth2/harness.rs"]
#[allow(dead_code)]
mod harness;

use std::net::SocketAddr;

use authgate::proxy::explain::{Explanation, Target};
use harness::*;
use hyper::Request;
use support::GatewayConfig;

async fn setup() -> (Setup, authgate::server::Assembled) {
    let s = setup_with(
        GatewayConfig::new()
            .route("prefix = \"/echo/deep\"\nupstream = \"builtin:echo\"\nname = \"deep\"")
            .route(
                "prefix = \"/api\"\nupstream = \"http://127.0.0.1:9/base\"\nstrip_prefix = true\n\
                 methods = [\"GET\"]\nname = \"api\"",
            ),
    )
    .await;
    let config = authgate::config::load(&s.gw.config_path).unwrap();
    let assembled = authgate::server::assemble(&config).await.unwrap();
    (s, assembled)
}

async fn explain(
    a: &authgate::server::Assembled,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
) -> Explanation {
    let mut request = Request::builder()
        .method(method)
        .uri(path)
        .header("host", "gw.test");
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    let peer: SocketAddr = "198.51.100.7:40000".parse().unwrap();
    a.proxy.explain(request.body(()).unwrap(), peer, true).await
}

fn route_name(e: &Explanation) -> Option<&str> {
    match &e.target {
        Target::Route(route) => Some(route.name.as_str()),
        _ => None,
    }
}

#[tokio::test]
async fn the_route_is_the_servers_choice() {
    let (s, a) = setup().await;
    let token = s.login("web", "alice").await["access_token"]
        .as_str()
        .unwrap()
        .to_owned();
    let bearer = format!("Bearer {token}");
    let auth = [("authorization", bearer.as_str())];
    // The longest prefix wins; a segment boundary counts (`/echo/deeper` is not `/echo/deep`).
    assert_eq!(
        route_name(&explain(&a, "GET", "/echo/deep/x", &auth).await),
        Some("deep")
    );
    assert_eq!(
        route_name(&explain(&a, "GET", "/echo/deeper", &auth).await),
        Some("/echo")
    );
    // Normalised first, like the server: `/echo/deep/../x` is `/echo/x`.
    assert_eq!(
        route_name(&explain(&a, "GET", "/echo/deep/../x", &auth).await),
        Some("/echo")
    );
    // Only GET on /api: POST is 405; an unknown path is 404; a token endpoint is ours.
    let post = explain(&a, "POST", "/api/x", &auth).await;
    assert_eq!(post.refusal.unwrap().status(), 405);
    assert_eq!(
        explain(&a, "GET", "/nowhere", &auth)
            .await
            .refusal
            .unwrap()
            .status(),
        404
    );
    let token_endpoint = explain(&a, "POST", "/oauth2/token", &[]).await;
    assert!(matches!(token_endpoint.target, Target::Gateway(_)));
    // The upstream URI with strip_prefix, as the server would build it.
    let api = explain(&a, "GET", "/api/v1/items?x=1", &auth).await;
    assert!(api.refusal.is_none(), "{:?}", api.refusal);
    let (uri, _) = api.forwarded.unwrap();
    assert_eq!(uri.to_string(), "http://127.0.0.1:9/base/v1/items?x=1");
    // A missing token on an authenticated route: refused, nothing forwarded.
    let anonymous = explain(&a, "GET", "/echo/x", &[]).await;
    assert_eq!(anonymous.refusal.unwrap().status(), 401);
    assert!(anonymous.forwarded.is_none());
}

#[tokio::test]
async fn it_shows_what_is_stripped_and_what_is_injected() {
    let (s, a) = setup().await;
    let token = s.login("web", "alice").await["access_token"]
        .as_str()
        .unwrap()
        .to_owned();
    let bearer = format!("Bearer {token}");
    let e = explain(
        &a,
        "GET",
        "/echo/x",
        &[
            ("authorization", bearer.as_str()),
            ("connection", "keep-alive, x-secret"),
            ("x-secret", "hop"),
            ("User-Id", "100"),
            ("x-forwarded-for", "203.0.113.66"),
            ("accept", "text/plain"),
        ],
    )
    .await;
    assert!(e.refusal.is_none(), "{:?}", e.refusal);
    for name in ["connection", "x-secret", "user-id", "authorization"] {
        assert!(
            e.stripped.iter().any(|s| s == name),
            "{name}: {:?}",
            e.stripped
        );
    }
    assert!(!e.stripped.iter().any(|s| s == "accept"));
    let (_, received) = e.forwarded.as_ref().unwrap();
    assert_eq!(received["user_id"], ALICE.to_string());
    assert_eq!(received["group_id"], "7");
    assert!(received.get("user-id").is_none());
    assert!(received.get("x-secret").is_none());
    assert!(received.get("authorization").is_none());
    // The spoofed X-Forwarded-For of an untrusted peer is replaced by the peer.
    assert_eq!(received["x-forwarded-for"], "198.51.100.7");
    assert_eq!(received["accept"], "text/plain");
    let text = e.render();
    assert!(text.contains("route:    \"/echo\""), "{text}");
    assert!(text.contains("user_id: 100"), "{text}");
}

#[tokio::test]
async fn impersonation_is_checked_but_not_audited() {
    let (s, a) = setup().await;
    let boss = s.login("web", "boss").await["access_token"]
        .as_str()
        .unwrap()
        .to_owned();
    let alice = s.login("web", "alice").await["access_token"]
        .as_str()
        .unwrap()
        .to_owned();
    let audited = s.store.audit_log(None, 1000).await.unwrap().len();
    let boss_bearer = format!("Bearer {boss}");
    let alice_id = ALICE.to_string();
    let e = explain(
        &a,
        "GET",
        "/echo/x",
        &[
            ("authorization", boss_bearer.as_str()),
            ("user_id", alice_id.as_str()),
        ],
    )
    .await;
    assert!(e.refusal.is_none(), "{:?}", e.refusal);
    let identity = e.identity.as_ref().unwrap();
    assert_eq!(identity.user_id, alice_id);
    assert_eq!(identity.impersonator.as_deref(), Some("1"));
    let (_, received) = e.forwarded.as_ref().unwrap();
    assert_eq!(received["user_id"], alice_id);
    assert_eq!(received["x-impersonator-id"], "1");
    // Another admin cannot be acted for; a non-admin cannot act at all.
    let root2 = ROOT2.to_string();
    let e = explain(
        &a,
        "GET",
        "/echo/x",
        &[
            ("authorization", boss_bearer.as_str()),
            ("user_id", root2.as_str()),
        ],
    )
    .await;
    assert_eq!(e.refusal.unwrap().status(), 403);
    let alice_bearer = format!("Bearer {alice}");
    let bob = BOB.to_string();
    let e = explain(
        &a,
        "GET",
        "/echo/x",
        &[
            ("authorization", alice_bearer.as_str()),
            ("user_id", bob.as_str()),
        ],
    )
    .await;
    assert_eq!(e.refusal.unwrap().status(), 403);
    assert_eq!(
        s.store.audit_log(None, 1000).await.unwrap().len(),
        audited,
        "explain writes no audit record"
    );
}
