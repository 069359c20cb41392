//! The forwarding stage: the upgrade decision (WebSocket validated, other upgrades dropped),
//! the body limit (`Content-Length` now, a `Limited` stream later), the upstream's Host and
//! URI, the send under the route's timeout (the client connection's own upstream connection
//! or the pool; `builtin:echo` answers itself), the send and body errors classified by whose
//! fault they are, and the response's hop-by-hop removal or, on `101`, the tunnel.

use std::time::{Duration, Instant};

use http_body_util::{BodyExt, LengthLimitError};
use hyper::body::Incoming;
use hyper::header::{self, HeaderValue};
use hyper::http::request::Parts;
use hyper::upgrade::OnUpgrade;
use hyper::{HeaderMap, Request, Response, StatusCode, Uri, Version};
use hyper_util::rt::TokioIo;

use super::affinity::{self, Affinity};
use super::echo;
use super::error::ProxyError;
use super::headers::{self, UpgradeRequest};
use super::intake::{ClientBodyError, Inbound, LINGER_BYTES};
use super::upstream::Upstreams;
use crate::config::{Config, RouteConfig, Upstream};
use crate::http::{Body, BoxError};
use crate::outbound::UpstreamSetupError;

/// The forwarding stage: the upstream clients and connection settings.
pub(crate) struct Forwarder {
    upstreams: Upstreams,
    connect_timeout: Duration,
    /// Zero: every request goes through the shared pool.
    affinity_idle_timeout: Duration,
}

impl Forwarder {
    pub fn new(config: &Config) -> Result<Self, UpstreamSetupError> {
        Ok(Forwarder {
            upstreams: Upstreams::new(&config.upstream, &config.routes)?,
            connect_timeout: config.upstream.connect_timeout,
            affinity_idle_timeout: config.upstream.affinity_idle_timeout,
        })
    }

    pub fn affinity_idle_timeout(&self) -> Duration {
        self.affinity_idle_timeout
    }

    /// Sends `request` on `route` and returns the upstream's response for the client.
    /// `client_upgrade` is the client side of an upgrade the request asks for; `upstream_time`
    /// gets how long the upstream took.
    pub async fn forward(
        &self,
        route: &RouteConfig,
        request: Request<Body>,
        affinity: Option<&Affinity>,
        client_upgrade: Option<OnUpgrade>,
        upstream_time: &mut Option<Duration>,
    ) -> Result<Response<Body>, ProxyError> {
        let limit = route.max_body_bytes;
        if route.upstream == Upstream::Echo {
            return Box::pin(echo::respond(request, limit)).await;
        }
        let sent = Instant::now();
        let affinity = affinity.filter(|_| client_upgrade.is_none());
        let send = self.send(route, request, affinity);
        let result = tokio::time::timeout(route.timeout, send).await;
        *upstream_time = Some(sent.elapsed());
        match result {
            Err(_elapsed) => Err(ProxyError::UpstreamTimeout(route.timeout)),
            Ok(Err(error)) => Err(classify_send_error(error, limit)),
            Ok(Ok(response)) => for_client(response, client_upgrade),
        }
    }

    /// Over a connection of the client connection's own when the upstream is plain HTTP/1.1
    /// (and the request is no upgrade), else through the shared pool.
    async fn send(
        &self,
        route: &RouteConfig,
        request: Request<Body>,
        affinity: Option<&Affinity>,
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

/// Whether the request is forwarded as an upgrade: a valid WebSocket handshake on a route
/// that allows WebSockets. Anything else (h2c, unknown protocols, WebSocket where it is off)
/// is removed with the other hop-by-hop fields and the request goes on as a plain one.
pub(crate) fn upgrade(route: &RouteConfig, parts: &Parts) -> Result<bool, ProxyError> {
    Ok(
        match headers::upgrade_request(&parts.method, &parts.headers) {
            _ if parts.version != Version::HTTP_11 => false,
            UpgradeRequest::WebSocket => route.rules.websocket,
            UpgradeRequest::BadWebSocket if route.rules.websocket => {
                return Err(ProxyError::BadRequest(
                    "a WebSocket upgrade needs GET, Sec-WebSocket-Key and Sec-WebSocket-Version",
                ));
            }
            // RFC 6455 §4.2.2: 426 naming the version that is spoken, not a plain request.
            UpgradeRequest::WebSocketVersion if route.rules.websocket => {
                return Err(ProxyError::WebSocketVersion);
            }
            _ => false,
        },
    )
}

/// The client side of the upgrade the request is forwarded as, if it is (hyper hands it out
/// from a `Request`, not from its `Parts`).
pub(crate) fn client_upgrade(parts: Parts, upgrade: bool) -> (Parts, Option<OnUpgrade>) {
    let mut request = Request::from_parts(parts, ());
    let client_side = upgrade.then(|| hyper::upgrade::on(&mut request));
    let (parts, ()) = request.into_parts();
    (parts, client_side)
}

/// The body limit as far as `Content-Length` tells, before a byte is read. A body at most
/// [`LINGER_BYTES`] over it is drained first, so the client can read the 413.
pub(crate) async fn check_declared_length(
    headers: &HeaderMap,
    limit: u64,
    body: Inbound,
) -> Result<Inbound, ProxyError> {
    let declared = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    match declared.filter(|len| *len > limit) {
        None => Ok(body),
        Some(declared) => {
            if declared - limit <= LINGER_BYTES {
                body.linger().await;
            }
            Err(ProxyError::BodyTooLarge { limit })
        }
    }
}

/// Points the request at the upstream: its Host (the client's authority with
/// `preserve_host`, and for echo) and URI, over HTTP/1.1 semantics.
pub(crate) fn retarget(
    parts: &mut Parts,
    route: &RouteConfig,
    authority: Option<&HeaderValue>,
    path: &str,
    query: Option<&str>,
) -> Result<(), ProxyError> {
    let keep_host = route.preserve_host || route.upstream == Upstream::Echo;
    match authority.filter(|_| keep_host) {
        Some(host) => parts.headers.insert(header::HOST, host.clone()),
        None => parts.headers.remove(header::HOST),
    };
    parts.uri = upstream_uri(route, path, query).map_err(|e| ProxyError::Internal(e.into()))?;
    parts.version = Version::HTTP_11;
    Ok(())
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
        Upstream::Echo | Upstream::None => (None, None, ""),
    };
    let rest = if rest.is_empty() && base.is_empty() {
        "/"
    } else {
        rest
    };
    // One allocation of the right size, without the formatting machinery (every request).
    let query_len = query.map_or(0, |q| q.len() + 1);
    let mut path_and_query = String::with_capacity(base.len() + rest.len() + query_len);
    path_and_query.push_str(base);
    path_and_query.push_str(rest);
    if let Some(q) = query {
        path_and_query.push('?');
        path_and_query.push_str(q);
    }
    let mut builder = Uri::builder();
    if let (Some(scheme), Some(authority)) = (scheme, authority) {
        builder = builder.scheme(scheme.clone()).authority(authority.clone());
    }
    builder.path_and_query(path_and_query).build()
}

/// The upstream's response as the client gets it: hop-by-hop fields removed; a `101` only
/// for an upgrade the client asked for, whose two connections are then joined.
fn for_client(
    mut response: Response<Incoming>,
    client_upgrade: Option<OnUpgrade>,
) -> Result<Response<Body>, ProxyError> {
    let switching = response.status() == StatusCode::SWITCHING_PROTOCOLS;
    match client_upgrade {
        Some(client_side) if switching => tunnel(client_side, hyper::upgrade::on(&mut response)),
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

/// Whether `error` or one of its sources is of type `E`.
fn caused_by<E: std::error::Error + 'static>(error: &(dyn std::error::Error + 'static)) -> bool {
    let mut current = Some(error);
    while let Some(e) = current {
        if e.is::<E>() {
            return true;
        }
        current = e.source();
    }
    false
}

/// A failed send: the body over its limit (413), the client's body failing (400), else the
/// upstream's fault (502).
fn classify_send_error(error: BoxError, limit: u64) -> ProxyError {
    if caused_by::<LengthLimitError>(error.as_ref()) {
        ProxyError::BodyTooLarge { limit }
    } else if caused_by::<ClientBodyError>(error.as_ref()) {
        ProxyError::BodyRead(error)
    } else {
        ProxyError::UpstreamUnreachable(error)
    }
}

/// A failed read of the client's body: over its limit (413), else unreadable (400).
pub(crate) fn classify_body_error(error: BoxError, limit: u64) -> ProxyError {
    if caused_by::<LengthLimitError>(error.as_ref()) {
        ProxyError::BodyTooLarge { limit }
    } else {
        ProxyError::BodyRead(error)
    }
}

/// Joins the client's and the upstream's upgraded connections (WebSocket and friends).
fn tunnel(client: OnUpgrade, upstream: OnUpgrade) {
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
mod tests;
