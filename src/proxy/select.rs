//! Which routes a request concerns: the route of the normalised path (where it is forwarded)
//! and every route another plausible reading of it selects (`readings.rs`, plus the
//! case-folded lookup). Authorization needs what every one of them needs; identity is injected
//! as the strictest one says.

use std::sync::Arc;

use hyper::header::HeaderValue;
use hyper::{HeaderMap, Method, Uri};

use super::readings::Readings;
use super::routes::{self, RouteMatch};
use super::{Proxy, ProxyError};
use crate::config::{AuthPolicy, RouteConfig};
use crate::http::path::PathError;

/// The routes of one request.
#[derive(Debug, Clone)]
pub(crate) struct Selection {
    /// The authority the client addressed (the upstream may get it as `Host`).
    pub authority: Option<HeaderValue>,
    /// The route of the normalised path: the upstream, limits and timeouts come from it.
    pub route: Arc<RouteConfig>,
    /// The strictest selected route: whose identity headers are injected.
    pub policy: Arc<RouteConfig>,
    /// Every selected route besides `route` (each must authorize the request too).
    pub others: Vec<Arc<RouteConfig>>,
    /// The method routes were selected for (an allowed override's, else the request's).
    pub method: Method,
    /// The route of the request's own method allows method overrides: they are forwarded.
    pub method_override: bool,
}

impl Selection {
    /// `route`, then the others.
    pub fn all(&self) -> impl Iterator<Item = &Arc<RouteConfig>> {
        std::iter::once(&self.route).chain(self.others.iter())
    }
}

fn rank(policy: AuthPolicy) -> u8 {
    match policy {
        AuthPolicy::Public => 0,
        AuthPolicy::Authenticated => 1,
        AuthPolicy::Admin => 2,
    }
}

impl Proxy {
    /// The routes for the request's authority, `path` (normalised) and its other `readings`,
    /// for `method`; or why there is none, or why the readings cannot be served.
    pub(crate) fn select_routes(
        &self,
        uri: &Uri,
        headers: &HeaderMap,
        path: &str,
        readings: &Readings,
        method: &Method,
    ) -> Result<Selection, ProxyError> {
        let authority = request_authority(uri, headers);
        let host = authority
            .as_ref()
            .and_then(|a| a.to_str().ok())
            .map(routes::request_host);
        let host = host.as_deref();
        let route = match self.routes.lookup(host, path, method) {
            RouteMatch::Found(route) => Arc::clone(route),
            RouteMatch::MethodNotAllowed(methods) => {
                return Err(ProxyError::MethodNotAllowed(methods));
            }
            RouteMatch::NotFound => return Err(ProxyError::NoRoute),
        };
        let mut others: Vec<Arc<RouteConfig>> = Vec::new();
        let mut disagree = false;
        let candidates = std::iter::once((path, true)).chain(
            readings
                .paths
                .iter()
                .flat_map(|p| [(p.as_str(), false), (p.as_str(), true)]),
        );
        for (reading, fold) in candidates {
            match self.routes.lookup_as(host, reading, method, fold) {
                RouteMatch::Found(other) if Arc::ptr_eq(other, &route) => {}
                RouteMatch::Found(other) => {
                    disagree = true;
                    if !others.iter().any(|o| Arc::ptr_eq(o, other)) {
                        others.push(Arc::clone(other));
                    }
                }
                // No route (or not for this method) under that reading: nothing to require,
                // but a strict route takes it as a disagreement.
                _ => disagree = true,
            }
        }
        let all = || std::iter::once(&route).chain(others.iter());
        if disagree && all().any(|r| r.rules.strict_paths) {
            return Err(PathError::Ambiguous.into());
        }
        if readings.non_utf8 && !all().all(|r| r.rules.allow_non_utf8_path) {
            return Err(PathError::NotUtf8.into());
        }
        let mut policy = &route;
        for other in &others {
            if rank(other.auth) > rank(policy.auth) {
                policy = other;
            }
        }
        Ok(Selection {
            authority,
            policy: Arc::clone(policy),
            route: Arc::clone(&route),
            others,
            method: method.clone(),
            method_override: route.rules.method_override,
        })
    }
}

/// The authority the client addressed: the URI's (HTTP/2, absolute-form) or the `Host` header.
fn request_authority(uri: &Uri, headers: &HeaderMap) -> Option<HeaderValue> {
    match uri.authority() {
        Some(authority) => HeaderValue::from_str(authority.as_str()).ok(),
        None => headers.get(hyper::header::HOST).cloned(),
    }
}
