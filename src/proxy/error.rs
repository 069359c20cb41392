//! Everything that can go wrong on the proxy path, and the one place that turns it into the
//! client's answer: a status and a JSON body `{"error", "error_description", "request_id"}`.

use std::time::Duration;

use hyper::header::{self, HeaderValue};
use hyper::{Method, Response, StatusCode};

use crate::authn::AuthFailure;
use crate::authn::AuthnError;
use crate::authz::Denied;
use crate::http::path::PathError;
use crate::http::{Body, BoxError, json_response};

/// Why a request on the proxy path was not answered by its upstream. Each variant decides its
/// status and `error` code here and nowhere else.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ProxyError {
    /// 400: the path cannot be normalised, is ambiguous under a strict route, or is not UTF-8.
    #[error("{0}")]
    BadPath(#[from] PathError),
    /// 404: no route for this host and path.
    #[error("no route matches this request")]
    NoRoute,
    /// The request could be read differently by the upstream, or breaks HTTP's framing.
    #[error("{0}")]
    BadRequest(&'static str),
    /// RFC 9112 §6.1: a transfer coding the gateway does not implement.
    #[error("{0}")]
    NotImplemented(&'static str),
    /// 405, with `Allow` listing these methods.
    #[error("this route does not allow the method")]
    MethodNotAllowed(Vec<Method>),
    /// No valid token: 401 with a challenge (400 for a malformed request, 503 when the
    /// store behind opaque tokens is down).
    #[error(transparent)]
    Authn(#[from] AuthnError),
    /// A verified token this route (or an impersonation) does not accept.
    #[error(transparent)]
    Denied(#[from] Denied),
    #[error("the request body exceeds this route's limit of {limit} bytes")]
    /// 413; the connection is closed (the body was not read to its end).
    BodyTooLarge {
        /// The route's `max_body_bytes`.
        limit: u64,
    },
    #[error("the request headers exceed the limit of {limit} bytes")]
    /// 431.
    HeadersTooLarge {
        /// `server.max_header_bytes`.
        limit: usize,
    },
    /// 400: the client's body failed (malformed chunking, a reset), not the upstream.
    #[error("the request body could not be read")]
    BodyRead(#[source] BoxError),
    /// 502: connecting, sending or reading the answer failed, or the upstream switched
    /// protocols unasked.
    #[error("the upstream could not be reached")]
    UpstreamUnreachable(#[source] BoxError),
    /// 504: no response head within the route's `timeout`.
    #[error("the upstream did not answer within {0:?}")]
    UpstreamTimeout(Duration),
    /// 500, the gateway's own failure: the upstream request could not be built (its URI or an
    /// injected identity value), an identity assertion could not be signed (no active ES256
    /// key), or the store failed while looking up the user to act as or auditing an
    /// impersonation. The client-facing text predates the store cases and is kept (answers are
    /// recorded byte for byte); the log has the source.
    #[error("the gateway could not build the upstream request")]
    Internal(#[source] BoxError),
    /// The route's rate limit for this user or address: retry after the duration.
    #[error("too many requests; retry after {} s", .0.as_secs())]
    RateLimited(Duration),
    /// A session route without a usable session: 302 to the sign-in page for a browser
    /// navigation, else 401.
    #[error("this route requires signing in")]
    SignIn(super::session::SignIn),
    /// 403: a session may not change state from another site (`proxy/session.rs`).
    #[error("{0}")]
    CrossSite(&'static str),
    /// 403: not for this caller (forward-auth from an address outside `allow_from`), or
    /// nothing allows it (forward-auth for a path no route takes).
    #[error("{0}")]
    Forbidden(&'static str),
    /// 404: the route only decides for an edge proxy (`upstream = "none"`).
    #[error(
        "this route is served by an edge proxy; the gateway only decides for it (forward-auth)"
    )]
    NotForwarded,
    /// 426 with `Sec-WebSocket-Version: 13`: a WebSocket handshake of another version.
    #[error("only WebSocket version 13 is supported")]
    WebSocketVersion,
    /// The request's bytes break HTTP/1.1's limits (`http::wire`): 414, 431, 417 or 505 as the
    /// refusal says (its 400 and 501 are `BadRequest` and `NotImplemented`); the connection
    /// closes after it.
    #[error("{}", .0.reason)]
    Wire(crate::http::wire::Refusal),
}

/// A forward-auth 401's sign-in URL, for an edge proxy that redirects itself (nginx's
/// `error_page 401`).
pub static SIGN_IN_HEADER: hyper::header::HeaderName =
    hyper::header::HeaderName::from_static("x-authgate-sign-in");

impl ProxyError {
    /// The answer's status.
    pub fn status(&self) -> StatusCode {
        match self {
            ProxyError::BadPath(_) | ProxyError::BodyRead(_) | ProxyError::BadRequest(_) => {
                StatusCode::BAD_REQUEST
            }
            ProxyError::NotImplemented(_) => StatusCode::NOT_IMPLEMENTED,
            ProxyError::NoRoute | ProxyError::Denied(Denied::NoSuchUser) => StatusCode::NOT_FOUND,
            ProxyError::MethodNotAllowed(_) => StatusCode::METHOD_NOT_ALLOWED,
            ProxyError::Authn(AuthnError::InvalidRequest(_))
            | ProxyError::Denied(Denied::BadRequest(_)) => StatusCode::BAD_REQUEST,
            ProxyError::Authn(AuthnError::Unavailable) => StatusCode::SERVICE_UNAVAILABLE,
            ProxyError::Authn(_) | ProxyError::Denied(Denied::Audience(_)) => {
                StatusCode::UNAUTHORIZED
            }
            ProxyError::Denied(Denied::InsufficientScope(_) | Denied::Impersonation(_)) => {
                StatusCode::FORBIDDEN
            }
            ProxyError::BodyTooLarge { .. } => StatusCode::PAYLOAD_TOO_LARGE,
            ProxyError::HeadersTooLarge { .. } => StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE,
            ProxyError::UpstreamUnreachable(_) => StatusCode::BAD_GATEWAY,
            ProxyError::UpstreamTimeout(_) => StatusCode::GATEWAY_TIMEOUT,
            ProxyError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
            ProxyError::RateLimited(_) => StatusCode::TOO_MANY_REQUESTS,
            ProxyError::SignIn(sign_in) if sign_in.redirect => StatusCode::FOUND,
            ProxyError::SignIn(_) => StatusCode::UNAUTHORIZED,
            ProxyError::CrossSite(_) | ProxyError::Forbidden(_) => StatusCode::FORBIDDEN,
            ProxyError::NotForwarded => StatusCode::NOT_FOUND,
            ProxyError::Wire(refusal) => {
                StatusCode::from_u16(refusal.status).unwrap_or(StatusCode::BAD_REQUEST)
            }
            ProxyError::WebSocketVersion => StatusCode::UPGRADE_REQUIRED,
        }
    }

    /// The answer's `error` code (RFC 6750 §3.1 where one applies).
    pub fn code(&self) -> &'static str {
        match self {
            ProxyError::BadPath(_) | ProxyError::BodyRead(_) | ProxyError::BadRequest(_) => {
                "invalid_request"
            }
            ProxyError::NotImplemented(_) => "not_implemented",
            ProxyError::NoRoute => "not_found",
            ProxyError::Denied(Denied::NoSuchUser) => "user_not_found",
            ProxyError::MethodNotAllowed(_) => "method_not_allowed",
            ProxyError::Authn(AuthnError::Missing) => "unauthorized",
            ProxyError::Authn(AuthnError::InvalidRequest(_))
            | ProxyError::Denied(Denied::BadRequest(_)) => "invalid_request",
            ProxyError::Authn(AuthnError::Unavailable) => "temporarily_unavailable",
            ProxyError::Authn(_) | ProxyError::Denied(Denied::Audience(_)) => "invalid_token",
            ProxyError::Denied(Denied::InsufficientScope(_) | Denied::Impersonation(_)) => {
                "insufficient_scope"
            }
            ProxyError::BodyTooLarge { .. } => "payload_too_large",
            ProxyError::HeadersTooLarge { .. } => "request_header_fields_too_large",
            ProxyError::UpstreamUnreachable(_) => "bad_gateway",
            ProxyError::UpstreamTimeout(_) => "gateway_timeout",
            ProxyError::Internal(_) => "server_error",
            ProxyError::RateLimited(_) => "rate_limited",
            ProxyError::SignIn(_) => "unauthorized",
            ProxyError::CrossSite(_) => "cross_site_request",
            ProxyError::Forbidden(_) => "forbidden",
            ProxyError::NotForwarded => "not_found",
            ProxyError::WebSocketVersion => "upgrade_required",
            ProxyError::Wire(refusal) => match refusal.status {
                414 => "uri_too_long",
                417 => "expectation_failed",
                431 => "request_header_fields_too_large",
                501 => "not_implemented",
                505 => "http_version_not_supported",
                _ => "invalid_request",
            },
        }
    }

    /// Why authentication or authorization refused the request, for `/metrics`.
    pub fn auth_failure(&self) -> Option<AuthFailure> {
        Some(match self {
            ProxyError::Authn(error) => error.failure(),
            ProxyError::SignIn(_) => AuthFailure::Missing,
            ProxyError::CrossSite(_) => AuthFailure::Malformed,
            ProxyError::Denied(Denied::Impersonation(_) | Denied::NoSuchUser) => {
                AuthFailure::ImpersonationRefused
            }
            ProxyError::Denied(Denied::InsufficientScope(_)) => AuthFailure::InsufficientScope,
            ProxyError::Denied(Denied::Audience(_)) => AuthFailure::Invalid,
            ProxyError::Denied(Denied::BadRequest(_)) => AuthFailure::Malformed,
            _ => return None,
        })
    }

    /// The client's answer. Upstream and internal details stay in the log, not in the body.
    pub fn into_response(self, request_id: &HeaderValue) -> Response<Body> {
        let body = serde_json::json!({
            "error": self.code(),
            "error_description": self.to_string(),
            "request_id": request_id.to_str().unwrap_or_default(),
        });
        let mut response = json_response(self.status(), &body);
        let headers = response.headers_mut();
        match &self {
            ProxyError::Authn(AuthnError::Missing) => {
                headers.insert(
                    header::WWW_AUTHENTICATE,
                    HeaderValue::from_static("Bearer realm=\"authgate\""),
                );
            }
            // Not the token's fault: no challenge, the client should simply retry.
            ProxyError::Authn(AuthnError::Unavailable) => {
                headers.insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
            }
            // RFC 6750 §3: the error code and description ride in the challenge too.
            ProxyError::Authn(_)
            | ProxyError::Denied(
                Denied::InsufficientScope(_)
                | Denied::Impersonation(_)
                | Denied::BadRequest(_)
                | Denied::Audience(_),
            ) => {
                let description = self.to_string().replace(['"', '\\'], "'");
                let challenge = format!(
                    "Bearer realm=\"authgate\", error=\"{}\", error_description=\"{description}\"",
                    self.code()
                );
                if let Ok(value) = HeaderValue::from_str(&challenge) {
                    headers.insert(header::WWW_AUTHENTICATE, value);
                }
            }
            ProxyError::SignIn(sign_in) if sign_in.redirect => {
                headers.insert(header::LOCATION, sign_in.location.clone());
            }
            // RFC 9110 §15.5.2: a 401 names a scheme. A cookie is none of HTTP's; the
            // `Cookie` scheme (draft-broyer-http-cookie-auth) says where to sign in.
            ProxyError::SignIn(sign_in) => {
                // A navigation answered 401 instead of 302 (nginx) still says where to sign in.
                if sign_in.header && sign_in.navigate {
                    headers.insert(&SIGN_IN_HEADER, sign_in.location.clone());
                }
                let challenge = if sign_in.bearer {
                    "Bearer realm=\"authgate\"".to_owned()
                } else {
                    let form = sign_in.location.to_str().unwrap_or("/");
                    let form = form.split('?').next().unwrap_or("/");
                    format!(
                        "Cookie realm=\"authgate\", form-action=\"{form}\", cookie-name=\"{}\"",
                        sign_in.cookie
                    )
                };
                if let Ok(value) = HeaderValue::from_str(&challenge) {
                    headers.insert(header::WWW_AUTHENTICATE, value);
                }
            }
            ProxyError::RateLimited(after) => {
                headers.insert(
                    header::RETRY_AFTER,
                    HeaderValue::from(after.as_secs().max(1)),
                );
            }
            ProxyError::MethodNotAllowed(methods) => {
                let list: Vec<&str> = methods.iter().map(Method::as_str).collect();
                if let Ok(value) = HeaderValue::from_str(&list.join(", ")) {
                    headers.insert(header::ALLOW, value);
                }
            }
            // The request body was not read to the end (or cannot be framed): the connection
            // cannot be reused.
            ProxyError::WebSocketVersion => {
                headers.insert("sec-websocket-version", HeaderValue::from_static("13"));
            }
            // (A `Wire` refusal closes too: hyper adds it, the stand-in request asked for it.)
            ProxyError::BodyTooLarge { .. } | ProxyError::NotImplemented(_) => {
                headers.insert(header::CONNECTION, HeaderValue::from_static("close"));
            }
            _ => {}
        }
        headers.insert(&super::headers::X_REQUEST_ID, request_id.clone());
        response
    }
}
