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

/// One transcript being recorded against one gateway.
struct Run<'a> {
    golden: Golden,
    gw: &'a TestGateway,
}

impl<'a> Run<'a> {
    fn new(name: &'static str, gw: &'a TestGateway) -> Run<'a> {
        Run {
            golden: Golden::new(name),
            gw,
        }
    }

    /// Sends `request` (bytes), records the answer under `case`, returns it raw.
    async fn case(&mut self, case: &str, request: &str) -> String {
        self.golden.case(self.gw, case, request).await
    }

    /// `GET target` with the given header lines.
    async fn get(&mut self, case: &str, target: &str, headers: &[&str]) -> String {
        self.case(case, &req("GET", target, headers, "")).await
    }

    /// `POST path` with a form body and the given header lines.
    async fn post(&mut self, case: &str, path: &str, headers: &[&str], body: &str) -> String {
        let mut all = vec![FORM];
        all.extend_from_slice(headers);
        self.case(case, &req("POST", path, &all, body)).await
    }

    fn check(self) {
        self.golden.check();
    }
}

pub async fn oauth2() {
    let s = setup().await;
    let gw = &s.gw;
    let mut r = Run::new("oauth2", gw);
    let web = basic("web", SECRET);
    let password = form(&[
        ("grant_type", "password"),
        ("username", "alice"),
        ("password", PASSWORD),
    ]);
    let ok = r
        .post("password grant", "/oauth2/token", &[&web], &password)
        .await;
    let refresh = field(&ok, "/refresh_token");
    let access = field(&ok, "/access_token");
    r.post(
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
    r.post(
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
    r.post(
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
    r.post(
        "wrong client secret",
        "/oauth2/token",
        &[&basic("web", "wrong")],
        &password,
    )
    .await;
    r.post(
        "unknown client",
        "/oauth2/token",
        &[&basic("ghost", "x")],
        &password,
    )
    .await;
    r.post("no client", "/oauth2/token", &[], &password).await;
    r.post(
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
    r.post(
        "missing grant_type",
        "/oauth2/token",
        &[&web],
        &form(&[("username", "alice")]),
    )
    .await;
    r.post(
        "unsupported grant_type",
        "/oauth2/token",
        &[&web],
        &form(&[("grant_type", "magic")]),
    )
    .await;
    r.post(
        "repeated parameter",
        "/oauth2/token",
        &[&web],
        "grant_type=password&grant_type=password",
    )
    .await;
    r.post(
        "missing password",
        "/oauth2/token",
        &[&web],
        &form(&[("grant_type", "password"), ("username", "alice")]),
    )
    .await;
    r.post(
        "grant not registered",
        "/oauth2/token",
        &[&basic("svc", SECRET)],
        &password,
    )
    .await;
    r.post(
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
    r.get("GET on the token endpoint", "/oauth2/token", &[])
        .await;
    r.case(
        "text/plain body",
        &req(
            "POST",
            "/oauth2/token",
            &["content-type: text/plain", &web],
            &password,
        ),
    )
    .await;
    r.case(
        "no content type",
        &req("POST", "/oauth2/token", &[&web], &password),
    )
    .await;
    let big = format!("grant_type=password&pad={}", "a".repeat(70_000));
    r.post("body over 64 KiB", "/oauth2/token", &[&web], &big)
        .await;
    r.post(
        "refresh grant",
        "/oauth2/token",
        &[&web],
        &form(&[("grant_type", "refresh_token"), ("refresh_token", &refresh)]),
    )
    .await;
    r.post(
        "refresh token replayed",
        "/oauth2/token",
        &[&web],
        &form(&[("grant_type", "refresh_token"), ("refresh_token", &refresh)]),
    )
    .await;
    r.post(
        "refresh token unknown",
        "/oauth2/token",
        &[&web],
        &form(&[("grant_type", "refresh_token"), ("refresh_token", "x")]),
    )
    .await;
    r.post(
        "refresh grant, missing token",
        "/oauth2/token",
        &[&web],
        &form(&[("grant_type", "refresh_token")]),
    )
    .await;
    r.post(
        "client credentials",
        "/oauth2/token",
        &[&basic("svc", SECRET)],
        &form(&[("grant_type", "client_credentials")]),
    )
    .await;
    r.post(
        "client credentials, public client",
        "/oauth2/token",
        &[],
        &form(&[("grant_type", "client_credentials"), ("client_id", "spa")]),
    )
    .await;
    let code = s.code("web", None).await;
    r.post(
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
    r.post(
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
    r.post(
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
    r.post(
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
    r.post(
        "seed password endpoint",
        "/oauth2/password",
        &[&web],
        &form(&[("username", "alice"), ("password", PASSWORD)]),
    )
    .await;
    r.post(
        "seed password endpoint, wrong password",
        "/oauth2/password",
        &[&web],
        &form(&[("username", "alice"), ("password", "nope")]),
    )
    .await;
    r.post(
        "seed client-credentials endpoint",
        "/oauth2/client-credentials",
        &[&basic("svc", SECRET)],
        "",
    )
    .await;
    let ok = r
        .post(
            "seed password endpoint for a refresh",
            "/oauth2/password",
            &[&web],
            &form(&[("username", "bob"), ("password", PASSWORD)]),
        )
        .await;
    let bob_refresh = field(&ok, "/refresh_token");
    r.post(
        "seed refresh endpoint",
        "/oauth2/refresh-token",
        &[&web],
        &form(&[("refresh_token", &bob_refresh)]),
    )
    .await;
    r.post(
        "seed refresh endpoint, unknown token",
        "/oauth2/refresh-token",
        &[&web],
        &form(&[("refresh_token", "nope")]),
    )
    .await;
    r.get("seed authorize endpoint, GET", "/oauth2/authorize?client_id=web&response_type=code&redirect_uri=https%3A%2F%2Fapp.example%2Fcb", &[]).await;
    r.post(
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
    r.post(
        "token exchange",
        "/oauth2/token",
        &[&web],
        &exchange(&boss_token, "100"),
    )
    .await;
    r.post(
        "token exchange by a non-admin",
        "/oauth2/token",
        &[&web],
        &exchange(&access, "101"),
    )
    .await;
    r.post(
        "token exchange, bad subject",
        "/oauth2/token",
        &[&web],
        &exchange("junk", "100"),
    )
    .await;
    // Introspection and revocation.
    r.post(
        "introspect an active token",
        "/oauth2/introspect",
        &[&web],
        &form(&[("token", &access)]),
    )
    .await;
    r.post(
        "introspect junk",
        "/oauth2/introspect",
        &[&web],
        &form(&[("token", "junk")]),
    )
    .await;
    r.post(
        "introspect without client",
        "/oauth2/introspect",
        &[],
        &form(&[("token", &access)]),
    )
    .await;
    r.post(
        "introspect, missing token",
        "/oauth2/introspect",
        &[&web],
        "",
    )
    .await;
    r.get("GET on introspect", "/oauth2/introspect", &[]).await;
    r.post(
        "revoke",
        "/oauth2/revoke",
        &[&web],
        &form(&[("token", &access)]),
    )
    .await;
    r.post(
        "revoke junk",
        "/oauth2/revoke",
        &[&web],
        &form(&[("token", "junk")]),
    )
    .await;
    r.post(
        "revoke without client",
        "/oauth2/revoke",
        &[],
        &form(&[("token", &access)]),
    )
    .await;
    r.post("revoke, missing token", "/oauth2/revoke", &[&web], "")
        .await;
    r.get("metadata", "/.well-known/oauth-authorization-server", &[])
        .await;
    r.case(
        "metadata, POST",
        &req("POST", "/.well-known/oauth-authorization-server", &[], ""),
    )
    .await;
    r.get("JWKS", "/.well-known/jwks.json", &[]).await;
    // The back-off: failures for one account until the gateway asks the client to wait.
    let wrong = form(&[
        ("grant_type", "password"),
        ("username", "bob"),
        ("password", "nope"),
    ]);
    for attempt in 1..=6 {
        r.post(
            &format!("back-off, attempt {attempt}"),
            "/oauth2/token",
            &[&web],
            &wrong,
        )
        .await;
    }
    r.check();
}

pub async fn login() {
    let s = setup().await;
    let gw = &s.gw;
    let mut r = Run::new("login", gw);
    let query =
        "client_id=web&response_type=code&redirect_uri=https%3A%2F%2Fapp.example%2Fcb&state=s1";
    let page = r
        .get("login page", &format!("/open/authorize/index?{query}"), &[])
        .await;
    r.get("unknown client", "/open/authorize/index?client_id=nope&response_type=code&redirect_uri=https%3A%2F%2Fapp.example%2Fcb", &[]).await;
    r.get("public client without PKCE", "/open/authorize/index?client_id=spa&response_type=code&redirect_uri=https%3A%2F%2Fapp.example%2Fcb&state=s1", &[]).await;
    r.get("unregistered redirect", "/open/authorize/index?client_id=spa&response_type=code&redirect_uri=https%3A%2F%2Fevil.example%2Fcb", &[]).await;
    r.get("unsupported response type", "/open/authorize/index?client_id=spa&response_type=token&redirect_uri=https%3A%2F%2Fapp.example%2Fcb&state=s1", &[]).await;
    r.get(
        "bad scope",
        &format!("/open/authorize/index?{query}&scope=admin"),
        &[],
    )
    .await;
    r.get("implicit page", "/open/implicit?client_id=imp&response_type=token&redirect_uri=https%3A%2F%2Fapp.example%2Fcb&state=s2", &[]).await;
    r.case(
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
    r.post(
        "sign in, wrong password",
        target,
        &[&cookie],
        &submit("nope", &csrf),
    )
    .await;
    r.post(
        "sign in, wrong CSRF token",
        target,
        &[&cookie],
        &submit(PASSWORD, "forged"),
    )
    .await;
    r.post(
        "sign in, no CSRF cookie",
        target,
        &[],
        &submit(PASSWORD, &csrf),
    )
    .await;
    r.post("cancel", target, &[&cookie], &hidden(&csrf, "cancel"))
        .await;
    let signed_in = r
        .post("sign in", target, &[&cookie], &submit(PASSWORD, &csrf))
        .await;
    let session = signed_in
        .lines()
        .find_map(|l| l.strip_prefix("set-cookie: __Host-authgate-session="))
        .and_then(|v| v.split(';').next())
        .unwrap_or_default()
        .to_owned();
    let with_session = format!("cookie: __Host-authgate-session={session}; authgate_csrf={csrf}");
    r.get(
        "signed in already",
        &format!("{target}?{query}"),
        &[&with_session],
    )
    .await;
    r.get("implicit, signed in", "/open/implicit?client_id=imp&response_type=token&redirect_uri=https%3A%2F%2Fapp.example%2Fcb&state=s2", &[&with_session]).await;
    r.post(
        "logout",
        "/open/logout",
        &[&with_session],
        &form(&[("csrf_token", &csrf)]),
    )
    .await;
    r.get("logout, GET", "/open/logout", &[&with_session]).await;
    r.check();
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
    let mut r = Run::new("mobile", gw);
    let login = |user: &str, password: &str| {
        form(&[
            ("client_id", MOBILE_ID),
            ("client_secret", MOBILE_SECRET),
            ("grant_type", "password"),
            ("username", user),
            ("password", password),
        ])
    };
    let ok = r
        .case(
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
    r.post(
        "POST password grant",
        "/auth/token",
        &[],
        &login("bob", PASSWORD),
    )
    .await;
    r.post(
        "wrong password",
        "/auth/token",
        &[],
        &login("alice", "nope"),
    )
    .await;
    r.post("unknown user", "/auth/token", &[], &login("nobody", "nope"))
        .await;
    r.post(
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
    r.post(
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
    r.post(
        "missing grant_type",
        "/auth/token",
        &[],
        &form(&[("client_id", MOBILE_ID), ("client_secret", MOBILE_SECRET)]),
    )
    .await;
    r.post(
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
    r.post(
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
    r.get(
        "opaque token on the proxy path",
        "/echo/x",
        &[&format!("authorization: Bearer {access}")],
    )
    .await;
    r.post("refresh", "/auth/token", &[], &refresh_form(&refresh))
        .await;
    r.post(
        "refresh replayed",
        "/auth/token",
        &[],
        &refresh_form(&refresh),
    )
    .await;
    r.post("refresh unknown", "/auth/token", &[], &refresh_form("nope"))
        .await;
    r.case("PUT", &req("PUT", "/auth/token", &[], "")).await;
    r.check();
}

pub async fn passport() {
    let s = setup_with(GatewayConfig::new().section("[dialects.passport]\nrsa_bits = 2048")).await;
    let gw = &s.gw;
    let mut r = Run::new("passport", gw);
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
    let ok = r
        .post(
            "password grant, form",
            "/oauth/token",
            &[],
            &login(phone, PASSWORD),
        )
        .await;
    let refresh = field(&ok, "/refresh_token");
    let json = serde_json::json!({"grant_type": "password", "client_id": "web", "client_secret": SECRET, "username": phone, "password": PASSWORD, "scope": ""}).to_string();
    r.case(
        "password grant, JSON",
        &req("POST", "/oauth/token", &[JSON], &json),
    )
    .await;
    r.case(
        "malformed JSON",
        &req("POST", "/oauth/token", &[JSON], "{\"grant_type\":"),
    )
    .await;
    r.post("wrong password", "/oauth/token", &[], &login(phone, "nope"))
        .await;
    r.post(
        "account name instead of phone",
        "/oauth/token",
        &[],
        &login("alice", PASSWORD),
    )
    .await;
    r.post(
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
    r.post(
        "missing grant_type",
        "/oauth/token",
        &[],
        &form(&[("client_id", "web"), ("client_secret", SECRET)]),
    )
    .await;
    r.post(
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
    r.post(
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
    r.post(
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
    r.post("refresh", "/oauth/token", &[], &refresh_form(&refresh))
        .await;
    r.post(
        "refresh replayed",
        "/oauth/token",
        &[],
        &refresh_form(&refresh),
    )
    .await;
    r.get("GET", "/oauth/token", &[]).await;
    r.check();
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
    let mut r = Run::new("app", gw);
    let app = format!("app_id: {APP_ID}");
    let by_id = |user: i64, password: &str| {
        serde_json::json!({"user_id": user, "password": password, "device_guid": "dev-1"})
            .to_string()
    };
    let ok = r
        .case(
            "/token/id",
            &req("POST", "/token/id", &[&app, JSON], &by_id(ALICE, PASSWORD)),
        )
        .await;
    let alice = field(&ok, "/data/token");
    r.case(
        "/token/login, form",
        &req(
            "POST",
            "/token/login",
            &[&app, FORM],
            &form(&[("login_name", "alice@example.com"), ("password", PASSWORD)]),
        ),
    )
    .await;
    r.case(
        "/token/user",
        &req(
            "POST",
            "/token/user",
            &[&app, JSON],
            &serde_json::json!({"name": "bob", "password": PASSWORD}).to_string(),
        ),
    )
    .await;
    r.case(
        "/token/user with an e-mail",
        &req(
            "POST",
            "/token/user",
            &[&app, JSON],
            &serde_json::json!({"name": "alice@example.com", "password": PASSWORD}).to_string(),
        ),
    )
    .await;
    r.case(
        "wrong password",
        &req("POST", "/token/id", &[&app, JSON], &by_id(ALICE, "nope")),
    )
    .await;
    r.case(
        "unknown user",
        &req("POST", "/token/id", &[&app, JSON], &by_id(999, "nope")),
    )
    .await;
    r.case(
        "no app_id",
        &req("POST", "/token/id", &[JSON], &by_id(ALICE, PASSWORD)),
    )
    .await;
    r.case(
        "unknown app_id",
        &req(
            "POST",
            "/token/id",
            &["app_id: nope", JSON],
            &by_id(ALICE, PASSWORD),
        ),
    )
    .await;
    r.case(
        "confidential app_id",
        &req(
            "POST",
            "/token/id",
            &["app_id: app-conf", JSON],
            &by_id(ALICE, PASSWORD),
        ),
    )
    .await;
    r.case(
        "user_id as a string",
        &req(
            "POST",
            "/token/id",
            &[&app, JSON],
            "{\"user_id\":\"abc\",\"password\":\"x\"}",
        ),
    )
    .await;
    r.case(
        "missing password",
        &req("POST", "/token/id", &[&app, JSON], "{\"user_id\":100}"),
    )
    .await;
    r.case(
        "malformed JSON",
        &req("POST", "/token/id", &[&app, JSON], "{"),
    )
    .await;
    r.case(
        "text/plain body",
        &req(
            "POST",
            "/token/id",
            &[&app, "content-type: text/plain"],
            "x",
        ),
    )
    .await;
    r.get("GET", "/token/id", &[&app]).await;
    let boss = r
        .case(
            "admin signs in",
            &req("POST", "/token/id", &[&app, JSON], &by_id(BOSS, PASSWORD)),
        )
        .await;
    let boss = field(&boss, "/data/token");
    let boss_header = format!("access-token: {boss}");
    let alice_header = format!("access-token: {alice}");
    r.case(
        "admin acts for a user",
        &req(
            "POST",
            "/token/id",
            &[&app, &boss_header, &format!("user_id: {ALICE}")],
            "",
        ),
    )
    .await;
    r.case(
        "admin acts for a group",
        &req(
            "POST",
            "/token/login",
            &[&app, &boss_header, "group_id: 42"],
            "",
        ),
    )
    .await;
    r.case(
        "non-admin acts for a user",
        &req(
            "POST",
            "/token/id",
            &[&app, &alice_header, &format!("user_id: {BOB}")],
            "",
        ),
    )
    .await;
    r.case(
        "acting without a token",
        &req("POST", "/token/id", &[&app, "group_id: 42"], ""),
    )
    .await;
    r.case(
        "admin acts for another admin",
        &req(
            "POST",
            "/token/id",
            &[&app, &boss_header, &format!("user_id: {ROOT2}")],
            "",
        ),
    )
    .await;
    r.case(
        "acting for an unknown user",
        &req(
            "POST",
            "/token/id",
            &[&app, &boss_header, "user_id: 424242"],
            "",
        ),
    )
    .await;
    r.case(
        "acting with a junk token",
        &req(
            "POST",
            "/token/id",
            &[&app, "access-token: junk", "user_id: 100"],
            "",
        ),
    )
    .await;
    r.case(
        "acting for a malformed user id",
        &req(
            "POST",
            "/token/id",
            &[&app, &boss_header, "user_id: 1 2"],
            "",
        ),
    )
    .await;
    r.check();
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
    let mut r = Run::new("proxy", gw);
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
    r.get(
        "user token",
        "/echo/x?a=1",
        &[
            &alice_h,
            "x-forwarded-for: 10.0.0.1",
            "remote-user: mallory",
        ],
    )
    .await;
    r.get(
        "user token, identity header sent",
        "/echo/x?a=1",
        &[&alice_h, "user_id: 7", "x-forwarded-for: 10.0.0.1"],
    )
    .await;
    r.get(
        "admin impersonates",
        "/imp/x",
        &[&boss_h, &format!("user_id: {ALICE}")],
    )
    .await;
    r.get("public route", "/pub/x", &[]).await;
    r.get("no token", "/echo/x", &[]).await;
    r.case("no token, HEAD", &req("HEAD", "/echo/x", &[], ""))
        .await;
    r.get("junk token", "/echo/x", &["authorization: Bearer junk"])
        .await;
    r.get(
        "tampered token",
        "/echo/x",
        &[&bearer(&format!("{alice}x"))],
    )
    .await;
    r.get(
        "two tokens",
        "/echo/x",
        &[&alice_h, &format!("access-token: {alice}")],
    )
    .await;
    r.get("Basic scheme", "/echo/x", &["authorization: Basic YTpi"])
        .await;
    r.get("client token on a user route", "/echo/x", &[&svc_h])
        .await;
    r.get("no route", "/nowhere", &[&alice_h]).await;
    r.get("user on an admin route", "/admin/x", &[&alice_h])
        .await;
    r.get("missing scope", "/scoped/x", &[&alice_h]).await;
    r.get("wrong audience", "/aud/x", &[&alice_h]).await;
    r.case(
        "method not allowed",
        &req("POST", "/get-only/x", &[&alice_h], ""),
    )
    .await;
    r.case(
        "body too large",
        &req("POST", "/small/x", &[&alice_h], "0123456789"),
    )
    .await;
    r.get("rate limit, first", "/limited/x", &[&alice_h]).await;
    r.get("rate limit, second", "/limited/x", &[&alice_h]).await;
    r.get("upstream unreachable", "/down/x", &[]).await;
    r.get("upstream timeout", "/slow/x", &[]).await;
    r.get(
        "impersonation by a user",
        "/imp/x",
        &[&alice_h, &format!("user_id: {BOB}")],
    )
    .await;
    r.get(
        "impersonation by an admin, unknown user",
        "/imp/x",
        &[&boss_h, "user_id: 424242"],
    )
    .await;
    r.get(
        "impersonation by an admin, malformed id",
        "/imp/x",
        &[&boss_h, "user_id: 1 2"],
    )
    .await;
    r.get(
        "impersonation where not allowed",
        "/echo/x",
        &[&boss_h, &format!("user_id: {BOB}")],
    )
    .await;
    r.get("dot-dot escaping the root", "/echo/../../x", &[&alice_h])
        .await;
    r.get("backslash", "/pub/a\\b", &[]).await;
    r.get("encoded dot-dot-semicolon", "/pub/..;/admin/x", &[])
        .await;
    r.get("overlong UTF-8", "/pub/%c0%af", &[]).await;
    r.get("non-UTF-8 path", "/pub/%ff", &[]).await;
    r.get(
        "reading of another route",
        "/pub/../admin/x;jsessionid=1",
        &[],
    )
    .await;
    r.get("case-folded admin path", "/ADMIN/x", &[&alice_h])
        .await;
    r.get("two Host headers", "/pub/x", &["host: other"]).await;
    r.case(
        "gzip transfer coding",
        &req(
            "POST",
            "/pub/x",
            &["transfer-encoding: gzip, chunked"],
            "0\r\n\r\n",
        ),
    )
    .await;
    r.get(
        "underscore framing header",
        "/pub/x",
        &["content_length: 5"],
    )
    .await;
    r.case("TRACE", &req("TRACE", "/pub/x", &[], "")).await;
    r.case(
        "method override header",
        &req("POST", "/pub/x", &["x-http-method-override: DELETE"], ""),
    )
    .await;
    r.case(
        "method override query",
        &req("POST", "/pub/x?_method=DELETE", &[], ""),
    )
    .await;
    r.get(
        "token in the query",
        &format!("/echo/x?access_token={alice}"),
        &[],
    )
    .await;
    r.get(
        "headers too large",
        "/pub/x",
        &[&format!("x-big: {}", "a".repeat(20_000))],
    )
    .await;
    r.case(
        "bad chunked body",
        &req(
            "POST",
            "/pub/x",
            &["transfer-encoding: chunked"],
            "zz\r\n\r\n",
        ),
    )
    .await;
    r.get(
        "websocket without key",
        "/pub/x",
        &["upgrade: websocket", "connection: upgrade"],
    )
    .await;
    r.check();
}
