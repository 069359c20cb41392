//! The route stage: which routes a request concerns. The route of the normalised path (where
//! it is forwarded) and every route another plausible reading of it selects (`readings.rs`,
//! plus the case-folded lookup); reselected for an allowed method override; then the method
//! and query rules every selected route imposes. Authorization needs what every one of them
//! needs; identity is injected as the strictest one says.

use std::sync::Arc;

use hyper::header::HeaderValue;
use hyper::http::request::Parts;
use hyper::{HeaderMap, Method, Uri};

use super::ProxyError;
use super::intake::Inbound;
use super::readings::{self, Readings};
use super::routes::{self, RouteMatch, RouteTable};
use super::rules;
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

/// What the route stage decided.
pub(crate) struct Routed {
    pub selection: Selection,
    /// An `access_token` query parameter, for authentication.
    pub query_token: Option<String>,
    /// The query to forward (an accepted `access_token` removed).
    pub query: Option<String>,
}

/// A form body is read (for `_method`) up to this much on routes with `method_override`.
const FORM_BYTES: u64 = 1 << 20;

/// The route stage: owns the route table.
pub(crate) struct Router {
    routes: RouteTable,
}

impl Router {
    pub fn new(routes: &[RouteConfig]) -> Self {
        Router {
            routes: RouteTable::new(routes),
        }
    }

    /// The routes of the request at `path` (normalised), its method override and query rules.
    /// `body` may be read (a form's `_method`). `seen` gets the forwarding route as soon as it
    /// is known (for the access log and metrics of a refused request).
    pub async fn route(
        &self,
        parts: &Parts,
        body: &mut Inbound,
        path: &str,
        seen: &mut Option<Arc<RouteConfig>>,
    ) -> Result<Routed, ProxyError> {
        let readings = readings::read(path)?;
        let mut selection =
            self.select_routes(&parts.uri, &parts.headers, path, &readings, &parts.method)?;
        *seen = Some(Arc::clone(&selection.route));
        if selection.route.rules.method_override {
            if let Some(method) = overriding_method(parts, body, &selection).await? {
                selection =
                    self.select_routes(&parts.uri, &parts.headers, path, &readings, &method)?;
                selection.method_override = true;
                *seen = Some(Arc::clone(&selection.route));
            }
        } else if parts
            .uri
            .query()
            .is_some_and(|q| rules::param(q, "_method").is_some())
            && selection.all().any(|r| r.methods.is_some())
        {
            return Err(ProxyError::BadRequest(
                "`_method` in the query overrides the method for some upstreams; this route does not allow it",
            ));
        }
        if rules::refused_method(&selection.method, selection.route.methods.as_deref()) {
            let allowed = selection
                .route
                .methods
                .clone()
                .unwrap_or_else(|| rules::DEFAULT_ALLOWED.to_vec());
            return Err(ProxyError::MethodNotAllowed(allowed));
        }
        let (query_token, query) = query_rules(parts.uri.query(), &selection)?;
        Ok(Routed {
            selection,
            query_token,
            query,
        })
    }

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
        let (others, disagree) = self.other_routes(host, path, readings, method, &route);
        let all = || std::iter::once(&route).chain(others.iter());
        if disagree && all().any(|r| r.rules.strict_paths) {
            return Err(PathError::Ambiguous.into());
        }
        if readings.non_utf8 && !all().all(|r| r.rules.allow_non_utf8_path) {
            return Err(PathError::NotUtf8.into());
        }
        Ok(Selection {
            authority,
            policy: Arc::clone(strictest(&route, &others)),
            method_override: route.rules.method_override,
            route,
            others,
            method: method.clone(),
        })
    }

    /// The routes other readings select besides `route` (each once), and whether any reading
    /// disagrees with the normal one (another route, or none).
    fn other_routes(
        &self,
        host: Option<&str>,
        path: &str,
        readings: &Readings,
        method: &Method,
        route: &Arc<RouteConfig>,
    ) -> (Vec<Arc<RouteConfig>>, bool) {
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
                RouteMatch::Found(other) if Arc::ptr_eq(other, route) => {}
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
        (others, disagree)
    }
}

/// The method an override asks for, when it differs from the request's: the override
/// headers, `_method` in the query, or `_method` in a form body (read here, bounded).
async fn overriding_method(
    parts: &Parts,
    body: &mut Inbound,
    selection: &Selection,
) -> Result<Option<Method>, ProxyError> {
    let mut method = rules::override_method(&parts.headers, parts.uri.query())?;
    if method.is_none()
        && rules::is_form_post(&parts.method, &parts.headers)
        && let Inbound::Stream(_) = body
    {
        let limit = selection.route.max_body_bytes.min(FORM_BYTES);
        // Boxed: rare, and an async fn's future is as large as its largest state.
        let bytes = Box::pin(body.buffer(limit)).await?;
        method = rules::form_method(&bytes)?;
    }
    Ok(method.filter(|m| *m != parts.method))
}

/// An `access_token` in the query (only where every selected route allows it: it would reach
/// upstream logs otherwise), and the query to forward without it.
fn query_rules(
    query: Option<&str>,
    selection: &Selection,
) -> Result<(Option<String>, Option<String>), ProxyError> {
    let query_token = query.and_then(|q| rules::param(q, "access_token"));
    let forwarded = match &query_token {
        None => query.map(str::to_owned),
        Some(_) if selection.all().all(|r| r.rules.allow_query_token) => {
            query.and_then(|q| rules::without_param(q, "access_token"))
        }
        Some(_) => {
            return Err(ProxyError::BadRequest(
                "an access token in the query would reach upstream logs; send it in the Authorization header",
            ));
        }
    };
    Ok((query_token, forwarded))
}

/// The strictest of the selected routes (the first of equals): whose policy decides.
fn strictest<'a>(
    route: &'a Arc<RouteConfig>,
    others: &'a [Arc<RouteConfig>],
) -> &'a Arc<RouteConfig> {
    // Accepting either credential is looser than accepting one; every selected route still
    // has to accept the credential the policy route authenticated (`proxy/admission.rs`).
    let rank = |policy: AuthPolicy| match policy {
        AuthPolicy::Public => 0,
        AuthPolicy::SessionOrBearer => 1,
        AuthPolicy::Authenticated | AuthPolicy::Session => 2,
        AuthPolicy::Admin => 3,
    };
    let mut policy = route;
    for other in others {
        if rank(other.auth) > rank(policy.auth) {
            policy = other;
        }
    }
    policy
}

/// The authority the client addressed: the URI's (HTTP/2, absolute-form) or the `Host` header.
fn request_authority(uri: &Uri, headers: &HeaderMap) -> Option<HeaderValue> {
    match uri.authority() {
        Some(authority) => HeaderValue::from_str(authority.as_str()).ok(),
        None => headers.get(hyper::header::HOST).cloned(),
    }
}
