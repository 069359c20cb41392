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
pub mod path;
pub mod ratelimit;
pub mod routes;
pub(crate) mod upstream;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::combinators::UnsyncBoxBody;
use http_body_util::{BodyExt, LengthLimitError, Limited};
use hyper::body::{Frame, Incoming};
use hyper::header::{self, HeaderValue};
use hyper::{Request, Response, StatusCode, Uri, Version};
use hyper_util::rt::TokioIo;
use ipnet::IpNet;

use crate::authn::{Authenticator, Principal};
use crate::authz::{self, Denied, Identity, Requested};
use crate::config::{AuthPolicy, Config, RouteConfig, Upstream};
use crate::dialects::Endpoints;
use crate::keyring::Keyring;
use crate::store::{AuditEvent, StoreError};
pub use error::ProxyError;
use headers::{ClientAddr, IdentityNames, X_REQUEST_ID};
use routes::{RouteMatch, RouteTable};
pub use upstream::UpstreamSetupError;
use upstream::Upstreams;

pub type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// Lifetime of an identity assertion: it only has to survive one hop.
const ASSERTION_TTL: Duration = Duration::from_secs(60);

/// Where our public signing keys are published (RFC 8414 `jwks_uri`).
pub const JWKS_PATH: &str = "/.well-known/jwks.json";
/// The body type on both sides of the gateway: streamed, never collected.
pub type Body = UnsyncBoxBody<Bytes, BoxError>;

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
    identity: Option<&'a Identity>,
    conn: &'a ConnInfo,
    client: ClientAddr,
    request_id: &'a HeaderValue,
    authority: Option<HeaderValue>,
    upgrade: bool,
    path: &'a str,
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
            identity: Arc::new(IdentityNames::new(
                config.identity.all_names(&config.routes),
            )),
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
                upstream_ms = exchange.upstream_time.map(|d| d.as_secs_f64() * 1000.0),
                total_ms = started.elapsed().as_secs_f64() * 1000.0,
                client = %client.ip,
            );
        }
        response
    }

    /// Public routes: no identity. Others: a verified token, the route's policy, and any
    /// impersonation the client asked for; nothing is forwarded when this fails.
    async fn authorize(
        &self,
        route: &RouteConfig,
        headers: &hyper::HeaderMap,
        client: ClientAddr,
        request_id: &HeaderValue,
        audit: Audit,
    ) -> Result<Option<Identity>, ProxyError> {
        if route.auth == AuthPolicy::Public {
            return Ok(None);
        }
        let principal = self.authn.authenticate(headers).await?;
        let requested = Requested::from_headers(headers, &route.user_header, &route.group_header)?;
        let mut identity = authz::decide(&principal, route, &requested)?;
        // Header-based impersonation is audited per request; a token-exchange token was
        // audited when it was issued.
        if let Some(admin) = identity
            .impersonator
            .clone()
            .filter(|admin| principal.actor.as_ref() != Some(admin))
        {
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
        Ok(crate::dialects::respond(
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

    /// The route for the request's authority, `path` (normalised) and method, or why there is
    /// none; with the authority the client addressed (the upstream may get it as `Host`).
    fn select_route<B>(
        &self,
        request: &Request<B>,
        path: &str,
    ) -> Result<(Option<HeaderValue>, Arc<RouteConfig>), ProxyError> {
        let authority = request_authority(request);
        let host = authority
            .as_ref()
            .and_then(|a| a.to_str().ok())
            .map(routes::request_host);
        match self.routes.lookup(host.as_deref(), path, request.method()) {
            RouteMatch::Found(route) => Ok((authority, Arc::clone(route))),
            RouteMatch::MethodNotAllowed(methods) => Err(ProxyError::MethodNotAllowed(methods)),
            RouteMatch::NotFound => Err(ProxyError::NoRoute),
        }
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
        headers::remove_identity(&mut parts.headers, &self.identity);
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
            self.inject(&mut parts.headers, r.route, identity)?;
        }
        let keep_host = r.route.preserve_host || r.route.upstream == Upstream::Echo;
        match r.authority.filter(|_| keep_host) {
            Some(host) => parts.headers.insert(header::HOST, host),
            None => parts.headers.remove(header::HOST),
        };
        parts.uri = upstream_uri(r.route, r.path, parts.uri.query())
            .map_err(|e| ProxyError::Internal(e.into()))?;
        parts.version = Version::HTTP_11;
        Ok(())
    }

    async fn process(
        &self,
        mut request: Request<Incoming>,
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
        let (authority, route) = self.select_route(&request, &path)?;
        exchange.route = Some(Arc::clone(&route));
        exchange.path = Some(path.clone());
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
            .authorize(&route, request.headers(), client, request_id, Audit::Write)
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
        if let Some(declared) = declared_length(&request).filter(|len| *len > route.max_body_bytes)
        {
            if declared - route.max_body_bytes <= LINGER_BYTES {
                Box::pin(linger(request.into_body())).await;
            }
            return Err(ProxyError::BodyTooLarge {
                limit: route.max_body_bytes,
            });
        }

        let upgrade =
            request.version() == Version::HTTP_11 && headers::is_upgrade_request(request.headers());
        let client_upgrade = upgrade.then(|| hyper::upgrade::on(&mut request));
        let (mut parts, body) = request.into_parts();
        let rewrite = Rewrite {
            route: &route,
            identity: identity.as_ref(),
            conn: &conn,
            client,
            request_id,
            authority,
            upgrade,
            path: &path,
        };
        self.rewrite(&mut parts, rewrite)?;
        let limit = route.max_body_bytes;
        // Trailers are headers too: a client must not smuggle an identity in them.
        let names = Arc::clone(&self.identity);
        let body = Limited::new(body, usize::try_from(limit).unwrap_or(usize::MAX))
            .map_frame(move |frame| match frame.into_trailers() {
                Ok(mut trailers) => {
                    headers::remove_identity(&mut trailers, &names);
                    Frame::trailers(trailers)
                }
                Err(frame) => frame,
            })
            .boxed_unsync();
        let upstream_request = Request::from_parts(parts, body);

        if route.upstream == Upstream::Echo {
            return Box::pin(echo::respond(upstream_request, limit)).await;
        }
        let sent = Instant::now();
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

/// The authority the client addressed: the URI's (HTTP/2, absolute-form) or the `Host` header.
fn request_authority<B>(request: &Request<B>) -> Option<HeaderValue> {
    match request.uri().authority() {
        Some(authority) => HeaderValue::from_str(authority.as_str()).ok(),
        None => request.headers().get(header::HOST).cloned(),
    }
}

/// A body at most this much over the limit is read and discarded before the 413: closing a
/// socket with unread data makes the kernel send a reset, and the client may then lose the
/// answer while it is still writing (what nginx calls a lingering close).
const LINGER_BYTES: u64 = 1 << 20;

async fn linger(mut body: Incoming) {
    let drain = async { while let Some(Ok(_)) = body.frame().await {} };
    let _ = tokio::time::timeout(Duration::from_secs(5), drain).await;
}

fn declared_length<B>(request: &Request<B>) -> Option<u64> {
    request
        .headers()
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

fn classify_send_error(error: BoxError, limit: u64) -> ProxyError {
    if is_length_limit(error.as_ref()) {
        ProxyError::BodyTooLarge { limit }
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
