//! Request-level rules that keep the gateway's reading of a request the upstream's: framing
//! (RFC 9112 §3.2 `Host`, §6.1 transfer codings, `_` spellings of framing fields), methods
//! (`TRACE`, method overrides), and query parameters upstreams act on (`_method`,
//! `access_token`). The path's readings are `readings.rs`; header stripping is `headers.rs`.

use hyper::header::{self, HeaderMap};
use hyper::{Method, Version};

use super::ProxyError;
use super::headers;

/// Methods a route serves when it lists none and the request is refused with 405 (`TRACE`
/// echoes the request, cookies and tokens included, so it is never forwarded unless a route
/// lists it).
pub const DEFAULT_ALLOWED: [Method; 7] = [
    Method::GET,
    Method::HEAD,
    Method::POST,
    Method::PUT,
    Method::PATCH,
    Method::DELETE,
    Method::OPTIONS,
];

/// `OPTIONS *` (RFC 9110 §9.3.7): what the gateway as a whole serves, answered by the gateway
/// (no route has the path `*`): 200, `Allow` with the methods a route serves unless it lists
/// its own, no body.
pub fn server_options() -> hyper::Response<crate::http::Body> {
    let mut response =
        crate::http::respond(hyper::StatusCode::OK, None, "no-store", bytes::Bytes::new());
    let allow = DEFAULT_ALLOWED
        .iter()
        .map(Method::as_str)
        .collect::<Vec<_>>()
        .join(", ");
    if let Ok(value) = hyper::header::HeaderValue::from_str(&allow) {
        response.headers_mut().insert(header::ALLOW, value);
    }
    response
}

/// The header-section checks every request passes before anything else reads it.
pub fn check_framing(
    version: Version,
    method: &Method,
    headers: &HeaderMap,
) -> Result<(), ProxyError> {
    let hosts = headers.get_all(header::HOST).iter().count();
    // RFC 9112 §3.2: a server MUST answer 400 to an HTTP/1.1 request without `Host` or with
    // more than one. HTTP/1.0 may omit it; HTTP/2 carries `:authority` instead.
    if hosts > 1 || (version == Version::HTTP_11 && hosts == 0 && method != Method::CONNECT) {
        return Err(ProxyError::BadRequest(
            "the request must carry exactly one Host header",
        ));
    }
    if let Some(name) = headers::underscore_framing(headers) {
        tracing::debug!(
            header = name.as_str(),
            "underscore spelling of a framing header"
        );
        return Err(ProxyError::BadRequest(
            "a header name with `_` reads as a framing header to some upstreams",
        ));
    }
    // RFC 9112 §6.1: a transfer coding the server does not understand gets 501. Only
    // `chunked` is understood; hyper would decode the chunks and drop `gzip` silently, and the
    // upstream would get a body that is not what the client meant.
    for value in headers.get_all(header::TRANSFER_ENCODING) {
        let understood = value.to_str().is_ok_and(|v| {
            v.split(',')
                .map(str::trim)
                .all(|coding| coding.is_empty() || coding.eq_ignore_ascii_case("chunked"))
        });
        if !understood {
            return Err(ProxyError::NotImplemented(
                "only the chunked transfer coding is supported",
            ));
        }
    }
    Ok(())
}

/// A `TRACE` (or the IIS `TRACK`) that its route does not list explicitly.
pub fn refused_method(method: &Method, listed: Option<&[Method]>) -> bool {
    let tracing = method == Method::TRACE || method.as_str() == "TRACK";
    tracing && !listed.is_some_and(|methods| methods.contains(method))
}

/// The parameters of a query (or form body) as the upstreams read them: form-urlencoded
/// (`+` as space, percent-decoded), split at `;` as well as `&` (older PHP and Python did),
/// and names mangled as PHP does (`.`, space and `[` become `_`, `name[]` is `name`).
fn param_names(query: &str) -> impl Iterator<Item = (String, String)> + '_ {
    query
        .split(['&', ';'])
        .flat_map(|pair| form_urlencoded::parse(pair.as_bytes()))
        .map(|(name, value)| (php_name(&name), value.into_owned()))
}

fn php_name(name: &str) -> String {
    let name = name.split('[').next().unwrap_or(name);
    name.trim_start()
        .chars()
        .map(|c| if matches!(c, '.' | ' ') { '_' } else { c })
        .collect()
}

/// The first value of parameter `wanted` in `query`, decoded.
pub fn param(query: &str, wanted: &str) -> Option<String> {
    // Most queries name neither parameter: no decoding then. Only an escape can hide the
    // name's last part (`.`, space and `[` change what comes before it).
    let tail = wanted.rsplit('_').next().unwrap_or(wanted);
    if !query.contains(tail) && !query.contains('%') {
        return None;
    }
    param_names(query)
        .find(|(name, _)| name == wanted)
        .map(|(_, value)| value)
}

/// `query` without any `wanted` parameter (`None` when nothing is left).
pub fn without_param(query: &str, wanted: &str) -> Option<String> {
    let kept: Vec<&str> = query
        .split('&')
        .filter(|pair| {
            !pair
                .split(';')
                .any(|part| param_names(part).any(|(name, _)| name == wanted))
        })
        .collect();
    let joined = kept.join("&");
    (!joined.is_empty()).then_some(joined)
}

/// The method an override asks for: the override headers, then `_method` in the query.
/// Two different overrides are refused rather than guessed between.
pub fn override_method(
    headers: &HeaderMap,
    query: Option<&str>,
) -> Result<Option<Method>, ProxyError> {
    let mut found: Option<Method> = None;
    let from_headers = crate::config::METHOD_OVERRIDE_HEADERS
        .iter()
        .flat_map(|name| headers.get_all(*name).iter())
        .map(|value| value.to_str().unwrap_or("").to_owned());
    let from_query = query.and_then(|q| param(q, "_method"));
    for text in from_headers.chain(from_query) {
        let method = parse_method(&text)?;
        match &found {
            Some(existing) if *existing != method => {
                return Err(ProxyError::BadRequest(
                    "the request asks for two different override methods",
                ));
            }
            _ => found = Some(method),
        }
    }
    Ok(found)
}

/// `_method` in an `application/x-www-form-urlencoded` body (Laravel, Symfony and
/// method-override read it there).
pub fn form_method(body: &[u8]) -> Result<Option<Method>, ProxyError> {
    let text = String::from_utf8_lossy(body);
    param(&text, "_method")
        .map(|value| parse_method(&value))
        .transpose()
}

fn parse_method(text: &str) -> Result<Method, ProxyError> {
    let upper = text.trim().to_ascii_uppercase();
    Method::from_bytes(upper.as_bytes())
        .map_err(|_| ProxyError::BadRequest("the override method is not an HTTP method"))
}

/// A form post whose body may carry `_method`.
pub fn is_form_post(method: &Method, headers: &HeaderMap) -> bool {
    method == Method::POST
        && headers
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| {
                v.split(';').next().is_some_and(|t| {
                    t.trim()
                        .eq_ignore_ascii_case("application/x-www-form-urlencoded")
                })
            })
}

#[cfg(test)]
mod tests {
    use super::*;
    use hyper::header::HeaderValue;

    fn headers(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (name, value) in pairs {
            map.append(*name, HeaderValue::from_static(value));
        }
        map
    }

    #[test]
    fn host_is_required_once_on_http_11() {
        let get = Method::GET;
        assert!(check_framing(Version::HTTP_11, &get, &headers(&[("host", "a")])).is_ok());
        assert!(check_framing(Version::HTTP_11, &get, &headers(&[])).is_err());
        assert!(check_framing(Version::HTTP_10, &get, &headers(&[])).is_ok());
        assert!(check_framing(Version::HTTP_2, &get, &headers(&[])).is_ok());
        let two = headers(&[("host", "a"), ("host", "b")]);
        assert!(check_framing(Version::HTTP_11, &get, &two).is_err());
    }

    #[test]
    fn transfer_codings_other_than_chunked_are_not_implemented() {
        let get = Method::GET;
        let ok = headers(&[("host", "a"), ("transfer-encoding", "chunked")]);
        assert!(check_framing(Version::HTTP_11, &get, &ok).is_ok());
        let gzip = headers(&[("host", "a"), ("transfer-encoding", "gzip, chunked")]);
        assert!(matches!(
            check_framing(Version::HTTP_11, &get, &gzip),
            Err(ProxyError::NotImplemented(_))
        ));
    }

    #[test]
    fn underscore_framing_headers_are_refused() {
        let get = Method::GET;
        for name in [
            "transfer_encoding",
            "content_length",
            "keep_alive",
            "proxy_authorization",
        ] {
            let mut map = headers(&[("host", "a")]);
            map.insert(
                hyper::header::HeaderName::from_static(name),
                HeaderValue::from_static("5"),
            );
            assert!(
                check_framing(Version::HTTP_11, &get, &map).is_err(),
                "{name}"
            );
        }
        let fine = headers(&[("host", "a"), ("x_request_id", "1")]);
        assert!(check_framing(Version::HTTP_11, &get, &fine).is_ok());
    }

    #[test]
    fn trace_only_when_listed() {
        assert!(refused_method(&Method::TRACE, None));
        assert!(refused_method(&Method::TRACE, Some(&[Method::GET])));
        assert!(!refused_method(&Method::TRACE, Some(&[Method::TRACE])));
        assert!(!refused_method(&Method::GET, None));
    }

    #[test]
    fn query_parameters_as_upstreams_read_them() {
        assert_eq!(
            param("a=1&access_token=x", "access_token").as_deref(),
            Some("x")
        );
        assert_eq!(
            param("access%5Ftoken=y", "access_token").as_deref(),
            Some("y")
        );
        assert_eq!(
            param("access.token=z", "access_token").as_deref(),
            Some("z")
        );
        assert_eq!(param("a=1;_method=PUT", "_method").as_deref(), Some("PUT"));
        assert_eq!(param("_method[]=PUT", "_method").as_deref(), Some("PUT"));
        assert_eq!(param("x_method=PUT", "_method"), None);
        assert_eq!(
            without_param("a=1&access_token=x&b=2", "access_token").as_deref(),
            Some("a=1&b=2")
        );
        assert_eq!(without_param("access_token=x", "access_token"), None);
    }

    #[test]
    fn overrides() {
        let map = headers(&[("x-http-method-override", "delete")]);
        assert_eq!(
            override_method(&map, None).ok().flatten(),
            Some(Method::DELETE)
        );
        assert_eq!(
            override_method(&HeaderMap::new(), Some("_method=PUT"))
                .ok()
                .flatten(),
            Some(Method::PUT)
        );
        assert!(override_method(&map, Some("_method=PUT")).is_err());
        assert_eq!(
            form_method(b"a=1&_method=patch").ok().flatten(),
            Some(Method::PATCH)
        );
    }
}
