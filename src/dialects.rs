//! The token endpoints: one adapter per dialect (wire format in, wire format out) over the
//! grant engine. This module owns the dispatch (an exact-path table checked before the route
//! table) and the request plumbing every adapter shares: the method guard with its `Allow`,
//! the bounded body read, the form ([`form`]), the `grant_type` → [`GrantRequest`] parsing
//! ([`grant_type`]), and the statuses of the failures that are not the caller's (from the
//! engine's [`Disposition`]); plus JSON answers that caches never keep.
//!
//! Dialects: `oauth2` (seed 003 plus RFC 7009/7662/8414/8693), `mobile` (seed 000),
//! `passport` (seed 001), `app` (seed 002). An adapter never decides what a grant or a failure
//! means: it builds a [`crate::grant::TokenRequest`] and renders the [`crate::grant::Grant`] or
//! the ([`GrantError`], [`Disposition`]) pair in its own shape.

pub mod app;
pub mod form;
pub mod grant_type;
pub mod login;
pub mod mobile;
pub mod oauth2;
pub mod passport;

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Arc;

use bytes::Bytes;
use http_body_util::{BodyExt, Limited};
use hyper::body::Incoming;
use hyper::header::{self, HeaderValue};
use hyper::{Method, Request, Response, StatusCode};

use crate::config::Config;
use crate::grant::{Disposition, Engine, GrantError};
use crate::http::{Body, respond};
use crate::keyring::Keyring;
use crate::store::StoreError;

/// Token requests are a few hundred bytes; anything near this is not one.
pub const MAX_FORM_BYTES: usize = 64 << 10;

/// One endpoint a dialect serves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Endpoint {
    /// One of the `oauth2` dialect's endpoints (token, revocation, pages, …).
    Oauth2(oauth2::Kind),
    /// The `passport` dialect's token endpoint.
    Passport,
    /// One of the `app` dialect's three login endpoints.
    App(app::Kind),
    /// The `mobile` dialect's token endpoint.
    Mobile,
}

/// Every path the dialects serve under `config`, in path order: what `Endpoints` dispatches
/// on and what `authgate check` lists.
pub fn served(config: &Config) -> Vec<(String, Endpoint)> {
    let mut paths: Vec<(String, Endpoint)> = Vec::new();
    if let Some(dialect) = &config.dialects.oauth2 {
        for (kind, path) in oauth2::Kind::paths(dialect) {
            paths.push((path.to_owned(), Endpoint::Oauth2(kind)));
        }
        for provider in &config.login.providers {
            for (step, tail) in [
                (login::Step::Start, "start"),
                (login::Step::Callback, "callback"),
            ] {
                let path = format!("{}{}/{tail}", login::PROVIDERS_PREFIX, provider.name);
                let kind = oauth2::Kind::Page(login::Page::Provider(step));
                paths.push((path, Endpoint::Oauth2(kind)));
            }
        }
    }
    if let Some(dialect) = &config.dialects.passport {
        paths.push((dialect.path.clone(), Endpoint::Passport));
    }
    if let Some(dialect) = &config.dialects.mobile {
        paths.push((dialect.path.clone(), Endpoint::Mobile));
    }
    if let Some(dialect) = &config.dialects.app {
        for (kind, path) in app::Kind::paths(dialect) {
            paths.push((path.to_owned(), Endpoint::App(kind)));
        }
    }
    paths.sort_by(|a, b| a.0.cmp(&b.0));
    paths
}

impl Endpoint {
    /// For people (`check`, `explain`): the dialect, the methods it answers, what it does.
    pub fn describe(self) -> (&'static str, &'static str, &'static str) {
        use login::Page;
        match self {
            Endpoint::Oauth2(kind) => match kind {
                oauth2::Kind::Token => ("oauth2", "POST", "token endpoint (every grant)"),
                oauth2::Kind::Password => ("oauth2", "POST", "password grant"),
                oauth2::Kind::ClientCredentials => ("oauth2", "POST", "client credentials grant"),
                oauth2::Kind::RefreshToken => ("oauth2", "POST", "refresh token grant"),
                oauth2::Kind::Authorize => ("oauth2", "POST", "authorization code exchange"),
                oauth2::Kind::Revoke => ("oauth2", "POST", "token revocation (RFC 7009)"),
                oauth2::Kind::Introspect => ("oauth2", "POST", "token introspection (RFC 7662)"),
                oauth2::Kind::Metadata => {
                    ("oauth2", "GET", "authorization server metadata (RFC 8414)")
                }
                oauth2::Kind::Discovery => ("oauth2", "GET", "OpenID Connect discovery"),
                oauth2::Kind::UserInfo => ("oauth2", "GET, POST", "OpenID Connect UserInfo"),
                oauth2::Kind::Page(Page::Authorize) => {
                    ("oauth2", "GET, POST", "login page, authorization code flow")
                }
                oauth2::Kind::Page(Page::Implicit) => {
                    ("oauth2", "GET, POST", "login page, implicit flow")
                }
                oauth2::Kind::Page(Page::SignIn) => {
                    ("oauth2", "GET, POST", "sign-in page of session routes")
                }
                oauth2::Kind::Page(Page::Logout) => {
                    ("oauth2", "GET, POST", "logout, OpenID Connect end session")
                }
                oauth2::Kind::Page(Page::Provider(login::Step::Start)) => {
                    ("oauth2", "GET", "sign-in at an upstream identity provider")
                }
                oauth2::Kind::Page(Page::Provider(login::Step::Callback)) => {
                    ("oauth2", "GET", "upstream identity provider's callback")
                }
            },
            Endpoint::Passport => ("passport", "POST", "password grant (Laravel Passport)"),
            Endpoint::Mobile => ("mobile", "GET, POST", "password and refresh grants"),
            Endpoint::App(kind) => match kind {
                app::Kind::Id => ("app", "POST", "log in by user id"),
                app::Kind::Login => ("app", "POST", "log in by login name"),
                app::Kind::User => ("app", "POST", "log in by user name"),
            },
        }
    }
}

/// The token endpoints, by exact (normalised) path.
pub struct Endpoints {
    paths: HashMap<String, Endpoint>,
    oauth2: Option<oauth2::Oauth2>,
    passport: Option<passport::Passport>,
    app: Option<app::App>,
    mobile: Option<mobile::Mobile>,
}

impl Endpoints {
    /// Fails only when a dialect's shared secret cannot be read or created.
    pub fn new(
        config: &Config,
        engine: Arc<Engine>,
        keyring: Arc<Keyring>,
    ) -> Result<Self, StoreError> {
        let paths: HashMap<String, Endpoint> = served(config).into_iter().collect();
        let oauth2 = config
            .dialects
            .oauth2
            .as_ref()
            .map(|dialect| oauth2::Oauth2::new(dialect, config, Arc::clone(&engine)));
        let passport = config
            .dialects
            .passport
            .as_ref()
            .map(|dialect| passport::Passport::new(dialect, Arc::clone(&engine)));
        let mobile = config
            .dialects
            .mobile
            .as_ref()
            .map(|dialect| mobile::Mobile::new(dialect, Arc::clone(&engine)));
        let app = match &config.dialects.app {
            Some(dialect) => Some(app::App::new(dialect, &config.store, engine, keyring)?),
            None => None,
        };
        Ok(Endpoints {
            paths,
            oauth2,
            passport,
            app,
            mobile,
        })
    }

    /// The `oauth2` dialect, when it is served.
    pub fn oauth2(&self) -> Option<&oauth2::Oauth2> {
        self.oauth2.as_ref()
    }

    /// The endpoint served at `path` (already normalised), if any.
    pub fn find(&self, path: &str) -> Option<Endpoint> {
        self.paths.get(path).copied()
    }

    /// Serves one request at `path`; `source` is the client address after `trusted_proxies`.
    pub async fn serve(
        &self,
        endpoint: Endpoint,
        path: &str,
        request: Request<Incoming>,
        source: IpAddr,
    ) -> Response<Body> {
        match endpoint {
            Endpoint::Oauth2(kind) => match &self.oauth2 {
                Some(dialect) => dialect.serve(kind, path, request, source).await,
                None => not_served(),
            },
            Endpoint::Passport => match &self.passport {
                Some(dialect) => dialect.serve(request, source).await,
                None => not_served(),
            },
            Endpoint::Mobile => match &self.mobile {
                Some(dialect) => dialect.serve(request, source).await,
                None => not_served(),
            },
            Endpoint::App(kind) => match &self.app {
                Some(dialect) => dialect.serve(kind, request, source).await,
                None => not_served(),
            },
        }
    }
}

/// `paths` only holds endpoints of configured dialects, so this answers only a caller's
/// `Endpoint` that `find` did not return.
fn not_served() -> Response<Body> {
    json(StatusCode::NOT_FOUND, &serde_json::json!({}))
}

/// The methods an endpoint answers; anything else is refused with 405 and this `Allow`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Allowed {
    /// Token endpoints (RFC 6749 §3.2).
    Post,
    /// Documents (the RFC 8414 metadata).
    GetHead,
    /// Pages opened with GET and submitted with POST, and the `mobile` endpoint's query form.
    GetPost,
}

impl Allowed {
    fn permits(self, method: &Method) -> bool {
        match self {
            Allowed::Post => method == Method::POST,
            Allowed::GetHead => method == Method::GET || method == Method::HEAD,
            Allowed::GetPost => method == Method::GET || method == Method::POST,
        }
    }

    fn header(self) -> &'static str {
        match self {
            Allowed::Post => "POST",
            Allowed::GetHead => "GET, HEAD",
            Allowed::GetPost => "GET, POST",
        }
    }

    /// The 405 answer when `method` is not allowed (`None` when it is): the dialect renders
    /// its body for the status (`refuse`), this adds `Allow` (RFC 9110 §15.5.6 requires it).
    pub fn refusal(
        self,
        method: &Method,
        refuse: impl FnOnce(StatusCode) -> Response<Body>,
    ) -> Option<Response<Body>> {
        if self.permits(method) {
            return None;
        }
        let mut response = refuse(StatusCode::METHOD_NOT_ALLOWED);
        response
            .headers_mut()
            .insert(header::ALLOW, HeaderValue::from_static(self.header()));
        Some(response)
    }
}

/// Why a request body could not be read as a form.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum BodyError {
    /// Over [`MAX_FORM_BYTES`] (413).
    #[error("the request body exceeds {MAX_FORM_BYTES} bytes")]
    TooLarge,
    /// The connection failed or the client stopped sending (400).
    #[error("the request body could not be read")]
    Read,
}

/// Why a request's parameters could not be read: every dialect answers it as its own
/// "invalid request", with this status and message.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RequestError {
    /// The body could not be read.
    #[error(transparent)]
    Body(#[from] BodyError),
    /// The body (or query) is not a valid form, or the client credentials are malformed.
    #[error(transparent)]
    Form(#[from] form::FormError),
}

impl RequestError {
    /// 413 for an oversized body, 400 for the rest.
    pub fn status(&self) -> StatusCode {
        match self {
            RequestError::Body(BodyError::TooLarge) => StatusCode::PAYLOAD_TOO_LARGE,
            _ => StatusCode::BAD_REQUEST,
        }
    }
}

/// Reads the whole body, refusing more than [`MAX_FORM_BYTES`].
pub async fn read_body(body: Incoming) -> Result<Bytes, BodyError> {
    match Limited::new(body, MAX_FORM_BYTES).collect().await {
        Ok(collected) => Ok(collected.to_bytes()),
        Err(error) if error.is::<http_body_util::LengthLimitError>() => Err(BodyError::TooLarge),
        Err(_) => Err(BodyError::Read),
    }
}

/// A JSON answer; token endpoint answers must never be cached (RFC 6749 §5.1).
pub fn json(status: StatusCode, value: &serde_json::Value) -> Response<Body> {
    let mut response = respond(
        status,
        Some("application/json;charset=UTF-8"),
        "no-store",
        Bytes::from(value.to_string()),
    );
    response
        .headers_mut()
        .insert(header::PRAGMA, HeaderValue::from_static("no-cache"));
    response
}

/// The body as a form or JSON object, as its `Content-Type` says (the legacy dialects'
/// bodies).
pub async fn read_params(
    headers: &hyper::HeaderMap,
    body: Incoming,
) -> Result<form::Form, RequestError> {
    let bytes = read_body(body).await?;
    Ok(form::Form::from_body(headers, &bytes)?)
}

/// The status of a failed grant, the same in every dialect for the failures that are not a
/// refusal of the request (429 for the back-off, 503 for an unreachable store, 500 for the
/// rest of ours); `refused` is the dialect's own status for a refusal of the request or its
/// credentials (its document fixes it).
pub fn status(disposition: Disposition, refused: StatusCode) -> StatusCode {
    match disposition {
        Disposition::Throttled(_) => StatusCode::TOO_MANY_REQUESTS,
        Disposition::Unavailable => StatusCode::SERVICE_UNAVAILABLE,
        Disposition::Internal => StatusCode::INTERNAL_SERVER_ERROR,
        _ => refused,
    }
}

/// A failed grant's answer: `render` builds the dialect's body for the status ([`status`],
/// from the engine's [`Disposition`] and the dialect's `refused`), and `Retry-After` is added
/// when the disposition says when to retry.
pub fn refuse(
    error: &GrantError,
    refused: StatusCode,
    render: impl FnOnce(StatusCode, Disposition) -> Response<Body>,
) -> Response<Body> {
    let disposition = error.disposition();
    let response = render(status(disposition, refused), disposition);
    match disposition.retry_after() {
        Some(after) => retry_after(response, after),
        None => response,
    }
}

/// Whole seconds to wait, at least 1 (a 0 would invite an immediate retry): `Retry-After` and
/// the dialects' "try again in N seconds".
pub fn retry_seconds(after: std::time::Duration) -> u64 {
    after.as_secs().max(1)
}

/// `Retry-After` in whole seconds ([`retry_seconds`]).
pub fn retry_after(mut response: Response<Body>, after: std::time::Duration) -> Response<Body> {
    response
        .headers_mut()
        .insert(header::RETRY_AFTER, HeaderValue::from(retry_seconds(after)));
    response
}
