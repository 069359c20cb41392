//! The requests of the golden test, one function per dialect and one for the proxy. Each case
//! is a request written out as bytes; tokens it needs come from earlier answers.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use serde_json::Value;

use crate::Golden;
use crate::harness::*;
use crate::support::{GatewayConfig, TestGateway};

const FORM: &str = "content-type: application/x-www-form-urlencoded";
const JSON: &str = "content-type: application/json";

/// A request as bytes: `Host`, the extra header lines, `Connection: close`, the body.
fn req(method: &str, target: &str, headers: &[&str], body: &str) -> String {
    let mut out = format!("{method} {target} HTTP/1.1\r\nhost: 127.0.0.1\r\n");
    for h in headers {
        out.push_str(h);
        out.push_str("\r\n");
    }
    let chunked = headers.iter().any(|h| h.starts_with("transfer-encoding"));
    if !chunked && (!body.is_empty() || method == "POST") {
        out.push_str(&format!("content-length: {}\r\n", body.len()));
    }
    out.push_str("connection: close\r\n\r\n");
    out.push_str(body);
    out
}

fn form(pairs: &[(&str, &str)]) -> String {
    let mut form = form_urlencoded::Serializer::new(String::new());
    for (name, value) in pairs {
        form.append_pair(name, value);
    }
    form.finish()
}

fn basic(id: &str, secret: &str) -> String {
    format!(
        "authorization: Basic {}",
        STANDARD.encode(format!("{id}:{secret}"))
    )
}

fn body_json(raw: &str) -> Value {
    let body = raw.split_once("\r\n\r\n").map(|(_, b)| b).unwrap_or("");
    serde_json::from_str(body).unwrap_or_else(|e| panic!("not JSON ({e}): {raw}"))
}

fn field(raw: &str, pointer: &str) -> String {
    let value = body_json(raw);
    match value.pointer(pointer) {
        Some(Value::String(s)) => s.clone(),
        other => panic!("{pointer}: {other:?} in {raw}"),
    }
}

async fn post(
    g: &mut Golden,
    gw: &TestGateway,
    case: &str,
    path: &str,
    h: &[&str],
    body: &str,
) -> String {
    let mut headers = vec![FORM];
    headers.extend_from_slice(h);
    g.case(gw, case, &req("POST", path, &headers, body)).await
}

pub async fn oauth2() {
    let s = setup().await;
    let gw = &s.gw;
    let mut g = Golden::new("oauth2");
    let web = basic("web", SECRET);
    let password = form(&[
        ("grant_type", "password"),
        ("username", "alice"),
        ("password", PASSWORD),
    ]);
    let ok = post(
        &mut g,
        gw,
        "password grant",
        "/oauth2/token",
        &[&web],
        &password,
    )
    .await;
    let refresh = field(&ok, "/refresh_token");
    let access = field(&ok, "/access_token");
    post(
        &mut g,
        gw,
        "password grant, client_secret_post",
        "/oauth2/token",
        &[],
        &form(&[
            ("grant_type", "password"),
            ("client_id", "web"),
            ("client_secret", SECRET),
            ("username", "alice"),
            ("password", PASSWORD),
            ("scope", "read"),
        ]),
    )
    .await;
    post(
        &mut g,
        gw,
        "wrong password",
        "/oauth2/token",
        &[&web],
        &form(&[
            ("grant_type", "password"),
            ("username", "alice"),
            ("password", "nope"),
        ]),
    )
    .await;
    post(
        &mut g,
        gw,
        "unknown user",
        "/oauth2/token",
        &[&web],
        &form(&[
            ("grant_type", "password"),
            ("username", "nobody"),
            ("password", "nope"),
        ]),
    )
    .await;
    post(
        &mut g,
        gw,
        "wrong client secret",
        "/oauth2/token",
        &[&basic("web", "wrong")],
        &password,
    )
    .await;
    post(
        &mut g,
        gw,
        "unknown client",
        "/oauth2/token",
        &[&basic("ghost", "x")],
        &password,
    )
    .await;
    post(&mut g, gw, "no client", "/oauth2/token", &[], &password).await;
    post(
        &mut g,
        gw,
        "two client authentications",
        "/oauth2/token",
        &[&web],
        &form(&[
            ("grant_type", "password"),
            ("client_id", "web"),
            ("client_secret", SECRET),
            ("username", "alice"),
            ("password", PASSWORD),
        ]),
    )
    .await;
    post(
        &mut g,
        gw,
        "missing grant_type",
        "/oauth2/token",
        &[&web],
        &form(&[("username", "alice")]),
    )
    .await;
    post(
        &mut g,
        gw,
        "unsupported grant_type",
        "/oauth2/token",
        &[&web],
        &form(&[("grant_type", "magic")]),
    )
    .await;
    post(
        &mut g,
        gw,
        "repeated parameter",
        "/oauth2/token",
        &[&web],
        "grant_type=password&grant_type=password",
    )
    .await;
    post(
        &mut g,
        gw,
        "missing password",
        "/oauth2/token",
        &[&web],
        &form(&[("grant_type", "password"), ("username", "alice")]),
    )
    .await;
    post(
        &mut g,
        gw,
        "grant not registered",
        "/oauth2/token",
        &[&basic("svc", SECRET)],
        &password,
    )
    .await;
    post(
        &mut g,
        gw,
        "scope beyond registration",
        "/oauth2/token",
        &[&web],
        &form(&[
            ("grant_type", "password"),
            ("username", "alice"),
            ("password", PASSWORD),
            ("scope", "admin"),
        ]),
    )
    .await;
    g.case(
        gw,
        "GET on the token endpoint",
        &req("GET", "/oauth2/token", &[], ""),
    )
    .await;
    g.case(
        gw,
        "text/plain body",
        &req(
            "POST",
            "/oauth2/token",
            &["content-type: text/plain", &web],
            &password,
        ),
    )
    .await;
    g.case(
        gw,
        "no content type",
        &req("POST", "/oauth2/token", &[&web], &password),
    )
    .await;
    let big = format!("grant_type=password&pad={}", "a".repeat(70_000));
    post(
        &mut g,
        gw,
        "body over 64 KiB",
        "/oauth2/token",
        &[&web],
        &big,
    )
    .await;
    post(
        &mut g,
        gw,
        "refresh grant",
        "/oauth2/token",
        &[&web],
        &form(&[("grant_type", "refresh_token"), ("refresh_token", &refresh)]),
    )
    .await;
    post(
        &mut g,
        gw,
        "refresh token replayed",
        "/oauth2/token",
        &[&web],
        &form(&[("grant_type", "refresh_token"), ("refresh_token", &refresh)]),
    )
    .await;
    post(
        &mut g,
        gw,
        "refresh token unknown",
        "/oauth2/token",
        &[&web],
        &form(&[("grant_type", "refresh_token"), ("refresh_token", "x")]),
    )
    .await;
    post(
        &mut g,
        gw,
        "refresh grant, missing token",
        "/oauth2/token",
        &[&web],
        &form(&[("grant_type", "refresh_token")]),
    )
    .await;
    post(
        &mut g,
        gw,
        "client credentials",
        "/oauth2/token",
        &[&basic("svc", SECRET)],
        &form(&[("grant_type", "client_credentials")]),
    )
    .await;
    post(
        &mut g,
        gw,
        "client credentials, public client",
        "/oauth2/token",
        &[],
        &form(&[("grant_type", "client_credentials"), ("client_id", "spa")]),
    )
    .await;
    let code = s.code("web", None).await;
    post(
        &mut g,
        gw,
        "authorization code",
        "/oauth2/token",
        &[&web],
        &form(&[
            ("grant_type", "authorization_code"),
            ("code", &code),
            ("redirect_uri", REDIRECT),
        ]),
    )
    .await;
    post(
        &mut g,
        gw,
        "authorization code replayed",
        "/oauth2/token",
        &[&web],
        &form(&[
            ("grant_type", "authorization_code"),
            ("code", &code),
            ("redirect_uri", REDIRECT),
        ]),
    )
    .await;
    let code = s
        .code(
            "spa",
            Some(&challenge("verifier-verifier-verifier-verifier-verifier")),
        )
        .await;
    post(
        &mut g,
        gw,
        "authorization code, wrong verifier",
        "/oauth2/token",
        &[],
        &form(&[
            ("grant_type", "authorization_code"),
            ("client_id", "spa"),
            ("code", &code),
            ("redirect_uri", REDIRECT),
            (
                "code_verifier",
                "wrong-wrong-wrong-wrong-wrong-wrong-wrong-wrong",
            ),
        ]),
    )
    .await;
    let code = s.code("web", None).await;
    post(
        &mut g,
        gw,
        "authorization code, wrong redirect",
        "/oauth2/token",
        &[&web],
        &form(&[
            ("grant_type", "authorization_code"),
            ("code", &code),
            ("redirect_uri", "https://evil.example/cb"),
        ]),
    )
    .await;
    // Seed 003's per-grant endpoints.
    post(
        &mut g,
        gw,
        "seed password endpoint",
        "/oauth2/password",
        &[&web],
        &form(&[("username", "alice"), ("password", PASSWORD)]),
    )
    .await;
    post(
        &mut g,
        gw,
        "seed password endpoint, wrong password",
        "/oauth2/password",
        &[&web],
        &form(&[("username", "alice"), ("password", "nope")]),
    )
    .await;
    post(
        &mut g,
        gw,
        "seed client-credentials endpoint",
        "/oauth2/client-credentials",
        &[&basic("svc", SECRET)],
        "",
    )
    .await;
    let ok = post(
        &mut g,
        gw,
        "seed password endpoint for a refresh",
        "/oauth2/password",
        &[&web],
        &form(&[("username", "bob"), ("password", PASSWORD)]),
    )
    .await;
    let bob_refresh = field(&ok, "/refresh_token");
    post(
        &mut g,
        gw,
        "seed refresh endpoint",
        "/oauth2/refresh-token",
        &[&web],
        &form(&[("refresh_token", &bob_refresh)]),
    )
    .await;
    post(
        &mut g,
        gw,
        "seed refresh endpoint, unknown token",
        "/oauth2/refresh-token",
        &[&web],
        &form(&[("refresh_token", "nope")]),
    )
    .await;
    g.case(gw, "seed authorize endpoint, GET", &req("GET", "/oauth2/authorize?client_id=web&response_type=code&redirect_uri=https%3A%2F%2Fapp.example%2Fcb", &[], "")).await;
    post(
        &mut g,
        gw,
        "seed authorize endpoint, POST",
        "/oauth2/authorize",
        &[&web],
        &form(&[("response_type", "code")]),
    )
    .await;
    // Token exchange (RFC 8693): an admin acts for a user.
    let boss = s.login("web", "boss").await;
    let boss_token = boss["access_token"].as_str().unwrap().to_owned();
    let exchange = |subject: &str, user: &str| {
        form(&[
            (
                "grant_type",
                "urn:ietf:params:oauth:grant-type:token-exchange",
            ),
            ("subject_token", subject),
            (
                "subject_token_type",
                "urn:ietf:params:oauth:token-type:access_token",
            ),
            ("requested_subject", user),
        ])
    };
    post(
        &mut g,
        gw,
        "token exchange",
        "/oauth2/token",
        &[&web],
        &exchange(&boss_token, "100"),
    )
    .await;
    post(
        &mut g,
        gw,
        "token exchange by a non-admin",
        "/oauth2/token",
        &[&web],
        &exchange(&access, "101"),
    )
    .await;
    post(
        &mut g,
        gw,
        "token exchange, bad subject",
        "/oauth2/token",
        &[&web],
        &exchange("junk", "100"),
    )
    .await;
    // Introspection and revocation.
    post(
        &mut g,
        gw,
        "introspect an active token",
        "/oauth2/introspect",
        &[&web],
        &form(&[("token", &access)]),
    )
    .await;
    post(
        &mut g,
        gw,
        "introspect junk",
        "/oauth2/introspect",
        &[&web],
        &form(&[("token", "junk")]),
    )
    .await;
    post(
        &mut g,
        gw,
        "introspect without client",
        "/oauth2/introspect",
        &[],
        &form(&[("token", &access)]),
    )
    .await;
    post(
        &mut g,
        gw,
        "introspect, missing token",
        "/oauth2/introspect",
        &[&web],
        "",
    )
    .await;
    g.case(
        gw,
        "GET on introspect",
        &req("GET", "/oauth2/introspect", &[], ""),
    )
    .await;
    post(
        &mut g,
        gw,
        "revoke",
        "/oauth2/revoke",
        &[&web],
        &form(&[("token", &access)]),
    )
    .await;
    post(
        &mut g,
        gw,
        "revoke junk",
        "/oauth2/revoke",
        &[&web],
        &form(&[("token", "junk")]),
    )
    .await;
    post(
        &mut g,
        gw,
        "revoke without client",
        "/oauth2/revoke",
        &[],
        &form(&[("token", &access)]),
    )
    .await;
    post(
        &mut g,
        gw,
        "revoke, missing token",
        "/oauth2/revoke",
        &[&web],
        "",
    )
    .await;
    g.case(
        gw,
        "metadata",
        &req("GET", "/.well-known/oauth-authorization-server", &[], ""),
    )
    .await;
    g.case(
        gw,
        "metadata, POST",
        &req("POST", "/.well-known/oauth-authorization-server", &[], ""),
    )
    .await;
    g.case(gw, "JWKS", &req("GET", "/.well-known/jwks.json", &[], ""))
        .await;
    // The back-off: failures for one account until the gateway asks the client to wait.
    let wrong = form(&[
        ("grant_type", "password"),
        ("username", "bob"),
        ("password", "nope"),
    ]);
    for attempt in 1..=6 {
        post(
            &mut g,
            gw,
            &format!("back-off, attempt {attempt}"),
            "/oauth2/token",
            &[&web],
            &wrong,
        )
        .await;
    }
    g.check();
}

pub async fn login() {
    let s = setup().await;
    let gw = &s.gw;
    let mut g = Golden::new("login");
    let query =
        "client_id=web&response_type=code&redirect_uri=https%3A%2F%2Fapp.example%2Fcb&state=s1";
    let page = g
        .case(
            gw,
            "login page",
            &req("GET", &format!("/open/authorize/index?{query}"), &[], ""),
        )
        .await;
    g.case(gw, "unknown client", &req("GET", "/open/authorize/index?client_id=nope&response_type=code&redirect_uri=https%3A%2F%2Fapp.example%2Fcb", &[], "")).await;
    g.case(gw, "public client without PKCE", &req("GET", "/open/authorize/index?client_id=spa&response_type=code&redirect_uri=https%3A%2F%2Fapp.example%2Fcb&state=s1", &[], "")).await;
    g.case(gw, "unregistered redirect", &req("GET", "/open/authorize/index?client_id=spa&response_type=code&redirect_uri=https%3A%2F%2Fevil.example%2Fcb", &[], "")).await;
    g.case(gw, "unsupported response type", &req("GET", "/open/authorize/index?client_id=spa&response_type=token&redirect_uri=https%3A%2F%2Fapp.example%2Fcb&state=s1", &[], "")).await;
    g.case(
        gw,
        "bad scope",
        &req(
            "GET",
            &format!("/open/authorize/index?{query}&scope=admin"),
            &[],
            "",
        ),
    )
    .await;
    g.case(gw, "implicit page", &req("GET", "/open/implicit?client_id=imp&response_type=token&redirect_uri=https%3A%2F%2Fapp.example%2Fcb&state=s2", &[], "")).await;
    g.case(
        gw,
        "DELETE on the login page",
        &req("DELETE", &format!("/open/authorize/index?{query}"), &[], ""),
    )
    .await;
    let csrf = page
        .lines()
        .find_map(|l| l.strip_prefix("set-cookie: authgate_csrf="))
        .and_then(|v| v.split(';').next())
        .unwrap_or_else(|| panic!("a CSRF cookie in {page}"))
        .to_owned();
    let cookie = format!("cookie: authgate_csrf={csrf}");
    let target = "/open/authorize/index";
    let hidden = |token: &str, action: &str| {
        form(&[
            ("response_type", "code"),
            ("client_id", "web"),
            ("redirect_uri", REDIRECT),
            ("state", "s1"),
            ("csrf_token", token),
            ("action", action),
        ])
    };
    let submit = |password: &str, token: &str| {
        form(&[
            ("response_type", "code"),
            ("client_id", "web"),
            ("redirect_uri", REDIRECT),
            ("state", "s1"),
            ("csrf_token", token),
            ("username", "alice"),
            ("password", password),
            ("action", "login"),
        ])
    };
    post(
        &mut g,
        gw,
        "sign in, wrong password",
        target,
        &[&cookie],
        &submit("nope", &csrf),
    )
    .await;
    post(
        &mut g,
        gw,
        "sign in, wrong CSRF token",
        target,
        &[&cookie],
        &submit(PASSWORD, "forged"),
    )
    .await;
    post(
        &mut g,
        gw,
        "sign in, no CSRF cookie",
        target,
        &[],
        &submit(PASSWORD, &csrf),
    )
    .await;
    post(
        &mut g,
        gw,
        "cancel",
        target,
        &[&cookie],
        &hidden(&csrf, "cancel"),
    )
    .await;
    let signed_in = post(
        &mut g,
        gw,
        "sign in",
        target,
        &[&cookie],
        &submit(PASSWORD, &csrf),
    )
    .await;
    let session = signed_in
        .lines()
        .find_map(|l| l.strip_prefix("set-cookie: authgate_session="))
        .and_then(|v| v.split(';').next())
        .unwrap_or_default()
        .to_owned();
    let with_session = format!("cookie: authgate_session={session}; authgate_csrf={csrf}");
    g.case(
        gw,
        "signed in already",
        &req("GET", &format!("{target}?{query}"), &[&with_session], ""),
    )
    .await;
    g.case(gw, "implicit, signed in", &req("GET", "/open/implicit?client_id=imp&response_type=token&redirect_uri=https%3A%2F%2Fapp.example%2Fcb&state=s2", &[&with_session], "")).await;
    post(
        &mut g,
        gw,
        "logout",
        "/open/logout",
        &[&with_session],
        &form(&[("csrf_token", &csrf)]),
    )
    .await;
    g.case(
        gw,
        "logout, GET",
        &req("GET", "/open/logout", &[&with_session], ""),
    )
    .await;
    g.check();
}

const MOBILE_ID: &str = "MOBrBDS8blbauoSck0ZfDbtuzpyT";
const MOBILE_SECRET: &str = "lsACyCD94FhDUtGTXi3QzcFE2uU1hqtDaKeqrdwj";

pub async fn mobile() {
    let s = setup_with(GatewayConfig::new().section("[dialects.mobile]")).await;
    let now = authgate::store::now();
    let client = authgate::store::NewClient {
        id: MOBILE_ID.into(),
        public: true,
        grants: vec![
            authgate::store::GrantType::Password,
            authgate::store::GrantType::RefreshToken,
        ],
        ..authgate::store::NewClient::default()
    };
    s.store.add_client(client, None, now).await.unwrap();
    let gw = &s.gw;
    let mut g = Golden::new("mobile");
    let login = |user: &str, password: &str| {
        form(&[
            ("client_id", MOBILE_ID),
            ("client_secret", MOBILE_SECRET),
            ("grant_type", "password"),
            ("username", user),
            ("password", password),
        ])
    };
    let ok = g
        .case(
            gw,
            "GET password grant",
            &req(
                "GET",
                &format!("/auth/token?{}", login("alice", PASSWORD)),
                &[],
                "",
            ),
        )
        .await;
    let refresh = field(&ok, "/response/refresh_token");
    let access = field(&ok, "/response/access_token");
    post(
        &mut g,
        gw,
        "POST password grant",
        "/auth/token",
        &[],
        &login("bob", PASSWORD),
    )
    .await;
    post(
        &mut g,
        gw,
        "wrong password",
        "/auth/token",
        &[],
        &login("alice", "nope"),
    )
    .await;
    post(
        &mut g,
        gw,
        "unknown user",
        "/auth/token",
        &[],
        &login("nobody", "nope"),
    )
    .await;
    post(
        &mut g,
        gw,
        "unknown client",
        "/auth/token",
        &[],
        &form(&[
            ("client_id", "nope"),
            ("grant_type", "password"),
            ("username", "alice"),
            ("password", PASSWORD),
        ]),
    )
    .await;
    post(
        &mut g,
        gw,
        "no client",
        "/auth/token",
        &[],
        &form(&[
            ("grant_type", "password"),
            ("username", "alice"),
            ("password", PASSWORD),
        ]),
    )
    .await;
    post(
        &mut g,
        gw,
        "missing grant_type",
        "/auth/token",
        &[],
        &form(&[("client_id", MOBILE_ID), ("client_secret", MOBILE_SECRET)]),
    )
    .await;
    post(
        &mut g,
        gw,
        "unsupported grant_type",
        "/auth/token",
        &[],
        &form(&[
            ("client_id", MOBILE_ID),
            ("client_secret", MOBILE_SECRET),
            ("grant_type", "client_credentials"),
        ]),
    )
    .await;
    post(
        &mut g,
        gw,
        "missing password",
        "/auth/token",
        &[],
        &form(&[
            ("client_id", MOBILE_ID),
            ("client_secret", MOBILE_SECRET),
            ("grant_type", "password"),
            ("username", "alice"),
        ]),
    )
    .await;
    let refresh_form = |token: &str| {
        form(&[
            ("client_id", MOBILE_ID),
            ("client_secret", MOBILE_SECRET),
            ("grant_type", "refresh_token"),
            ("refresh_token", token),
        ])
    };
    g.case(
        gw,
        "opaque token on the proxy path",
        &req(
            "GET",
            "/echo/x",
            &[&format!("authorization: Bearer {access}")],
            "",
        ),
    )
    .await;
    post(
        &mut g,
        gw,
        "refresh",
        "/auth/token",
        &[],
        &refresh_form(&refresh),
    )
    .await;
    post(
        &mut g,
        gw,
        "refresh replayed",
        "/auth/token",
        &[],
        &refresh_form(&refresh),
    )
    .await;
    post(
        &mut g,
        gw,
        "refresh unknown",
        "/auth/token",
        &[],
        &refresh_form("nope"),
    )
    .await;
    g.case(gw, "PUT", &req("PUT", "/auth/token", &[], "")).await;
    g.check();
}

pub async fn passport() {
    let s = setup_with(GatewayConfig::new().section("[dialects.passport]\nrsa_bits = 2048")).await;
    let gw = &s.gw;
    let mut g = Golden::new("passport");
    let phone = "+86 138 0000 0000";
    let login = |user: &str, password: &str| {
        form(&[
            ("grant_type", "password"),
            ("client_id", "web"),
            ("client_secret", SECRET),
            ("username", user),
            ("password", password),
            ("scope", ""),
        ])
    };
    let ok = post(
        &mut g,
        gw,
        "password grant, form",
        "/oauth/token",
        &[],
        &login(phone, PASSWORD),
    )
    .await;
    let refresh = field(&ok, "/refresh_token");
    let json = serde_json::json!({"grant_type": "password", "client_id": "web", "client_secret": SECRET, "username": phone, "password": PASSWORD, "scope": ""}).to_string();
    g.case(
        gw,
        "password grant, JSON",
        &req("POST", "/oauth/token", &[JSON], &json),
    )
    .await;
    g.case(
        gw,
        "malformed JSON",
        &req("POST", "/oauth/token", &[JSON], "{\"grant_type\":"),
    )
    .await;
    post(
        &mut g,
        gw,
        "wrong password",
        "/oauth/token",
        &[],
        &login(phone, "nope"),
    )
    .await;
    post(
        &mut g,
        gw,
        "account name instead of phone",
        "/oauth/token",
        &[],
        &login("alice", PASSWORD),
    )
    .await;
    post(
        &mut g,
        gw,
        "wrong client secret",
        "/oauth/token",
        &[],
        &form(&[
            ("grant_type", "password"),
            ("client_id", "web"),
            ("client_secret", "nope"),
            ("username", phone),
            ("password", PASSWORD),
        ]),
    )
    .await;
    post(
        &mut g,
        gw,
        "missing grant_type",
        "/oauth/token",
        &[],
        &form(&[("client_id", "web"), ("client_secret", SECRET)]),
    )
    .await;
    post(
        &mut g,
        gw,
        "unsupported grant_type",
        "/oauth/token",
        &[],
        &form(&[
            ("grant_type", "magic"),
            ("client_id", "web"),
            ("client_secret", SECRET),
        ]),
    )
    .await;
    post(
        &mut g,
        gw,
        "missing username",
        "/oauth/token",
        &[],
        &form(&[
            ("grant_type", "password"),
            ("client_id", "web"),
            ("client_secret", SECRET),
            ("password", PASSWORD),
        ]),
    )
    .await;
    post(
        &mut g,
        gw,
        "invalid scope",
        "/oauth/token",
        &[],
        &form(&[
            ("grant_type", "password"),
            ("client_id", "web"),
            ("client_secret", SECRET),
            ("username", phone),
            ("password", PASSWORD),
            ("scope", "admin"),
        ]),
    )
    .await;
    let refresh_form = |token: &str| {
        form(&[
            ("grant_type", "refresh_token"),
            ("client_id", "web"),
            ("client_secret", SECRET),
            ("refresh_token", token),
        ])
    };
    post(
        &mut g,
        gw,
        "refresh",
        "/oauth/token",
        &[],
        &refresh_form(&refresh),
    )
    .await;
    post(
        &mut g,
        gw,
        "refresh replayed",
        "/oauth/token",
        &[],
        &refresh_form(&refresh),
    )
    .await;
    g.case(gw, "GET", &req("GET", "/oauth/token", &[], ""))
        .await;
    g.check();
}

const APP_ID: &str = "app-1";

pub async fn app() {
    let s = setup_with(GatewayConfig::new().section("[dialects.app]\nencrypt_type = 1")).await;
    let now = authgate::store::now();
    use authgate::store::GrantType::{Password, TokenExchange};
    for (id, app_id, public) in [("mobile", APP_ID, true), ("backend", "app-conf", false)] {
        let client = authgate::store::NewClient {
            id: id.into(),
            public,
            app_id: Some(app_id.into()),
            grants: vec![Password, TokenExchange],
            ..authgate::store::NewClient::default()
        };
        s.store
            .add_client(client, (!public).then_some(SECRET), now)
            .await
            .unwrap();
    }
    let gw = &s.gw;
    let mut g = Golden::new("app");
    let app = format!("app_id: {APP_ID}");
    let by_id = |user: i64, password: &str| {
        serde_json::json!({"user_id": user, "password": password, "device_guid": "dev-1"})
            .to_string()
    };
    let ok = g
        .case(
            gw,
            "/token/id",
            &req("POST", "/token/id", &[&app, JSON], &by_id(ALICE, PASSWORD)),
        )
        .await;
    let alice = field(&ok, "/data/token");
    g.case(
        gw,
        "/token/login, form",
        &req(
            "POST",
            "/token/login",
            &[&app, FORM],
            &form(&[("login_name", "alice@example.com"), ("password", PASSWORD)]),
        ),
    )
    .await;
    g.case(
        gw,
        "/token/user",
        &req(
            "POST",
            "/token/user",
            &[&app, JSON],
            &serde_json::json!({"name": "bob", "password": PASSWORD}).to_string(),
        ),
    )
    .await;
    g.case(
        gw,
        "/token/user with an e-mail",
        &req(
            "POST",
            "/token/user",
            &[&app, JSON],
            &serde_json::json!({"name": "alice@example.com", "password": PASSWORD}).to_string(),
        ),
    )
    .await;
    g.case(
        gw,
        "wrong password",
        &req("POST", "/token/id", &[&app, JSON], &by_id(ALICE, "nope")),
    )
    .await;
    g.case(
        gw,
        "unknown user",
        &req("POST", "/token/id", &[&app, JSON], &by_id(999, "nope")),
    )
    .await;
    g.case(
        gw,
        "no app_id",
        &req("POST", "/token/id", &[JSON], &by_id(ALICE, PASSWORD)),
    )
    .await;
    g.case(
        gw,
        "unknown app_id",
        &req(
            "POST",
            "/token/id",
            &["app_id: nope", JSON],
            &by_id(ALICE, PASSWORD),
        ),
    )
    .await;
    g.case(
        gw,
        "confidential app_id",
        &req(
            "POST",
            "/token/id",
            &["app_id: app-conf", JSON],
            &by_id(ALICE, PASSWORD),
        ),
    )
    .await;
    g.case(
        gw,
        "user_id as a string",
        &req(
            "POST",
            "/token/id",
            &[&app, JSON],
            "{\"user_id\":\"abc\",\"password\":\"x\"}",
        ),
    )
    .await;
    g.case(
        gw,
        "missing password",
        &req("POST", "/token/id", &[&app, JSON], "{\"user_id\":100}"),
    )
    .await;
    g.case(
        gw,
        "malformed JSON",
        &req("POST", "/token/id", &[&app, JSON], "{"),
    )
    .await;
    g.case(
        gw,
        "text/plain body",
        &req(
            "POST",
            "/token/id",
            &[&app, "content-type: text/plain"],
            "x",
        ),
    )
    .await;
    g.case(gw, "GET", &req("GET", "/token/id", &[&app], ""))
        .await;
    let boss = g
        .case(
            gw,
            "admin signs in",
            &req("POST", "/token/id", &[&app, JSON], &by_id(BOSS, PASSWORD)),
        )
        .await;
    let boss = field(&boss, "/data/token");
    let boss_header = format!("access-token: {boss}");
    let alice_header = format!("access-token: {alice}");
    g.case(
        gw,
        "admin acts for a user",
        &req(
            "POST",
            "/token/id",
            &[&app, &boss_header, &format!("user_id: {ALICE}")],
            "",
        ),
    )
    .await;
    g.case(
        gw,
        "admin acts for a group",
        &req(
            "POST",
            "/token/login",
            &[&app, &boss_header, "group_id: 42"],
            "",
        ),
    )
    .await;
    g.case(
        gw,
        "non-admin acts for a user",
        &req(
            "POST",
            "/token/id",
            &[&app, &alice_header, &format!("user_id: {BOB}")],
            "",
        ),
    )
    .await;
    g.case(
        gw,
        "acting without a token",
        &req("POST", "/token/id", &[&app, "group_id: 42"], ""),
    )
    .await;
    g.case(
        gw,
        "admin acts for another admin",
        &req(
            "POST",
            "/token/id",
            &[&app, &boss_header, &format!("user_id: {ROOT2}")],
            "",
        ),
    )
    .await;
    g.case(
        gw,
        "acting for an unknown user",
        &req(
            "POST",
            "/token/id",
            &[&app, &boss_header, "user_id: 424242"],
            "",
        ),
    )
    .await;
    g.case(
        gw,
        "acting with a junk token",
        &req(
            "POST",
            "/token/id",
            &[&app, "access-token: junk", "user_id: 100"],
            "",
        ),
    )
    .await;
    g.case(
        gw,
        "acting for a malformed user id",
        &req(
            "POST",
            "/token/id",
            &[&app, &boss_header, "user_id: 1 2"],
            "",
        ),
    )
    .await;
    g.check();
}

pub async fn proxy() {
    // An upstream that accepts and never answers.
    let slow = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let slow_addr = slow.local_addr().unwrap();
    let config = GatewayConfig::new()
        .route("prefix = \"/admin\"\nupstream = \"builtin:echo\"\nauth = \"admin\"")
        .route("prefix = \"/pub\"\nupstream = \"builtin:echo\"\nauth = \"public\"")
        .route("prefix = \"/scoped\"\nupstream = \"builtin:echo\"\nscopes = [\"delete\"]")
        .route("prefix = \"/aud\"\nupstream = \"builtin:echo\"\naudiences = [\"other-api\"]")
        .route("prefix = \"/get-only\"\nupstream = \"builtin:echo\"\nmethods = [\"GET\"]")
        .route("prefix = \"/small\"\nupstream = \"builtin:echo\"\nmax_body_bytes = \"8B\"")
        .route("prefix = \"/limited\"\nupstream = \"builtin:echo\"\nrate_limit = { requests = 1, per = \"1h\", burst = 1 }")
        .route("prefix = \"/down\"\nupstream = \"http://127.0.0.1:9\"\nauth = \"public\"")
        .route(&format!("prefix = \"/slow\"\nupstream = \"http://{slow_addr}\"\nauth = \"public\"\ntimeout = \"300ms\""))
        .route("prefix = \"/imp\"\nupstream = \"builtin:echo\"\nimpersonation = true")
        .route("prefix = \"/legacy\"\nupstream = \"builtin:echo\"\nmethod_override = true");
    let s = setup_with(config).await;
    let gw = &s.gw;
    let mut g = Golden::new("proxy");
    let alice = s.login("web", "alice").await["access_token"]
        .as_str()
        .unwrap()
        .to_owned();
    let boss = s.login("web", "boss").await["access_token"]
        .as_str()
        .unwrap()
        .to_owned();
    let svc = {
        let r = s
            .post(
                "/oauth2/token",
                Auth::Basic("svc", SECRET),
                &[("grant_type", "client_credentials")],
            )
            .await;
        r.json()["access_token"].as_str().unwrap().to_owned()
    };
    let bearer = |t: &str| format!("authorization: Bearer {t}");
    let (alice_h, boss_h, svc_h) = (bearer(&alice), bearer(&boss), bearer(&svc));
    g.case(
        gw,
        "user token",
        &req(
            "GET",
            "/echo/x?a=1",
            &[
                &alice_h,
                "x-forwarded-for: 10.0.0.1",
                "remote-user: mallory",
            ],
            "",
        ),
    )
    .await;
    g.case(
        gw,
        "user token, identity header sent",
        &req(
            "GET",
            "/echo/x?a=1",
            &[&alice_h, "user_id: 7", "x-forwarded-for: 10.0.0.1"],
            "",
        ),
    )
    .await;
    g.case(
        gw,
        "admin impersonates",
        &req(
            "GET",
            "/imp/x",
            &[&boss_h, &format!("user_id: {ALICE}")],
            "",
        ),
    )
    .await;
    g.case(gw, "public route", &req("GET", "/pub/x", &[], ""))
        .await;
    g.case(gw, "no token", &req("GET", "/echo/x", &[], ""))
        .await;
    g.case(gw, "no token, HEAD", &req("HEAD", "/echo/x", &[], ""))
        .await;
    g.case(
        gw,
        "junk token",
        &req("GET", "/echo/x", &["authorization: Bearer junk"], ""),
    )
    .await;
    g.case(
        gw,
        "tampered token",
        &req("GET", "/echo/x", &[&bearer(&format!("{alice}x"))], ""),
    )
    .await;
    g.case(
        gw,
        "two tokens",
        &req(
            "GET",
            "/echo/x",
            &[&alice_h, &format!("access-token: {alice}")],
            "",
        ),
    )
    .await;
    g.case(
        gw,
        "Basic scheme",
        &req("GET", "/echo/x", &["authorization: Basic YTpi"], ""),
    )
    .await;
    g.case(
        gw,
        "client token on a user route",
        &req("GET", "/echo/x", &[&svc_h], ""),
    )
    .await;
    g.case(gw, "no route", &req("GET", "/nowhere", &[&alice_h], ""))
        .await;
    g.case(
        gw,
        "user on an admin route",
        &req("GET", "/admin/x", &[&alice_h], ""),
    )
    .await;
    g.case(
        gw,
        "missing scope",
        &req("GET", "/scoped/x", &[&alice_h], ""),
    )
    .await;
    g.case(gw, "wrong audience", &req("GET", "/aud/x", &[&alice_h], ""))
        .await;
    g.case(
        gw,
        "method not allowed",
        &req("POST", "/get-only/x", &[&alice_h], ""),
    )
    .await;
    g.case(
        gw,
        "body too large",
        &req("POST", "/small/x", &[&alice_h], "0123456789"),
    )
    .await;
    g.case(
        gw,
        "rate limit, first",
        &req("GET", "/limited/x", &[&alice_h], ""),
    )
    .await;
    g.case(
        gw,
        "rate limit, second",
        &req("GET", "/limited/x", &[&alice_h], ""),
    )
    .await;
    g.case(gw, "upstream unreachable", &req("GET", "/down/x", &[], ""))
        .await;
    g.case(gw, "upstream timeout", &req("GET", "/slow/x", &[], ""))
        .await;
    g.case(
        gw,
        "impersonation by a user",
        &req("GET", "/imp/x", &[&alice_h, &format!("user_id: {BOB}")], ""),
    )
    .await;
    g.case(
        gw,
        "impersonation by an admin, unknown user",
        &req("GET", "/imp/x", &[&boss_h, "user_id: 424242"], ""),
    )
    .await;
    g.case(
        gw,
        "impersonation by an admin, malformed id",
        &req("GET", "/imp/x", &[&boss_h, "user_id: 1 2"], ""),
    )
    .await;
    g.case(
        gw,
        "impersonation where not allowed",
        &req("GET", "/echo/x", &[&boss_h, &format!("user_id: {BOB}")], ""),
    )
    .await;
    g.case(
        gw,
        "dot-dot escaping the root",
        &req("GET", "/echo/../../x", &[&alice_h], ""),
    )
    .await;
    g.case(gw, "backslash", &req("GET", "/pub/a\\b", &[], ""))
        .await;
    g.case(
        gw,
        "encoded dot-dot-semicolon",
        &req("GET", "/pub/..;/admin/x", &[], ""),
    )
    .await;
    g.case(gw, "overlong UTF-8", &req("GET", "/pub/%c0%af", &[], ""))
        .await;
    g.case(gw, "non-UTF-8 path", &req("GET", "/pub/%ff", &[], ""))
        .await;
    g.case(
        gw,
        "reading of another route",
        &req("GET", "/pub/../admin/x;jsessionid=1", &[], ""),
    )
    .await;
    g.case(
        gw,
        "case-folded admin path",
        &req("GET", "/ADMIN/x", &[&alice_h], ""),
    )
    .await;
    g.case(
        gw,
        "two Host headers",
        &req("GET", "/pub/x", &["host: other"], ""),
    )
    .await;
    g.case(
        gw,
        "gzip transfer coding",
        &req(
            "POST",
            "/pub/x",
            &["transfer-encoding: gzip, chunked"],
            "0\r\n\r\n",
        ),
    )
    .await;
    g.case(
        gw,
        "underscore framing header",
        &req("GET", "/pub/x", &["content_length: 5"], ""),
    )
    .await;
    g.case(gw, "TRACE", &req("TRACE", "/pub/x", &[], "")).await;
    g.case(
        gw,
        "method override header",
        &req("POST", "/pub/x", &["x-http-method-override: DELETE"], ""),
    )
    .await;
    g.case(
        gw,
        "method override query",
        &req("POST", "/pub/x?_method=DELETE", &[], ""),
    )
    .await;
    g.case(
        gw,
        "token in the query",
        &req("GET", &format!("/echo/x?access_token={alice}"), &[], ""),
    )
    .await;
    g.case(
        gw,
        "headers too large",
        &req(
            "GET",
            "/pub/x",
            &[&format!("x-big: {}", "a".repeat(20_000))],
            "",
        ),
    )
    .await;
    g.case(
        gw,
        "bad chunked body",
        &req(
            "POST",
            "/pub/x",
            &["transfer-encoding: chunked"],
            "zz\r\n\r\n",
        ),
    )
    .await;
    g.case(
        gw,
        "websocket without key",
        &req(
            "GET",
            "/pub/x",
            &["upgrade: websocket", "connection: upgrade"],
            "",
        ),
    )
    .await;
    g.check();
}
