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
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Incoming;
use hyper::header::{self, HeaderValue};
use hyper::{Request, Response, StatusCode};

use crate::config::Config;
use crate::grant::Engine;
use crate::keyring::Keyring;
use crate::proxy::Body;
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
        let mut paths = HashMap::new();
        let oauth2 = config.dialects.oauth2.as_ref().map(|dialect| {
            for (kind, path) in oauth2::Kind::paths(dialect) {
                paths.insert(path.to_owned(), Endpoint::Oauth2(kind));
            }
            oauth2::Oauth2::new(dialect, &config.auth.issuer, Arc::clone(&engine))
        });
        let passport = config.dialects.passport.as_ref().map(|dialect| {
            paths.insert(dialect.path.clone(), Endpoint::Passport);
            passport::Passport::new(dialect, Arc::clone(&engine))
        });
        let mobile = config.dialects.mobile.as_ref().map(|dialect| {
            paths.insert(dialect.path.clone(), Endpoint::Mobile);
            mobile::Mobile::new(dialect, Arc::clone(&engine))
        });
        let app = match &config.dialects.app {
            Some(dialect) => {
                for (kind, path) in app::Kind::paths(dialect) {
                    paths.insert(path.to_owned(), Endpoint::App(kind));
                }
                Some(app::App::new(dialect, &config.store, engine, keyring)?)
            }
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

/// A complete answer the gateway makes itself.
pub fn respond(
    status: StatusCode,
    content_type: Option<&'static str>,
    cache_control: &'static str,
    body: Bytes,
) -> Response<Body> {
    let body = Full::new(body)
        .map_err(|never| match never {})
        .boxed_unsync();
    let mut response = Response::new(body);
    *response.status_mut() = status;
    let headers = response.headers_mut();
    if let Some(content_type) = content_type {
        headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    }
    headers.insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static(cache_control),
    );
    response
}
