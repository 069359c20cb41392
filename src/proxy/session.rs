//! Session routes (`auth = "session"` / `"session_or_bearer"`): the browser's
//! `__Host-authgate-session` cookie resolved to a principal ([`Sessions`]), the same-origin
//! rule for what a cookie can be made to do from another site, and the way to the sign-in page
//! for a browser without a session.
//!
//! Same-origin: a cookie rides along on requests other sites trigger, so a session may only
//! change state (any method but GET, HEAD, OPTIONS) or open a WebSocket when the request says
//! it comes from the gateway's own origin: `Sec-Fetch-Site: same-origin` (`same-site` is not
//! enough: a sibling subdomain is another application), else `Origin` equal to
//! `https://<the request's host>`, else (browsers that send neither) a `Referer` on that origin.
//! A request with none of the three is refused: every current browser sends `Origin` on a
//! POST, and a script using the cookie can send it too.

use std::sync::Arc;
use std::time::Duration;

use hyper::header::{self, HeaderMap, HeaderValue};
use hyper::http::request::Parts;
use hyper::{Method, Uri};

use super::error::ProxyError;
use crate::authn::session::{Limits, Refusal};
use crate::authn::{
    AuthnError, Principal, SESSION_COOKIE, SHARED_SESSION_COOKIE, SessionCookie, Sessions,
};
use crate::config::{AuthPolicy, Config, RouteConfig};
use crate::store::SessionLimits;

/// Sec-Fetch-Site, Origin or Referer must say this.
const CROSS_SITE: &str = "a signed-in session can only change data from pages of this site (Origin or Sec-Fetch-Site must be same-origin)";

/// The session side of admission, for one config.
pub(crate) struct SessionGate {
    sessions: Arc<Sessions>,
    login: SessionLimits,
    /// How long a resolved session is trusted without asking the store again.
    recheck: Duration,
    /// The sign-in page's path; `None` when no route reads sessions (checked at load).
    signin: Option<String>,
    /// The session cookie's name.
    cookie: &'static str,
}

/// A session route's refusal of a request without a usable session: a browser navigation is
/// sent to sign in (302), anything else gets 401.
#[derive(Debug, Clone)]
pub struct SignIn {
    /// The sign-in page with the way back (`rd`, a path on this host).
    pub location: HeaderValue,
    /// A browser navigation (`GET`/`HEAD` accepting HTML).
    pub navigate: bool,
    /// Answered with 302 to `location` (a navigation, unless a forward-auth edge proxy cannot
    /// pass a redirect on), else 401.
    pub redirect: bool,
    /// The route also takes bearer tokens: the 401's challenge is `Bearer`.
    pub bearer: bool,
    /// The session cookie's name (the 401's `Cookie` challenge names it).
    pub cookie: &'static str,
    /// A forward-auth answer: a navigation's sign-in URL also rides in
    /// `X-Authgate-Sign-In`, for an edge proxy that cannot pass a 302 on (nginx).
    pub header: bool,
}

impl SessionGate {
    pub fn new(config: &Config, sessions: Arc<Sessions>) -> Self {
        SessionGate {
            sessions,
            login: SessionLimits {
                absolute: config.login.session_ttl,
                idle: config.login.idle_timeout,
            },
            recheck: config.auth.refresh_interval,
            signin: config
                .dialects
                .oauth2
                .as_ref()
                .and_then(|o| o.signin.clone()),
            cookie: SessionCookie::of(config).name,
        }
    }

    /// The principal of the request's session on `route` (whose `auth` reads sessions), after
    /// the same-origin rule for what would change state.
    pub async fn authenticate(
        &self,
        parts: &Parts,
        route: &RouteConfig,
        authority: Option<&HeaderValue>,
    ) -> Result<Arc<Principal>, ProxyError> {
        let Some(cookie) = session_cookie(&parts.headers, self.cookie) else {
            return Err(self.sign_in(parts, route, false));
        };
        let limits = Limits {
            login: self.login,
            route_absolute: route.session.absolute,
            route_idle: route.session.idle,
        };
        let now = crate::store::now();
        let resolved = match self
            .sessions
            .resolve(cookie, &limits, self.recheck, now)
            .await
        {
            Ok(resolved) => resolved,
            Err(Refusal::None) => return Err(self.sign_in(parts, route, false)),
            Err(Refusal::TooOld) => return Err(self.sign_in(parts, route, true)),
            Err(Refusal::Unavailable) => return Err(AuthnError::Unavailable.into()),
        };
        if changes_state(parts) && !same_origin(&parts.headers, authority) {
            return Err(ProxyError::CrossSite(CROSS_SITE));
        }
        tracing::debug!(session = %resolved.id, "session accepted");
        Ok(resolved.principal)
    }

    /// Where a browser without a (good enough) session goes: the sign-in page, back to this
    /// request's path and query afterwards; `again` asks for the password even if the
    /// session is live elsewhere (it is too old or idle for this route).
    fn sign_in(&self, parts: &Parts, route: &RouteConfig, again: bool) -> ProxyError {
        let signin = self.signin.as_deref().unwrap_or("/");
        let back = parts.uri.path_and_query().map_or("/", |pq| pq.as_str());
        let mut query = form_urlencoded::Serializer::new(String::new());
        query.append_pair("rd", back);
        if again {
            query.append_pair("prompt", "login");
        }
        let location = format!("{signin}?{}", query.finish());
        ProxyError::SignIn(SignIn {
            // Percent-encoded ASCII: always a header value.
            location: HeaderValue::from_str(&location)
                .unwrap_or_else(|_| HeaderValue::from_static("/")),
            navigate: is_navigation(parts),
            redirect: is_navigation(parts),
            bearer: route.auth == AuthPolicy::SessionOrBearer,
            header: false,
            cookie: self.cookie,
        })
    }
}

/// The request's session cookie `name` (the first, if a browser sent several).
pub(crate) fn session_cookie<'h>(headers: &'h HeaderMap, name: &str) -> Option<&'h str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|text| text.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(found, _)| *found == name)
        .map(|(_, value)| value.trim_matches('"'))
}

/// The gateway's own cookies: the session (a credential) and the login pages' CSRF cookie,
/// plus the session's name before it became host-only.
const GATEWAY_COOKIES: [&str; 4] = [
    SESSION_COOKIE,
    SHARED_SESSION_COOKIE,
    "authgate_csrf",
    "authgate_session",
];

/// Removes the gateway's cookies from the request's `Cookie` headers (names compared without
/// case, as some upstream stacks read them), keeping every other cookie as sent: the session
/// is the gateway's credential and never reaches an upstream, whatever the route.
pub(crate) fn strip_gateway_cookies(headers: &mut HeaderMap) {
    let ours = |pair: &[u8]| {
        let name = pair
            .split(|b| *b == b'=')
            .next()
            .unwrap_or_default()
            .trim_ascii();
        GATEWAY_COOKIES
            .iter()
            .any(|ours| name.eq_ignore_ascii_case(ours.as_bytes()))
    };
    // Most requests carry none of ours: nothing is copied then (every request passes here).
    let carries = |v: &HeaderValue| v.as_bytes().split(|b| *b == b';').any(ours);
    if !headers.get_all(header::COOKIE).iter().any(carries) {
        return;
    }
    let values: Vec<HeaderValue> = headers.get_all(header::COOKIE).iter().cloned().collect();
    headers.remove(header::COOKIE);
    for value in values {
        let kept: Vec<&[u8]> = value
            .as_bytes()
            .split(|b| *b == b';')
            .filter(|pair| !ours(pair) && !pair.trim_ascii().is_empty())
            .map(<[u8]>::trim_ascii)
            .collect();
        if kept.is_empty() {
            continue;
        }
        if let Ok(value) = HeaderValue::from_bytes(&kept.join(&b"; "[..])) {
            headers.append(header::COOKIE, value);
        }
    }
}

/// A browser navigating: `GET`/`HEAD` that accepts HTML (what a page load sends; `fetch` and
/// XHR send `*/*` or JSON unless told otherwise), and no protocol upgrade.
fn is_navigation(parts: &Parts) -> bool {
    let accepts_html = parts
        .headers
        .get_all(header::ACCEPT)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .any(|v| v.to_ascii_lowercase().contains("text/html"));
    matches!(parts.method, Method::GET | Method::HEAD)
        && accepts_html
        && !parts.headers.contains_key(header::UPGRADE)
}

/// What a cross-site page must not make a session do: any method but the safe ones, or a
/// protocol upgrade (a WebSocket is a two-way channel opened with GET).
fn changes_state(parts: &Parts) -> bool {
    let safe = matches!(parts.method, Method::GET | Method::HEAD | Method::OPTIONS);
    !safe || parts.headers.contains_key(header::UPGRADE)
}

/// The request comes from a page of its own origin (see the module docs for the order).
fn same_origin(headers: &HeaderMap, authority: Option<&HeaderValue>) -> bool {
    let Some(host) = authority.and_then(|a| a.to_str().ok()) else {
        return false;
    };
    if let Some(site) = headers.get("sec-fetch-site") {
        return site.as_bytes().eq_ignore_ascii_case(b"same-origin");
    }
    if let Some(origin) = headers.get(header::ORIGIN) {
        return origin.to_str().is_ok_and(|o| origin_is(o, host));
    }
    match headers.get(header::REFERER).and_then(|r| r.to_str().ok()) {
        Some(referer) => referer.parse::<Uri>().is_ok_and(|uri| {
            let origin = match (uri.scheme_str(), uri.authority()) {
                (Some(scheme), Some(authority)) => format!("{scheme}://{authority}"),
                _ => return false,
            };
            origin_is(&origin, host)
        }),
        None => false,
    }
}

/// `origin` (scheme://host[:port]) is `https://` + `host` (the request's authority), ports
/// compared with 443 as the default and host names without case.
fn origin_is(origin: &str, host: &str) -> bool {
    let Some(rest) = origin.strip_prefix("https://") else {
        return false;
    };
    let strip_default = |authority: &str| -> String {
        let lower = authority.to_ascii_lowercase();
        match lower.strip_suffix(":443") {
            Some(bare) => bare.to_owned(),
            None => lower,
        }
    };
    !rest.is_empty() && strip_default(rest) == strip_default(host)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (name, value) in pairs {
            map.append(*name, HeaderValue::from_static(value));
        }
        map
    }

    #[test]
    fn same_origin_rules() {
        let host = HeaderValue::from_static("app.example");
        let host = Some(&host);
        assert!(same_origin(
            &headers(&[("sec-fetch-site", "same-origin")]),
            host
        ));
        // Sec-Fetch-Site decides when present, even with a matching Origin.
        let same_site = [
            ("sec-fetch-site", "same-site"),
            ("origin", "https://app.example"),
        ];
        assert!(!same_origin(&headers(&same_site), host));
        assert!(!same_origin(
            &headers(&[("sec-fetch-site", "cross-site")]),
            host
        ));
        assert!(same_origin(
            &headers(&[("origin", "https://app.example")]),
            host
        ));
        assert!(same_origin(
            &headers(&[("origin", "https://APP.example:443")]),
            host
        ));
        assert!(!same_origin(
            &headers(&[("origin", "http://app.example")]),
            host
        ));
        assert!(!same_origin(
            &headers(&[("origin", "https://evil.example")]),
            host
        ));
        assert!(!same_origin(
            &headers(&[("origin", "https://app.example.evil")]),
            host
        ));
        assert!(!same_origin(&headers(&[("origin", "null")]), host));
        assert!(same_origin(
            &headers(&[("referer", "https://app.example/form?x=1")]),
            host
        ));
        assert!(!same_origin(
            &headers(&[("referer", "https://evil.example/")]),
            host
        ));
        assert!(!same_origin(&headers(&[]), host));
        let with_port = HeaderValue::from_static("app.example:8443");
        let ok = [("origin", "https://app.example:8443")];
        assert!(same_origin(&headers(&ok), Some(&with_port)));
        assert!(!same_origin(
            &headers(&[("origin", "https://app.example")]),
            Some(&with_port)
        ));
    }

    #[test]
    fn gateway_cookies_never_reach_upstream() {
        let mut map = headers(&[
            ("cookie", "a=1; __Host-authgate-session=abc; b=2"),
            ("cookie", "__HOST-AUTHGATE-SESSION=x;authgate_csrf=y"),
            ("cookie", "PHPSESSID=z"),
        ]);
        strip_gateway_cookies(&mut map);
        let left: Vec<&str> = map
            .get_all("cookie")
            .iter()
            .map(|v| v.to_str().unwrap_or_default())
            .collect();
        assert_eq!(left, ["a=1; b=2", "PHPSESSID=z"]);
        let mut untouched = headers(&[("cookie", "a=1;b=2")]);
        strip_gateway_cookies(&mut untouched);
        assert_eq!(untouched["cookie"], "a=1;b=2");
    }

    #[test]
    fn the_session_cookie_is_found_among_others() {
        let map = headers(&[("cookie", "a=1; __Host-authgate-session=abc; b=2")]);
        assert_eq!(session_cookie(&map, SESSION_COOKIE), Some("abc"));
        let old = headers(&[("cookie", "authgate_session=x")]);
        assert_eq!(session_cookie(&old, SESSION_COOKIE), None);
    }
}

/// Property tests (issue 26): the `Cookie` parsing of every request, on any bytes.
#[cfg(test)]
mod properties {
    use proptest::prelude::*;
    use proptest::test_runner::Config;

    use super::*;

    /// One `Cookie` pair: one of the gateway's in any case and padding, or anything at all.
    fn pair() -> impl Strategy<Value = Vec<u8>> {
        let ours = (
            prop::sample::select(GATEWAY_COOKIES.to_vec()),
            any::<u64>(),
            prop::sample::select(vec!["", " ", "\t", "  "]),
            prop::collection::vec(any::<u8>(), 0..6),
        )
            .prop_map(|(name, case, pad, value)| {
                let mut pair: Vec<u8> = pad.as_bytes().to_vec();
                pair.extend(name.bytes().enumerate().map(|(i, b)| {
                    if case >> (i % 64) & 1 == 1 {
                        b.to_ascii_uppercase()
                    } else {
                        b.to_ascii_lowercase()
                    }
                }));
                pair.extend_from_slice(pad.as_bytes());
                if case >> 63 == 0 {
                    pair.push(b'=');
                    pair.extend(value.into_iter().filter(|b| *b != b';'));
                }
                pair
            });
        prop_oneof![
            ours,
            prop::collection::vec(any::<u8>().prop_filter("no ;", |b| *b != b';'), 0..12),
            Just(Vec::new()),
        ]
    }

    fn cookie_headers() -> impl Strategy<Value = HeaderMap> {
        prop::collection::vec(prop::collection::vec(pair(), 0..5), 0..4).prop_map(|values| {
            let mut headers = HeaderMap::new();
            for pairs in values {
                if let Ok(value) = HeaderValue::from_bytes(&pairs.join(&b";"[..])) {
                    headers.append(header::COOKIE, value);
                }
            }
            headers
        })
    }

    fn is_ours(pair: &[u8]) -> bool {
        let name = pair.split(|b| *b == b'=').next().unwrap_or_default();
        let name = name.trim_ascii();
        GATEWAY_COOKIES
            .iter()
            .any(|ours| name.eq_ignore_ascii_case(ours.as_bytes()))
    }

    /// Every pair of every `Cookie` header, trimmed, empty ones left out.
    fn pairs(headers: &HeaderMap) -> Vec<Vec<u8>> {
        headers
            .get_all(header::COOKIE)
            .iter()
            .flat_map(|v| v.as_bytes().split(|b| *b == b';'))
            .map(|p| p.trim_ascii().to_vec())
            .filter(|p| !p.is_empty())
            .collect()
    }

    proptest! {
        #![proptest_config(Config { cases: 4000, failure_persistence: None, ..Config::default() })]

        /// None of the gateway's cookies is left, in any case; every other pair is kept, in
        /// order; and the session is not found any more, under either name.
        #[test]
        fn gateway_cookies_never_pass(mut headers in cookie_headers()) {
            let expected: Vec<Vec<u8>> = pairs(&headers).into_iter().filter(|p| !is_ours(p)).collect();
            strip_gateway_cookies(&mut headers);
            prop_assert_eq!(pairs(&headers), expected);
            for name in [SESSION_COOKIE, SHARED_SESSION_COOKIE] {
                prop_assert_eq!(session_cookie(&headers, name), None);
            }
        }

        /// The session cookie is found exactly when a pair has its name, and its value is that
        /// pair's, quotes removed.
        #[test]
        fn the_session_cookie_is_the_first_named_pair(headers in cookie_headers()) {
            let first = headers
                .get_all(header::COOKIE)
                .iter()
                .filter_map(|v| v.to_str().ok())
                .flat_map(|v| v.split(';'))
                .filter_map(|p| p.trim().split_once('='))
                .find(|(name, _)| *name == SESSION_COOKIE);
            let found = session_cookie(&headers, SESSION_COOKIE);
            prop_assert_eq!(found, first.map(|(_, v)| v.trim_matches('"')));
        }
    }
}
