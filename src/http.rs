//! HTTP pieces shared by every part of the gateway that answers or forwards requests (the
//! proxy path, the token endpoints, the admin listener): the [`Body`] type on both sides, the
//! answers the gateway makes itself ([`respond`], [`json_response`]), the path grammar
//! ([`path`]) and header-name spellings ([`names`]). Imports nothing of the crate.

pub mod names;
pub mod path;
pub mod wire;

use bytes::Bytes;
use http_body_util::combinators::UnsyncBoxBody;
use http_body_util::{BodyExt, Full};
use hyper::header::{self, HeaderValue};
use hyper::{Response, StatusCode};

/// Any error a body or connection can end with; boxed so hyper, rustls and our own errors
/// travel in one [`Body`] type.
pub type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// The body type on both sides of the gateway: streamed, never collected.
pub type Body = UnsyncBoxBody<Bytes, BoxError>;

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

/// A JSON answer without caching headers (the proxy's errors, echo, the admin endpoints).
pub fn json_response(status: StatusCode, body: &serde_json::Value) -> Response<Body> {
    let bytes = Bytes::from(body.to_string());
    let mut response = Response::new(
        Full::new(bytes)
            .map_err(|never| match never {})
            .boxed_unsync(),
    );
    *response.status_mut() = status;
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    response
}
