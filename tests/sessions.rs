//! Session routes over real TLS (issue 23): a browser without a session is sent to the sign-in
//! page and comes back signed in; the `__Host-authgate-session` cookie's attributes; the
//! identity the upstream gets (and the cookie it never gets); open redirects refused; the
//! same-origin rule for state-changing requests and WebSocket upgrades; bearer over cookie;
//! `allowed_groups`; idle and absolute expiry (short settings, a few seconds); rotation at
//! sign-in; logout, `session revoke`, a user's revocation and a group change reaching
//! sessions. (The same in a real Chromium: tests/browser/sessions.test.mjs; across two cluster
//! instances: tests/cluster.rs.)
#![allow(clippy::unwrap_used)]

mod support;

#[path = "oauth2/harness.rs"]
#[allow(dead_code)]
mod harness;

#[path = "oauth2/browser.rs"]
#[allow(dead_code)]
mod browser;

use std::time::{Duration, Instant};

use authgate::store::UserPatch;
use browser::Browser;
use bytes::Bytes;
use harness::*;
use http_body_util::Full;
use hyper::Request;
use support::*;
use tokio::io::AsyncWriteExt;

const COOKIE: &str = "__Host-authgate-session";
const HTML: (&str, &str) = ("accept", "text/html,application/xhtml+xml,*/*;q=0.8");

/// `/app` is a session route, `/mixed` takes either credential, `/staff` is for group 7,
/// `/fresh` wants a sign-in of the last 2 s, `/ws` forwards WebSockets to `ws`.
async fn sessions_setup(login: &str, ws: Option<&Stub>) -> Setup {
    let mut config = GatewayConfig::new()
        .section(login)
        .route("prefix = \"/app\"\nupstream = \"builtin:echo\"\nauth = \"session\"")
        .route("prefix = \"/mixed\"\nupstream = \"builtin:echo\"\nauth = \"session_or_bearer\"")
        .route(
            "prefix = \"/staff\"\nupstream = \"builtin:echo\"\nauth = \"session\"\n\
             allowed_groups = [7]",
        )
        .route(
            "prefix = \"/fresh\"\nupstream = \"builtin:echo\"\nauth = \"session\"\n\
             session_ttl = \"2s\"",
        );
    if let Some(stub) = ws {
        let upstream = stub.url();
        config = config.route(&format!(
            "prefix = \"/ws\"\nupstream = \"{upstream}\"\nauth = \"session\""
        ));
    }
    setup_with(config).await
}

async fn plain_setup() -> Setup {
    sessions_setup("[login]\nsession_ttl = \"1h\"", None).await
}

/// `method path` with the session `cookie` (if any) and `extra` headers.
async fn call(
    s: &Setup,
    method: &str,
    path: &str,
    cookie: Option<&str>,
    extra: &[(&str, &str)],
) -> Resp {
    let mut request = Request::builder().method(method).uri(s.gw.url(path));
    if let Some(cookie) = cookie {
        request = request.header("cookie", format!("theme=dark; {COOKIE}={cookie}; lang=en"));
    }
    for (name, value) in extra {
        request = request.header(*name, *value);
    }
    let body = Full::new(Bytes::new());
    send(&s.gw.client(false), request.body(body).unwrap()).await
}

/// Signs `account` in at the sign-in page, returning there from `rd`: the new session cookie.
async fn sign_in(s: &Setup, account: &str, rd: &str) -> String {
    let mut browser = Browser::default();
    sign_in_with(s, &mut browser, account, rd).await
}

async fn sign_in_with(s: &Setup, browser: &mut Browser, account: &str, rd: &str) -> String {
    let url = format!("/open/signin?rd={}", encode(rd));
    let r = browser.login(s, &url, account, PASSWORD).await;
    assert_eq!(r.status, 303, "{}", r.text());
    assert_eq!(r.header("location"), Some(rd));
    browser.cookies[COOKIE].clone()
}

fn encode(text: &str) -> String {
    form_urlencoded::byte_serialize(text.as_bytes()).collect()
}

/// The origin the browser would send for pages of the gateway.
fn own_origin(s: &Setup) -> String {
    let url = s.gw.url("/");
    url.trim_end_matches('/').to_owned()
}

/// Polls `check` every 50 ms until it holds; panics after `limit`.
async fn eventually<F, Fut>(what: &str, limit: Duration, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    let start = Instant::now();
    while !check().await {
        assert!(
            start.elapsed() < limit,
            "{what} did not happen within {limit:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_browser_signs_in_and_the_upstream_gets_the_user_not_the_cookie() {
    let s = plain_setup().await;
    // A navigation without a session: to the sign-in page, with the way back.
    let r = call(&s, "GET", "/app/page?x=1&y=a%20b", None, &[HTML]).await;
    assert_eq!(r.status, 302, "{}", r.text());
    let location = r.header("location").unwrap();
    assert_eq!(
        location,
        "/open/signin?rd=%2Fapp%2Fpage%3Fx%3D1%26y%3Da%2520b"
    );
    // Anything else: 401 JSON, with a challenge that says where to sign in.
    let r = call(
        &s,
        "GET",
        "/app/page",
        None,
        &[("accept", "application/json")],
    )
    .await;
    r.assert_error(401, "unauthorized");
    let challenge = r.header("www-authenticate").unwrap();
    assert!(
        challenge.starts_with("Cookie realm=\"authgate\", form-action=\"/open/signin\""),
        "{challenge}"
    );
    call(&s, "POST", "/app/form", None, &[HTML])
        .await
        .assert_error(401, "unauthorized");
    // HEAD navigations are navigations too.
    assert_eq!(
        call(&s, "HEAD", "/app/page", None, &[HTML]).await.status,
        302
    );

    // Signing in: the cookie's attributes, then back to where the browser was going.
    let mut browser = Browser::default();
    let page = browser.get(&s, location).await;
    assert_eq!(page.status, 200, "{}", page.text());
    let r = browser.login(&s, location, "alice", PASSWORD).await;
    assert_eq!(r.status, 303, "{}", r.text());
    assert_eq!(r.header("location"), Some("/app/page?x=1&y=a%20b"));
    let set: Vec<&str> = r
        .headers
        .get_all("set-cookie")
        .iter()
        .map(|v| v.to_str().unwrap())
        .collect();
    let cookie = browser.cookies[COOKIE].clone();
    assert_eq!(cookie.len(), 43);
    assert_eq!(
        set,
        [format!(
            "{COOKIE}={cookie}; Path=/; Max-Age=3600; Secure; HttpOnly; SameSite=Lax"
        )]
    );

    // The app: the verified identity, the other cookies, never the session.
    let r = call(
        &s,
        "GET",
        "/app/page?x=1",
        Some(&cookie),
        &[HTML, ("user_id", "")],
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.text());
    let seen = &r.json()["headers"];
    assert_eq!(seen["user_id"], ALICE.to_string().as_str());
    assert_eq!(seen["group_id"], "7");
    assert_eq!(seen["cookie"], "theme=dark; lang=en");
    assert!(
        !r.text().contains(&cookie),
        "the session reached the upstream"
    );
    // The sign-in page with a live session goes straight back.
    let r = browser.get(&s, "/open/signin?rd=%2Fapp%2F").await;
    assert_eq!(r.status, 303);
    assert_eq!(r.header("location"), Some("/app/"));
    // A bearer route does not read the cookie.
    call(&s, "GET", "/echo", Some(&cookie), &[HTML])
        .await
        .assert_error(401, "unauthorized");
    // On any route, the gateway's cookies never reach an upstream.
    let bearer = s.login("web", "bob").await["access_token"]
        .as_str()
        .unwrap()
        .to_owned();
    let auth = format!("Bearer {bearer}");
    let r = call(
        &s,
        "GET",
        "/echo",
        Some(&cookie),
        &[("authorization", &auth)],
    )
    .await;
    assert_eq!(r.json()["headers"]["cookie"], "theme=dark; lang=en");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn identity_rules_are_the_bearer_routes_rules() {
    let s = plain_setup().await;
    let alice = sign_in(&s, "alice", "/app/").await;
    // Naming someone else is impersonation, which only admins may do.
    let bob = BOB.to_string();
    let r = call(&s, "GET", "/app/", Some(&alice), &[("user_id", &bob)]).await;
    r.assert_error(403, "insufficient_scope");
    // An admin's session may act as a user, audited as with a token.
    let boss = sign_in(&s, "boss", "/app/").await;
    let r = call(&s, "GET", "/app/", Some(&boss), &[("user_id", &bob)]).await;
    assert_eq!(r.status, 200, "{}", r.text());
    let seen = &r.json()["headers"];
    assert_eq!(seen["user_id"], bob.as_str());
    assert_eq!(seen["group_id"], "8");
    assert_eq!(seen["x-impersonator-id"], BOSS.to_string().as_str());
    // `allowed_groups` holds for sessions: alice (7) passes, bob (8) does not.
    assert_eq!(
        call(&s, "GET", "/staff/", Some(&alice), &[]).await.status,
        200
    );
    let bob_session = sign_in(&s, "bob", "/staff/").await;
    let r = call(&s, "GET", "/staff/", Some(&bob_session), &[]).await;
    r.assert_error(403, "insufficient_scope");
    assert_eq!(
        r.json()["error_description"],
        "your group may not use this route"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_way_back_is_never_an_open_redirect() {
    let s = plain_setup().await;
    let mut browser = Browser::default();
    for rd in [
        "https://evil.example/",
        "//evil.example/x",
        "/\\evil.example",
        "http://127.0.0.1/",
        "javascript:alert(1)",
    ] {
        let r = browser
            .get(&s, &format!("/open/signin?rd={}", encode(rd)))
            .await;
        assert_eq!(r.status, 400, "{rd}: {}", r.text());
        assert!(r.header("location").is_none());
    }
    // The gateway's own authority is a served host.
    let own = s.gw.url("/app/x");
    let r = browser
        .get(&s, &format!("/open/signin?rd={}", encode(&own)))
        .await;
    assert_eq!(r.status, 200, "{}", r.text());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn state_changes_need_the_same_origin() {
    let s = plain_setup().await;
    let cookie = sign_in(&s, "alice", "/app/").await;
    let own = own_origin(&s);
    let post = |extra: Vec<(&'static str, String)>| {
        let s = &s;
        let cookie = cookie.clone();
        async move {
            let extra: Vec<(&str, &str)> = extra.iter().map(|(k, v)| (*k, v.as_str())).collect();
            call(s, "POST", "/app/save", Some(&cookie), &extra).await
        }
    };
    let refused = |r: Resp| {
        r.assert_error(403, "cross_site_request");
    };
    refused(post(vec![]).await);
    refused(post(vec![("origin", "https://evil.example".into())]).await);
    refused(post(vec![("origin", "null".into())]).await);
    refused(post(vec![("sec-fetch-site", "cross-site".into())]).await);
    // `same-site` is a sibling application, not us; Sec-Fetch-Site decides over Origin.
    refused(
        post(vec![
            ("sec-fetch-site", "same-site".into()),
            ("origin", own.clone()),
        ])
        .await,
    );
    refused(post(vec![("referer", "https://evil.example/page".into())]).await);
    for ok in [
        vec![("sec-fetch-site", "same-origin".to_owned())],
        vec![("origin", own.clone())],
        vec![("referer", format!("{own}/app/form"))],
    ] {
        let r = post(ok.clone()).await;
        assert_eq!(r.status, 200, "{ok:?}: {}", r.text());
        assert_eq!(r.json()["method"], "POST");
    }
    for method in ["PUT", "DELETE", "PATCH"] {
        call(&s, method, "/app/x", Some(&cookie), &[])
            .await
            .assert_error(403, "cross_site_request");
    }
    // Reading needs no Origin.
    assert_eq!(
        call(&s, "GET", "/app/x", Some(&cookie), &[]).await.status,
        200
    );
    // A bearer token is no ambient credential: no Origin needed.
    let token = s.login("web", "bob").await["access_token"]
        .as_str()
        .unwrap()
        .to_owned();
    let auth = format!("Bearer {token}");
    let r = call(&s, "POST", "/mixed/x", None, &[("authorization", &auth)]).await;
    assert_eq!(r.status, 200, "{}", r.text());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn websocket_upgrades_check_the_origin() {
    let stub = Stub::start(Mode::UpgradeEcho).await;
    let s = sessions_setup("[login]\nsession_ttl = \"1h\"", Some(&stub)).await;
    let cookie = sign_in(&s, "alice", "/ws/").await;
    let upgrade = |origin: &str| {
        format!(
            "GET /ws/chat HTTP/1.1\r\nHost: localhost\r\nConnection: Upgrade\r\n\
             Upgrade: websocket\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\
             Sec-WebSocket-Version: 13\r\nOrigin: {origin}\r\nCookie: {COOKIE}={cookie}\r\n\r\n"
        )
    };
    // Cross-site WebSocket hijacking: refused before anything reaches the upstream.
    let mut tls = tls_connect(s.gw.https_addr, &s.gw.cert, &[b"http/1.1"]).await;
    tls.write_all(upgrade("https://evil.example").as_bytes())
        .await
        .unwrap();
    let r = within("refusal", read_response(&mut tls)).await;
    r.assert_error(403, "cross_site_request");
    assert!(stub.records().is_empty(), "{:?}", stub.records());
    // From the app's own pages (Host: localhost): upgraded, as the user.
    let mut tls = tls_connect(s.gw.https_addr, &s.gw.cert, &[b"http/1.1"]).await;
    tls.write_all(upgrade("https://localhost").as_bytes())
        .await
        .unwrap();
    let r = within("101", read_response(&mut tls)).await;
    assert_eq!(r.status, 101, "{r:?}");
    let seen = stub.only();
    assert_eq!(seen.header("user_id"), Some(ALICE.to_string().as_str()));
    assert!(seen.header("cookie").is_none_or(|c| !c.contains(COOKIE)));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bearer_token_decides_over_the_cookie() {
    let s = plain_setup().await;
    let alice = sign_in(&s, "alice", "/mixed/").await;
    let bob = s.login("web", "bob").await["access_token"]
        .as_str()
        .unwrap()
        .to_owned();
    // The cookie alone: alice.
    let r = call(&s, "GET", "/mixed/", Some(&alice), &[]).await;
    assert_eq!(r.json()["headers"]["user_id"], ALICE.to_string().as_str());
    // A token: the token's user, whatever the cookie says.
    let auth = format!("Bearer {bob}");
    let r = call(
        &s,
        "GET",
        "/mixed/",
        Some(&alice),
        &[("authorization", &auth)],
    )
    .await;
    assert_eq!(r.json()["headers"]["user_id"], BOB.to_string().as_str());
    // An invalid token is refused, never a fallback to the cookie.
    let bad = ("authorization", "Bearer not-a-valid-token");
    let r = call(&s, "GET", "/mixed/", Some(&alice), &[bad, HTML]).await;
    r.assert_error(401, "invalid_token");
    // Without either, a session_or_bearer route challenges for a bearer token.
    let r = call(&s, "GET", "/mixed/", None, &[]).await;
    r.assert_error(401, "unauthorized");
    assert_eq!(
        r.header("www-authenticate"),
        Some("Bearer realm=\"authgate\"")
    );
    // A session-only route does not read bearer tokens at all.
    let r = call(&s, "GET", "/app/", None, &[("authorization", &auth)]).await;
    r.assert_error(401, "unauthorized");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_route_may_want_a_fresher_sign_in() {
    let s = plain_setup().await;
    let mut browser = Browser::default();
    let cookie = sign_in_with(&s, &mut browser, "alice", "/fresh/").await;
    assert_eq!(
        call(&s, "GET", "/fresh/", Some(&cookie), &[HTML])
            .await
            .status,
        200
    );
    tokio::time::sleep(Duration::from_millis(2100)).await;
    // Too old for /fresh (session_ttl = 2s) but alive for /app...
    assert_eq!(
        call(&s, "GET", "/app/", Some(&cookie), &[HTML])
            .await
            .status,
        200
    );
    let r = call(&s, "GET", "/fresh/", Some(&cookie), &[HTML]).await;
    assert_eq!(r.status, 302);
    let location = r.header("location").unwrap().to_owned();
    assert_eq!(location, "/open/signin?rd=%2Ffresh%2F&prompt=login");
    // ...so the sign-in page asks for the password although the session is live, and the new
    // session (rotated: the old one ends) passes.
    let page = browser.get(&s, &location).await;
    assert_eq!(page.status, 200, "the form, not a redirect");
    let r = browser.login(&s, &location, "alice", PASSWORD).await;
    assert_eq!(r.status, 303, "{}", r.text());
    let fresh = browser.cookies[COOKIE].clone();
    assert_ne!(fresh, cookie);
    assert_eq!(
        call(&s, "GET", "/fresh/", Some(&fresh), &[HTML])
            .await
            .status,
        200
    );
    assert_eq!(
        call(&s, "GET", "/app/", Some(&cookie), &[HTML])
            .await
            .status,
        302
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unused_session_idles_out_and_a_used_one_is_renewed_in_the_store() {
    let s = sessions_setup("[login]\nsession_ttl = \"1h\"\nidle_timeout = \"2s\"", None).await;
    let cookie = sign_in(&s, "alice", "/app/").await;
    let started = s
        .store
        .login_sessions(Some(ALICE), authgate::store::now())
        .await
        .unwrap();
    let first_seen = started[0].last_seen_at;
    // Used every 700 ms for 3.5 s: alive past its idle timeout, renewed server-side (no new
    // Set-Cookie needed).
    for _ in 0..5 {
        tokio::time::sleep(Duration::from_millis(700)).await;
        let r = call(&s, "GET", "/app/", Some(&cookie), &[HTML]).await;
        assert_eq!(r.status, 200, "{}", r.text());
        assert!(r.header("set-cookie").is_none());
    }
    let now = authgate::store::now();
    let renewed = s.store.login_sessions(Some(ALICE), now).await.unwrap();
    assert!(renewed[0].last_seen_at > first_seen, "{renewed:?}");
    // Then unused for longer than 2 s: gone.
    tokio::time::sleep(Duration::from_millis(3100)).await;
    let r = call(&s, "GET", "/app/", Some(&cookie), &[HTML]).await;
    assert_eq!(r.status, 302, "{}", r.text());
    assert_eq!(r.header("location"), Some("/open/signin?rd=%2Fapp%2F"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn signing_in_rotates_and_logout_ends_the_route_session() {
    let s = plain_setup().await;
    let mut browser = Browser::default();
    let first = sign_in_with(&s, &mut browser, "alice", "/app/").await;
    // Signing in again (prompt=login) in the same browser: a new id, the old one ends.
    let url = "/open/signin?rd=%2Fapp%2F&prompt=login";
    let r = browser.login(&s, url, "alice", PASSWORD).await;
    assert_eq!(r.status, 303, "{}", r.text());
    let second = browser.cookies[COOKIE].clone();
    assert_ne!(first, second);
    assert_eq!(
        call(&s, "GET", "/app/", Some(&first), &[]).await.status,
        401
    );
    assert_eq!(
        call(&s, "GET", "/app/", Some(&second), &[]).await.status,
        200
    );
    // One logout (the login pages' /open/logout) ends the route session at once.
    let confirm = browser.get(&s, "/open/logout").await;
    assert_eq!(confirm.status, 200);
    let csrf = browser.csrf();
    let r = browser
        .post(&s, "/open/logout", &[("csrf_token", &csrf)])
        .await;
    assert_eq!(r.status, 200, "{}", r.text());
    let cleared = r.header("set-cookie").unwrap();
    assert!(
        cleared.starts_with(&format!("{COOKIE}=; Path=/; Max-Age=0")),
        "{cleared}"
    );
    let r = call(&s, "GET", "/app/", Some(&second), &[HTML]).await;
    assert_eq!(r.status, 302, "{}", r.text());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn revocations_and_identity_changes_reach_sessions() {
    let s = plain_setup().await;
    let limit = Duration::from_secs(2);
    // `authgate session revoke ID`: gone within the propagation bound.
    let cookie = sign_in(&s, "alice", "/app/").await;
    assert_eq!(
        call(&s, "GET", "/app/", Some(&cookie), &[]).await.status,
        200
    );
    let now = authgate::store::now();
    let id = s.store.login_sessions(Some(ALICE), now).await.unwrap()[0]
        .id
        .clone();
    assert!(s.store.revoke_login_session(&id).await.unwrap());
    eventually("session revoke", limit, || async {
        call(&s, "GET", "/app/", Some(&cookie), &[]).await.status == 401
    })
    .await;

    // The user's revocation (`revoke-tokens`, a password change, disable): every session ends.
    let cookie = sign_in(&s, "alice", "/staff/").await;
    assert_eq!(
        call(&s, "GET", "/staff/", Some(&cookie), &[]).await.status,
        200
    );
    // A group change applies to the live session: /staff is for group 7 only.
    let patch = UserPatch {
        group_id: Some(9),
        ..UserPatch::default()
    };
    s.store
        .update_user(ALICE, patch, authgate::store::now())
        .await
        .unwrap();
    eventually("group change", limit, || async {
        call(&s, "GET", "/staff/", Some(&cookie), &[]).await.status == 403
    })
    .await;
    let r = call(&s, "GET", "/app/", Some(&cookie), &[]).await;
    assert_eq!(r.json()["headers"]["group_id"], "9");
    s.store
        .revoke_user_tokens(ALICE, authgate::store::now())
        .await
        .unwrap();
    eventually("revoke-tokens", limit, || async {
        call(&s, "GET", "/app/", Some(&cookie), &[]).await.status == 401
    })
    .await;
}
