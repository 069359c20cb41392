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

mod federated;
mod flow;
mod page;
mod signin;

pub use federated::{PENDING_COOKIE, PREFIX as PROVIDERS_PREFIX, Step};

use std::net::IpAddr;
use std::sync::Arc;

use aws_lc_rs::rand::{SecureRandom, SystemRandom};
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use bytes::Bytes;
use hyper::body::Incoming;
use hyper::header::{self, HeaderMap, HeaderValue};
use hyper::http::request::Parts;
use hyper::{Method, Request, Response, StatusCode};
use subtle::ConstantTimeEq;

use super::form::{self, Form};
use super::{Allowed, read_body};
use crate::config::{HostMatch, LoginConfig};
use crate::grant::{Disposition, Engine, GrantError, IssueOptions, ResponseType};
use crate::http::Body;
use crate::store::{LoginSession, SessionLimits};
use flow::Flow;

use crate::authn::SessionCookie;
const CSRF_COOKIE: &str = "authgate_csrf";
const CSRF_MAX_AGE: u64 = 3600;

/// The three pages.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Page {
    /// The code flow's login page.
    Authorize,
    /// The implicit flow's login page.
    Implicit,
    /// Ends the login session.
    Logout,
    /// Session routes' sign-in page (`?rd=` where to go back).
    SignIn,
    /// An upstream provider's start or callback (the name is in the path).
    Provider(Step),
}

/// The pages, with what every request to them shares.
pub struct LoginPages {
    engine: Arc<Engine>,
    options: IssueOptions,
    login: LoginConfig,
    cookie_path: String,
    /// OpenID Connect is on: the logout page is also the end-session endpoint.
    openid: bool,
    /// The routes' `host`s: a sign-in's way back may name these (or the page's own host).
    route_hosts: Vec<HostMatch>,
    /// The session cookie's name and domain.
    session_cookie: SessionCookie,
    /// Upstream OpenID Connect providers (the buttons).
    providers: Arc<crate::providers::Providers>,
    /// The pages a provider sign-in may continue with (authorize, implicit, sign-in).
    page_paths: Vec<String>,
}

/// A checked end-session request.
#[derive(Default)]
struct EndSession<'p> {
    /// The registered post-logout redirect URI to send the browser to.
    back: Option<&'p str>,
    /// A valid `id_token_hint` speaks for whoever is signed in: no confirmation.
    hinted: bool,
    /// The client the request is for (the hint's `aud` or `client_id`).
    client_id: Option<String>,
}

/// Cookies to set on the answer.
#[derive(Default)]
struct SetCookies(Vec<String>);

/// Where the pages are and whom they serve, besides the engine.
pub struct PageSettings {
    /// `[login]`.
    pub login: LoginConfig,
    /// The directory the CSRF cookie is scoped to ([`cookie_path`]).
    pub cookie_path: String,
    /// OpenID Connect is on.
    pub openid: bool,
    /// The routes' `host`s (and forward-auth's return hosts).
    pub route_hosts: Vec<HostMatch>,
    /// The session cookie's name and domain.
    pub session_cookie: SessionCookie,
    /// Upstream OpenID Connect providers.
    pub providers: Arc<crate::providers::Providers>,
    /// The authorize, implicit and sign-in pages' paths (where a provider sign-in continues).
    pub page_paths: Vec<String>,
}

impl LoginPages {
    /// `options` are the `oauth2` dialect's (the implicit token's).
    pub fn new(engine: Arc<Engine>, options: IssueOptions, settings: PageSettings) -> Self {
        LoginPages {
            engine,
            options,
            login: settings.login,
            cookie_path: settings.cookie_path,
            openid: settings.openid,
            route_hosts: settings.route_hosts,
            session_cookie: settings.session_cookie,
            providers: settings.providers,
            page_paths: settings.page_paths,
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
        let refuse_method = |status| {
            let message = "This page is opened with GET and submitted with POST.";
            error_page(status, "Method not allowed", message)
        };
        if let Some(response) = Allowed::GetPost.refusal(request.method(), refuse_method) {
            return response;
        }
        let (parts, body) = request.into_parts();
        let cookies = Cookies::read(&parts.headers, self.session_cookie.name);
        let params = match read(&parts, body).await {
            Ok(params) => params,
            Err(response) => return response,
        };
        let post = parts.method == Method::POST;
        let response_type = match page {
            Page::Provider(step) => {
                if post {
                    return error_page(
                        StatusCode::METHOD_NOT_ALLOWED,
                        "Method not allowed",
                        "This page is opened with GET.",
                    );
                }
                let name = path
                    .strip_prefix(federated::PREFIX)
                    .and_then(|rest| rest.split('/').next())
                    .unwrap_or_default();
                return self
                    .provider_page(name, step, &params, &cookies, source)
                    .await;
            }
            Page::Logout => return self.logout(path, post, &params, &cookies).await,
            Page::SignIn => {
                let host = request_host(&parts);
                let at = signin::At { path, host, source };
                return self.signin(&at, post, &params, &cookies).await;
            }
            Page::Authorize => ResponseType::Code,
            Page::Implicit => ResponseType::Token,
        };
        let flow = Flow {
            pages: self,
            path,
            response_type,
            params: &params,
            cookies: &cookies,
            source,
        };
        flow.run(post).await
    }

    /// `/open/logout`, which is also OpenID Connect's end-session endpoint (RP-Initiated
    /// Logout 1.0): one page ends the one login session. A valid `id_token_hint` for the
    /// signed-in person (or with nobody signed in) ends it at once; otherwise the person
    /// confirms (a CSRF-protected form). Then back to `post_logout_redirect_uri` with `state`
    /// when the client registered that URI exactly, else a "signed out" page.
    async fn logout(
        &self,
        path: &str,
        post: bool,
        params: &Form,
        cookies: &Cookies,
    ) -> Response<Body> {
        let end = match self.end_session_request(params, cookies).await {
            Ok(end) => end,
            Err(response) => return response,
        };
        let mut set = SetCookies::default();
        // Only our own confirmation form carries `csrf_token`; any other GET or POST (RP-
        // Initiated Logout §2: both must be supported) is a new request.
        let confirmed = post && params.get("csrf_token").is_some();
        if !confirmed && !end.hinted {
            let csrf = match self.csrf(cookies, &mut set) {
                Ok(csrf) => csrf,
                Err(error) => return random_failed(&error),
            };
            // The client as resolved (from the hint or `client_id`), so the confirmation can
            // check the post-logout URI again without the hint.
            let mut hidden: Vec<(&str, &str)> = ["post_logout_redirect_uri", "state"]
                .into_iter()
                .filter_map(|name| params.get(name).map(|value| (name, value)))
                .collect();
            if let Some(client_id) = &end.client_id {
                hidden.push(("client_id", client_id));
            }
            let form = page::NoticeForm {
                action: path,
                csrf: &csrf,
                hidden: &hidden,
            };
            let html = page::notice("Sign out", "End your session on this device?", Some(form));
            return self.html(StatusCode::OK, html, set);
        }
        if confirmed && !csrf_ok(params, cookies) {
            return error_page(StatusCode::FORBIDDEN, "This form has expired", CSRF_ADVICE);
        }
        if let Some(token) = &cookies.session
            && let Err(error) = self.engine.end_session(token).await
        {
            tracing::warn!(%error, "logout failed");
            return error_page(StatusCode::INTERNAL_SERVER_ERROR, "Try again", INTERNAL);
        }
        set.0.push(self.session_cookie("", 0));
        if let Some(uri) = end.back {
            let mut location = uri.to_owned();
            if let Some(state) = params.get("state") {
                let separator = if uri.contains('?') { '&' } else { '?' };
                let encoded = form_urlencoded::Serializer::new(String::new())
                    .append_pair("state", state)
                    .finish();
                location = format!("{location}{separator}{encoded}");
            }
            return see_other(&location, set);
        }
        let html = page::notice("Signed out", "You are signed out on this device.", None);
        self.html(StatusCode::OK, html, set)
    }

    /// RP-initiated logout's parameters, checked before anything ends: the client (from the
    /// hint's `aud` or `client_id`, which must agree) and its exact post-logout redirect URI.
    /// Refusals are pages, never redirects.
    async fn end_session_request<'p>(
        &self,
        params: &'p Form,
        cookies: &Cookies,
    ) -> Result<EndSession<'p>, Response<Body>> {
        if !self.openid {
            return Ok(EndSession::default());
        }
        let refused =
            |message: &str| error_page(StatusCode::BAD_REQUEST, "Sign-out refused", message);
        // An invalid hint (not ours, or tampered) is treated as absent: the person confirms.
        let hint = params
            .get("id_token_hint")
            .and_then(|token| self.engine.id_token_hint(token));
        let client_id = match (params.get("client_id"), &hint) {
            (Some(given), Some(hint)) if !hint.audiences.iter().any(|a| a == given) => {
                return Err(refused("client_id does not match the ID token hint."));
            }
            (Some(given), _) => Some(given.to_owned()),
            (None, Some(hint)) => hint.audiences.first().cloned(),
            (None, None) => None,
        };
        let back = match params.get("post_logout_redirect_uri") {
            None => None,
            Some(uri) => {
                let Some(client_id) = &client_id else {
                    return Err(refused(
                        "post_logout_redirect_uri needs an id_token_hint or a client_id.",
                    ));
                };
                match self.engine.post_logout_target(client_id, uri).await {
                    Ok(()) => Some(uri),
                    Err(GrantError::InvalidClient { .. }) => {
                        return Err(refused(
                            "No application is registered under this client_id.",
                        ));
                    }
                    Err(GrantError::InvalidRequest { reason }) => return Err(refused(&reason)),
                    Err(error) => return Err(internal(&error)),
                }
            }
        };
        // The hint speaks for the signed-in person (or nobody is signed in): no need to ask.
        let hinted = match (&hint, &cookies.session) {
            (None, _) => false,
            (Some(_), None) => true,
            (Some(hint), Some(token)) => match self.session(token).await {
                Ok(Some(session)) => session.user.id.to_string() == hint.subject,
                Ok(None) => true,
                Err(error) => return Err(internal(&error)),
            },
        };
        Ok(EndSession {
            back,
            hinted,
            client_id,
        })
    }

    /// The live session behind this cookie value (absolute and idle limits of `[login]`), its
    /// last-seen time renewed in the store (at most once per renewal interval).
    async fn session(&self, token: &str) -> Result<Option<LoginSession>, GrantError> {
        let limits = SessionLimits {
            absolute: self.login.session_ttl,
            idle: self.login.idle_timeout,
        };
        let renewal = self.login.renewal_interval();
        self.engine.session_user(token, &limits, renewal).await
    }

    /// The CSRF token of this browser (a new one when it has none).
    fn csrf(&self, cookies: &Cookies, set: &mut SetCookies) -> Result<String, RandomFailed> {
        if let Some(token) = cookies.csrf.as_ref().filter(|t| t.len() == 43) {
            return Ok(token.clone());
        }
        let token = random_token()?;
        // Lax, not Strict: a person arriving from the client's site would not send a Strict
        // cookie, so a second tab would replace it and the first tab's form would fail. Lax
        // cookies still never ride on a cross-site POST, which is what double submit needs.
        set.0
            .push(self.cookie(CSRF_COOKIE, &token, CSRF_MAX_AGE, "Lax"));
        Ok(token)
    }

    fn cookie(&self, name: &str, value: &str, max_age: u64, same_site: &str) -> String {
        format!(
            "{name}={value}; Path={}; Max-Age={max_age}; Secure; HttpOnly; SameSite={same_site}",
            self.cookie_path
        )
    }

    /// The session cookie: host-only (`__Host-`) unless shared across subdomains, for the
    /// whole site, since session routes read it (the proxy never forwards it). `Lax`: a link
    /// from another site still arrives signed in; a cross-site POST does not carry it.
    fn session_cookie(&self, value: &str, max_age: u64) -> String {
        self.session_cookie.set(value, max_age)
    }

    /// A new session for `user` (ending the one this browser carried: session fixation) and
    /// its cookie.
    async fn rotate(
        &self,
        user: &crate::store::User,
        cookies: &Cookies,
    ) -> Result<String, GrantError> {
        self.rotate_for(user, cookies, self.login.session_ttl).await
    }

    /// [`LoginPages::rotate`] for a session of `ttl` (a provider's sign-in: at most its
    /// `max_session`).
    async fn rotate_for(
        &self,
        user: &crate::store::User,
        cookies: &Cookies,
        ttl: std::time::Duration,
    ) -> Result<String, GrantError> {
        if let Some(previous) = &cookies.session {
            self.engine.end_session(previous).await?;
        }
        let session = self.engine.start_session(user, ttl).await?;
        Ok(self.session_cookie(&session, ttl.as_secs()))
    }

    fn html(&self, status: StatusCode, html: String, cookies: SetCookies) -> Response<Body> {
        let mut response = html_response(status, html);
        set_cookies(&mut response, cookies);
        response
    }
}

/// Why a submitted login form did not sign anybody in.
enum Refused {
    /// Show the form again with this message (and status, and `Retry-After`).
    Again(Again),
    /// Our failure: a page that says try again.
    Internal(GrantError),
}

struct Again {
    message: String,
    status: StatusCode,
    retry_after: Option<std::time::Duration>,
}

impl Again {
    fn refused(message: impl Into<String>) -> Refused {
        // 400, not 401: a 401 must carry an HTTP authentication challenge (RFC 9110
        // §15.5.2), and a login form is not one.
        Refused::Again(Again {
            message: message.into(),
            status: StatusCode::BAD_REQUEST,
            retry_after: None,
        })
    }

    /// The form's answer with `Retry-After` when the person must wait.
    fn retry(&self, response: Response<Body>) -> Response<Body> {
        match self.retry_after {
            Some(after) => super::retry_after(response, after),
            None => response,
        }
    }
}

impl LoginPages {
    /// The submitted form's login name and password, checked (with the engine's back-off).
    async fn check_password(
        &self,
        params: &Form,
        source: IpAddr,
    ) -> Result<crate::store::User, Refused> {
        if !self.login.password_form {
            return Err(Again::refused("Sign in with one of the buttons above."));
        }
        let username = params.get("username").unwrap_or_default();
        let password = params.get("password").unwrap_or_default();
        if username.is_empty() || password.is_empty() {
            return Err(Again::refused("Enter your login name and your password."));
        }
        let login = crate::grant::Login::AnyName(username.to_owned());
        match self.engine.login(&login, password, source).await {
            Ok(user) => Ok(user),
            Err(GrantError::TooManyAttempts { retry_after }) => {
                let seconds = super::retry_seconds(retry_after);
                Err(Refused::Again(Again {
                    message: format!("Too many failed attempts. Try again in {seconds} seconds."),
                    status: StatusCode::TOO_MANY_REQUESTS,
                    retry_after: Some(retry_after),
                }))
            }
            Err(GrantError::InvalidGrant { .. }) => {
                Err(Again::refused("The login name or the password is wrong."))
            }
            Err(error) => Err(Refused::Internal(error)),
        }
    }
}

/// The parameters: the query of a GET, the form body of a POST (a form only: browsers send
/// nothing else).
async fn read(parts: &Parts, body: Incoming) -> Result<Form, Response<Body>> {
    let invalid = |message: &str| error_page(StatusCode::BAD_REQUEST, "Invalid request", message);
    let params = if parts.method == Method::GET {
        Form::parse(parts.uri.query().unwrap_or_default().as_bytes())
    } else {
        if !form::is_form(&parts.headers) {
            return Err(invalid("The form was not sent as a form."));
        }
        let Ok(bytes) = read_body(body).await else {
            return Err(invalid("The form could not be read."));
        };
        Form::parse(&bytes)
    };
    params.map_err(|error| invalid(&error.to_string()))
}

const CSRF_ADVICE: &str = "For your safety the sign-in form is only valid in the browser that opened it. Go back to the application and start again.";
const INTERNAL: &str = "Something went wrong on our side. Please try again in a moment.";

/// The host the browser addressed (`Host`, or the authority of an HTTP/2 request), lower case,
/// with its port.
fn request_host(parts: &Parts) -> Option<String> {
    let host = match parts.uri.authority() {
        Some(authority) => authority.as_str().to_owned(),
        None => parts.headers.get(header::HOST)?.to_str().ok()?.to_owned(),
    };
    Some(host.to_ascii_lowercase())
}

/// The cookies the pages read.
#[derive(Default)]
struct Cookies {
    session: Option<String>,
    csrf: Option<String>,
    /// The pending provider sign-in's browser binding.
    pending: Option<String>,
}

impl Cookies {
    /// `session` is the session cookie's name.
    fn read(headers: &HeaderMap, session: &str) -> Self {
        let mut cookies = Cookies::default();
        for value in headers.get_all(header::COOKIE) {
            let Ok(text) = value.to_str() else { continue };
            for pair in text.split(';') {
                let Some((name, value)) = pair.trim().split_once('=') else {
                    continue;
                };
                if name == session {
                    cookies.session = Some(value.to_owned());
                } else if name == CSRF_COOKIE {
                    cookies.csrf = Some(value.to_owned());
                } else if name == PENDING_COOKIE {
                    cookies.pending = Some(value.to_owned());
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

/// The system random generator failed: no CSRF token (an all-zero one would be guessable), so
/// the page answers 500, as the store does for its tokens (`store/secret.rs`).
#[derive(Debug, thiserror::Error)]
#[error("the system random generator failed")]
struct RandomFailed(#[source] aws_lc_rs::error::Unspecified);

/// 256 random bits, 43 characters of unpadded base64url.
fn random_token() -> Result<String, RandomFailed> {
    let mut bytes = [0u8; 32];
    SystemRandom::new().fill(&mut bytes).map_err(RandomFailed)?;
    Ok(URL_SAFE_NO_PAD.encode(bytes))
}

fn random_failed(error: &RandomFailed) -> Response<Body> {
    tracing::warn!(%error, "login page failed: no CSRF token");
    error_page(StatusCode::INTERNAL_SERVER_ERROR, "Try again", INTERNAL)
}

fn set_cookies(response: &mut Response<Body>, cookies: SetCookies) {
    for cookie in cookies.0 {
        if let Ok(value) = HeaderValue::from_str(&cookie) {
            response.headers_mut().append(header::SET_COOKIE, value);
        }
    }
}

/// 303 to `location` (a registered URI plus our parameters) with `set`'s cookies. Registered
/// URIs are validated as URLs: one that is no header value is our bug, answered as such.
fn see_other(location: &str, set: SetCookies) -> Response<Body> {
    let Ok(location) = HeaderValue::from_str(location) else {
        return error_page(StatusCode::INTERNAL_SERVER_ERROR, "Try again", INTERNAL);
    };
    let mut response = super::respond(StatusCode::SEE_OTHER, None, "no-store", Bytes::new());
    response.headers_mut().insert(header::LOCATION, location);
    set_cookies(&mut response, set);
    response
}

/// A failure the person cannot act on. The engine's classification logs ours; anything else
/// reaching here was not expected on this path and is logged too.
fn internal(error: &GrantError) -> Response<Body> {
    if !matches!(
        error.disposition(),
        Disposition::Unavailable | Disposition::Internal
    ) {
        tracing::warn!(%error, "login page failed");
    }
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

/// Property tests (issue 26): the login pages' `Cookie` parsing, on any bytes.
#[cfg(test)]
mod properties {
    use proptest::prelude::*;
    use proptest::test_runner::Config;

    use super::*;
    use crate::authn::SESSION_COOKIE;

    const NAMES: [&str; 4] = [SESSION_COOKIE, CSRF_COOKIE, PENDING_COOKIE, "other"];

    fn cookie_headers() -> impl Strategy<Value = HeaderMap> {
        let pair = prop_oneof![
            (
                prop::sample::select(NAMES.to_vec()),
                prop::sample::select(vec!["", " ", "\t"]),
                "[ -:<-~]{0,8}",
            )
                .prop_map(|(name, pad, value)| format!("{pad}{name}={value}{pad}").into_bytes()),
            prop::collection::vec(any::<u8>().prop_filter("no ;", |b| *b != b';'), 0..12),
        ];
        prop::collection::vec(prop::collection::vec(pair, 0..5), 0..3).prop_map(|values| {
            let mut headers = HeaderMap::new();
            for pairs in values {
                if let Ok(value) = HeaderValue::from_bytes(&pairs.join(&b";"[..])) {
                    headers.append(header::COOKIE, value);
                }
            }
            headers
        })
    }

    /// The last value of the pairs named `name` in the headers that are text, trimmed.
    fn last(headers: &HeaderMap, name: &str) -> Option<String> {
        headers
            .get_all(header::COOKIE)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(';'))
            .filter_map(|p| p.trim().split_once('='))
            .filter(|(found, _)| *found == name)
            .map(|(_, value)| value.to_owned())
            .next_back()
    }

    proptest! {
        #![proptest_config(Config { cases: 4000, failure_persistence: None, ..Config::default() })]

        /// Any `Cookie` headers: no panic, and each of the three cookies is the last pair of
        /// its exact name (another name, or another case, is never read as it).
        #[test]
        fn cookies_are_read_by_exact_name(headers in cookie_headers()) {
            let cookies = Cookies::read(&headers, SESSION_COOKIE);
            prop_assert_eq!(cookies.session, last(&headers, SESSION_COOKIE));
            prop_assert_eq!(cookies.csrf, last(&headers, CSRF_COOKIE));
            prop_assert_eq!(cookies.pending, last(&headers, PENDING_COOKIE));
        }
    }
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
            HeaderValue::from_static("a=1; authgate_csrf=tok; __Host-authgate-session=s"),
        );
        let cookies = Cookies::read(&headers, crate::authn::SESSION_COOKIE);
        assert_eq!(cookies.session.as_deref(), Some("s"));
        let form = Form::parse(b"csrf_token=tok").expect("form");
        assert!(csrf_ok(&form, &cookies));
        let wrong = Form::parse(b"csrf_token=toK").expect("form");
        assert!(!csrf_ok(&wrong, &cookies));
        assert!(!csrf_ok(&Form::default(), &cookies));
        assert!(!csrf_ok(&form, &Cookies::default()));
    }
}
