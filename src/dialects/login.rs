//! The browser flows of seed 003: `GET /open/authorize/index` (`response_type=code`) and
//! `GET /open/implicit` (`response_type=token`) show a login page; the form posts back to the
//! same path; on success the browser is sent (303) to the client's redirect URI with a code
//! (query) or an access token (fragment), and `state`. `/open/logout` ends the session.
//!
//! Validation order (RFC 6749 §4.1.2.1): client and redirect URI first — a failure there shows
//! an error page and redirects nowhere; every later error goes back to the redirect URI.
//! A login session cookie (`Secure`, `HttpOnly`, `SameSite=Lax`, scoped to the pages' path)
//! spares a person who just logged in; the forms carry a CSRF token that must equal the
//! `SameSite=Lax` CSRF cookie (double submit). Pages are never cached or framed.

mod page;

use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use bytes::Bytes;
use hyper::body::Incoming;
use hyper::header::{self, HeaderMap, HeaderValue};
use hyper::{Method, Request, Response, StatusCode};
use subtle::ConstantTimeEq;

use super::form::{self, Form};
use super::read_body;
use crate::grant::{
    AuthorizationRequest, Engine, GrantError, IssueOptions, Login, RedirectTarget, ResponseType,
    scope,
};
use crate::http::Body;

const SESSION_COOKIE: &str = "authgate_session";
const CSRF_COOKIE: &str = "authgate_csrf";
const CSRF_MAX_AGE: u64 = 3600;

/// The three pages.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Page {
    Authorize,
    Implicit,
    Logout,
}

pub struct LoginPages {
    engine: Arc<Engine>,
    options: IssueOptions,
    session_ttl: Duration,
    cookie_path: String,
}

/// The authorization request's parameters (query on GET, hidden fields on POST).
const CARRIED: [&str; 7] = [
    "response_type",
    "client_id",
    "redirect_uri",
    "scope",
    "state",
    "code_challenge",
    "code_challenge_method",
];

/// Where an error or a result goes back: the query (code flow) or the fragment (implicit).
#[derive(Clone, Copy, PartialEq, Eq)]
enum Carrier {
    Query,
    Fragment,
}

/// Cookies to set on the answer.
#[derive(Default)]
struct SetCookies(Vec<String>);

impl LoginPages {
    pub fn new(
        engine: Arc<Engine>,
        options: IssueOptions,
        session_ttl: Duration,
        cookie_path: String,
    ) -> Self {
        LoginPages {
            engine,
            options,
            session_ttl,
            cookie_path,
        }
    }

    /// `path` is the page's own path (the form posts back to it).
    pub async fn serve(
        &self,
        page: Page,
        path: &str,
        request: Request<Incoming>,
        source: IpAddr,
    ) -> Response<Body> {
        let (parts, body) = request.into_parts();
        let cookies = Cookies::read(&parts.headers);
        let params = match parts.method {
            Method::GET => Form::parse(parts.uri.query().unwrap_or_default().as_bytes()),
            Method::POST => {
                if !form::is_form(&parts.headers) {
                    return error_page(
                        StatusCode::BAD_REQUEST,
                        "Invalid request",
                        "The form was not sent as a form.",
                    );
                }
                match read_body(body).await {
                    Ok(bytes) => Form::parse(&bytes),
                    Err(_) => {
                        return error_page(
                            StatusCode::BAD_REQUEST,
                            "Invalid request",
                            "The form could not be read.",
                        );
                    }
                }
            }
            _ => {
                let mut response = error_page(
                    StatusCode::METHOD_NOT_ALLOWED,
                    "Method not allowed",
                    "This page is opened with GET and submitted with POST.",
                );
                response
                    .headers_mut()
                    .insert(header::ALLOW, HeaderValue::from_static("GET, POST"));
                return response;
            }
        };
        let params = match params {
            Ok(params) => params,
            Err(error) => {
                return error_page(
                    StatusCode::BAD_REQUEST,
                    "Invalid request",
                    &error.to_string(),
                );
            }
        };
        let post = parts.method == Method::POST;
        match page {
            Page::Logout => self.logout(path, post, &params, &cookies).await,
            Page::Authorize => {
                let flow = Flow {
                    pages: self,
                    path,
                    response_type: ResponseType::Code,
                    params: &params,
                    cookies: &cookies,
                    source,
                };
                flow.run(post).await
            }
            Page::Implicit => {
                let flow = Flow {
                    pages: self,
                    path,
                    response_type: ResponseType::Token,
                    params: &params,
                    cookies: &cookies,
                    source,
                };
                flow.run(post).await
            }
        }
    }

    async fn logout(
        &self,
        path: &str,
        post: bool,
        params: &Form,
        cookies: &Cookies,
    ) -> Response<Body> {
        let mut set = SetCookies::default();
        if !post {
            let csrf = self.csrf(cookies, &mut set);
            let html = page::notice(
                "Sign out",
                "End your session on this device?",
                Some((path, &csrf)),
            );
            return self.html(StatusCode::OK, html, set);
        }
        if !csrf_ok(params, cookies) {
            return error_page(StatusCode::FORBIDDEN, "This form has expired", CSRF_ADVICE);
        }
        if let Some(token) = &cookies.session
            && let Err(error) = self.engine.end_session(token).await
        {
            tracing::warn!(%error, "logout failed");
            return error_page(StatusCode::INTERNAL_SERVER_ERROR, "Try again", INTERNAL);
        }
        set.0.push(self.cookie(SESSION_COOKIE, "", 0, "Lax"));
        let html = page::notice("Signed out", "You are signed out on this device.", None);
        self.html(StatusCode::OK, html, set)
    }

    /// The CSRF token of this browser (a new one when it has none).
    fn csrf(&self, cookies: &Cookies, set: &mut SetCookies) -> String {
        if let Some(token) = cookies.csrf.as_ref().filter(|t| t.len() == 43) {
            return token.clone();
        }
        let token = random_token();
        // Lax, not Strict: a person arriving from the client's site would not send a Strict
        // cookie, so a second tab would replace it and the first tab's form would fail. Lax
        // cookies still never ride on a cross-site POST, which is what double submit needs.
        set.0
            .push(self.cookie(CSRF_COOKIE, &token, CSRF_MAX_AGE, "Lax"));
        token
    }

    fn cookie(&self, name: &str, value: &str, max_age: u64, same_site: &str) -> String {
        format!(
            "{name}={value}; Path={}; Max-Age={max_age}; Secure; HttpOnly; SameSite={same_site}",
            self.cookie_path
        )
    }

    fn html(&self, status: StatusCode, html: String, cookies: SetCookies) -> Response<Body> {
        let mut response = html_response(status, html);
        set_cookies(&mut response, cookies);
        response
    }
}

const CSRF_ADVICE: &str = "For your safety the sign-in form is only valid in the browser that opened it. Go back to the application and start again.";
const INTERNAL: &str = "Something went wrong on our side. Please try again in a moment.";

/// One authorization request being served.
struct Flow<'a> {
    pages: &'a LoginPages,
    path: &'a str,
    response_type: ResponseType,
    params: &'a Form,
    cookies: &'a Cookies,
    source: IpAddr,
}

impl Flow<'_> {
    async fn run(&self, post: bool) -> Response<Body> {
        let engine = &self.pages.engine;
        let Some(client_id) = self.params.get("client_id") else {
            return error_page(
                StatusCode::BAD_REQUEST,
                "Unknown application",
                "The application did not say who it is (client_id is missing).",
            );
        };
        let target = match engine
            .redirect_target(client_id, self.params.get("redirect_uri"))
            .await
        {
            Ok(target) => target,
            Err(GrantError::InvalidClient { .. }) => {
                return error_page(
                    StatusCode::BAD_REQUEST,
                    "Unknown application",
                    "No application is registered under this client_id.",
                );
            }
            Err(GrantError::InvalidRequest { reason }) => {
                return error_page(StatusCode::BAD_REQUEST, "Invalid redirect address", &reason);
            }
            Err(error) => return internal(&error),
        };
        let carrier = match self.response_type {
            ResponseType::Code => Carrier::Query,
            ResponseType::Token => Carrier::Fragment,
        };
        let back = Back {
            target: &target,
            carrier,
            state: self.params.get("state"),
        };
        let expected = match self.response_type {
            ResponseType::Code => "code",
            ResponseType::Token => "token",
        };
        match self.params.get("response_type") {
            Some(given) if given == expected => {}
            Some(_) => {
                return back.error(
                    "unsupported_response_type",
                    &format!("this endpoint serves response_type={expected}"),
                    SetCookies::default(),
                );
            }
            None => {
                return back.error(
                    "invalid_request",
                    "response_type is required",
                    SetCookies::default(),
                );
            }
        }
        let requested = self.params.get("scope").map(scope::parse);
        let granted = match engine.check_authorization(
            &target,
            self.response_type,
            requested.as_deref(),
            self.params.get("code_challenge"),
            self.params.get("code_challenge_method"),
        ) {
            Ok(scope) => scope,
            Err(error) => {
                return back.error(error.code(), &error.to_string(), SetCookies::default());
            }
        };
        if post {
            return self.submitted(&back, granted).await;
        }
        if let Some(token) = &self.cookies.session {
            match engine.session_user(token).await {
                Ok(Some(user)) => {
                    return self
                        .complete(&back, &user, granted, SetCookies::default())
                        .await;
                }
                Ok(None) => {}
                Err(error) => return internal(&error),
            }
        }
        let mut set = SetCookies::default();
        let csrf = self.pages.csrf(self.cookies, &mut set);
        self.form(&target, &csrf, "", None, StatusCode::OK, set)
    }

    /// The login form was submitted.
    async fn submitted(&self, back: &Back<'_>, granted: Vec<String>) -> Response<Body> {
        if !csrf_ok(self.params, self.cookies) {
            return error_page(StatusCode::FORBIDDEN, "This form has expired", CSRF_ADVICE);
        }
        if self.params.get("action") == Some("cancel") {
            return back.error(
                "access_denied",
                "the person declined to sign in",
                SetCookies::default(),
            );
        }
        let username = self.params.get("username").unwrap_or_default();
        let password = self.params.get("password").unwrap_or_default();
        let csrf = self.cookies.csrf.clone().unwrap_or_default();
        let target = back.target;
        if username.is_empty() || password.is_empty() {
            let message = "Enter your login name and your password.";
            let status = StatusCode::BAD_REQUEST;
            return self.form(
                target,
                &csrf,
                username,
                Some(message),
                status,
                SetCookies::default(),
            );
        }
        let login = Login::AnyName(username.to_owned());
        match self.pages.engine.login(&login, password, self.source).await {
            Ok(user) => {
                let session = match self
                    .pages
                    .engine
                    .start_session(&user, self.pages.session_ttl)
                    .await
                {
                    Ok(session) => session,
                    Err(error) => return internal(&error),
                };
                let ttl = self.pages.session_ttl.as_secs();
                let cookie = self.pages.cookie(SESSION_COOKIE, &session, ttl, "Lax");
                self.complete(back, &user, granted, SetCookies(vec![cookie]))
                    .await
            }
            Err(GrantError::TooManyAttempts { retry_after }) => {
                let message = format!(
                    "Too many failed attempts. Try again in {} seconds.",
                    retry_after.as_secs().max(1)
                );
                let response = self.form(
                    target,
                    &csrf,
                    username,
                    Some(&message),
                    StatusCode::TOO_MANY_REQUESTS,
                    SetCookies::default(),
                );
                super::retry_after(response, retry_after)
            }
            // 400, not 401: a 401 must carry an HTTP authentication challenge (RFC 9110
            // §15.5.2), and a login form is not one.
            Err(GrantError::InvalidGrant { .. }) => self.form(
                target,
                &csrf,
                username,
                Some("The login name or the password is wrong."),
                StatusCode::BAD_REQUEST,
                SetCookies::default(),
            ),
            Err(error) => internal(&error),
        }
    }

    /// The person is known: hand out the code or the token.
    async fn complete(
        &self,
        back: &Back<'_>,
        user: &crate::store::User,
        granted: Vec<String>,
        set: SetCookies,
    ) -> Response<Body> {
        let engine = &self.pages.engine;
        let target = back.target;
        match self.response_type {
            ResponseType::Code => {
                let request = AuthorizationRequest {
                    client_id: target.client.id.clone(),
                    user_id: user.id,
                    redirect_uri: target.named.then(|| target.redirect_uri.clone()),
                    scope: Some(granted),
                    code_challenge: self.params.get("code_challenge").map(str::to_owned),
                    code_challenge_method: self
                        .params
                        .get("code_challenge_method")
                        .map(str::to_owned),
                };
                match engine.issue_code(request).await {
                    Ok(code) => back.success(&[("code", code)], set),
                    Err(error) => back.failure(&error, set),
                }
            }
            ResponseType::Token => {
                match engine
                    .implicit(target, user, granted, &self.pages.options)
                    .await
                {
                    Ok(grant) => {
                        let mut fields = vec![
                            ("access_token", grant.access_token.clone()),
                            ("token_type", grant.token_type.to_owned()),
                            ("expires_in", grant.expires_in.as_secs().to_string()),
                        ];
                        if !grant.scope.is_empty() {
                            fields.push(("scope", grant.scope.join(" ")));
                        }
                        back.success(&fields, set)
                    }
                    Err(error) => back.failure(&error, set),
                }
            }
        }
    }

    fn form(
        &self,
        target: &RedirectTarget,
        csrf: &str,
        username: &str,
        error: Option<&str>,
        status: StatusCode,
        set: SetCookies,
    ) -> Response<Body> {
        let hidden: Vec<(&str, String)> = CARRIED
            .iter()
            .filter_map(|name| self.params.get(name).map(|v| (*name, v.to_owned())))
            .collect();
        let client_name = target
            .client
            .display_name
            .as_deref()
            .unwrap_or(&target.client.id);
        let html = page::login(&page::LoginForm {
            action: self.path,
            client_name,
            hidden: &hidden,
            csrf,
            username,
            error,
        });
        self.pages.html(status, html, set)
    }
}

/// The way back to the client: its redirect URI, with `state`.
struct Back<'a> {
    target: &'a RedirectTarget,
    carrier: Carrier,
    state: Option<&'a str>,
}

impl Back<'_> {
    fn success(&self, fields: &[(&str, String)], set: SetCookies) -> Response<Body> {
        let mut pairs: Vec<(&str, &str)> = fields.iter().map(|(k, v)| (*k, v.as_str())).collect();
        if let Some(state) = self.state {
            pairs.push(("state", state));
        }
        self.redirect(&pairs, set)
    }

    /// RFC 6749 §4.1.2.1 / §4.2.2.1.
    fn error(&self, code: &str, description: &str, set: SetCookies) -> Response<Body> {
        let mut pairs = vec![("error", code), ("error_description", description)];
        if let Some(state) = self.state {
            pairs.push(("state", state));
        }
        self.redirect(&pairs, set)
    }

    fn failure(&self, error: &GrantError, set: SetCookies) -> Response<Body> {
        if error.is_unavailable() {
            tracing::warn!(%error, "authorization failed: the store is unreachable");
            return self.error(
                "temporarily_unavailable",
                "the server cannot complete the request right now; retry shortly",
                set,
            );
        }
        if let GrantError::Internal { .. } = error {
            tracing::warn!(%error, "authorization failed on our side");
            return self.error(
                "server_error",
                "the server could not complete the request",
                set,
            );
        }
        self.error(error.code(), &error.to_string(), set)
    }

    fn redirect(&self, pairs: &[(&str, &str)], set: SetCookies) -> Response<Body> {
        let mut encoded = form_urlencoded::Serializer::new(String::new());
        for (name, value) in pairs {
            encoded.append_pair(name, value);
        }
        let uri = &self.target.redirect_uri;
        let separator = match self.carrier {
            Carrier::Fragment => '#',
            Carrier::Query if uri.contains('?') => '&',
            Carrier::Query => '?',
        };
        let location = format!("{uri}{separator}{}", encoded.finish());
        let mut response = super::respond(StatusCode::SEE_OTHER, None, "no-store", Bytes::new());
        match HeaderValue::from_str(&location) {
            Ok(value) => {
                response.headers_mut().insert(header::LOCATION, value);
            }
            // Registered URIs are validated as URLs; this would be our bug, not a redirect.
            Err(_) => return error_page(StatusCode::INTERNAL_SERVER_ERROR, "Try again", INTERNAL),
        }
        set_cookies(&mut response, set);
        response
    }
}

/// The cookies the pages read.
#[derive(Default)]
struct Cookies {
    session: Option<String>,
    csrf: Option<String>,
}

impl Cookies {
    fn read(headers: &HeaderMap) -> Self {
        let mut cookies = Cookies::default();
        for value in headers.get_all(header::COOKIE) {
            let Ok(text) = value.to_str() else { continue };
            for pair in text.split(';') {
                let Some((name, value)) = pair.trim().split_once('=') else {
                    continue;
                };
                match name {
                    SESSION_COOKIE => cookies.session = Some(value.to_owned()),
                    CSRF_COOKIE => cookies.csrf = Some(value.to_owned()),
                    _ => {}
                }
            }
        }
        cookies
    }
}

/// Double submit: the form's token equals this browser's CSRF cookie (constant time).
fn csrf_ok(params: &Form, cookies: &Cookies) -> bool {
    match (params.get("csrf_token"), cookies.csrf.as_deref()) {
        (Some(form), Some(cookie)) if !cookie.is_empty() => {
            form.as_bytes().ct_eq(cookie.as_bytes()).into()
        }
        _ => false,
    }
}

fn random_token() -> String {
    let mut bytes = [0u8; 32];
    // aws-lc-rs' system RNG; it does not fail on supported platforms.
    let _ = aws_lc_rs::rand::fill(&mut bytes);
    URL_SAFE_NO_PAD.encode(bytes)
}

fn set_cookies(response: &mut Response<Body>, cookies: SetCookies) {
    for cookie in cookies.0 {
        if let Ok(value) = HeaderValue::from_str(&cookie) {
            response.headers_mut().append(header::SET_COOKIE, value);
        }
    }
}

fn internal(error: &GrantError) -> Response<Body> {
    tracing::warn!(%error, "login page failed on our side");
    error_page(StatusCode::INTERNAL_SERVER_ERROR, "Try again", INTERNAL)
}

fn error_page(status: StatusCode, title: &str, message: &str) -> Response<Body> {
    html_response(status, page::error(title, message))
}

fn html_response(status: StatusCode, html: String) -> Response<Body> {
    let mut response = super::respond(
        status,
        Some("text/html; charset=utf-8"),
        "no-store",
        Bytes::from(html),
    );
    let headers = response.headers_mut();
    if let Ok(csp) = HeaderValue::from_str(&page::CSP) {
        headers.insert(header::CONTENT_SECURITY_POLICY, csp);
    }
    headers.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    headers.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    response
}

/// The path the cookies are scoped to: the deepest directory all pages share, so the session
/// never travels to proxied routes (and their upstreams) elsewhere.
pub fn cookie_path(paths: &[&str]) -> String {
    let dirs: Vec<Vec<&str>> = paths
        .iter()
        .map(|p| {
            let mut segments: Vec<&str> = p.split('/').filter(|s| !s.is_empty()).collect();
            segments.pop();
            segments
        })
        .collect();
    let Some(first) = dirs.first() else {
        return "/".to_owned();
    };
    let mut common = first.clone();
    for dir in &dirs[1..] {
        let shared = common.iter().zip(dir).take_while(|(a, b)| a == b).count();
        common.truncate(shared);
    }
    format!("/{}", common.join("/"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cookie_paths() {
        assert_eq!(
            cookie_path(&["/open/authorize/index", "/open/implicit", "/open/logout"]),
            "/open"
        );
        assert_eq!(cookie_path(&["/login"]), "/");
        assert_eq!(cookie_path(&["/a/b/c", "/a/b/d"]), "/a/b");
        assert_eq!(cookie_path(&[]), "/");
    }

    #[test]
    fn cookies_and_csrf() {
        let mut headers = HeaderMap::new();
        headers.insert(
            header::COOKIE,
            HeaderValue::from_static("a=1; authgate_csrf=tok; authgate_session=s"),
        );
        let cookies = Cookies::read(&headers);
        assert_eq!(cookies.session.as_deref(), Some("s"));
        let form = Form::parse(b"csrf_token=tok").expect("form");
        assert!(csrf_ok(&form, &cookies));
        let wrong = Form::parse(b"csrf_token=toK").expect("form");
        assert!(!csrf_ok(&wrong, &cookies));
        assert!(!csrf_ok(&Form::default(), &cookies));
        assert!(!csrf_ok(&form, &Cookies::default()));
    }
}
