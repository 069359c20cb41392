//! The proxy path for every request that is not a token endpoint, as stages, each a file with
//! one concern and the dependencies it uses: intake (request id, client address, header limit,
//! framing, the normalised path, the client's body: `intake.rs`), the gateway's own endpoints
//! (`own.rs`), route selection (`select.rs`), admission (rate limits, authentication,
//! authorization, impersonation and its audit: `admission.rs`), identity (client identity out,
//! the verified one in, assertions: `identity.rs`), forwarding (body limit, upstream URI, send,
//! upgrades: `forward.rs`), and the report (answer, access log, metrics: `report.rs`).
//! [`Proxy::process`] is the pipeline; `authgate explain` runs the same stages (`explain.rs`).
//!
//! Architecture invariant: the path that `routes` matched is the path the upstream receives,
//! and client identity headers are removed before anything is injected.

mod admission;
pub mod affinity;
mod echo;
pub(crate) mod error;
pub mod explain;
mod forward;
mod forward_auth;
pub mod headers;
mod identity;
mod intake;
mod own;
pub mod ratelimit;
pub mod readings;
mod report;
pub mod routes;
pub mod rules;
mod select;
pub mod session;
pub(crate) mod upstream;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use hyper::body::Incoming;
use hyper::http::request::Parts;
use hyper::{Request, Response};
use ipnet::IpNet;

use crate::authn::{Authenticator, Sessions, TokenMemo};
use crate::authz::Identity;
use crate::config::Config;
use crate::dialects::Endpoints;
use crate::http::Body;
use crate::keyring::Keyring;
use crate::outbound::UpstreamSetupError;
use admission::{Admission, Audit};
pub use error::ProxyError;
use forward::Forwarder;
use identity::IdentityHeaders;
use intake::{Inbound, Intake, Origin};
use own::OwnEndpoints;
use report::{Exchange, Report};
use select::{Router, Selection};

/// Facts about the connection a request arrived on.
#[derive(Debug, Clone, Copy)]
pub struct ConnInfo {
    /// The client end: the socket peer, or the source a trusted PROXY header named.
    pub peer: SocketAddr,
    /// The request came over TLS (`X-Forwarded-Proto: https`).
    pub tls: bool,
}

/// What a client connection keeps between its requests: the upstream connections that follow
/// it and the last token it presented.
pub struct ConnState {
    /// Its own upstream connections.
    pub affinity: affinity::Affinity,
    /// Its last bearer token and the principal it verified as.
    pub token: TokenMemo,
}

/// The request path of one config (a reload builds a new one): every stage with what it uses.
pub struct Proxy {
    intake: Intake,
    /// `[forward_auth]`'s check endpoint, when configured.
    forward_auth: Option<forward_auth::ForwardAuth>,
    own: OwnEndpoints,
    router: Router,
    admission: Admission,
    identity: IdentityHeaders,
    forwarder: Forwarder,
    report: Report,
}

/// What the stages before forwarding decided ([`Proxy::prepare`]).
struct Prepared {
    selection: Selection,
    identity: Option<Identity>,
    /// The query to forward (an accepted `access_token` removed).
    query: Option<String>,
    /// The request is forwarded as a protocol upgrade.
    upgrade: bool,
}

impl Proxy {
    /// The stages for `config`. Fails when an upstream's CA file cannot be loaded.
    pub fn new(
        config: &Config,
        authn: Arc<Authenticator>,
        keyring: Arc<Keyring>,
        sessions: Arc<Sessions>,
    ) -> Result<Self, UpstreamSetupError> {
        let store = keyring.store().clone();
        Ok(Proxy {
            intake: Intake::new(config),
            forward_auth: forward_auth::ForwardAuth::new(config),
            own: OwnEndpoints::new(Arc::clone(&keyring)),
            router: Router::new(&config.routes),
            identity: IdentityHeaders::new(config, &authn, Arc::clone(&keyring)),
            admission: Admission::new(config, authn, store, sessions),
            forwarder: Forwarder::new(config)?,
            report: Report::new(config),
        })
    }

    /// `server.trusted_proxies` of this config (the listeners read it for each new connection).
    pub fn trusted_proxies(&self) -> &[IpNet] {
        self.intake.trusted_proxies()
    }

    /// Counts requests, latencies and auth failures in `metrics`.
    pub fn with_metrics(mut self, metrics: Arc<crate::metrics::Metrics>) -> Self {
        self.report.set_metrics(metrics);
        self
    }

    /// Serves the dialects' token endpoints too.
    pub fn with_endpoints(mut self, endpoints: Arc<Endpoints>) -> Self {
        self.own.set_endpoints(endpoints);
        self
    }

    /// How long an idle client connection keeps its upstream connections ([`affinity`]).
    pub fn affinity_idle_timeout(&self) -> Duration {
        self.forwarder.affinity_idle_timeout()
    }

    /// Serves one request. `state` is what the client connection it arrived on keeps.
    pub async fn handle(
        &self,
        request: Request<Incoming>,
        conn: ConnInfo,
        state: Option<&ConnState>,
    ) -> Response<Body> {
        let mut exchange = self.report.start(&request);
        let mut origin = self.intake.origin(conn, request.headers());
        origin.memo = state.map(|s| &s.token);
        let affinity = state.map(|s| &s.affinity);
        let result = self
            .process(request, &origin, affinity, &mut exchange)
            .await;
        let response = self.report.answer(result, &origin, &exchange);
        self.report.record(&exchange, &response, &origin);
        response
    }

    /// The answer to a request whose bytes `http::wire` refused (given to hyper as a stand-in
    /// request, `server/screen.rs`): the refusal, logged like any answer, and the connection
    /// closed after it.
    pub fn refuse<B>(
        &self,
        request: &Request<B>,
        conn: ConnInfo,
        refusal: crate::http::wire::Refusal,
    ) -> Response<Body> {
        let exchange = self.report.start(request);
        let origin = self.intake.origin(conn, request.headers());
        // 400 and 501 as the proxy words its own framing refusals (`rules.rs`).
        let error = match refusal.status {
            400 => ProxyError::BadRequest(refusal.reason),
            501 => ProxyError::NotImplemented(refusal.reason),
            _ => ProxyError::Wire(refusal),
        };
        let response = self.report.answer(Err(error), &origin, &exchange);
        self.report.record(&exchange, &response, &origin);
        response
    }

    /// The pipeline: intake, the gateway's own endpoints, then route, admission, body limit,
    /// identity and forwarding.
    async fn process(
        &self,
        request: Request<Incoming>,
        origin: &Origin<'_>,
        affinity: Option<&affinity::Affinity>,
        exchange: &mut Exchange,
    ) -> Result<Response<Body>, ProxyError> {
        let path = self.intake.screen(&request)?;
        if path == "*" {
            return Ok(rules::server_options());
        }
        if let Some(check) = self.forward_auth.as_ref().filter(|f| f.matches(&path)) {
            exchange.keep_path(&path);
            return self
                .check(check, request, origin, &mut exchange.route)
                .await;
        }
        if let Some(own) = self.own.find(&path) {
            let source = origin.client.ip;
            return self.own.serve(own, request, path, source, exchange).await;
        }
        exchange.keep_path(&path);
        let (parts, body) = request.into_parts();
        let mut body = Inbound::Stream(body);
        let seen = &mut exchange.route;
        let prepared = self.prepare(&parts, &mut body, &path, origin, Audit::Write, seen);
        // An error is answered before the body is read: drained first, so the client sees it.
        let prepared = match prepared.await {
            Ok(prepared) => prepared,
            Err(error) => {
                body.linger_unread(&parts.headers).await;
                return Err(error);
            }
        };
        let route = &prepared.selection.route;
        if route.upstream == crate::config::Upstream::None {
            body.linger_unread(&parts.headers).await;
            return Err(ProxyError::NotForwarded);
        }
        let body =
            forward::check_declared_length(&parts.headers, route.max_body_bytes, body).await?;
        // A connection that ends with this request gains nothing from an upstream connection
        // of its own (opened, used once, closed): the shared pool's is already open.
        let lasts = headers::connection_lasts(parts.version, &parts.headers);
        let affinity = affinity.filter(|_| lasts);
        let (mut parts, client_upgrade) = forward::client_upgrade(parts, prepared.upgrade);
        self.rewrite(&mut parts, &prepared, origin, &path)?;
        let body = body.into_upstream(route.max_body_bytes, Arc::clone(self.identity.names()));
        let request = Request::from_parts(parts, body);
        let upstream_time = &mut exchange.upstream_time;
        let forwarder = &self.forwarder;
        forwarder
            .forward(route, request, affinity, client_upgrade, upstream_time)
            .await
    }

    /// Everything decided before a byte goes upstream: the routes (with method override and
    /// query rules), admission, and the upgrade. `body` may be read here (a form's `_method`);
    /// on an error it is drained by the caller. `seen` gets the forwarding route as soon as it
    /// is known.
    async fn prepare(
        &self,
        parts: &Parts,
        body: &mut Inbound,
        path: &str,
        origin: &Origin<'_>,
        audit: Audit,
        seen: &mut Option<Arc<crate::config::RouteConfig>>,
    ) -> Result<Prepared, ProxyError> {
        let routed = self.router.route(parts, body, path, seen).await?;
        let admit = self.admission.admit(&routed, parts, origin, audit);
        let identity = admit.await?;
        let upgrade = forward::upgrade(&routed.selection.route, parts)?;
        Ok(Prepared {
            selection: routed.selection,
            identity,
            query: routed.query,
            upgrade,
        })
    }

    /// What the upstream receives instead of what the client sent: hop-by-hop headers out
    /// first (so a `Connection` list can only name client headers away), the client's identity
    /// headers out, `Forwarded`/`X-Forwarded-*` and the request id set, the verified identity
    /// injected, then the upstream's Host and URI.
    fn rewrite(
        &self,
        parts: &mut Parts,
        prepared: &Prepared,
        origin: &Origin<'_>,
        path: &str,
    ) -> Result<(), ProxyError> {
        let selection = &prepared.selection;
        headers::remove_hop_by_hop(&mut parts.headers, prepared.upgrade);
        self.identity
            .strip(&mut parts.headers, selection.method_override);
        session::strip_gateway_cookies(&mut parts.headers);
        let proto = if origin.conn.tls { "https" } else { "http" };
        let authority = selection.authority.as_ref();
        let host_text = authority.and_then(|a| a.to_str().ok());
        let peer = origin.conn.peer.ip();
        headers::set_forwarded(&mut parts.headers, peer, origin.client, proto, host_text);
        parts
            .headers
            .insert(&headers::X_REQUEST_ID, origin.request_id.clone());
        if let Some(identity) = &prepared.identity {
            self.identity
                .inject(&mut parts.headers, &selection.policy, identity)?;
        }
        let query = prepared.query.as_deref();
        forward::retarget(parts, &selection.route, authority, path, query)
    }
}
