//! CORS (Fetch standard) for browser applications: the discovery documents, the JWKS, the
//! token, revocation and UserInfo endpoints answer cross-origin requests from the origins of
//! registered redirect URIs, so a single-page application can use them. No credentials
//! (cookies) are ever allowed cross-origin: these endpoints take tokens and client
//! credentials in headers or the body, never a cookie.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use hyper::header::{self, HeaderMap, HeaderValue};
use hyper::{Response, StatusCode};

use crate::grant::Engine;
use crate::http::Body;

/// How long the list of registered origins is reused before the store is asked again: a new
/// client's SPA works within this long, without a query per request.
const FRESH: Duration = Duration::from_secs(5);

/// The registered browser origins, cached briefly.
pub struct Cors {
    engine: Arc<Engine>,
    cached: Mutex<Option<(Instant, Arc<Vec<String>>)>>,
}

impl Cors {
    /// Origins come from `engine`'s registered clients.
    pub fn new(engine: Arc<Engine>) -> Self {
        Cors {
            engine,
            cached: Mutex::new(None),
        }
    }

    /// The request's `Origin`, when it is a registered browser client's.
    pub async fn allowed(&self, headers: &HeaderMap) -> Option<HeaderValue> {
        let origin = headers.get(header::ORIGIN)?;
        let text = origin.to_str().ok()?.to_ascii_lowercase();
        let origins = self.origins().await?;
        origins.binary_search(&text).ok().map(|_| origin.clone())
    }

    async fn origins(&self) -> Option<Arc<Vec<String>>> {
        if let Ok(cached) = self.cached.lock()
            && let Some((at, origins)) = cached.as_ref()
            && at.elapsed() < FRESH
        {
            return Some(Arc::clone(origins));
        }
        let origins = match self.engine.browser_origins().await {
            Ok(origins) => Arc::new(origins),
            Err(error) => {
                // Remembered as "none" for the same while, so an unreachable store is not
                // asked again by every cross-origin request.
                tracing::warn!(%error, "CORS: reading the registered origins failed");
                Arc::new(Vec::new())
            }
        };
        if let Ok(mut cached) = self.cached.lock() {
            *cached = Some((Instant::now(), Arc::clone(&origins)));
        }
        Some(origins)
    }
}

/// The answer to a preflight (`OPTIONS` with `Access-Control-Request-Method`): 204, with the
/// permission only for an allowed origin (the browser refuses the request otherwise).
pub fn preflight(origin: Option<HeaderValue>, methods: &'static str) -> Response<Body> {
    let mut response = crate::http::respond(StatusCode::NO_CONTENT, None, "no-store", Bytes::new());
    let headers = response.headers_mut();
    headers.append(header::VARY, HeaderValue::from_static("Origin"));
    if let Some(origin) = origin {
        headers.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, origin);
        headers.insert(
            header::ACCESS_CONTROL_ALLOW_METHODS,
            HeaderValue::from_static(methods),
        );
        headers.insert(
            header::ACCESS_CONTROL_ALLOW_HEADERS,
            HeaderValue::from_static("Authorization, Content-Type"),
        );
        headers.insert(
            header::ACCESS_CONTROL_MAX_AGE,
            HeaderValue::from_static("600"),
        );
    }
    response
}

/// Lets an allowed origin read `response` (and its `WWW-Authenticate`, which tells a SPA why
/// UserInfo refused its token). `Vary: Origin` either way: caches must not mix the answers.
pub fn allow(response: &mut Response<Body>, origin: Option<HeaderValue>) {
    let headers = response.headers_mut();
    headers.append(header::VARY, HeaderValue::from_static("Origin"));
    if let Some(origin) = origin {
        headers.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, origin);
        headers.insert(
            header::ACCESS_CONTROL_EXPOSE_HEADERS,
            HeaderValue::from_static("WWW-Authenticate"),
        );
    }
}

/// Is this a CORS preflight (an `OPTIONS` asking for another method)?
pub fn is_preflight(method: &hyper::Method, headers: &HeaderMap) -> bool {
    method == hyper::Method::OPTIONS && headers.contains_key(header::ACCESS_CONTROL_REQUEST_METHOD)
}
