//! Signing in at an upstream OpenID Connect provider (issue 25, docs: /work/spec/providers.md)
//! over real sockets: the gateway over TLS as a browser sees it, a stub provider
//! (tests/providers/stub.rs) over plain HTTP on loopback. The button on the login pages, the
//! redirect to the provider (state, nonce, PKCE S256), the callback's every check (state and
//! its pending cookie, the ID token's signature, algorithm, `iss`, `aud`, `azp`, `exp`,
//! `nonce`, the `iss` parameter, replay), linking (existing link, verified e-mail, never an
//! admin), provisioning and group mapping, the admission rules, userinfo, `max_session`, and a
//! provider that is down or slow.
#![allow(clippy::unwrap_used)]

mod support;

#[path = "oauth2/harness.rs"]
#[allow(dead_code)]
mod harness;

#[path = "oauth2/browser.rs"]
#[allow(dead_code)]
mod browser;

#[path = "providers/stub.rs"]
#[allow(dead_code)]
mod stub;

use std::collections::HashMap;
use std::time::{Duration, Instant};

use authgate::store::{AuditFilter, UserPatch};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use browser::{Browser, authorize_url, redirect_params, unescape};
use harness::*;
use serde_json::{Value, json};
use stub::{CLIENT_ID, CLIENT_SECRET, Provider, Signer};
use support::{GatewayConfig, Resp, closed_port};

const SESSION: &str = "__Host-authgate-session";
const PENDING: &str = "__Host-authgate-pending";
const LABEL: &str = "Corp SSO";
/// Who may sign in with the stub unless a test says otherwise: `groups` holds `staff`.
const STAFF_ONLY: &str = "required_claim = \"groups\"\nrequired_values = [\"staff\"]";

// ---------------------------------------------------------------------------------------------
// Set-up
// ---------------------------------------------------------------------------------------------

/// A gateway (tests/oauth2/harness.rs: its users and clients) with `[login]` holding `login`
/// lines and the `providers` tables, `sections` after it, and a session route `/app`.
async fn gateway(login: &str, providers: &[String], sections: &[&str]) -> Setup {
    let mut toml = format!("[login]\n{login}\n");
    for table in providers {
        toml.push('\n');
        toml.push_str(table);
    }
    let mut config = GatewayConfig::new()
        .section(&toml)
        .route("prefix = \"/app\"\nupstream = \"builtin:echo\"\nauth = \"session\"");
    for section in sections {
        config = config.section(section);
    }
    setup_with(config).await
}

/// One stub as provider `corp` ("Corp SSO"), staff only, with `extra` lines.
async fn corp_gateway(p: &Provider, extra: &str) -> Setup {
    let table = p.toml("corp", LABEL, &format!("{STAFF_ONLY}\n{extra}"));
    gateway("session_ttl = \"8h\"", &[table], &[]).await
}

/// Alice at the provider: subject `sub`, her verified company address, staff.
fn alice(sub: &str) -> Value {
    json!({
        "sub": sub,
        "email": "alice@example.com",
        "email_verified": true,
        "preferred_username": "alice.corp",
        "groups": ["staff"],
    })
}

/// Carol, who has no account here: subject `sub`, account name `carol`, staff in group 9.
fn carol(sub: &str) -> Value {
    json!({
        "sub": sub,
        "email": "carol@example.com",
        "email_verified": true,
        "preferred_username": "carol",
        "groups": ["staff"],
        "gid": 9,
    })
}

// ---------------------------------------------------------------------------------------------
// The browser's steps
// ---------------------------------------------------------------------------------------------

/// A sign-in in progress: the browser is at the provider, which has sent it back.
struct Flow {
    browser: Browser,
    /// The page the button returns to (`return_to`, decoded).
    return_to: String,
    /// The query the gateway sent to the provider's authorization endpoint.
    authorize: HashMap<String, String>,
    /// Where the provider sent the browser back: the callback's path and query at the gateway.
    callback: String,
}

/// `https://gw.test/x` (the gateway's issuer) or `/x`: `/x`.
fn local(url: &str) -> String {
    url.strip_prefix(ISSUER).unwrap_or(url).to_owned()
}

/// The `href` of the `name` provider's button on `html`, unescaped.
fn button(html: &str, name: &str) -> Option<String> {
    let start = format!("href=\"/open/providers/{name}/start?");
    let from = html.find(&start)? + "href=\"".len();
    let to = from + html[from..].find('"')?;
    Some(unescape(&html[from..to]))
}

/// The decoded query parameters of `url`.
fn params(url: &str) -> HashMap<String, String> {
    let query = url.split_once('?').map(|(_, q)| q).unwrap_or("");
    let query = query.split('#').next().unwrap_or("");
    form_urlencoded::parse(query.as_bytes())
        .into_owned()
        .collect()
}

/// The path and the sorted decoded query pairs of `url`, to compare two spellings.
fn target(url: &str) -> (String, Vec<(String, String)>) {
    let url = local(url);
    let path = url.split('?').next().unwrap().to_owned();
    let mut pairs: Vec<(String, String)> = params(&url).into_iter().collect();
    pairs.sort();
    (path, pairs)
}

/// The `Set-Cookie` value for `name`, if `r` sets it.
fn set_cookie<'a>(r: &'a Resp, name: &str) -> Option<&'a str> {
    r.headers
        .get_all("set-cookie")
        .iter()
        .map(|v| v.to_str().unwrap())
        .find(|v| v.starts_with(&format!("{name}=")))
}

/// `Max-Age` of a `Set-Cookie` value.
fn max_age(cookie: &str) -> i64 {
    cookie
        .split(';')
        .find_map(|a| a.trim().strip_prefix("Max-Age="))
        .unwrap_or_else(|| panic!("no Max-Age in {cookie}"))
        .parse()
        .unwrap()
}

/// In `browser`, opens the login page `page`, presses `name`'s button (the gateway answers
/// 303 to `p`'s authorization endpoint) and lets `p` sign the person in.
async fn to_provider(
    s: &Setup,
    p: &Provider,
    mut browser: Browser,
    page: &str,
    name: &str,
) -> Flow {
    let shown = browser.get(s, page).await;
    assert_eq!(shown.status, 200, "the login page {page}: {}", shown.text());
    let html = shown.text();
    let href = button(&html, name)
        .unwrap_or_else(|| panic!("no button for provider {name} on {page}:\n{html}"));
    let return_to = params(&href)
        .remove("return_to")
        .unwrap_or_else(|| panic!("no return_to in the button's href {href}"));
    let start = browser.get(s, &href).await;
    assert_eq!(
        start.status,
        303,
        "GET {href}: {} {}",
        start.status,
        start.text()
    );
    assert!(
        browser.cookies.contains_key(PENDING),
        "GET {href}: the pending cookie; set-cookie: {:?}",
        start.headers.get_all("set-cookie")
    );
    let location = start.header("location").unwrap().to_owned();
    let authorize = params(&location);
    let back = p.authorize(&location).await;
    let prefix = format!("{ISSUER}/open/providers/{name}/callback?");
    assert!(
        back.starts_with(&prefix),
        "the provider sent the browser to {back}: the gateway's redirect_uri is not \
         {prefix}…"
    );
    Flow {
        browser,
        return_to,
        authorize,
        callback: local(&back),
    }
}

/// [`to_provider`] from the authorization page of client `web` (scope `read`) in a new browser.
async fn web_flow(s: &Setup, p: &Provider, name: &str) -> Flow {
    let page = authorize_url("web", "&scope=read");
    to_provider(s, p, Browser::default(), &page, name).await
}

impl Flow {
    /// The browser arrives at the callback.
    async fn callback(&mut self, s: &Setup) -> Resp {
        let callback = self.callback.clone();
        self.browser.get(s, &callback).await
    }

    /// The callback succeeds: a session cookie and 303 back to `return_to`; the page then
    /// completes at once (303 to the client with a code), and `web` exchanges the code.
    /// The token response.
    async fn signed_in(&mut self, s: &Setup) -> Value {
        let r = self.callback_ok(s).await;
        self.tokens_after(s, &r).await
    }

    /// The callback succeeds: a session cookie and 303 back to `return_to`. Its answer.
    async fn callback_ok(&mut self, s: &Setup) -> Resp {
        let r = self.callback(s).await;
        assert_eq!(r.status, 303, "the callback: {}", r.text());
        assert!(
            set_cookie(&r, SESSION).is_some(),
            "the callback sets a session cookie: {:?}",
            r.headers.get_all("set-cookie")
        );
        let back = r.header("location").unwrap();
        assert_eq!(
            target(back),
            target(&self.return_to),
            "back to the login page: {back}"
        );
        r
    }

    /// After [`Flow::callback_ok`] answered `r`: the login page completes at once (303 to the
    /// client with a code), and `web` exchanges the code. The token response.
    async fn tokens_after(&mut self, s: &Setup, r: &Resp) -> Value {
        let back = r.header("location").unwrap();
        let page = self.browser.get(s, &local(back)).await;
        let code = redirect_params(&page, false);
        assert_eq!(code["state"], "st ate");
        let tokens = s
            .post(
                "/oauth2/token",
                Auth::Basic("web", SECRET),
                &[
                    ("grant_type", "authorization_code"),
                    ("code", &code["code"]),
                    ("redirect_uri", REDIRECT),
                ],
            )
            .await;
        assert_eq!(tokens.status, 200, "code exchange: {}", tokens.text());
        tokens.json()
    }

    /// The callback is refused with `status` and a page saying `words`.
    async fn refused(&mut self, s: &Setup, status: u16, words: &str, what: &str) -> Resp {
        let r = self.callback(s).await;
        assert_refused(&r, status, words, what);
        assert!(
            !self.browser.cookies.contains_key(SESSION),
            "{what}: not signed in"
        );
        r
    }
}

/// A refusal: `status`, an HTML page saying `words`, no redirect, no session cookie.
fn assert_refused(r: &Resp, status: u16, words: &str, what: &str) {
    assert_eq!(r.status, status, "{what}: {}", r.text());
    assert!(
        r.header("location").is_none(),
        "{what}: a refusal is a page, never a redirect ({:?})",
        r.header("location")
    );
    let content_type = r.header("content-type").unwrap_or("");
    assert!(
        content_type.starts_with("text/html"),
        "{what}: content-type {content_type}"
    );
    assert!(
        r.text().contains(words),
        "{what}: the page should say {words:?}:\n{}",
        r.text()
    );
    assert!(
        set_cookie(r, SESSION).is_none(),
        "{what}: no session cookie on a refusal"
    );
}

/// GET /echo with `access`: user_id and group_id the upstream received.
async fn identity(s: &Setup, tokens: &Value) -> (String, String) {
    let access = tokens["access_token"].as_str().unwrap();
    let (status, headers) = s.echo_headers(access).await;
    assert_eq!(status, 200);
    let headers = headers.unwrap();
    (
        headers["user_id"].as_str().unwrap_or_default().to_owned(),
        headers["group_id"].as_str().unwrap_or_default().to_owned(),
    )
}

/// Waits until [`identity`] is `expected`. After a group change the proxy takes a user's group
/// from its copy of the store's current identities (`Store::revocations`), refreshed every
/// `refresh_interval` (100 ms here): for a moment it may still show the group before, even
/// for a token issued after the change.
async fn identity_settles(s: &Setup, tokens: &Value, expected: (String, String)) {
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let seen = identity(s, tokens).await;
        if seen == expected {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "the upstream sees (user, group) {seen:?}, not {expected:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// The audit actions beginning with `provider`.
async fn provider_audits(s: &Setup) -> Vec<String> {
    let filter = AuditFilter {
        kind: Some("provider".into()),
        limit: 100,
        ..AuditFilter::default()
    };
    let records = s.store.audit_search(&filter).await.unwrap();
    records.into_iter().map(|r| r.event.action).collect()
}

fn encode(text: &str) -> String {
    form_urlencoded::byte_serialize(text.as_bytes()).collect()
}

// ---------------------------------------------------------------------------------------------
// The happy path
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn code_flow_through_the_provider_links_alice_by_her_verified_email() {
    let p = Provider::start().await;
    p.sign_in_as(alice("alice-at-corp"));
    let s = corp_gateway(&p, "link_by_email = true").await;

    // The button beside the password form.
    let page = authorize_url("web", "&scope=read");
    let mut browser = Browser::default();
    let shown = browser.get(&s, &page).await;
    assert_eq!(shown.status, 200, "{}", shown.text());
    let html = shown.text();
    assert!(html.contains("Sign in with Corp SSO"), "{html}");
    assert!(html.contains("class=\"provider\""), "{html}");
    assert!(
        html.contains("name=\"password\""),
        "the password form stays"
    );
    let href = button(&html, "corp").expect("the button's href");
    let return_to = &params(&href)["return_to"];
    assert_eq!(target(return_to), target(&page), "return_to is this page");

    // Start: the pending cookie and 303 to the provider with state, nonce, PKCE S256.
    let start = browser.get(&s, &href).await;
    assert_eq!(start.status, 303, "{}", start.text());
    let pending = set_cookie(&start, PENDING).expect("the pending cookie");
    for attribute in [
        "Path=/",
        "Secure",
        "HttpOnly",
        "SameSite=Lax",
        "Max-Age=600",
    ] {
        assert!(
            pending.split(';').any(|a| a.trim() == attribute),
            "{attribute} in {pending}"
        );
    }
    let location = start.header("location").unwrap();
    assert!(
        location.starts_with(&format!("{}/authorize?", p.issuer())),
        "{location}"
    );
    let sent = params(location);
    assert_eq!(sent["response_type"], "code");
    assert_eq!(sent["client_id"], CLIENT_ID);
    assert_eq!(
        sent["redirect_uri"],
        "https://gw.test/open/providers/corp/callback"
    );
    let scopes: Vec<&str> = sent["scope"].split(' ').collect();
    for scope in ["openid", "profile", "email"] {
        assert!(scopes.contains(&scope), "scope {:?}", sent["scope"]);
    }
    assert!(sent["state"].len() >= 16, "state {:?}", sent["state"]);
    assert!(sent["nonce"].len() >= 16, "nonce {:?}", sent["nonce"]);
    assert_ne!(sent["state"], sent["nonce"]);
    assert_eq!(sent["code_challenge_method"], "S256");
    assert_eq!(
        sent["code_challenge"].len(),
        43,
        "{:?}",
        sent["code_challenge"]
    );
    assert!(!sent.contains_key("response_mode") || sent["response_mode"] == "query");

    // A second start in the same browser keeps its pending cookie.
    let pending_value = browser.cookies[PENDING].clone();
    let again = browser.get(&s, &href).await;
    assert_eq!(again.status, 303, "{}", again.text());
    assert_eq!(
        browser.cookies[PENDING], pending_value,
        "the cookie is reused"
    );

    // The provider signs Alice in and sends the browser back.
    let back = p.authorize(location).await;
    let mut flow = Flow {
        browser,
        return_to: return_to.clone(),
        authorize: sent.clone(),
        callback: local(&back),
    };
    assert_eq!(params(&back)["state"], sent["state"]);
    let tokens = flow.signed_in(&s).await;
    assert_eq!(
        identity(&s, &tokens).await,
        (ALICE.to_string(), "7".to_owned()),
        "Alice, linked by her verified e-mail"
    );

    // What the gateway sent to the token endpoint: the code, the redirect URI, the PKCE
    // verifier of the challenge; client_secret_basic with the secret from the file (trimmed).
    let requests = p.token_requests();
    assert_eq!(requests.len(), 1, "one code redemption: {requests:#?}");
    let request = &requests[0];
    assert_eq!(request.form["grant_type"], "authorization_code");
    assert_eq!(request.form["code"], params(&back)["code"]);
    assert_eq!(request.form["redirect_uri"], sent["redirect_uri"]);
    let verifier = request.form.get("code_verifier").expect("a code_verifier");
    assert!((43..=128).contains(&verifier.len()), "{verifier}");
    assert_eq!(
        challenge(verifier),
        sent["code_challenge"],
        "S256(verifier)"
    );
    let basic = format!(
        "Basic {}",
        STANDARD.encode(format!("{CLIENT_ID}:{CLIENT_SECRET}"))
    );
    assert_eq!(request.authorization.as_deref(), Some(basic.as_str()));
    assert!(
        !request.form.contains_key("client_secret"),
        "the secret only in the header"
    );
    assert!(
        provider_audits(&s)
            .await
            .contains(&"provider.link".to_owned())
    );

    // The link holds by issuer and subject, whatever the e-mail says next time.
    p.sign_in_as(json!({
        "sub": "alice-at-corp",
        "email": "a.liddell@elsewhere.example",
        "email_verified": false,
        "groups": ["staff"],
    }));
    let tokens = web_flow(&s, &p, "corp").await.signed_in(&s).await;
    assert_eq!(identity(&s, &tokens).await.0, ALICE.to_string());
}

#[tokio::test]
async fn every_login_page_shows_the_button_and_the_signin_page_returns_to_the_route() {
    let p = Provider::start().await;
    p.sign_in_as(alice("alice-at-corp"));
    let s = corp_gateway(&p, "link_by_email = true").await;
    let mut browser = Browser::default();
    let implicit = "/open/implicit?response_type=token&client_id=imp&state=s1&scope=read";
    let html = browser.get(&s, implicit).await.text();
    let href = button(&html, "corp").unwrap_or_else(|| panic!("no button on {implicit}:\n{html}"));
    assert_eq!(target(&params(&href)["return_to"]), target(implicit));
    // The implicit page completes with the token in the fragment.
    let mut flow = to_provider(&s, &p, Browser::default(), implicit, "corp").await;
    let r = flow.callback(&s).await;
    assert_eq!(r.status, 303, "{}", r.text());
    let back = local(r.header("location").unwrap());
    assert_eq!(target(&back), target(implicit));
    let r = flow.browser.get(&s, &back).await;
    let fragment = redirect_params(&r, true);
    assert_eq!(fragment["state"], "s1");
    assert_eq!(
        s.echo(&fragment["access_token"]).await,
        (200, Some(ALICE.to_string()))
    );

    // The session route: /app -> the sign-in page -> the provider -> the sign-in page -> /app.
    let signin = format!("/open/signin?rd={}", encode("/app/page"));
    let mut flow = to_provider(&s, &p, Browser::default(), &signin, "corp").await;
    let r = flow.callback(&s).await;
    assert_eq!(r.status, 303, "{}", r.text());
    assert!(set_cookie(&r, SESSION).is_some());
    let back = local(r.header("location").unwrap());
    assert_eq!(target(&back), target(&signin));
    let r = flow.browser.get(&s, &back).await;
    assert_eq!(r.status, 303, "{}", r.text());
    assert_eq!(r.header("location"), Some("/app/page"));
    let app = flow.browser.get(&s, "/app/page").await;
    assert_eq!(app.status, 200, "{}", app.text());
    assert_eq!(app.json()["headers"]["user_id"], ALICE.to_string().as_str());
}

// ---------------------------------------------------------------------------------------------
// State, pending cookie, replay
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn a_callback_needs_its_own_state_cookie_and_provider_and_works_once() {
    const EXPIRED: &str = "This sign-in has expired or was already used";
    let p = Provider::start().await;
    let other = Provider::start().await;
    p.sign_in_as(alice("alice-at-corp"));
    other.sign_in_as(alice("alice-at-other"));
    let tables = [
        p.toml(
            "corp",
            LABEL,
            &format!("{STAFF_ONLY}\nlink_by_email = true"),
        ),
        other.toml(
            "other",
            "Other SSO",
            &format!("{STAFF_ONLY}\nlink_by_email = true"),
        ),
    ];
    let s = gateway("session_ttl = \"8h\"", &tables, &[]).await;
    let redeemed = || p.token_requests().len() + other.token_requests().len();

    // Start: return_to must be one of the login pages on this host; the provider must exist.
    let mut browser = Browser::default();
    for return_to in [
        "/app/".to_owned(),
        "https://evil.example/open/signin".to_owned(),
        "//evil.example/open/signin".to_owned(),
        format!("https://evil.example{}", authorize_url("web", "")),
        "/open/signin/../../app/".to_owned(),
    ] {
        let url = format!(
            "/open/providers/corp/start?return_to={}",
            encode(&return_to)
        );
        let r = browser.get(&s, &url).await;
        assert_eq!(r.status, 400, "return_to {return_to}: {}", r.text());
        assert!(
            r.header("location").is_none(),
            "return_to {return_to}: not sent anywhere"
        );
    }
    let r = browser.get(&s, "/open/providers/corp/start").await;
    assert_eq!(r.status, 400, "no return_to: {}", r.text());
    assert!(r.header("location").is_none());
    let url = format!(
        "/open/providers/nope/start?return_to={}",
        encode(&authorize_url("web", ""))
    );
    let r = browser.get(&s, &url).await;
    assert_eq!(r.status, 404, "an unknown provider: {}", r.text());
    assert!(r.header("location").is_none());
    assert!(
        p.with(|s| s.authorize_requests.is_empty()),
        "nobody was sent to the provider"
    );

    // A state nobody issued.
    let mut flow = web_flow(&s, &p, "corp").await;
    let good = flow.callback.clone();
    flow.callback = good.replace(
        &format!("state={}", encode(&flow.authorize["state"])),
        "state=forged-state-forged-state-0123456789",
    );
    assert_ne!(flow.callback, good);
    flow.refused(&s, 400, EXPIRED, "an unknown state").await;
    // No state at all.
    flow.callback = format!(
        "/open/providers/corp/callback?code={}",
        encode(&params(&good)["code"])
    );
    flow.refused(&s, 400, EXPIRED, "no state").await;
    assert_eq!(redeemed(), 0, "no code redeemed for a bad state");

    // The right state from another browser: each case with a sign-in of its own (a refused
    // callback may use its state up). Without the pending cookie...
    let flow = web_flow(&s, &p, "corp").await;
    let r = Browser::default().get(&s, &flow.callback).await;
    assert_refused(&r, 400, EXPIRED, "no pending cookie");
    // ... or with a pending cookie of its own (it started a sign-in too)...
    let flow = web_flow(&s, &p, "corp").await;
    let mut other_browser = web_flow(&s, &p, "corp").await.browser;
    assert_ne!(
        other_browser.cookies[PENDING],
        flow.browser.cookies[PENDING]
    );
    let r = other_browser.get(&s, &flow.callback).await;
    assert_refused(&r, 400, EXPIRED, "another browser's pending cookie");
    assert!(
        !other_browser.cookies.contains_key(SESSION),
        "the other browser is not signed in"
    );
    // ... or with a made-up one (the length of a real one, and not).
    for value in [
        "forged-pending-forged-pending-forged-pend12",
        "forged-pending-cookie",
    ] {
        let flow = web_flow(&s, &p, "corp").await;
        let mut forged = Browser::default();
        forged.cookies.insert(PENDING.into(), value.into());
        let r = forged.get(&s, &flow.callback).await;
        assert_refused(&r, 400, EXPIRED, "a forged pending cookie");
    }
    // Another browser can neither complete nor use up a sign-in: the browser that started it
    // still completes after all three tries.
    let mut flow = web_flow(&s, &p, "corp").await;
    for value in [None, Some("forged-pending-forged-pending-forged-pend12")] {
        let mut stranger = Browser::default();
        if let Some(value) = value {
            stranger.cookies.insert(PENDING.into(), value.into());
        }
        let r = stranger.get(&s, &flow.callback).await;
        assert_refused(&r, 400, EXPIRED, "a stranger with the callback URL");
    }
    assert_eq!(redeemed(), 0, "no code redeemed for a foreign browser");
    let tokens = flow.signed_in(&s).await;
    assert_eq!(identity(&s, &tokens).await.0, ALICE.to_string());

    // A state issued for `corp`, brought to `other`'s callback (with other's own code).
    let before = redeemed();
    let mut flow = web_flow(&s, &p, "corp").await;
    let mut at_other = web_flow(&s, &other, "other").await;
    flow.callback = format!(
        "/open/providers/other/callback?code={}&state={}&iss={}",
        encode(&params(&at_other.callback)["code"]),
        encode(&flow.authorize["state"]),
        encode(other.issuer()),
    );
    flow.refused(&s, 400, EXPIRED, "a state of another provider")
        .await;
    assert_eq!(
        redeemed(),
        before,
        "no code redeemed for a state of another provider"
    );
    // `other`'s own flow still works (its state was not touched).
    let tokens = at_other.signed_in(&s).await;
    assert_eq!(identity(&s, &tokens).await.0, ALICE.to_string());

    // Replay: the same callback, same browser, a second time.
    let mut flow = web_flow(&s, &p, "corp").await;
    flow.signed_in(&s).await;
    let before = redeemed();
    let r = flow.callback(&s).await;
    assert_refused(&r, 400, EXPIRED, "the same callback again");
    assert_eq!(redeemed(), before, "a replayed callback redeems nothing");
    // ... and from another browser.
    let r = Browser::default().get(&s, &flow.callback).await;
    assert_refused(&r, 400, EXPIRED, "the same callback from another browser");
}

// ---------------------------------------------------------------------------------------------
// The ID token and the response
// ---------------------------------------------------------------------------------------------

type Tamper = fn(&Provider, &mut Flow);

#[tokio::test]
async fn a_bad_id_token_or_response_fails_the_sign_in() {
    let p = Provider::start().await;
    p.sign_in_as(alice("alice-at-corp"));
    let s = corp_gateway(&p, "link_by_email = true").await;
    let failed = format!("Sign-in with {LABEL} failed");
    // A control first: untampered, it works.
    let tokens = web_flow(&s, &p, "corp").await.signed_in(&s).await;
    assert_eq!(identity(&s, &tokens).await.0, ALICE.to_string());

    let cases: Vec<(&str, Tamper)> = vec![
        ("a wrong nonce", |p, _| {
            p.edit(|c| c["nonce"] = json!("not-the-nonce-the-gateway-sent"))
        }),
        ("no nonce", |p, _| {
            p.edit(|c| {
                c.as_object_mut().unwrap().remove("nonce");
            })
        }),
        ("another issuer in the ID token", |p, _| {
            p.edit(|c| c["iss"] = json!("http://127.0.0.1:1"))
        }),
        ("another audience", |p, _| {
            p.edit(|c| c["aud"] = json!("someone-else"))
        }),
        ("azp another client", |p, _| {
            p.edit(|c| {
                c["aud"] = json!([CLIENT_ID, "someone-else"]);
                c["azp"] = json!("someone-else");
            })
        }),
        ("expired", |p, _| {
            p.edit(|c| {
                let now = jsonwebtoken::get_current_timestamp();
                c["exp"] = json!(now - 600);
                c["iat"] = json!(now - 1200);
            })
        }),
        ("signed by another key", |p, _| {
            p.with(|s| s.signer = Signer::OtherKey)
        }),
        ("HS256 keyed with the client secret", |p, _| {
            p.with(|s| s.signer = Signer::Hs256)
        }),
        ("alg none", |p, _| p.with(|s| s.signer = Signer::None)),
        ("the iss parameter is not the issuer", |_, flow| {
            let mut query = form_urlencoded::Serializer::new(String::new());
            for (name, value) in params(&flow.callback) {
                let value = if name == "iss" {
                    "https://evil.example".to_owned()
                } else {
                    value
                };
                query.append_pair(&name, &value);
            }
            let path = flow.callback.split('?').next().unwrap().to_owned();
            flow.callback = format!("{path}?{}", query.finish());
        }),
        ("the token endpoint refuses the code", |p, _| {
            p.with(|s| s.token_error = Some("invalid_grant".into()))
        }),
        ("no code", |_, flow| {
            let path = flow.callback.split('?').next().unwrap().to_owned();
            let mut query = form_urlencoded::Serializer::new(String::new());
            for (name, value) in params(&flow.callback) {
                if name != "code" {
                    query.append_pair(&name, &value);
                }
            }
            flow.callback = format!("{path}?{}", query.finish());
        }),
        ("UserInfo speaks of another subject", |p, _| {
            // No e-mail in the ID token: the gateway asks UserInfo (Core §5.3.4: its sub
            // must be the ID token's).
            p.edit(|c| {
                let c = c.as_object_mut().unwrap();
                c.remove("email");
                c.remove("email_verified");
            });
            p.with(|s| {
                s.userinfo = json!({"sub": "someone-else", "email": "alice@example.com",
                                    "email_verified": true})
            });
        }),
    ];
    for (what, tamper) in cases {
        p.with(|s| {
            s.reset();
            s.userinfo = json!({});
        });
        let mut flow = web_flow(&s, &p, "corp").await;
        tamper(&p, &mut flow);
        flow.refused(&s, 400, &failed, what).await;
    }
    // A code injected into another sign-in (the person's state, an attacker's code): the
    // verifier is not the code's, the provider refuses it.
    p.with(|s| {
        s.reset();
        s.userinfo = json!({});
    });
    let mut victim = web_flow(&s, &p, "corp").await;
    let attacker = web_flow(&s, &p, "corp").await;
    let mut query = form_urlencoded::Serializer::new(String::new());
    for (name, value) in params(&victim.callback) {
        let value = if name == "code" {
            params(&attacker.callback)["code"].clone()
        } else {
            value
        };
        query.append_pair(&name, &value);
    }
    victim.callback = format!("/open/providers/corp/callback?{}", query.finish());
    victim.refused(&s, 400, &failed, "an injected code").await;

    // An azp equal to the client id is fine (the control for the azp case).
    p.with(|s| {
        s.reset();
        s.userinfo = json!({});
    });
    p.edit(|c| {
        c["aud"] = json!([CLIENT_ID, "someone-else"]);
        c["azp"] = json!(CLIENT_ID);
    });
    let tokens = web_flow(&s, &p, "corp").await.signed_in(&s).await;
    assert_eq!(identity(&s, &tokens).await.0, ALICE.to_string());
}

#[tokio::test]
async fn the_providers_error_is_shown_in_words() {
    let p = Provider::start().await;
    p.sign_in_as(alice("alice-at-corp"));
    let s = corp_gateway(&p, "link_by_email = true").await;
    p.with(|s| {
        s.deny = Some((
            "access_denied".into(),
            "The user declined the consent".into(),
        ))
    });
    let mut flow = web_flow(&s, &p, "corp").await;
    assert!(params(&flow.callback).contains_key("error"));
    // The spec's wording is "Corp SSO did not sign you in: access_denied" + the description;
    // read as: the label, that it did not sign you in, the error code and the description
    // (the code may come with words around it).
    let r = flow
        .refused(&s, 400, "Corp SSO did not sign you in", "access_denied")
        .await;
    let html = r.text();
    assert!(html.contains("access_denied"), "the error code: {html}");
    assert!(html.contains("The user declined the consent"), "{html}");
    assert!(
        html.contains("href=\"/open/authorize/index"),
        "a link back to the page: {html}"
    );
    assert!(p.token_requests().is_empty(), "nothing to redeem");
}

// ---------------------------------------------------------------------------------------------
// Linking and provisioning
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn linking_by_email_needs_a_verified_address_and_never_links_an_admin() {
    const UNLINKED: &str = "No account here is linked";
    let p = Provider::start().await;
    let s = corp_gateway(&p, "link_by_email = true").await;
    let now = authgate::store::now();
    let patch = UserPatch {
        email: Some(Some("boss@example.com".into())),
        ..UserPatch::default()
    };
    s.store.update_user(BOSS, patch, now).await.unwrap();

    let cases = [
        ("email_verified false", json!(false), "alice@example.com"),
        (
            "email_verified \"false\"",
            json!("false"),
            "alice@example.com",
        ),
        ("email_verified missing", Value::Null, "alice@example.com"),
        (
            "the admin's verified e-mail",
            json!(true),
            "boss@example.com",
        ),
        (
            "an unknown verified e-mail",
            json!(true),
            "nobody@example.com",
        ),
    ];
    for (i, (what, verified, email)) in cases.into_iter().enumerate() {
        let mut claims = json!({"sub": format!("case-{i}"), "email": email, "groups": ["staff"]});
        if !verified.is_null() {
            claims["email_verified"] = verified;
        }
        p.sign_in_as(claims);
        let mut flow = web_flow(&s, &p, "corp").await;
        flow.refused(&s, 403, UNLINKED, what).await;
    }
    assert!(
        !provider_audits(&s)
            .await
            .contains(&"provider.link".to_owned()),
        "nothing linked"
    );
    // "true" as a string counts as verified.
    p.sign_in_as(json!({
        "sub": "alice-string-verified",
        "email": "alice@example.com",
        "email_verified": "true",
        "groups": ["staff"],
    }));
    let tokens = web_flow(&s, &p, "corp").await.signed_in(&s).await;
    assert_eq!(identity(&s, &tokens).await.0, ALICE.to_string());
}

#[tokio::test]
async fn without_link_by_email_an_unlinked_person_is_refused() {
    let p = Provider::start().await;
    p.sign_in_as(alice("alice-at-corp"));
    let s = corp_gateway(&p, "").await;
    let mut flow = web_flow(&s, &p, "corp").await;
    flow.refused(
        &s,
        403,
        "No account here is linked",
        "neither link_by_email nor provision",
    )
    .await;
}

#[tokio::test]
async fn provisioning_creates_the_user_in_the_claimed_group_and_remaps_it_at_each_sign_in() {
    let p = Provider::start().await;
    let s = corp_gateway(&p, "provision = true\ngroup_claim = \"gid\"").await;
    p.sign_in_as(carol("carol-at-corp"));
    let tokens = web_flow(&s, &p, "corp").await.signed_in(&s).await;
    let carol_user = s
        .store
        .user_by_login("carol")
        .await
        .expect("carol was provisioned");
    assert_eq!(carol_user.group_id, 9);
    assert!(
        !carol_user.has_password,
        "a provisioned user has no password"
    );
    assert!(!carol_user.is_admin());
    assert_eq!(carol_user.email.as_deref(), Some("carol@example.com"));
    assert_eq!(
        identity(&s, &tokens).await,
        (carol_user.id.to_string(), "9".to_owned())
    );
    assert!(
        provider_audits(&s)
            .await
            .contains(&"provider.provision".to_owned())
    );

    // A numeric string works as well; the group follows the claim at the next sign-in.
    let mut claims = carol("carol-at-corp");
    claims["gid"] = json!("12");
    p.sign_in_as(claims);
    let tokens = web_flow(&s, &p, "corp").await.signed_in(&s).await;
    assert_eq!(s.store.user(carol_user.id).await.unwrap().group_id, 12);
    identity_settles(&s, &tokens, (carol_user.id.to_string(), "12".to_owned())).await;
    assert!(
        provider_audits(&s)
            .await
            .contains(&"provider.remap".to_owned())
    );

    // An unverified e-mail is not kept.
    let mut claims = carol("dave-at-corp");
    claims["preferred_username"] = json!("dave");
    claims["email"] = json!("dave@example.com");
    claims["email_verified"] = json!(false);
    p.sign_in_as(claims);
    web_flow(&s, &p, "corp").await.signed_in(&s).await;
    let dave = s
        .store
        .user_by_login("dave")
        .await
        .expect("dave was provisioned");
    assert_eq!(dave.email, None, "an unverified e-mail is not kept");
    assert_eq!(dave.group_id, 9);

    // A second person whose account name is taken here: refused, Bob untouched.
    let mut claims = carol("bob-at-corp");
    claims["preferred_username"] = json!("bob");
    claims["email"] = json!("bob.corp@example.com");
    p.sign_in_as(claims);
    let mut flow = web_flow(&s, &p, "corp").await;
    flow.refused(&s, 403, "", "the account name is taken").await;
    let bob = s.store.user(BOB).await.unwrap();
    assert_eq!((bob.account.as_str(), bob.group_id), ("bob", 8));
}

#[tokio::test]
async fn group_map_takes_the_first_mapped_value_in_claim_order_else_the_default() {
    let p = Provider::start().await;
    let s = corp_gateway(
        &p,
        "provision = true\ngroup_claim = \"groups\"\n\
         group_map = { engineering = 7, sales = 8 }\ndefault_group = 3",
    )
    .await;
    let steps = [
        (json!(["staff", "sales", "engineering"]), "8"),
        (json!(["engineering", "staff", "sales"]), "7"),
        (json!(["staff"]), "3"),
    ];
    let mut carol_id = None;
    for (groups, group) in steps {
        let mut claims = carol("carol-at-corp");
        claims["groups"] = groups.clone();
        p.sign_in_as(claims);
        let tokens = web_flow(&s, &p, "corp").await.signed_in(&s).await;
        let user = s.store.user_by_login("carol").await.unwrap();
        assert_eq!(*carol_id.get_or_insert(user.id), user.id, "the same user");
        assert_eq!(user.group_id.to_string(), group, "groups {groups}");
        identity_settles(&s, &tokens, (user.id.to_string(), group.to_owned())).await;
    }
}

#[tokio::test]
async fn a_disabled_user_is_refused() {
    let p = Provider::start().await;
    p.sign_in_as(alice("alice-at-corp"));
    let s = corp_gateway(&p, "link_by_email = true").await;
    web_flow(&s, &p, "corp").await.signed_in(&s).await;
    let now = authgate::store::now();
    s.store.set_disabled(ALICE, true, now).await.unwrap();
    let mut flow = web_flow(&s, &p, "corp").await;
    flow.refused(
        &s,
        403,
        "This account is disabled",
        "disabled after linking",
    )
    .await;
}

// ---------------------------------------------------------------------------------------------
// Who may sign in
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn allowed_domains_tenants_and_required_claim_turn_others_away() {
    const NOT_ALLOWED: &str = "is not allowed to sign in here";
    let domains = Provider::start().await;
    let staff = Provider::start().await;
    let entra = Provider::start().await;
    let tables = [
        entra.toml(
            "entra",
            "Entra ID",
            "allowed_tenants = [\"tenant-1\"]\nlink_by_email = true",
        ),
        domains.toml(
            "corp",
            LABEL,
            "allowed_domains = [\"example.com\"]\nlink_by_email = true",
        ),
        staff.toml(
            "staff",
            "Staff SSO",
            &format!("{STAFF_ONLY}\nlink_by_email = true"),
        ),
    ];
    let s = gateway("session_ttl = \"8h\"", &tables, &[]).await;

    // allowed_domains: the domain of a verified e-mail, or hd.
    let cases = [
        (
            "a verified e-mail elsewhere",
            json!({"sub": "d1", "email": "mallory@evil.example", "email_verified": true}),
        ),
        (
            "an unverified e-mail at example.com",
            json!({"sub": "d2", "email": "alice@example.com", "email_verified": false}),
        ),
        (
            "a look-alike domain",
            json!({"sub": "d3", "email": "alice@example.com.evil.example",
                   "email_verified": true}),
        ),
        (
            "hd elsewhere",
            json!({"sub": "d4", "hd": "evil.example", "email": "mallory@evil.example",
                   "email_verified": false}),
        ),
    ];
    for (what, claims) in cases {
        domains.sign_in_as(claims);
        let mut flow = web_flow(&s, &domains, "corp").await;
        flow.refused(&s, 403, NOT_ALLOWED, what).await;
    }
    // hd example.com is admitted (then nobody is linked to it).
    domains.sign_in_as(json!({"sub": "d5", "hd": "example.com"}));
    let mut flow = web_flow(&s, &domains, "corp").await;
    flow.refused(
        &s,
        403,
        "No account here is linked",
        "hd example.com, no e-mail",
    )
    .await;
    domains.sign_in_as(json!({"sub": "d6", "email": "alice@example.com", "email_verified": true}));
    let tokens = web_flow(&s, &domains, "corp").await.signed_in(&s).await;
    assert_eq!(identity(&s, &tokens).await.0, ALICE.to_string());

    // required_claim: the claim (string or array) holds one of the values.
    let mut cases = Vec::new();
    for (what, groups) in [
        ("groups without staff", Some(json!(["guests"]))),
        ("groups a string, not staff", Some(json!("guests"))),
        ("no groups claim", None),
        ("groups empty", Some(json!([]))),
    ] {
        let mut claims = alice("s-guest");
        match groups {
            Some(groups) => claims["groups"] = groups,
            None => {
                claims.as_object_mut().unwrap().remove("groups");
            }
        }
        cases.push((what, claims));
    }
    for (what, claims) in cases {
        staff.sign_in_as(claims);
        let mut flow = web_flow(&s, &staff, "staff").await;
        flow.refused(&s, 403, NOT_ALLOWED, what).await;
    }
    let mut claims = alice("s-alice");
    claims["groups"] = json!("staff");
    staff.sign_in_as(claims);
    let tokens = web_flow(&s, &staff, "staff").await.signed_in(&s).await;
    assert_eq!(identity(&s, &tokens).await.0, ALICE.to_string());

    // allowed_tenants: the tid claim.
    for (what, tid) in [("another tenant", Some("tenant-2")), ("no tid", None)] {
        let mut claims = alice("e-guest");
        if let Some(tid) = tid {
            claims["tid"] = json!(tid);
        }
        entra.sign_in_as(claims);
        let mut flow = web_flow(&s, &entra, "entra").await;
        flow.refused(&s, 403, NOT_ALLOWED, what).await;
    }
    let mut claims = alice("e-alice");
    claims["tid"] = json!("tenant-1");
    entra.sign_in_as(claims);
    let tokens = web_flow(&s, &entra, "entra").await.signed_in(&s).await;
    assert_eq!(identity(&s, &tokens).await.0, ALICE.to_string());
}

#[tokio::test]
async fn the_admin_role_follows_admin_claim_at_every_sign_in() {
    let p = Provider::start().await;
    let s = corp_gateway(
        &p,
        "provision = true\nadmin_claim = \"groups\"\nadmin_values = [\"authgate-admins\"]",
    )
    .await;
    let mut claims = carol("carol-at-corp");
    claims["groups"] = json!(["staff", "authgate-admins"]);
    p.sign_in_as(claims);
    web_flow(&s, &p, "corp").await.signed_in(&s).await;
    let user = s.store.user_by_login("carol").await.expect("provisioned");
    assert!(user.is_admin(), "admin by the claim: {user:?}");
    p.sign_in_as(carol("carol-at-corp"));
    web_flow(&s, &p, "corp").await.signed_in(&s).await;
    let user = s.store.user(user.id).await.unwrap();
    assert!(!user.is_admin(), "the role goes with the claim: {user:?}");
    assert!(
        provider_audits(&s)
            .await
            .contains(&"provider.remap".to_owned())
    );
}

#[tokio::test]
async fn without_the_password_form_the_pages_show_only_the_buttons() {
    let p = Provider::start().await;
    p.sign_in_as(alice("alice-at-corp"));
    let table = p.toml(
        "corp",
        LABEL,
        &format!("{STAFF_ONLY}\nlink_by_email = true"),
    );
    let s = gateway("password_form = false", &[table], &[]).await;
    let mut browser = Browser::default();
    for page in [
        authorize_url("web", "&scope=read"),
        format!("/open/signin?rd={}", encode("/app/")),
    ] {
        let r = browser.get(&s, &page).await;
        assert_eq!(r.status, 200, "{page}: {}", r.text());
        let html = r.text();
        assert!(
            button(&html, "corp").is_some(),
            "{page}: the button\n{html}"
        );
        assert!(
            !html.contains("name=\"password\""),
            "{page}: no password field\n{html}"
        );
    }
    let tokens = web_flow(&s, &p, "corp").await.signed_in(&s).await;
    assert_eq!(identity(&s, &tokens).await.0, ALICE.to_string());
}

#[tokio::test]
async fn userinfo_fills_in_an_email_the_id_token_lacks() {
    let p = Provider::start().await;
    p.sign_in_as(json!({"sub": "alice-at-corp", "groups": ["staff"]}));
    p.with(|s| {
        s.userinfo = json!({
            "sub": "alice-at-corp",
            "email": "alice@example.com",
            "email_verified": true,
        })
    });
    let s = corp_gateway(&p, "link_by_email = true").await;
    let tokens = web_flow(&s, &p, "corp").await.signed_in(&s).await;
    assert_eq!(identity(&s, &tokens).await.0, ALICE.to_string());
    let (asked, issued) = p.with(|s| (s.userinfo_requests.clone(), s.access_tokens.clone()));
    assert!(!asked.is_empty(), "userinfo was asked");
    assert_eq!(
        asked.last().unwrap().as_deref(),
        Some(format!("Bearer {}", issued.last().unwrap()).as_str()),
        "with the access token the token endpoint gave"
    );
}

// ---------------------------------------------------------------------------------------------
// max_session
// ---------------------------------------------------------------------------------------------

/// `corp` (with `rule`) capping provider sessions at 1 h, under 8 h sessions and 2 h / 30 d
/// tokens, so what the cap cuts shows.
async fn one_hour_cap(p: &Provider, rule: &str) -> Setup {
    let table = p.toml(
        "corp",
        LABEL,
        &format!("{STAFF_ONLY}\n{rule}\nmax_session = \"1h\""),
    );
    let tokens = "[tokens]\naccess_ttl = \"2h\"\nrefresh_ttl = \"30d\"";
    gateway("session_ttl = \"8h\"", &[table], &[tokens]).await
}

/// Seconds until the stored refresh token expires.
async fn refresh_lifetime(s: &Setup, token: &str) -> i64 {
    let stored = s.store.refresh_token(token).await.unwrap();
    stored.expires_at - authgate::store::now()
}

#[tokio::test]
async fn max_session_caps_a_provider_only_users_session_and_tokens() {
    let p = Provider::start().await;
    p.sign_in_as(carol("carol-at-corp"));
    let s = one_hour_cap(&p, "provision = true").await;
    let mut flow = web_flow(&s, &p, "corp").await;
    let r = flow.callback_ok(&s).await;
    let cookie = set_cookie(&r, SESSION).expect("a session cookie");
    let age = max_age(cookie);
    assert!(
        (1..=3600).contains(&age),
        "the session is capped at 1h: {cookie}"
    );
    let tokens = flow.tokens_after(&s, &r).await;
    let expires_in = tokens["expires_in"].as_i64().unwrap();
    assert!(expires_in <= 3600, "access token capped: {tokens}");
    let refresh = tokens["refresh_token"].as_str().expect("a refresh token");
    let left = refresh_lifetime(&s, refresh).await;
    assert!(
        left <= 3600 + 5,
        "refresh token capped: expires {left} s from now"
    );
    // A refresh does not extend it past the cap either.
    let r = s.refresh("web", refresh).await;
    assert_eq!(r.status, 200, "{}", r.text());
    let rotated = r.json();
    assert!(rotated["expires_in"].as_i64().unwrap() <= 3600, "{rotated}");
    let next = rotated["refresh_token"].as_str().unwrap();
    let left = refresh_lifetime(&s, next).await;
    assert!(
        left <= 3600 + 5,
        "rotated refresh token still capped: expires {left} s from now"
    );
}

/// A sign-in through a provider lasts at most `max_session` for everyone (the session is the
/// provider's proof), but a user with a local password keeps ordinary tokens: losing the
/// provider account does not take the local one away.
#[tokio::test]
async fn max_session_caps_the_session_not_the_tokens_of_a_user_with_a_password() {
    let p = Provider::start().await;
    p.sign_in_as(alice("alice-at-corp"));
    let s = one_hour_cap(&p, "link_by_email = true").await;
    let mut flow = web_flow(&s, &p, "corp").await;
    let r = flow.callback_ok(&s).await;
    let cookie = set_cookie(&r, SESSION).expect("a session cookie");
    assert_eq!(max_age(cookie), 3600, "the provider's sign-in: {cookie}");
    let tokens = flow.tokens_after(&s, &r).await;
    assert_eq!(tokens["expires_in"].as_i64(), Some(7200), "{tokens}");
    let refresh = tokens["refresh_token"].as_str().expect("a refresh token");
    let left = refresh_lifetime(&s, refresh).await;
    assert!(left > 29 * 86_400, "an ordinary refresh token: {left} s");
}

// ---------------------------------------------------------------------------------------------
// A provider down or slow
// ---------------------------------------------------------------------------------------------

/// The 503 page: the provider is not reachable; a link back to the page to use the password.
fn assert_unreachable(r: &Resp, what: &str) {
    assert_refused(r, 503, &format!("{LABEL} is not reachable right now"), what);
    let html = r.text();
    assert!(
        html.contains("Sign in with your password"),
        "{what}: {html}"
    );
    assert!(
        html.contains("href=\"/open/authorize/index?"),
        "{what}: a link back to the page: {html}"
    );
}

#[tokio::test]
async fn a_provider_that_is_down_at_start_is_a_503_page() {
    let port = closed_port().await;
    let p = Provider::start().await;
    // The same table, pointing at a closed port.
    let table = p
        .toml("corp", LABEL, STAFF_ONLY)
        .replace(p.issuer(), &format!("http://127.0.0.1:{port}"));
    let s = gateway("session_ttl = \"8h\"", &[table], &[]).await;
    let mut browser = Browser::default();
    let page = authorize_url("web", "&scope=read");
    let html = browser.get(&s, &page).await.text();
    let href = button(&html, "corp").expect("the button is shown anyway");
    let r = browser.get(&s, &href).await;
    assert_unreachable(&r, "discovery at a closed port");
}

#[tokio::test]
async fn a_slow_provider_is_a_503_page_at_start_and_at_the_callback() {
    let p = Provider::start().await;
    p.sign_in_as(alice("alice-at-corp"));
    p.with(|s| s.discovery_delay = Duration::from_secs(6));
    let table = p
        .toml(
            "corp",
            LABEL,
            &format!("{STAFF_ONLY}\nlink_by_email = true"),
        )
        .replace("timeout = \"2s\"", "timeout = \"1s\"");
    let s = gateway("session_ttl = \"8h\"", &[table], &[]).await;
    let mut browser = Browser::default();
    let page = authorize_url("web", "&scope=read");
    let html = browser.get(&s, &page).await.text();
    let href = button(&html, "corp").expect("the button");
    let started = Instant::now();
    let r = browser.get(&s, &href).await;
    let took = started.elapsed();
    assert_unreachable(&r, "slow discovery");
    assert!(
        took < Duration::from_secs(4),
        "the timeout is 1s; took {took:?}"
    );

    // Discovery answers again; the token endpoint is slow.
    p.with(|s| {
        s.reset();
        s.token_delay = Duration::from_secs(6);
    });
    let mut flow = web_flow(&s, &p, "corp").await;
    let started = Instant::now();
    let r = flow.callback(&s).await;
    let took = started.elapsed();
    assert_unreachable(&r, "slow token endpoint");
    assert!(
        took < Duration::from_secs(4),
        "the timeout is 1s; took {took:?}"
    );

    // And down altogether.
    let mut flow = web_flow(&s, &p, "corp").await;
    p.with(|s| s.reset());
    p.down();
    let r = flow.callback(&s).await;
    assert_unreachable(&r, "the provider is down at the callback");
    // A provider that worked a moment ago and is down now: the page says so at start
    // (no browser is sent to it).
    let mut browser = Browser::default();
    let html = browser.get(&s, &page).await.text();
    let href = button(&html, "corp").expect("the button");
    let r = browser.get(&s, &href).await;
    assert_unreachable(&r, "the provider is down at start after it worked");
}

// ---------------------------------------------------------------------------------------------
// The stub itself (no gateway): what the tests above rely on
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn the_stub_provider_answers_like_an_openid_provider() {
    use jsonwebtoken::jwk::JwkSet;
    use jsonwebtoken::{Algorithm, DecodingKey, Validation};
    use support::{get, plain_client, send};

    let p = Provider::start().await;
    p.sign_in_as(alice("alice-at-corp"));
    let client = plain_client();
    let discovery = get(
        &client,
        &format!("{}/.well-known/openid-configuration", p.issuer()),
    )
    .await
    .json();
    assert_eq!(discovery["issuer"], p.issuer());
    let jwks: JwkSet = serde_json::from_value(
        get(&client, discovery["jwks_uri"].as_str().unwrap())
            .await
            .json(),
    )
    .unwrap();
    let redirect = "https://gw.test/open/providers/corp/callback";
    let authorize = format!(
        "{}?response_type=code&client_id={CLIENT_ID}&redirect_uri={}&state=s1&nonce=n1",
        discovery["authorization_endpoint"].as_str().unwrap(),
        encode(redirect)
    );
    let back = p.authorize(&authorize).await;
    assert!(back.starts_with(&format!("{redirect}?")), "{back}");
    let back = params(&back);
    assert_eq!(back["state"], "s1");
    assert_eq!(back["iss"], p.issuer());

    let redeem = |code: String, basic: bool| {
        let mut form = form_urlencoded::Serializer::new(String::new());
        form.append_pair("grant_type", "authorization_code");
        form.append_pair("code", &code);
        form.append_pair("redirect_uri", redirect);
        let mut request = hyper::Request::post(format!("{}/token", p.issuer()))
            .header("content-type", "application/x-www-form-urlencoded");
        if basic {
            let pair = STANDARD.encode(format!("{CLIENT_ID}:{CLIENT_SECRET}"));
            request = request.header("authorization", format!("Basic {pair}"));
        }
        let body = http_body_util::Full::new(bytes::Bytes::from(form.finish()));
        send(&client, request.body(body).unwrap())
    };
    let refused = redeem(back["code"].clone(), false).await;
    assert_eq!(refused.status, 401, "no client authentication");
    let r = redeem(back["code"].clone(), true).await;
    assert_eq!(r.status, 200, "{}", r.text());
    let answer = r.json();
    let id_token = answer["id_token"].as_str().unwrap();
    let key = DecodingKey::from_jwk(&jwks.keys[0]).unwrap();
    let mut validation = Validation::new(Algorithm::RS256);
    validation.set_audience(&[CLIENT_ID]);
    validation.set_issuer(&[p.issuer()]);
    let claims = jsonwebtoken::decode::<Value>(id_token, &key, &validation)
        .unwrap()
        .claims;
    assert_eq!(claims["nonce"], "n1");
    assert_eq!(claims["sub"], "alice-at-corp");
    assert_eq!(claims["email"], "alice@example.com");
    let again = redeem(back["code"].clone(), true).await;
    assert_eq!(again.status, 400, "a code is used once");

    // Tampered tokens really are bad.
    for signer in [Signer::OtherKey, Signer::Hs256, Signer::None] {
        let token = stub::sign(signer, &claims);
        assert!(
            jsonwebtoken::decode::<Value>(&token, &key, &validation).is_err(),
            "{signer:?}"
        );
    }
    // Userinfo wants the access token.
    let userinfo = discovery["userinfo_endpoint"].as_str().unwrap();
    let request = hyper::Request::get(userinfo)
        .header(
            "authorization",
            format!("Bearer {}", answer["access_token"].as_str().unwrap()),
        )
        .body(http_body_util::Full::new(bytes::Bytes::new()))
        .unwrap();
    let r = send(&client, request).await;
    assert_eq!(r.status, 200);
    assert_eq!(r.json()["sub"], "alice-at-corp");
    assert_eq!(get(&client, userinfo).await.status, 401);

    // Down: the port is closed.
    p.down();
    tokio::time::sleep(Duration::from_millis(50)).await;
    let refused = tokio::net::TcpStream::connect(p.addr).await;
    assert!(refused.is_err(), "the port is closed");
}

#[tokio::test]
async fn a_fresh_sign_in_asked_for_by_prompt_login_or_max_age_is_not_asked_again() {
    let p = Provider::start().await;
    p.sign_in_as(alice("alice-at-corp"));
    let s = corp_gateway(&p, "link_by_email = true").await;
    let page = authorize_url("web", "&scope=read&prompt=login&max_age=0");
    let mut flow = to_provider(&s, &p, Browser::default(), &page, "corp").await;
    let r = flow.callback(&s).await;
    assert_eq!(r.status, 303, "{}", r.text());
    let back = local(r.header("location").unwrap());
    let kept = params(&back);
    assert!(!kept.contains_key("prompt"), "prompt=login dropped: {back}");
    assert!(!kept.contains_key("max_age"), "max_age dropped: {back}");
    assert_eq!(kept["client_id"], "web");
    assert_eq!(kept["state"], "st ate");
    // So the page completes at once instead of asking for the password again.
    let r = flow.browser.get(&s, &back).await;
    let code = redirect_params(&r, false);
    assert!(code.contains_key("code"), "{code:?}");
}

/// A provider's ID token is proof for the login page only: presented as a bearer token on a
/// proxied route it is refused (its keys never enter the proxy's key set), even right after
/// the gateway verified one like it at the callback.
#[tokio::test]
async fn a_providers_id_token_never_authenticates_a_proxied_request() {
    let p = Provider::start().await;
    p.sign_in_as(alice("alice-at-corp"));
    let s = corp_gateway(&p, "link_by_email = true").await;
    let mut flow = web_flow(&s, &p, "corp").await;
    let r = flow.callback(&s).await;
    assert_eq!(r.status, 303, "the sign-in works: {}", r.text());
    let now = authgate::store::now();
    let claims = json!({
        "iss": p.issuer(), "sub": "alice-at-corp", "aud": CLIENT_ID, "azp": CLIENT_ID,
        "exp": now + 600, "iat": now, "email": "alice@example.com", "email_verified": true,
        "user_id": ALICE.to_string(), "gid": 7,
    });
    let id_token = stub::sign(Signer::Good, &claims);
    let (status, body) = s.echo(&id_token).await;
    assert_eq!(status, 401, "{body:?}");
}
