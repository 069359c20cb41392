//! The answers the gateway gives itself on the proxy listener, looked up by exact path before
//! the route table: our JWKS document and the dialects' token endpoints (served by
//! `dialects::Endpoints`).

use std::net::IpAddr;
use std::sync::Arc;

use hyper::body::Incoming;
use hyper::{Method, Request, Response, StatusCode};

use super::error::ProxyError;
use super::report::Exchange;
use crate::dialects::oauth2::cors;
use crate::dialects::{Endpoint, Endpoints};
use crate::http::Body;
use crate::keyring::{JWKS_PATH, Keyring};

/// The gateway's own endpoints.
pub(crate) struct OwnEndpoints {
    /// Publishes the JWKS document.
    keyring: Arc<Keyring>,
    /// The token endpoints, when this proxy serves them.
    endpoints: Option<Arc<Endpoints>>,
}

/// Which of them a path names.
pub(crate) enum Own {
    Jwks,
    Token(Endpoint),
}

impl OwnEndpoints {
    pub fn new(keyring: Arc<Keyring>) -> Self {
        OwnEndpoints {
            keyring,
            endpoints: None,
        }
    }

    pub fn set_endpoints(&mut self, endpoints: Arc<Endpoints>) {
        self.endpoints = Some(endpoints);
    }

    /// The endpoint at exactly `path` (normalised), if any.
    pub fn find(&self, path: &str) -> Option<Own> {
        if path == JWKS_PATH {
            return Some(Own::Jwks);
        }
        let endpoints = self.endpoints.as_ref()?;
        endpoints.find(path).map(Own::Token)
    }

    /// Answers `request` at `path` (what [`OwnEndpoints::find`] found there).
    pub async fn serve(
        &self,
        own: Own,
        request: Request<Incoming>,
        path: String,
        source: IpAddr,
        exchange: &mut Exchange,
    ) -> Result<Response<Body>, ProxyError> {
        let endpoint = match own {
            Own::Jwks => return self.jwks_cors(&request).await,
            Own::Token(endpoint) => endpoint,
        };
        // `find` names a token endpoint only when there are endpoints.
        let Some(endpoints) = &self.endpoints else {
            return Err(ProxyError::NoRoute);
        };
        // Boxed, like every rare path: an async fn's future is as large as its largest
        // state, and hyper moves the request future on every request.
        let response = Box::pin(endpoints.serve(endpoint, &path, request, source)).await;
        exchange.path = Some(path);
        exchange.endpoint = true;
        Ok(response)
    }

    /// The JWKS document for browser applications too (CORS, as the `oauth2` dialect allows).
    async fn jwks_cors(&self, request: &Request<Incoming>) -> Result<Response<Body>, ProxyError> {
        let origin = match self.endpoints.as_ref().and_then(|e| e.oauth2()) {
            Some(oauth2) => oauth2.cors_origin(request.headers()).await,
            None => None,
        };
        if cors::is_preflight(request.method(), request.headers()) {
            return Ok(cors::preflight(origin, "GET"));
        }
        let mut response = self.jwks(request.method())?;
        cors::allow(&mut response, origin);
        Ok(response)
    }

    /// `GET /.well-known/jwks.json`: our pending, active and retiring public keys.
    fn jwks(&self, method: &Method) -> Result<Response<Body>, ProxyError> {
        if method != Method::GET && method != Method::HEAD {
            return Err(ProxyError::MethodNotAllowed(vec![
                Method::GET,
                Method::HEAD,
            ]));
        }
        // Short enough that verifiers learn a new pending key long before it signs.
        Ok(crate::http::respond(
            StatusCode::OK,
            Some("application/jwk-set+json"),
            "public, max-age=300",
            self.keyring.jwks(),
        ))
    }
}

impl Own {
    /// What answers at `path`, for `authgate explain`.
    pub fn describe(&self, path: &str) -> String {
        match self {
            Own::Jwks => "the JWKS document (our public keys)".into(),
            Own::Token(endpoint) => {
                let (dialect, methods, what) = endpoint.describe();
                format!("{path}: the {dialect} dialect's {what} ({methods})")
            }
        }
    }
}
