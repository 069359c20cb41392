//! Forward-auth (`[forward_auth]`): an edge proxy that stays in place asks "may this request
//! pass, and as whom?" and copies the identity headers from the answer. The original request
//! goes through the same stages as a proxied one — path readings and route selection, the
//! credential (bearer or session), `authz` with impersonation and its audit, rate limits — and
//! the answer is 200 with the identity headers, or the refusal the proxy would have given.
//!
//! How the original request arrives, by convention:
//! - Traefik, Caddy: `X-Forwarded-Method`, `X-Forwarded-Uri`, `X-Forwarded-Host` (else `Host`);
//! - nginx: `X-Original-Method`, `X-Original-URI` (the shipped config sets them), `Host`;
//! - Envoy `ext_authz` (HTTP): the check request itself has the original method and goes to
//!   `<path><original path>?<query>`, with the original `Host`.
//!
//! Only `allow_from` may ask (their `X-Forwarded-For` and `X-Forwarded-*`/`X-Original-*` are
//! believed); anyone else gets 403. Stripping the client's identity headers before the
//! upstream is the edge proxy's job here: authgate cannot remove what it does not forward.

use bytes::Bytes;
use hyper::header::{self, HeaderMap, HeaderName, HeaderValue};
use hyper::http::request::Parts;
use hyper::{Method, Request, Response, StatusCode, Uri, Version};
use ipnet::IpNet;

use super::admission::Audit;
use super::error::ProxyError;
use super::intake::{Inbound, Origin};
use super::{Proxy, headers};
use crate::config::{BrowserResponse, Config, RouteConfig};
use crate::http::{Body, path};

static X_FORWARDED_METHOD: HeaderName = HeaderName::from_static("x-forwarded-method");
static X_FORWARDED_URI: HeaderName = HeaderName::from_static("x-forwarded-uri");
static X_ORIGINAL_METHOD: HeaderName = HeaderName::from_static("x-original-method");
static X_ORIGINAL_URI: HeaderName = HeaderName::from_static("x-original-uri");
/// Envoy `ext_authz`: request headers the authorization service wants removed upstream.
static ENVOY_REMOVE: HeaderName = HeaderName::from_static("x-envoy-auth-headers-to-remove");

/// The check endpoint of one config.
pub(crate) struct ForwardAuth {
    path: String,
    allow_from: Vec<IpNet>,
    browser: BrowserResponse,
}

/// Which proxy asked, as far as its headers tell.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Convention {
    /// `X-Forwarded-Uri` (Traefik, Caddy).
    Forwarded,
    /// `X-Original-URI` (nginx `auth_request`).
    Nginx,
    /// `<path>/<original path>` (Envoy `ext_authz`).
    Prefix,
}

/// The request the edge proxy is deciding about.
struct Original {
    method: Method,
    uri: Uri,
    host: Option<HeaderValue>,
    convention: Convention,
}

impl ForwardAuth {
    pub fn new(config: &Config) -> Option<Self> {
        config.forward_auth.as_ref().map(|f| ForwardAuth {
            path: f.path.clone(),
            allow_from: f.allow_from.clone(),
            browser: f.browser_response,
        })
    }

    /// Whether the (normalised) `path` is the check endpoint: exactly, or under it (Envoy).
    pub fn matches(&self, path: &str) -> bool {
        path.strip_prefix(self.path.as_str())
            .is_some_and(|rest| rest.is_empty() || rest.starts_with('/'))
    }

    /// The original request, from the check request's target or headers.
    fn original(&self, parts: &Parts) -> Result<Original, ProxyError> {
        let raw = parts.uri.path();
        let rest = raw.strip_prefix(self.path.as_str()).unwrap_or_default();
        if rest.starts_with('/') {
            let target = match parts.uri.query() {
                Some(query) => format!("{rest}?{query}"),
                None => rest.to_owned(),
            };
            let uri = target
                .parse::<Uri>()
                .map_err(|_| ProxyError::BadRequest("the original request's target is invalid"))?;
            return Ok(Original {
                method: parts.method.clone(),
                uri,
                host: parts.headers.get(header::HOST).cloned(),
                convention: Convention::Prefix,
            });
        }
        let headers = &parts.headers;
        let (uri, convention) = match (
            single(headers, &X_FORWARDED_URI)?,
            single(headers, &X_ORIGINAL_URI)?,
        ) {
            (Some(a), Some(b)) if a != b => {
                return Err(ProxyError::BadRequest(
                    "X-Forwarded-Uri and X-Original-URI name different requests",
                ));
            }
            (Some(uri), _) => (uri, Convention::Forwarded),
            (None, Some(uri)) => (uri, Convention::Nginx),
            (None, None) => {
                return Err(ProxyError::BadRequest(
                    "the original request is missing: send X-Forwarded-Uri (Traefik, Caddy), X-Original-URI (nginx), or ask at the check path + the original path (Envoy)",
                ));
            }
        };
        let method = match (
            single(headers, &X_FORWARDED_METHOD)?,
            single(headers, &X_ORIGINAL_METHOD)?,
        ) {
            (Some(a), Some(b)) if a != b => {
                return Err(ProxyError::BadRequest(
                    "X-Forwarded-Method and X-Original-Method name different methods",
                ));
            }
            (Some(method), _) | (None, Some(method)) => method,
            // Judging a POST as the GET of the check request could pass what a method list
            // refuses: the method is required.
            (None, None) => {
                return Err(ProxyError::BadRequest(
                    "the original method is missing: send X-Forwarded-Method or X-Original-Method",
                ));
            }
        };
        let method = Method::from_bytes(method.as_bytes())
            .map_err(|_| ProxyError::BadRequest("the original method is not an HTTP method"))?;
        let uri = uri
            .to_str()
            .ok()
            .filter(|u| u.starts_with('/'))
            .and_then(|u| u.parse::<Uri>().ok())
            .ok_or(ProxyError::BadRequest(
                "the original URI must be a path with an optional query",
            ))?;
        let host = headers
            .get(&headers::X_FORWARDED_HOST)
            .or_else(|| headers.get(header::HOST))
            .cloned();
        Ok(Original {
            method,
            uri,
            host,
            convention,
        })
    }

    /// A browser without a session: 302 to the sign-in page for proxies that pass the answer
    /// on, 401 (with the sign-in URL in `X-Authgate-Sign-In`) for nginx.
    fn redirects(&self, convention: Convention) -> bool {
        match self.browser {
            BrowserResponse::Redirect => true,
            BrowserResponse::Unauthorized => false,
            BrowserResponse::Auto => convention != Convention::Nginx,
        }
    }
}

/// The one value of `name`; two different values are refused, not guessed between.
fn single<'h>(
    headers: &'h HeaderMap,
    name: &HeaderName,
) -> Result<Option<&'h HeaderValue>, ProxyError> {
    let mut values = headers.get_all(name).iter();
    let first = values.next();
    if values.any(|other| Some(other) != first) {
        return Err(ProxyError::BadRequest(
            "a forward-auth header is repeated with different values",
        ));
    }
    Ok(first)
}

impl Proxy {
    /// Answers a check request: the original request through route selection and admission,
    /// then 200 with the identity headers to copy (none on a public route).
    pub(super) async fn check(
        &self,
        check: &ForwardAuth,
        request: Request<hyper::body::Incoming>,
        origin: &Origin<'_>,
        seen: &mut Option<std::sync::Arc<RouteConfig>>,
    ) -> Result<Response<Body>, ProxyError> {
        let peer = origin.conn.peer.ip();
        if !check.allow_from.iter().any(|net| net.contains(&peer)) {
            return Err(ProxyError::Forbidden(
                "this address may not use the forward-auth endpoint (forward_auth.allow_from)",
            ));
        }
        let (check_parts, _body) = request.into_parts();
        let original = check.original(&check_parts)?;
        let normalized = path::normalize(original.uri.path())?.into_owned();
        let mut builder = Request::builder()
            .method(original.method.clone())
            .uri(original.uri.clone())
            .version(Version::HTTP_11);
        if let Some(headers) = builder.headers_mut() {
            *headers = check_parts.headers.clone();
            for name in [
                &X_FORWARDED_METHOD,
                &X_FORWARDED_URI,
                &X_ORIGINAL_METHOD,
                &X_ORIGINAL_URI,
            ] {
                headers.remove(name);
            }
            match &original.host {
                Some(host) => headers.insert(header::HOST, host.clone()),
                None => headers.remove(header::HOST),
            };
        }
        let (parts, ()) = builder
            .body(())
            .map_err(|_| ProxyError::BadRequest("the original request is invalid"))?
            .into_parts();
        // The client is the one the asking proxy names (it is trusted to).
        let client = headers::client_addr(peer, &parts.headers, &check.allow_from);
        let asked = Origin {
            conn: origin.conn,
            client,
            request_id: origin.request_id.clone(),
            memo: origin.memo,
        };
        let mut body = Inbound::Buffered(Bytes::new());
        let prepared = self
            .prepare(&parts, &mut body, &normalized, &asked, Audit::Write, seen)
            .await;
        let prepared = match prepared {
            Ok(prepared) => prepared,
            Err(ProxyError::NoRoute) => {
                return Err(ProxyError::Forbidden(
                    "no route matches the original request",
                ));
            }
            Err(ProxyError::SignIn(mut sign_in)) => {
                sign_in.header = true;
                sign_in.redirect &= check.redirects(original.convention);
                return Err(ProxyError::SignIn(sign_in));
            }
            Err(error) => return Err(error),
        };
        let mut answer = HeaderMap::new();
        if let Some(identity) = &prepared.identity {
            self.identity
                .inject(&mut answer, &prepared.selection.policy, identity)?;
        }
        if original.convention == Convention::Prefix {
            // Envoy replaces only the headers the answer names (those it overwrites): it removes
            // these too, so a client's other spellings of an identity header, and any on a
            // public route, never reach the upstream.
            let spelled: Vec<&str> = parts
                .headers
                .keys()
                .filter(|name| self.identity.names().matches(name) && !answer.contains_key(*name))
                .map(HeaderName::as_str)
                .collect();
            if let Ok(list) = HeaderValue::from_str(&spelled.join(","))
                && !spelled.is_empty()
            {
                answer.insert(&ENVOY_REMOVE, list);
            }
        }
        let mut response = crate::http::respond(StatusCode::OK, None, "no-store", Bytes::new());
        response.headers_mut().extend(answer);
        Ok(response)
    }
}
