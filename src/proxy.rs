//! The proxy path for every request that is not a token endpoint: normalise the path, match a
//! route, apply its auth policy, clean the headers, and forward to the upstream (or the built-in
//! echo), streaming both bodies. One access-log event per request.
//!
//! Architecture invariant: the path that `routes` matched is the path the upstream receives,
//! and client identity headers are removed before anything is injected.

pub mod affinity;
mod echo;
pub(crate) mod error;
pub mod explain;
pub mod headers;
pub mod ratelimit;
pub mod readings;
pub mod routes;
pub mod rules;
mod select;
pub(crate) mod upstream;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::{BodyExt, Full, LengthLimitError, Limited};
use hyper::body::{Body as _, Frame, Incoming};
use hyper::header::{self, HeaderValue};
use hyper::{Request, Response, StatusCode, Uri, Version};
use hyper_util::rt::TokioIo;
use ipnet::IpNet;

use crate::authn::{Authenticator, Principal};
use crate::authz::{self, Denied, Identity, Requested};
use crate::config::{AuthPolicy, Config, RouteConfig, Upstream};
use crate::dialects::Endpoints;
use crate::http::path;
use crate::http::{Body, BoxError};
use crate::keyring::{JWKS_PATH, Keyring};
use crate::outbound::UpstreamSetupError;
use crate::store::{AuditEvent, StoreError};
pub use error::ProxyError;
use headers::{ClientAddr, IdentityNames, UpgradeRequest, X_REQUEST_ID};
use routes::RouteTable;
use select::Selection;
use upstream::Upstreams;

/// Lifetime of an identity assertion: it only has to survive one hop.
const ASSERTION_TTL: Duration = Duration::from_secs(60);

/// Facts about the connection a request arrived on.
#[derive(Debug, Clone, Copy)]
pub struct ConnInfo {
    pub peer: SocketAddr,
    pub tls: bool,
}

pub struct Proxy {
    routes: RouteTable,
    authn: Arc<Authenticator>,
    keyring: Arc<Keyring>,
    own_issuer: String,
    forward_authorization: bool,
    impersonator_header: header::HeaderName,
    scope_header: Option<header::HeaderName>,
    assertion_header: header::HeaderName,
    client_header: header::HeaderName,
    identity: Arc<IdentityNames>,
    upstreams: Upstreams,
    connect_timeout: Duration,
    /// Zero: every request goes through the shared pool.
    affinity_idle_timeout: Duration,
    trusted_proxies: Vec<IpNet>,
    max_header_bytes: usize,
    access_log: bool,
    log_query: bool,
    /// The token endpoints, served before the route table is consulted.
    endpoints: Option<Arc<Endpoints>>,
    metrics: Option<Arc<crate::metrics::Metrics>>,
    rate_limits: ratelimit::RateLimits,
}

/// Whether an impersonation is audited (serving) or only checked (`explain`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Audit {
    Write,
    DryRun,
}

/// The inputs of [`Proxy::rewrite`].
struct Rewrite<'a> {
    route: &'a RouteConfig,
    /// The strictest selected route: its identity header names are used.
    policy: &'a RouteConfig,
    identity: Option<&'a Identity>,
    conn: &'a ConnInfo,
    client: ClientAddr,
    request_id: &'a HeaderValue,
    authority: Option<HeaderValue>,
    upgrade: bool,
    path: &'a str,
    /// The query to forward (an accepted `access_token` removed).
    query: Option<&'a str>,
    /// Method override headers are forwarded.
    method_override: bool,
}

/// What [`Proxy::prepare`] decided.
struct Prepared {
    selection: Selection,
    identity: Option<Identity>,
    query: Option<String>,
    upgrade: bool,
}

/// A form body is read (for `_method`) up to this much on routes with `method_override`.
const FORM_BYTES: u64 = 1 << 20;

/// The request body: streamed as it arrives, or already read (a form's `_method`).
enum Inbound {
    Stream(Incoming),
    Buffered(Bytes),
}

impl Inbound {
    /// Reads a streamed body whole, up to `limit` bytes.
    async fn buffer(&mut self, limit: u64) -> Result<Bytes, ProxyError> {
        let bytes = match std::mem::replace(self, Inbound::Buffered(Bytes::new())) {
            Inbound::Buffered(bytes) => bytes,
            Inbound::Stream(body) => {
                Limited::new(body, usize::try_from(limit).unwrap_or(usize::MAX))
                    .collect()
                    .await
                    .map_err(|error| classify_body_error(error, limit))?
                    .to_bytes()
            }
        };
        *self = Inbound::Buffered(bytes.clone());
        Ok(bytes)
    }

    /// The body the upstream gets: limited to `limit`, client errors marked as the client's,
    /// identity names removed from trailers.
    fn into_upstream(self, limit: u64, names: Arc<IdentityNames>) -> Body {
        match self {
            Inbound::Buffered(bytes) => Full::new(bytes)
                .map_err(|never| match never {})
                .boxed_unsync(),
            Inbound::Stream(body) => {
                Limited::new(body, usize::try_from(limit).unwrap_or(usize::MAX))
                    .map_err(|error| BoxError::from(ClientBodyError(error)))
                    // Trailers are headers too: a client must not smuggle an identity in them.
                    .map_frame(move |frame| match frame.into_trailers() {
                        Ok(mut trailers) => {
                            headers::remove_identity(&mut trailers, &names);
                            Frame::trailers(trailers)
                        }
                        Err(frame) => frame,
                    })
                    .boxed_unsync()
            }
        }
    }
}

/// The client's request body failed (malformed chunking, a reset): the client's fault, 400,
/// never the upstream's 502.
#[derive(Debug, thiserror::Error)]
#[error("the request body could not be read")]
struct ClientBodyError(#[source] BoxError);

fn empty_body() -> Body {
    http_body_util::Empty::new()
        .map_err(|never| match never {})
        .boxed_unsync()
}

/// What the access log reports besides the response.
#[derive(Default)]
struct Exchange {
    route: Option<Arc<RouteConfig>>,
    path: Option<String>,
    /// A token endpoint answered (its path is the metrics label: a bounded set).
    endpoint: bool,
    upstream_time: Option<Duration>,
}

impl Proxy {
    pub fn new(
        config: &Config,
        authn: Arc<Authenticator>,
        keyring: Arc<Keyring>,
    ) -> Result<Self, UpstreamSetupError> {
        Ok(Proxy {
            routes: RouteTable::new(&config.routes),
            authn,
            keyring,
            own_issuer: config.auth.issuer.clone(),
            forward_authorization: config.auth.forward_authorization,
            impersonator_header: config.identity.impersonator_header.clone(),
            scope_header: config.identity.scope_header.clone(),
            assertion_header: config.identity.assertion_header.clone(),
            client_header: config.identity.client_header.clone(),
            identity: Arc::new(
                IdentityNames::new(config.identity.all_names(&config.routes)).with(
                    config
                        .identity
                        .strip_headers
                        .iter()
                        .map(|h| (h.name.as_str(), h.prefix)),
                ),
            ),
            upstreams: Upstreams::new(&config.upstream, &config.routes)?,
            connect_timeout: config.upstream.connect_timeout,
            affinity_idle_timeout: config.upstream.affinity_idle_timeout,
            trusted_proxies: config.server.trusted_proxies.clone(),
            max_header_bytes: config.server.max_header_bytes,
            access_log: config.log.access_log,
            log_query: config.log.log_query,
            endpoints: None,
            metrics: None,
            rate_limits: ratelimit::RateLimits::new(&config.routes),
        })
    }

    /// `server.trusted_proxies` of this config (the listeners read it for each new connection).
    pub fn trusted_proxies(&self) -> &[IpNet] {
        &self.trusted_proxies
    }

    /// Counts requests, latencies and auth failures in `metrics`.
    pub fn with_metrics(mut self, metrics: Arc<crate::metrics::Metrics>) -> Self {
        self.metrics = Some(metrics);
        self
    }

    /// Serves the dialects' token endpoints too.
    pub fn with_endpoints(mut self, endpoints: Arc<Endpoints>) -> Self {
        self.endpoints = Some(endpoints);
        self
    }

    /// How long an idle client connection keeps its upstream connections ([`affinity`]).
    pub fn affinity_idle_timeout(&self) -> Duration {
        self.affinity_idle_timeout
    }

    /// Serves one request. `affinity` holds the upstream connections of the client connection
    /// it arrived on.
    pub async fn handle(
        &self,
        request: Request<Incoming>,
        conn: ConnInfo,
        affinity: Option<&affinity::Affinity>,
    ) -> Response<Body> {
        let started = Instant::now();
        let request_id = match request.headers().get(&X_REQUEST_ID) {
            Some(value) if headers::valid_request_id(value) => value.clone(),
            _ => new_request_id(),
        };
        let client = headers::client_addr(conn.peer.ip(), request.headers(), &self.trusted_proxies);
        let method = request.method().clone();
        let logged_uri = self.access_log.then(|| request.uri().clone());
        let mut exchange = Exchange::default();
        let mut response = match self
            .process(request, conn, affinity, client, &request_id, &mut exchange)
            .await
        {
            Ok(response) => response,
            Err(error) => {
                if let (Some(metrics), Some(reason)) = (&self.metrics, error.auth_failure()) {
                    metrics.auth_failure(reason);
                }
                if error.status().is_server_error() {
                    let cause = std::error::Error::source(&error).map(ToString::to_string);
                    tracing::warn!(request_id = request_id.to_str().unwrap_or_default(), %error, cause, "request failed");
                }
                error.into_response(&request_id)
            }
        };
        response
            .headers_mut()
            .insert(&X_REQUEST_ID, request_id.clone());
        if method == hyper::Method::HEAD {
            // RFC 9110 §9.3.2: never a body (over HTTP/2 one is a protocol error to clients).
            *response.body_mut() = empty_body();
        }
        if let Some(metrics) = &self.metrics {
            let route = match (&exchange.route, &exchange.path) {
                (Some(route), _) => route.name.as_str(),
                (None, Some(path)) if exchange.endpoint => path.as_str(),
                _ => "-",
            };
            let status = response.status().as_u16();
            metrics.request(
                route,
                &method,
                status,
                started.elapsed(),
                exchange.upstream_time,
            );
        }
        if let Some(uri) = logged_uri {
            let path = exchange.path.as_deref().unwrap_or(uri.path());
            tracing::info!(
                target: "authgate::access",
                request_id = request_id.to_str().unwrap_or_default(),
                method = method.as_str(),
                path,
                query = if self.log_query { uri.query() } else { None },
                route = exchange.route.as_ref().map(|r| r.name.as_str()),
                status = response.status().as_u16(),
                upstream_ms = exchange.upstream_time.map(crate::telemetry::millis),
                total_ms = crate::telemetry::millis(started.elapsed()),
                client = %client.ip,
            );
        }
        response
    }

    /// Public routes: no identity. Others: a verified token, the policy of every selected
    /// route, and any impersonation the client asked for (decided on the strictest route);
    /// nothing is forwarded when this fails.
    async fn authorize(
        &self,
        selection: &Selection,
        headers: &hyper::HeaderMap,
        query_token: Option<&str>,
        client: ClientAddr,
        request_id: &HeaderValue,
        audit: Audit,
    ) -> Result<Option<Identity>, ProxyError> {
        let route = &*selection.policy;
        if route.auth == AuthPolicy::Public {
            return Ok(None);
        }
        let principal = self.authn.authenticate_with(headers, query_token).await?;
        let requested = Requested::from_headers(headers, &route.user_header, &route.group_header)?;
        let mut identity = authz::decide(&principal, route, &requested)?;
        for other in selection.all() {
            if !Arc::ptr_eq(other, &selection.policy) && other.auth != AuthPolicy::Public {
                authz::decide(&principal, other, &requested)?;
            }
        }
        // Header-based impersonation is audited per request, and so is acting by an external
        // issuer trusted for delegation (its `act`); our own token-exchange token was audited
        // when it was issued.
        let issued_by_us = |admin: &String| {
            principal.actor.as_ref() == Some(admin) && principal.issuer == self.own_issuer
        };
        if let Some(admin) = identity.impersonator.clone().filter(|a| !issued_by_us(a)) {
            // Boxed: rare, and an async fn's future is as large as its largest state.
            Box::pin(self.check_target(&principal, &requested, &mut identity)).await?;
            if audit == Audit::DryRun {
                // `explain`: the same checks, nothing written.
                return Ok(Some(identity));
            }
            let event = AuditEvent::new("impersonate")
                .actor(format!("user:{admin}"))
                .subject(format!("user:{}", identity.user_id))
                .source(client.ip.to_string())
                .request(request_id.to_str().unwrap_or_default())
                .details(serde_json::json!({"route": route.name, "group_id": identity.group_id}));
            // Impersonation that cannot be audited does not happen.
            let store = self.keyring.store();
            Box::pin(store.audit(&event, crate::store::now()))
                .await
                .map_err(|e| ProxyError::Internal(e.into()))?;
        }
        Ok(Some(identity))
    }

    /// An impersonated user must exist and be enabled when our store knows them, and must not
    /// be an admin; their group is the store's unless the request named one.
    async fn check_target(
        &self,
        principal: &Principal,
        requested: &Requested,
        identity: &mut Identity,
    ) -> Result<(), ProxyError> {
        if requested.user_id.is_none() || identity.user_id == principal.user_id {
            return Ok(()); // acting as admin of a group: the admin stays the user
        }
        let own = principal.issuer == self.own_issuer;
        let Ok(id) = identity.user_id.parse::<i64>() else {
            return if own {
                Err(Denied::NoSuchUser.into())
            } else {
                Ok(())
            };
        };
        match self.keyring.store().user(id).await {
            Ok(user) if user.disabled => {
                Err(Denied::Impersonation("the user to act as is disabled").into())
            }
            Ok(user) if user.is_admin() => {
                Err(Denied::Impersonation("an admin cannot act as another admin").into())
            }
            Ok(user) => {
                identity
                    .group_id
                    .get_or_insert_with(|| user.group_id.to_string());
                Ok(())
            }
            Err(StoreError::NotFound { .. }) if own => Err(Denied::NoSuchUser.into()),
            Err(StoreError::NotFound { .. }) => Ok(()),
            Err(error) => Err(ProxyError::Internal(error.into())),
        }
    }

    /// `GET /.well-known/jwks.json`: our pending, active and retiring public keys.
    fn jwks(&self, method: &hyper::Method) -> Result<Response<Body>, ProxyError> {
        if method != hyper::Method::GET && method != hyper::Method::HEAD {
            return Err(ProxyError::MethodNotAllowed(vec![
                hyper::Method::GET,
                hyper::Method::HEAD,
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

    /// Runs after every client identity header is gone, so nothing here can be overridden.
    fn inject(
        &self,
        headers: &mut hyper::HeaderMap,
        route: &RouteConfig,
        identity: &Identity,
    ) -> Result<(), ProxyError> {
        if !self.forward_authorization {
            headers.remove(header::AUTHORIZATION);
            for name in self.authn.token_headers() {
                headers.remove(name);
            }
        }
        let value =
            |text: &str| HeaderValue::from_str(text).map_err(|e| ProxyError::Internal(e.into()));
        match identity
            .user_id
            .strip_prefix("client:")
            .filter(|_| identity.client)
        {
            // A client acting for itself: no user a legacy upstream could mistake it for.
            Some(client_id) => {
                headers.insert(&self.client_header, value(client_id)?);
            }
            None => {
                headers.insert(&route.user_header, value(&identity.user_id)?);
                if let Some(group) = &identity.group_id {
                    headers.insert(&route.group_header, value(group)?);
                }
            }
        }
        if let Some(admin) = &identity.impersonator {
            headers.insert(&self.impersonator_header, value(admin)?);
        }
        if let Some(name) = &self.scope_header {
            headers.insert(name, value(&identity.scopes.join(" "))?);
        }
        if route.identity_assertion {
            let key = self
                .keyring
                .signing_key(crate::store::KeyAlg::Es256)
                .map_err(|e| ProxyError::Internal(e.into()))?;
            let assertion = crate::tokens::Assertion {
                audience: &route.name,
                user_id: &identity.user_id,
                group_id: identity.group_id.as_deref(),
                actor: identity.impersonator.as_deref(),
            };
            let now = jsonwebtoken::get_current_timestamp();
            let assertion = crate::tokens::issue_assertion(
                &self.own_issuer,
                &key,
                &assertion,
                ASSERTION_TTL,
                now,
            )
            .map_err(|e| ProxyError::Internal(e.into()))?;
            headers.insert(&self.assertion_header, value(&assertion)?);
        }
        Ok(())
    }

    /// What the upstream receives instead of what the client sent: hop-by-hop and identity
    /// headers out, `X-Forwarded-*` and the request id set, the verified identity injected, the
    /// Host and URI of the upstream.
    fn rewrite(
        &self,
        parts: &mut hyper::http::request::Parts,
        r: Rewrite<'_>,
    ) -> Result<(), ProxyError> {
        headers::remove_hop_by_hop(&mut parts.headers, r.upgrade);
        // A route that allows method overrides gets them; they are on the strip list otherwise.
        let overrides: Vec<(&'static str, HeaderValue)> = if r.method_override {
            crate::config::METHOD_OVERRIDE_HEADERS
                .iter()
                .filter_map(|name| parts.headers.get(*name).map(|v| (*name, v.clone())))
                .collect()
        } else {
            Vec::new()
        };
        headers::remove_identity(&mut parts.headers, &self.identity);
        for (name, value) in overrides {
            parts.headers.insert(name, value);
        }
        let proto = if r.conn.tls { "https" } else { "http" };
        let host_text = r.authority.as_ref().and_then(|a| a.to_str().ok());
        headers::set_forwarded(
            &mut parts.headers,
            r.conn.peer.ip(),
            r.client,
            proto,
            host_text,
        );
        parts.headers.insert(&X_REQUEST_ID, r.request_id.clone());
        if let Some(identity) = r.identity {
            self.inject(&mut parts.headers, r.policy, identity)?;
        }
        let keep_host = r.route.preserve_host || r.route.upstream == Upstream::Echo;
        match r.authority.filter(|_| keep_host) {
            Some(host) => parts.headers.insert(header::HOST, host),
            None => parts.headers.remove(header::HOST),
        };
        parts.uri =
            upstream_uri(r.route, r.path, r.query).map_err(|e| ProxyError::Internal(e.into()))?;
        parts.version = Version::HTTP_11;
        Ok(())
    }

    /// Everything decided before a byte goes upstream: framing, the path and its readings,
    /// the routes, method override, query rules, rate limits, authorization and the upgrade.
    /// `body` may be read here (a form's `_method`); on an error it is drained by the caller.
    /// `seen` gets the forwarding route as soon as it is known (for the access log and metrics
    /// of a refused request).
    #[allow(clippy::too_many_arguments)]
    async fn prepare(
        &self,
        parts: &hyper::http::request::Parts,
        body: &mut Inbound,
        path: &str,
        client: ClientAddr,
        request_id: &HeaderValue,
        audit: Audit,
        seen: &mut Option<Arc<RouteConfig>>,
    ) -> Result<Prepared, ProxyError> {
        let readings = readings::read(path)?;
        let mut selection =
            self.select_routes(&parts.uri, &parts.headers, path, &readings, &parts.method)?;
        *seen = Some(Arc::clone(&selection.route));
        let query = parts.uri.query();
        if selection.route.rules.method_override {
            let mut method = rules::override_method(&parts.headers, query)?;
            if method.is_none()
                && rules::is_form_post(&parts.method, &parts.headers)
                && let Inbound::Stream(_) = body
            {
                let limit = selection.route.max_body_bytes.min(FORM_BYTES);
                let bytes = Box::pin(body.buffer(limit)).await?;
                method = rules::form_method(&bytes)?;
            }
            if let Some(method) = method.filter(|m| *m != parts.method) {
                selection =
                    self.select_routes(&parts.uri, &parts.headers, path, &readings, &method)?;
                selection.method_override = true;
                *seen = Some(Arc::clone(&selection.route));
            }
        } else if query.is_some_and(|q| rules::param(q, "_method").is_some())
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
        let query_token = query.and_then(|q| rules::param(q, "access_token"));
        let forwarded_query = match &query_token {
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
        let route = Arc::clone(&selection.route);
        // Limits by address come before authentication (a flood never costs a signature
        // check); limits by user need the verified identity.
        let by_client = self.rate_limits.keyed_by_client(&route);
        if by_client {
            let caller = ratelimit::Caller {
                user: None,
                ip: client.ip,
            };
            self.rate_limits
                .check(&route, &caller)
                .map_err(ProxyError::RateLimited)?;
        }
        let identity = self
            .authorize(
                &selection,
                &parts.headers,
                query_token.as_deref(),
                client,
                request_id,
                audit,
            )
            .await?;
        if !by_client {
            let caller = ratelimit::Caller {
                user: identity.as_ref().map(|i| i.user_id.as_str()),
                ip: client.ip,
            };
            self.rate_limits
                .check(&route, &caller)
                .map_err(ProxyError::RateLimited)?;
        }
        let upgrade = match headers::upgrade_request(&parts.method, &parts.headers) {
            _ if parts.version != Version::HTTP_11 => false,
            UpgradeRequest::WebSocket => route.rules.websocket,
            UpgradeRequest::BadWebSocket if route.rules.websocket => {
                return Err(ProxyError::BadRequest(
                    "a WebSocket upgrade needs GET, Sec-WebSocket-Key and Sec-WebSocket-Version",
                ));
            }
            // Anything else (h2c, unknown protocols, WebSocket where it is off) is removed
            // with the other hop-by-hop fields and the request goes on as a plain one.
            _ => false,
        };
        Ok(Prepared {
            selection,
            identity,
            query: forwarded_query,
            upgrade,
        })
    }

    async fn process(
        &self,
        request: Request<Incoming>,
        conn: ConnInfo,
        affinity: Option<&affinity::Affinity>,
        client: ClientAddr,
        request_id: &HeaderValue,
        exchange: &mut Exchange,
    ) -> Result<Response<Body>, ProxyError> {
        if headers::header_bytes(request.headers()) > self.max_header_bytes {
            return Err(ProxyError::HeadersTooLarge {
                limit: self.max_header_bytes,
            });
        }
        rules::check_framing(request.version(), request.method(), request.headers())?;
        let path = path::normalize(request.uri().path())?.into_owned();
        if path == JWKS_PATH {
            return self.jwks(request.method());
        }
        if let Some(endpoints) = &self.endpoints
            && let Some(endpoint) = endpoints.find(&path)
        {
            // Boxed, like every rare path below: an async fn's future is as large as its
            // largest state, and hyper moves the request future on every request.
            let response = Box::pin(endpoints.serve(endpoint, &path, request, client.ip)).await;
            exchange.path = Some(path);
            exchange.endpoint = true;
            return Ok(response);
        }
        exchange.path = Some(path.clone());
        let (parts, body) = request.into_parts();
        let mut body = Inbound::Stream(body);
        let prepared = match self
            .prepare(
                &parts,
                &mut body,
                &path,
                client,
                request_id,
                Audit::Write,
                &mut exchange.route,
            )
            .await
        {
            Ok(prepared) => prepared,
            Err(error) => {
                // An answer before the body is read: read a bounded amount first, or an
                // HTTP/2 client still sending it may see the stream reset and lose the answer.
                if let Inbound::Stream(body) = body
                    && !body.is_end_stream()
                    && !parts.headers.contains_key(header::EXPECT)
                {
                    Box::pin(linger(body, LINGER_BYTES)).await;
                }
                return Err(error);
            }
        };
        let route = Arc::clone(&prepared.selection.route);
        if let Some(declared) =
            declared_length(&parts.headers).filter(|len| *len > route.max_body_bytes)
        {
            if declared - route.max_body_bytes <= LINGER_BYTES
                && let Inbound::Stream(body) = body
            {
                Box::pin(linger(body, LINGER_BYTES)).await;
            }
            return Err(ProxyError::BodyTooLarge {
                limit: route.max_body_bytes,
            });
        }

        let mut request = Request::from_parts(parts, ());
        let client_upgrade = prepared.upgrade.then(|| hyper::upgrade::on(&mut request));
        let (mut parts, ()) = request.into_parts();
        let rewrite = Rewrite {
            route: &route,
            policy: &prepared.selection.policy,
            identity: prepared.identity.as_ref(),
            conn: &conn,
            client,
            request_id,
            authority: prepared.selection.authority.clone(),
            upgrade: prepared.upgrade,
            path: &path,
            query: prepared.query.as_deref(),
            method_override: prepared.selection.method_override,
        };
        self.rewrite(&mut parts, rewrite)?;
        let limit = route.max_body_bytes;
        let body = body.into_upstream(limit, Arc::clone(&self.identity));
        let upstream_request = Request::from_parts(parts, body);

        if route.upstream == Upstream::Echo {
            return Box::pin(echo::respond(upstream_request, limit)).await;
        }
        let sent = Instant::now();
        let upgrade = prepared.upgrade;
        let affinity = affinity.filter(|_| !upgrade);
        let send = self.send(&route, upstream_request, affinity);
        let result = tokio::time::timeout(route.timeout, send).await;
        exchange.upstream_time = Some(sent.elapsed());
        let mut response = match result {
            Err(_elapsed) => return Err(ProxyError::UpstreamTimeout(route.timeout)),
            Ok(Err(error)) => return Err(classify_send_error(error, limit)),
            Ok(Ok(response)) => response,
        };
        let switching = response.status() == StatusCode::SWITCHING_PROTOCOLS;
        match client_upgrade {
            Some(client_side) if switching => {
                tunnel(client_side, hyper::upgrade::on(&mut response))
            }
            _ if switching => {
                return Err(ProxyError::UpstreamUnreachable(
                    "the upstream switched protocols unasked".into(),
                ));
            }
            _ => {}
        }
        let (mut parts, body) = response.into_parts();
        headers::remove_hop_by_hop(&mut parts.headers, switching);
        parts.version = Version::HTTP_11;
        Ok(Response::from_parts(
            parts,
            body.map_err(BoxError::from).boxed_unsync(),
        ))
    }

    /// Over a connection of the client connection's own when the upstream is plain HTTP/1.1
    /// (and the request is no upgrade), else through the shared pool.
    async fn send(
        &self,
        route: &RouteConfig,
        request: Request<Body>,
        affinity: Option<&affinity::Affinity>,
    ) -> Result<Response<Incoming>, BoxError> {
        let request = match (affinity, &route.upstream) {
            (
                Some(affinity),
                Upstream::Http {
                    scheme, authority, ..
                },
            ) if !self.affinity_idle_timeout.is_zero()
                && !route.h2c
                && *scheme == hyper::http::uri::Scheme::HTTP
                && request.method() != hyper::Method::CONNECT =>
            {
                match affinity
                    .send(authority, request, self.connect_timeout)
                    .await
                {
                    Ok(response) => return Ok(response),
                    Err(affinity::SendError::Busy(request)) => *request,
                    Err(affinity::SendError::Connect(error)) => return Err(error),
                    Err(affinity::SendError::Http(error)) => return Err(error.into()),
                }
            }
            _ => request,
        };
        Ok(self.upstreams.send(route, request).await?)
    }
}

fn new_request_id() -> HeaderValue {
    let id = uuid::Uuid::new_v4();
    let mut buffer = uuid::Uuid::encode_buffer();
    HeaderValue::from_str(id.hyphenated().encode_lower(&mut buffer))
        .unwrap_or_else(|_| HeaderValue::from_static("-"))
}

/// A body at most this much over the limit is read and discarded before the 413: closing a
/// socket with unread data makes the kernel send a reset, and the client may then lose the
/// answer while it is still writing (what nginx calls a lingering close).
const LINGER_BYTES: u64 = 1 << 20;

/// Reads and discards up to `limit` bytes of `body`, for at most 5 s.
async fn linger(mut body: Incoming, limit: u64) {
    let drain = async {
        let mut read = 0u64;
        while let Some(Ok(frame)) = body.frame().await {
            read += frame.data_ref().map_or(0, |d| d.len() as u64);
            if read > limit {
                break;
            }
        }
    };
    let _ = tokio::time::timeout(Duration::from_secs(5), drain).await;
}

fn declared_length(headers: &hyper::HeaderMap) -> Option<u64> {
    headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse().ok())
}

/// The upstream URI: the upstream's base path, then the normalised path (minus the route
/// prefix when `strip_prefix`), then the query exactly as the client sent it.
fn upstream_uri(
    route: &RouteConfig,
    path: &str,
    query: Option<&str>,
) -> Result<Uri, hyper::http::Error> {
    let rest = if route.strip_prefix && route.prefix != "/" {
        &path[route.prefix.len()..]
    } else {
        path
    };
    let (scheme, authority, base) = match &route.upstream {
        Upstream::Http {
            scheme,
            authority,
            base_path,
        } => (Some(scheme), Some(authority), base_path.as_str()),
        Upstream::Echo => (None, None, ""),
    };
    let rest = if rest.is_empty() && base.is_empty() {
        "/"
    } else {
        rest
    };
    let path_and_query = match query {
        Some(q) => format!("{base}{rest}?{q}"),
        None => format!("{base}{rest}"),
    };
    let mut builder = Uri::builder();
    if let (Some(scheme), Some(authority)) = (scheme, authority) {
        builder = builder.scheme(scheme.clone()).authority(authority.clone());
    }
    builder.path_and_query(path_and_query).build()
}

fn is_length_limit(error: &(dyn std::error::Error + 'static)) -> bool {
    let mut current = Some(error);
    while let Some(e) = current {
        if e.is::<LengthLimitError>() {
            return true;
        }
        current = e.source();
    }
    false
}

fn is_client_body(error: &(dyn std::error::Error + 'static)) -> bool {
    let mut current = Some(error);
    while let Some(e) = current {
        if e.is::<ClientBodyError>() {
            return true;
        }
        current = e.source();
    }
    false
}

fn classify_send_error(error: BoxError, limit: u64) -> ProxyError {
    if is_length_limit(error.as_ref()) {
        ProxyError::BodyTooLarge { limit }
    } else if is_client_body(error.as_ref()) {
        ProxyError::BodyRead(error)
    } else {
        ProxyError::UpstreamUnreachable(error)
    }
}

fn classify_body_error(error: BoxError, limit: u64) -> ProxyError {
    if is_length_limit(error.as_ref()) {
        ProxyError::BodyTooLarge { limit }
    } else {
        ProxyError::BodyRead(error)
    }
}

/// Joins the client's and the upstream's upgraded connections (WebSocket and friends).
fn tunnel(client: hyper::upgrade::OnUpgrade, upstream: hyper::upgrade::OnUpgrade) {
    tokio::spawn(async move {
        match tokio::try_join!(client, upstream) {
            Ok((client, upstream)) => {
                let (mut client, mut upstream) = (TokioIo::new(client), TokioIo::new(upstream));
                if let Err(error) = tokio::io::copy_bidirectional(&mut client, &mut upstream).await
                {
                    tracing::debug!(%error, "upgraded connection ended");
                }
            }
            Err(error) => tracing::debug!(%error, "protocol upgrade failed"),
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn upstream_uris() {
        let mut route = crate::config::RouteConfig {
            name: "svc".into(),
            host: None,
            prefix: "/svc".into(),
            methods: None,
            upstream: Upstream::Http {
                scheme: hyper::http::uri::Scheme::HTTP,
                authority: "127.0.0.1:9000".parse().expect("authority"),
                base_path: "/base".into(),
            },
            ca_file: None,
            h2c: false,
            strip_prefix: true,
            preserve_host: false,
            timeout: Duration::from_secs(1),
            max_body_bytes: 1,
            auth: AuthPolicy::Public,
            user_header: header::HeaderName::from_static("user_id"),
            group_header: header::HeaderName::from_static("group_id"),
            scopes: vec![],
            audiences: vec![],
            impersonation: true,
            identity_assertion: false,
            allow_clients: false,
            rate_limit: None,
            rules: Default::default(),
        };
        let uri = |route: &RouteConfig, path, query| {
            upstream_uri(route, path, query).expect("uri").to_string()
        };
        assert_eq!(
            uri(&route, "/svc/x", Some("q=1")),
            "http://127.0.0.1:9000/base/x?q=1"
        );
        assert_eq!(uri(&route, "/svc", None), "http://127.0.0.1:9000/base");
        assert_eq!(uri(&route, "/svc/", None), "http://127.0.0.1:9000/base/");
        route.strip_prefix = false;
        assert_eq!(
            uri(&route, "/svc/x", None),
            "http://127.0.0.1:9000/base/svc/x"
        );
        route.upstream = Upstream::Echo;
        route.strip_prefix = true;
        assert_eq!(uri(&route, "/svc", None), "/");
    }
}
