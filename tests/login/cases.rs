//! Authorization code and implicit flows through the login page.

use crate::browser::*;
use crate::harness::*;

const IMPLICIT: &str = "/open/implicit";

#[tokio::test]
async fn code_flow_end_to_end_without_and_with_pkce() {
    let s = setup().await;
    // A confidential client without PKCE, exchanging at the seed endpoint.
    let mut browser = Browser::default();
    let r = browser
        .login(
            &s,
            &authorize_url("web", "&scope=read"),
            "alice@example.com",
            PASSWORD,
        )
        .await;
    let back = redirect_params(&r, false);
    assert_eq!(back["state"], "st ate");
    assert!(browser.cookies.contains_key("__Host-authgate-session"));
    let tokens = s
        .post(
            "/oauth2/authorize",
            Auth::Post("web", SECRET),
            &[
                ("grant_type", "authorization_code"),
                ("code", &back["code"]),
                ("redirect_uri", REDIRECT),
            ],
        )
        .await;
    assert_eq!(tokens.status, 200, "{}", tokens.text());
    let tokens = tokens.json();
    assert_eq!(tokens["scope"], "read");
    assert!(tokens["refresh_token"].is_string());
    let access = tokens["access_token"].as_str().unwrap();
    assert_eq!(s.echo(access).await, (200, Some(ALICE.to_string())));

    // A public client with PKCE S256, exchanging at /oauth2/token.
    let verifier = "M25iVXpKU3puUjFaYWg3T1NDTDQtcW1ROUY5YXlwalNoc0hhakxifmZHag";
    let challenge = challenge(verifier);
    let url = authorize_url(
        "spa",
        &format!("&code_challenge={challenge}&code_challenge_method=S256"),
    );
    let mut browser = Browser::default();
    let r = browser.login(&s, &url, "alice", PASSWORD).await;
    let back = redirect_params(&r, false);
    let exchange = |code: String, verifier: &'static str| {
        let s = &s;
        async move {
            s.post(
                "/oauth2/token",
                Auth::PublicId("spa"),
                &[
                    ("grant_type", "authorization_code"),
                    ("code", &code),
                    ("redirect_uri", REDIRECT),
                    ("code_verifier", verifier),
                ],
            )
            .await
        }
    };
    let wrong = exchange(
        back["code"].clone(),
        "WRONG-verifier-WRONG-verifier-WRONG-verifier-1",
    )
    .await;
    assert_oauth_error(&wrong, 400, "invalid_grant");
    // The code was burnt by the wrong verifier; a fresh one (the session spares the login).
    let r = browser.get(&s, &url).await;
    let back = redirect_params(&r, false);
    let ok = exchange(back["code"].clone(), verifier).await;
    assert_eq!(ok.status, 200, "{}", ok.text());
    let again = exchange(back["code"].clone(), verifier).await;
    assert_oauth_error(&again, 400, "invalid_grant");
}

#[tokio::test]
async fn implicit_flow_puts_the_token_in_the_fragment() {
    let s = setup().await;
    let mut browser = Browser::default();
    let url = format!("{IMPLICIT}?response_type=token&client_id=imp&state=s1&scope=read");
    let r = browser.login(&s, &url, "bob", PASSWORD).await;
    let back = redirect_params(&r, true);
    assert_eq!(back["token_type"], "Bearer");
    assert_eq!(back["state"], "s1");
    assert_eq!(back["scope"], "read");
    assert!(back["expires_in"].parse::<u64>().unwrap() > 0);
    assert!(!back.contains_key("refresh_token"));
    assert!(
        !r.header("location").unwrap().contains('?'),
        "nothing in the query"
    );
    assert_eq!(
        s.echo(&back["access_token"]).await,
        (200, Some(BOB.to_string()))
    );
    // Only for clients registered for it: others are told so at their redirect URI.
    let url = format!(
        "{IMPLICIT}?response_type=token&client_id=web&redirect_uri=https%3A%2F%2Fapp.example%2Fcb&state=s2"
    );
    let r = browser.get(&s, &url).await;
    let back = redirect_params(&r, true);
    assert_eq!(back["error"], "unauthorized_client");
    assert_eq!(back["state"], "s2");
}

#[tokio::test]
async fn bad_redirect_uris_show_an_error_page_and_redirect_nowhere() {
    let s = setup().await;
    let mut browser = Browser::default();
    let variants = [
        "https://app.example/cb/",
        "https://app.example/cb?extra=1",
        "https://app.example/cb#x",
        "https://evil.example/cb",
        "https://app.example.evil.example/cb",
        "https://user@app.example/cb",
        "https://app.example@evil.example/cb",
        "http://app.example/cb",
        "https://app.example:444/cb",
        "https://APP.example/cb",
        "https://app.example/CB",
        "https://app.example/cb/../cb",
        "//app.example/cb",
    ];
    for bad in variants {
        let encoded: String = form_urlencoded::byte_serialize(bad.as_bytes()).collect();
        for page in [AUTHORIZE, IMPLICIT] {
            let rt = if page == AUTHORIZE { "code" } else { "token" };
            let url =
                format!("{page}?response_type={rt}&client_id=web&redirect_uri={encoded}&state=x");
            let r = browser.get(&s, &url).await;
            assert_eq!(r.status, 400, "{bad}: {}", r.text());
            assert!(r.header("location").is_none(), "{bad}: redirected");
            assert!(r.header("content-type").unwrap().starts_with("text/html"));
            assert!(r.text().contains("Invalid redirect address"), "{bad}");
        }
    }
    // An unknown or missing client: the same, never a redirect.
    for url in [
        format!("{AUTHORIZE}?response_type=code&client_id=nobody&state=x"),
        format!("{AUTHORIZE}?response_type=code&redirect_uri=https%3A%2F%2Fapp.example%2Fcb"),
    ] {
        let r = browser.get(&s, &url).await;
        assert_eq!(r.status, 400);
        assert!(r.header("location").is_none());
        assert!(r.text().contains("Unknown application"));
    }
    // A POST cannot smuggle another redirect URI past the check either.
    let page = browser.get(&s, &authorize_url("web", "")).await;
    assert_eq!(page.status, 200);
    let csrf = browser.csrf();
    let r = browser
        .post(
            &s,
            AUTHORIZE,
            &[
                ("response_type", "code"),
                ("client_id", "web"),
                ("redirect_uri", "https://evil.example/cb"),
                ("csrf_token", &csrf),
                ("username", "alice"),
                ("password", PASSWORD),
                ("action", "login"),
            ],
        )
        .await;
    assert_eq!(r.status, 400);
    assert!(r.header("location").is_none());
}

#[tokio::test]
async fn csrf_token_missing_or_wrong_is_refused() {
    let s = setup().await;
    let mut browser = Browser::default();
    let page = browser.get(&s, &authorize_url("web", "")).await;
    assert_eq!(page.status, 200);
    let form = |csrf: Option<&'static str>| {
        let mut params = vec![
            ("response_type", "code"),
            ("client_id", "web"),
            ("redirect_uri", REDIRECT),
            ("username", "alice"),
            ("password", PASSWORD),
            ("action", "login"),
        ];
        if let Some(token) = csrf {
            params.push(("csrf_token", token));
        }
        params
    };
    for csrf in [None, Some("forged-token-forged-token-forged-token-123")] {
        let r = browser.post(&s, AUTHORIZE, &form(csrf)).await;
        assert_eq!(r.status, 403, "{}", r.text());
        assert!(r.header("location").is_none());
        assert!(
            !browser.cookies.contains_key("__Host-authgate-session"),
            "not logged in"
        );
    }
    // The right token from a browser without the cookie (another site posting): refused.
    let stolen = browser.csrf();
    let mut other = Browser::default();
    let mut params = form(None);
    params.push(("csrf_token", &stolen));
    let r = other.post(&s, AUTHORIZE, &params).await;
    assert_eq!(r.status, 403);
}

#[tokio::test]
async fn errors_after_validation_go_back_to_the_client_with_state() {
    let s = setup().await;
    let mut browser = Browser::default();
    let cases = [
        (
            authorize_url("web", "").replace("response_type=code", "response_type=token"),
            "unsupported_response_type",
        ),
        (authorize_url("web", "&scope=admin"), "invalid_scope"),
        (authorize_url("spa", ""), "invalid_request"), // a public client needs PKCE
        (
            authorize_url("spa", "&code_challenge=abc&code_challenge_method=plain"),
            "invalid_request",
        ),
        (authorize_url("svc", ""), "unauthorized_client"),
    ];
    for (url, error) in cases {
        let r = browser.get(&s, &url).await;
        let back = redirect_params(&r, false);
        assert_eq!(back["error"], error, "{url}");
        assert_eq!(back["state"], "st ate");
        assert!(!back.contains_key("code"));
    }
    // Cancel on the form: access_denied.
    let page = browser.get(&s, &authorize_url("web", "")).await;
    let mut fields = hidden_fields(&page.text());
    fields.push(("action".into(), "cancel".into()));
    let params: Vec<(&str, &str)> = fields
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    let back = redirect_params(&browser.post(&s, AUTHORIZE, &params).await, false);
    assert_eq!(back["error"], "access_denied");
}

#[tokio::test]
async fn wrong_passwords_rerender_the_form_then_back_off() {
    let s = setup().await;
    let mut browser = Browser::default();
    let url = authorize_url("web", "");
    let r = browser.login(&s, &url, "alice", "wrong").await;
    assert_eq!(r.status, 400);
    assert!(
        r.header("location").is_none(),
        "no code for a wrong password"
    );
    let html = r.text();
    assert!(html.contains("role=\"alert\""));
    assert!(html.contains("The login name or the password is wrong."));
    assert!(html.contains("value=\"alice\""), "the name is kept");
    let unknown = browser.login(&s, &url, "nobody", "wrong").await;
    assert_eq!(unknown.status, 400, "an unknown user looks the same");
    let mut last = None;
    for _ in 0..10 {
        let r = browser.login(&s, &url, "alice", "wrong").await;
        if r.status == 429 {
            last = Some(r);
            break;
        }
    }
    let blocked = last.expect("blocked within ten failures");
    assert!(blocked.header("retry-after").is_some());
    assert!(blocked.text().contains("Too many failed attempts"));
}

#[tokio::test]
async fn a_session_spares_the_second_login_until_logout() {
    let s = setup().await;
    let mut browser = Browser::default();
    let url = authorize_url("web", "");
    let first = browser.login(&s, &url, "alice", PASSWORD).await;
    redirect_params(&first, false);
    let again = browser.get(&s, &url).await;
    assert!(
        redirect_params(&again, false).contains_key("code"),
        "no form the second time"
    );
    // Logout: a confirmation page, then a POST with the CSRF token.
    let confirm = browser.get(&s, "/open/logout").await;
    assert_eq!(confirm.status, 200);
    let r = browser
        .post(&s, "/open/logout", &[("csrf_token", &browser.csrf())])
        .await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert!(!browser.cookies.contains_key("__Host-authgate-session"));
    let after = browser.get(&s, &url).await;
    assert_eq!(after.status, 200, "the form again");
    assert!(after.text().contains("name=\"password\""));
    // Logging out everywhere ends the session on the server too.
    let r = browser.login(&s, &url, "alice", PASSWORD).await;
    redirect_params(&r, false);
    s.store
        .revoke_user_tokens(ALICE, authgate::store::now())
        .await
        .unwrap();
    let after = browser.get(&s, &url).await;
    assert_eq!(after.status, 200, "revoked sessions ask again");
}

#[tokio::test]
async fn pages_are_never_cached_framed_or_scripted() {
    let s = setup().await;
    let mut browser = Browser::default();
    for url in [
        authorize_url("web", ""),
        format!("{AUTHORIZE}?client_id=nobody"),
    ] {
        let r = browser.get(&s, &url).await;
        assert_eq!(r.header("cache-control"), Some("no-store"));
        assert_eq!(r.header("x-frame-options"), Some("DENY"));
        let csp = r.header("content-security-policy").unwrap();
        assert!(csp.contains("frame-ancestors 'none'"), "{csp}");
        assert!(csp.contains("default-src 'none'"), "{csp}");
        assert!(!csp.contains("script-src"), "{csp}");
        assert!(!r.text().contains("<script"));
    }
    let metadata = crate::support::get(
        &s.gw.client(false),
        &s.gw.url("/.well-known/oauth-authorization-server"),
    )
    .await
    .json();
    assert_eq!(
        metadata["authorization_endpoint"],
        "https://gw.test/open/authorize/index"
    );
    // The implicit page is served, never advertised (RFC 9700 deprecates it).
    assert_eq!(
        metadata["response_types_supported"],
        serde_json::json!(["code"])
    );
}

#[tokio::test]
async fn a_login_session_idles_out_unless_used_and_its_renewal_is_server_side() {
    let s = setup_with(
        crate::support::GatewayConfig::new()
            .section("[login]\nsession_ttl = \"1h\"\nidle_timeout = \"2s\""),
    )
    .await;
    let mut browser = Browser::default();
    let url = authorize_url("web", "&scope=read");
    let r = browser.login(&s, &url, "alice", PASSWORD).await;
    assert!(redirect_params(&r, false).contains_key("code"));
    let cookie = browser.cookies["__Host-authgate-session"].clone();
    // `[login] session_ttl` is the cookie's lifetime.
    let lives_an_hour = |v: &hyper::header::HeaderValue| {
        let text = v.to_str().unwrap();
        text.starts_with("__Host-authgate-session=") && text.contains("Max-Age=3600")
    };
    assert!(
        r.headers.get_all("set-cookie").iter().any(lives_an_hour),
        "the session cookie lives session_ttl"
    );
    // Used every ~1.2 s: alive past the idle timeout since sign-in (renewed in the store; no
    // new cookie is needed for that).
    for _ in 0..2 {
        tokio::time::sleep(std::time::Duration::from_millis(1200)).await;
        let r = browser.get(&s, &url).await;
        assert!(
            redirect_params(&r, false).contains_key("code"),
            "still signed in"
        );
        assert_eq!(
            browser.cookies["__Host-authgate-session"], cookie,
            "same cookie"
        );
    }
    // Left alone longer than the idle timeout: the login form again.
    tokio::time::sleep(std::time::Duration::from_millis(3100)).await;
    let r = browser.get(&s, &url).await;
    assert_eq!(r.status, 200, "the login form: {:?}", r.header("location"));
}

#[tokio::test]
async fn signing_in_rotates_the_session() {
    let s = setup().await;
    let url = authorize_url("web", "&scope=read&prompt=login");
    let mut browser = Browser::default();
    browser.login(&s, &url, "alice", PASSWORD).await;
    let first = browser.cookies["__Host-authgate-session"].clone();
    // Signing in again (prompt=login) in the same browser: a new session, the old one ended.
    browser.login(&s, &url, "alice", PASSWORD).await;
    let second = browser.cookies["__Host-authgate-session"].clone();
    assert_ne!(first, second);
    let mut replay = Browser::default();
    replay
        .cookies
        .insert("__Host-authgate-session".into(), first);
    let r = replay.get(&s, &authorize_url("web", "&scope=read")).await;
    assert_eq!(r.status, 200, "the old session is gone: the login form");
    let mut current = Browser::default();
    current
        .cookies
        .insert("__Host-authgate-session".into(), second);
    let r = current.get(&s, &authorize_url("web", "&scope=read")).await;
    assert!(redirect_params(&r, false).contains_key("code"));
}
