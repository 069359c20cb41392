//! The request-level plumbing every stage relies on: who sent the request ([`Origin`]: the
//! connection, the client address after `trusted_proxies`, the request id), the checks made
//! before anything is looked up (header size, framing, the normalised path), and the client's
//! body ([`Inbound`]): streamed, buffered for a form's `_method`, or drained (lingered) before a
//! refusal so the client can read it.

use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::{Body as _, Frame, Incoming};
use hyper::header::{self, HeaderValue};
use hyper::{HeaderMap, Request};
use ipnet::IpNet;
use std::sync::Arc;

use super::error::ProxyError;
use super::forward::classify_body_error;
use super::headers::{self, ClientAddr, IdentityNames, X_REQUEST_ID};
use super::{ConnInfo, rules};
use crate::authn::TokenMemo;
use crate::config::Config;
use crate::http::path;
use crate::http::{Body, BoxError};

/// Who sent a request and under which id it is known: fixed before any stage runs.
pub(crate) struct Origin<'c> {
    pub conn: ConnInfo,
    pub client: ClientAddr,
    pub request_id: HeaderValue,
    /// The client connection's last token, when the request came over a connection that keeps
    /// one.
    pub memo: Option<&'c TokenMemo>,
}

/// The checks made on every request before a route or endpoint is looked up.
pub(crate) struct Intake {
    /// Peers whose `X-Forwarded-*` are believed (the client address comes from them).
    trusted_proxies: Vec<IpNet>,
    max_header_bytes: usize,
}

impl Intake {
    pub fn new(config: &Config) -> Self {
        Intake {
            trusted_proxies: config.server.trusted_proxies.clone(),
            max_header_bytes: config.server.max_header_bytes,
        }
    }

    pub fn trusted_proxies(&self) -> &[IpNet] {
        &self.trusted_proxies
    }

    /// The request id (the client's when valid, else a new one) and the client address.
    pub fn origin<'c>(&self, conn: ConnInfo, headers: &HeaderMap) -> Origin<'c> {
        let request_id = match headers.get(&X_REQUEST_ID) {
            Some(value) if headers::valid_request_id(value) => value.clone(),
            _ => new_request_id(),
        };
        Origin {
            conn,
            client: headers::client_addr(conn.peer.ip(), headers, &self.trusted_proxies),
            request_id,
            memo: None,
        }
    }

    /// The header-size limit, HTTP framing, then the normalised path everything after this
    /// reads (never `uri().path()` again).
    pub fn screen<B>(&self, request: &Request<B>) -> Result<String, ProxyError> {
        if headers::header_bytes(request.headers()) > self.max_header_bytes {
            return Err(ProxyError::HeadersTooLarge {
                limit: self.max_header_bytes,
            });
        }
        rules::check_framing(request.version(), request.method(), request.headers())?;
        if request.method() == hyper::Method::OPTIONS && request.uri() == "*" {
            // RFC 9112 §3.2.4: the server as a whole; answered by `rules::server_options`.
            return Ok("*".to_owned());
        }
        Ok(path::normalize(request.uri().path())?.into_owned())
    }
}

fn new_request_id() -> HeaderValue {
    let id = uuid::Uuid::new_v4();
    let mut buffer = uuid::Uuid::encode_buffer();
    HeaderValue::from_str(id.hyphenated().encode_lower(&mut buffer))
        .unwrap_or_else(|_| HeaderValue::from_static("-"))
}

/// The request body: streamed as it arrives, or already read (a form's `_method`).
pub(crate) enum Inbound {
    Stream(Incoming),
    Buffered(Bytes),
}

impl Inbound {
    /// Reads a streamed body whole, up to `limit` bytes.
    pub async fn buffer(&mut self, limit: u64) -> Result<Bytes, ProxyError> {
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

    /// Before an answer to a request whose body is still coming: reads a bounded amount
    /// first, or an HTTP/2 client still sending it may see the stream reset and lose the
    /// answer. A client waiting for `100 Continue` sends nothing, so nothing is read.
    pub async fn linger_unread(self, headers: &HeaderMap) {
        if let Inbound::Stream(body) = self
            && !body.is_end_stream()
            && !headers.contains_key(header::EXPECT)
        {
            // Boxed, like every rare path: an async fn's future is as large as its largest
            // state, and hyper moves the request future on every request.
            Box::pin(linger(body, LINGER_BYTES)).await;
        }
    }

    /// Before a 413 for a body declared at most [`LINGER_BYTES`] over the limit.
    pub async fn linger(self) {
        if let Inbound::Stream(body) = self {
            Box::pin(linger(body, LINGER_BYTES)).await;
        }
    }

    /// The body the upstream gets: limited to `limit`, client errors marked as the client's,
    /// identity names removed from trailers.
    pub fn into_upstream(self, limit: u64, names: Arc<IdentityNames>) -> Body {
        match self {
            Inbound::Buffered(bytes) => Full::new(bytes)
                .map_err(|never| match never {})
                .boxed_unsync(),
            // No body (most requests): nothing to limit or to strip trailers from, and an
            // empty body is a box without an allocation.
            Inbound::Stream(body) if body.is_end_stream() => http_body_util::Empty::new()
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
pub(crate) struct ClientBodyError(#[source] BoxError);

/// A body at most this much over the limit is read and discarded before the 413: closing a
/// socket with unread data makes the kernel send a reset, and the client may then lose the
/// answer while it is still writing (what nginx calls a lingering close).
pub(crate) const LINGER_BYTES: u64 = 1 << 20;

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
