//! Forward-auth (issue 24) over real TLS: the check endpoint judges the original request with
//! the same route table and policies as the proxy — for each header convention (Traefik and
//! Caddy `X-Forwarded-*`, nginx `X-Original-*`, Envoy's prefix form) — answers 200 with the
//! identity headers to copy or the proxy's refusal; only `allow_from` may ask; session routes
//! send browsers to sign in (302, or 401 + `X-Authgate-Sign-In` for nginx); a sign-in may
//! return to `allowed_return_hosts`; `upstream = "none"` routes forward nothing. (Through a
//! real nginx: tests/edge/.)
#![allow(clippy::unwrap_used)]

mod support;

#[path = "oauth2/harness.rs"]
#[allow(dead_code)]
mod harness;

#[path = "oauth2/browser.rs"]
#[allow(dead_code)]
mod browser;

use authgate::store::AuditFilter;
use browser::Browser;
use bytes::Bytes;
use harness::*;
use http_body_util::Full;
use hyper::Request;
use support::*;

const CHECK: &str = "/_authgate/check";
const HTML: (&str, &str) = ("accept", "text/html,*/*;q=0.8");

/// `/pub` is public but `/pub/secret` is not; `/app` is a session route; `/edge` is decided
/// here and served by the edge proxy only; `/ro` takes GET only.
async fn edge_setup(forward_auth: &str) -> Setup {
    setup_with(
        GatewayConfig::new()
            .section(forward_auth)
            .route("prefix = \"/pub\"\nupstream = \"none\"\nauth = \"public\"")
            .route("prefix = \"/pub/secret\"\nupstream = \"none\"")
            .route("prefix = \"/app\"\nupstream = \"none\"\nauth = \"session\"")
            .route("prefix = \"/edge\"\nupstream = \"none\"\nallowed_groups = [7]")
            .route("prefix = \"/ro\"\nupstream = \"none\"\nmethods = [\"GET\"]"),
    )
    .await
}

async fn default_setup() -> Setup {
    edge_setup("[forward_auth]\nallowed_return_hosts = [\"app.example\", \"*.apps.example\"]").await
}

/// A check request: `method` to `target` with `headers`.
async fn ask(s: &Setup, method: &str, target: &str, headers: &[(&str, &str)]) -> Resp {
    let mut request = Request::builder().method(method).uri(s.gw.url(target));
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    let body = Full::new(Bytes::new());
    send(&s.gw.client(false), request.body(body).unwrap()).await
}

/// Traefik's (and Caddy's) way: the original request in `X-Forwarded-*`.
async fn traefik(s: &Setup, method: &str, uri: &str, extra: &[(&str, &str)]) -> Resp {
    let mut headers = vec![
        ("x-forwarded-method", method),
        ("x-forwarded-uri", uri),
        ("x-forwarded-host", "app.example"),
        ("x-forwarded-proto", "https"),
    ];
    headers.extend_from_slice(extra);
    ask(s, "GET", CHECK, &headers).await
}

/// nginx `auth_request` with the shipped config: `X-Original-*`.
async fn nginx(s: &Setup, method: &str, uri: &str, extra: &[(&str, &str)]) -> Resp {
    let mut headers = vec![("x-original-method", method), ("x-original-uri", uri)];
    headers.extend_from_slice(extra);
    ask(s, "GET", CHECK, &headers).await
}

async fn bearer(s: &Setup, account: &str) -> String {
    let token = s.login("web", account).await["access_token"]
        .as_str()
        .unwrap()
        .to_owned();
    format!("Bearer {token}")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_convention_gets_the_same_decision() {
    let s = default_setup().await;
    let alice = bearer(&s, "alice").await;
    let auth = ("authorization", alice.as_str());
    let alice_id = ALICE.to_string();
    // Allowed: 200, the identity to copy, nothing else to take for an identity.
    for r in [
        traefik(&s, "POST", "/edge/orders?x=1", &[auth]).await,
        nginx(&s, "POST", "/edge/orders?x=1", &[auth]).await,
        ask(&s, "POST", "/_authgate/check/edge/orders?x=1", &[auth]).await,
    ] {
        assert_eq!(r.status, 200, "{}", r.text());
        assert_eq!(r.header("user_id"), Some(alice_id.as_str()));
        assert_eq!(r.header("group_id"), Some("7"));
        assert!(r.header("x-impersonator-id").is_none());
        assert_eq!(r.header("cache-control"), Some("no-store"));
        assert!(r.body.is_empty());
    }
    // No token: 401 with the proxy's JSON and challenge, whichever way it was asked.
    for r in [
        traefik(&s, "GET", "/edge/orders", &[]).await,
        nginx(&s, "GET", "/edge/orders", &[]).await,
        ask(&s, "GET", "/_authgate/check/edge/orders", &[]).await,
    ] {
        r.assert_error(401, "unauthorized");
        assert_eq!(
            r.header("www-authenticate"),
            Some("Bearer realm=\"authgate\"")
        );
    }
    // The route's policy: bob is not in group 7.
    let bob = bearer(&s, "bob").await;
    let r = traefik(&s, "GET", "/edge/x", &[("authorization", &bob)]).await;
    r.assert_error(403, "insufficient_scope");
    // The method counts (a GET-only route refuses the original POST).
    let r = nginx(&s, "POST", "/ro/x", &[auth]).await;
    assert_eq!(r.status, 405, "{}", r.text());
    assert_eq!(r.header("allow"), Some("GET"));
    assert_eq!(nginx(&s, "GET", "/ro/x", &[auth]).await.status, 200);
    // A public route: allowed, no identity.
    let r = traefik(&s, "GET", "/pub/page", &[]).await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert!(r.header("user_id").is_none());
    // No route at all: denied (403: what every edge proxy understands).
    traefik(&s, "GET", "/nowhere", &[auth])
        .await
        .assert_error(403, "forbidden");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_client_identity_headers_and_path_readings_count() {
    let s = default_setup().await;
    let alice = bearer(&s, "alice").await;
    let auth = ("authorization", alice.as_str());
    // The edge passes the client's headers: a non-admin naming someone else is refused, in
    // every spelling the proxy reads as the identity header (other look-alikes, `userid`, are
    // what the edge must clear before its upstream, as the proxy strips them).
    for name in ["user_id", "User-Id", "USER_ID", "user-id"] {
        let r = traefik(&s, "GET", "/edge/x", &[auth, (name, "101")]).await;
        assert_eq!(r.status, 403, "{name}: {}", r.text());
    }
    // Envoy is told which of the client's identity spellings to remove (what it overwrites,
    // `user_id` here, it need not).
    let r = ask(
        &s,
        "GET",
        "/_authgate/check/pub/x",
        &[("User-Id", "7"), ("x-user-id", "8")],
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(
        r.header("x-envoy-auth-headers-to-remove"),
        Some("user-id,x-user-id")
    );
    let r = ask(
        &s,
        "GET",
        "/_authgate/check/edge/x",
        &[auth, ("user.id", "1")],
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.header("x-envoy-auth-headers-to-remove"), Some("user.id"));
    assert!(
        traefik(&s, "GET", "/pub/x", &[("x-user-id", "8")])
            .await
            .header("x-envoy-auth-headers-to-remove")
            .is_none()
    );
    // An admin acting as a user: allowed, marked, audited.
    let boss = bearer(&s, "boss").await;
    let alice_id = ALICE.to_string();
    let r = nginx(
        &s,
        "GET",
        "/edge/x",
        &[("authorization", &boss), ("user_id", &alice_id)],
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.header("user_id"), Some(alice_id.as_str()));
    assert_eq!(r.header("group_id"), Some("7"));
    assert_eq!(
        r.header("x-impersonator-id"),
        Some(BOSS.to_string().as_str())
    );
    let filter = AuditFilter {
        subject: Some(format!("user:{ALICE}")),
        kind: Some("impersonate".into()),
        limit: 10,
        ..AuditFilter::default()
    };
    assert_eq!(s.store.audit_search(&filter).await.unwrap().len(), 1);
    // Every reading of the path: under a public /pub, what an upstream reads as /pub/secret
    // needs /pub/secret's policy.
    for uri in [
        "/pub/secret",
        "/pub/secret;x",
        "/pub/SECRET",
        "/pub/secret.json",
        "/pub/a/../secret",
    ] {
        let r = nginx(&s, "GET", uri, &[]).await;
        assert_eq!(r.status, 401, "{uri}: {}", r.text());
    }
    let r = nginx(&s, "GET", "/pub/%5csecret", &[]).await;
    r.assert_error(400, "invalid_request");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_original_request_must_be_complete_and_unambiguous() {
    let s = default_setup().await;
    let refused = |r: Resp| r.assert_error(400, "invalid_request");
    refused(ask(&s, "GET", CHECK, &[]).await);
    refused(ask(&s, "GET", CHECK, &[("x-forwarded-uri", "/edge")]).await);
    refused(
        ask(
            &s,
            "GET",
            CHECK,
            &[("x-original-uri", "/edge"), ("x-original-method", "G T")],
        )
        .await,
    );
    refused(traefik(&s, "GET", "https://evil.example/edge", &[]).await);
    refused(
        ask(
            &s,
            "GET",
            CHECK,
            &[
                ("x-forwarded-uri", "/pub/x"),
                ("x-original-uri", "/edge/x"),
                ("x-forwarded-method", "GET"),
            ],
        )
        .await,
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn only_allow_from_may_ask() {
    let s = edge_setup("[forward_auth]\nallow_from = [\"10.0.0.0/8\"]").await;
    let alice = bearer(&s, "alice").await;
    let r = traefik(&s, "GET", "/edge/x", &[("authorization", &alice)]).await;
    r.assert_error(403, "forbidden");
    assert!(r.header("user_id").is_none());
    assert!(
        r.json()["error_description"]
            .as_str()
            .unwrap()
            .contains("allow_from")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn browsers_are_sent_to_sign_in_the_way_each_proxy_can_pass_on() {
    let s = default_setup().await;
    // Traefik, Caddy, Envoy pass the answer to the browser: 302.
    let r = traefik(&s, "GET", "/app/page?x=1", &[HTML]).await;
    assert_eq!(r.status, 302, "{}", r.text());
    assert_eq!(
        r.header("location"),
        Some("/open/signin?rd=%2Fapp%2Fpage%3Fx%3D1")
    );
    let r = ask(&s, "GET", "/_authgate/check/app/page", &[HTML]).await;
    assert_eq!(r.status, 302, "{}", r.text());
    // nginx turns anything but 2xx/401/403 into a 500: 401, and the way in a header its
    // `error_page 401` redirects to.
    let r = nginx(&s, "GET", "/app/page?x=1", &[HTML]).await;
    r.assert_error(401, "unauthorized");
    assert_eq!(
        r.header("x-authgate-sign-in"),
        Some("/open/signin?rd=%2Fapp%2Fpage%3Fx%3D1")
    );
    // An API call is 401 without a sign-in URL, whoever asks.
    let r = nginx(&s, "GET", "/app/api", &[("accept", "application/json")]).await;
    r.assert_error(401, "unauthorized");
    assert!(r.header("x-authgate-sign-in").is_none());

    // Signed in (the edge routes /open/ to authgate on the app's host), the session decides.
    let mut browser = Browser::default();
    let url = "/open/signin?rd=%2Fapp%2Fpage";
    let r = browser.login(&s, url, "alice", PASSWORD).await;
    assert_eq!(r.status, 303, "{}", r.text());
    let cookie = format!(
        "__Host-authgate-session={}",
        browser.cookies["__Host-authgate-session"]
    );
    let r = nginx(&s, "GET", "/app/page", &[HTML, ("cookie", &cookie)]).await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.header("user_id"), Some(ALICE.to_string().as_str()));
    // The same-origin rule holds for the original request.
    let r = nginx(
        &s,
        "POST",
        "/app/save",
        &[("cookie", &cookie), ("origin", "https://evil.example")],
    )
    .await;
    r.assert_error(403, "cross_site_request");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn browser_response_can_be_set() {
    let s = edge_setup("[forward_auth]\nbrowser_response = \"401\"").await;
    let r = traefik(&s, "GET", "/app/", &[HTML]).await;
    r.assert_error(401, "unauthorized");
    assert_eq!(
        r.header("x-authgate-sign-in"),
        Some("/open/signin?rd=%2Fapp%2F")
    );
    let s = edge_setup("[forward_auth]\nbrowser_response = \"redirect\"").await;
    assert_eq!(nginx(&s, "GET", "/app/", &[HTML]).await.status, 302);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sign_ins_return_only_to_allowed_hosts() {
    let s = default_setup().await;
    let mut browser = Browser::default();
    for (rd, status) in [
        ("https://app.example/x", 200),
        ("https://crm.apps.example/x", 200),
        ("https://apps.example/x", 400),
        ("https://other.example/x", 400),
    ] {
        let url = format!(
            "/open/signin?rd={}",
            form_urlencoded::byte_serialize(rd.as_bytes()).collect::<String>()
        );
        let r = browser.get(&s, &url).await;
        assert_eq!(r.status, status, "{rd}: {}", r.text());
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_decide_only_route_forwards_nothing() {
    let s = default_setup().await;
    let alice = bearer(&s, "alice").await;
    let request = Request::get(s.gw.url("/edge/x"))
        .header("authorization", &alice)
        .body(Full::new(Bytes::new()))
        .unwrap();
    let r = send(&s.gw.client(false), request).await;
    r.assert_error(404, "not_found");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cookie_domain_shares_one_session_across_subdomains() {
    let s = edge_setup("[forward_auth]\ncookie_domain = \"apps.example\"").await;
    let mut browser = Browser::default();
    let page = browser.get(&s, "/open/signin?rd=%2Fapp%2F").await;
    assert_eq!(page.status, 200);
    let r = browser
        .login(&s, "/open/signin?rd=%2Fapp%2F", "alice", PASSWORD)
        .await;
    assert_eq!(r.status, 303, "{}", r.text());
    let set = r.header("set-cookie").unwrap();
    let value = &browser.cookies["__Secure-authgate-session"];
    assert_eq!(
        set,
        format!(
            "__Secure-authgate-session={value}; Path=/; Domain=apps.example; Max-Age=1800; Secure; HttpOnly; SameSite=Lax"
        )
    );
    let shared = format!("__Secure-authgate-session={value}");
    let r = nginx(&s, "GET", "/app/", &[HTML, ("cookie", &shared)]).await;
    assert_eq!(r.status, 200, "{}", r.text());
    // The host-only name is not this gateway's session cookie now.
    let host_only = format!("__Host-authgate-session={value}");
    let r = nginx(&s, "GET", "/app/", &[("cookie", &host_only)]).await;
    r.assert_error(401, "unauthorized");
    assert!(
        r.header("www-authenticate")
            .unwrap()
            .contains("cookie-name=\"__Secure-authgate-session\"")
    );
}
