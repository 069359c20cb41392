//! The token endpoints: one adapter per dialect (wire format in, wire format out) over the
//! grant engine. This module owns the dispatch (an exact-path table checked before the route
//! table) and what every adapter needs from HTTP: reading a bounded form body, and building
//! JSON answers that caches never keep.
//!
//! Dialects: `oauth2` (seed 003 plus RFC 7009/7662/8414/8693), `mobile` (seed 000),
//! `passport` (seed 001), `app` (seed 002). An adapter never decides what
//! a grant means: it builds a [`crate::grant::TokenRequest`] and renders the result.

pub mod app;
pub mod form;
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
use hyper::{Request, Response, StatusCode};

use crate::config::Config;
use crate::grant::Engine;
use crate::http::{Body, respond};
use crate::keyring::Keyring;
use crate::store::StoreError;

/// Token requests are a few hundred bytes; anything near this is not one.
pub const MAX_FORM_BYTES: usize = 64 << 10;

/// One endpoint a dialect serves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Endpoint {
    Oauth2(oauth2::Kind),
    Passport,
    App(app::Kind),
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
                oauth2::Kind::Page(Page::Authorize) => {
                    ("oauth2", "GET, POST", "login page, authorization code flow")
                }
                oauth2::Kind::Page(Page::Implicit) => {
                    ("oauth2", "GET, POST", "login page, implicit flow")
                }
                oauth2::Kind::Page(Page::Logout) => ("oauth2", "GET, POST", "login page logout"),
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
        let oauth2 =
            config.dialects.oauth2.as_ref().map(|dialect| {
                oauth2::Oauth2::new(dialect, &config.auth.issuer, Arc::clone(&engine))
            });
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
        match (endpoint, &self.oauth2) {
            (Endpoint::Oauth2(kind), Some(dialect)) => {
                dialect.serve(kind, path, request, source).await
            }
            (Endpoint::Passport, _) => match &self.passport {
                Some(dialect) => dialect.serve(request, source).await,
                None => json(StatusCode::NOT_FOUND, &serde_json::json!({})),
            },
            (Endpoint::Mobile, _) => match &self.mobile {
                Some(dialect) => dialect.serve(request, source).await,
                None => json(StatusCode::NOT_FOUND, &serde_json::json!({})),
            },
            (Endpoint::App(kind), _) => match &self.app {
                Some(dialect) => dialect.serve(kind, request, source).await,
                None => json(StatusCode::NOT_FOUND, &serde_json::json!({})),
            },
            // `paths` only holds endpoints of configured dialects.
            (Endpoint::Oauth2(_), None) => json(StatusCode::NOT_FOUND, &serde_json::json!({})),
        }
    }
}

/// Why a request body could not be read as a form.
#[derive(Debug, thiserror::Error)]
pub enum BodyError {
    #[error("the request body exceeds {MAX_FORM_BYTES} bytes")]
    TooLarge,
    #[error("the request body could not be read")]
    Read,
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

/// `Retry-After` in whole seconds, at least 1 (a 0 would invite an immediate retry).
pub fn retry_after(mut response: Response<Body>, after: std::time::Duration) -> Response<Body> {
    response.headers_mut().insert(
        header::RETRY_AFTER,
        HeaderValue::from(after.as_secs().max(1)),
    );
    response
}
